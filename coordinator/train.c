/* coordinator/train.c — the training loop of LEARNING.md's recipe in one process: warm start
 * (fusion over in-batch gold items), then memory training with the real top-K, re-encoding and
 * gold injection; AdamW with its schedule; continual fact edits every R updates, each followed
 * by a refresh of the whole memory (the encoder has moved since the last one); a curve line
 * every N updates. Also the trainer's construction, knowledge edits and checkpoints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "coord_impl.h"
#include "rng.h"
#include "rv.h"

enum { COORD_STREAM_ORDER = 21, COORD_STREAM_EDIT = 22 };

void coord_config_default(coord_config *c) {
    memset(c, 0, sizeof *c);
    world_config_default(&c->world);
    rvm_config_default(&c->model);
    c->model.text_max = 12; /* BOS + the longest question or KG / QA / image-text item */
    c->n_sources = 3;
    c->source_types[0] = WORLD_IMAGE_TEXT;
    c->source_types[1] = WORLD_KG;
    c->source_types[2] = WORLD_QA;
    c->tok_vocab = 0;
    c->batch = 32;
    c->steps = 3000;
    c->warm_steps = 500;
    c->warm_others = 3;
    c->topk = 4;
    c->rho = 0.25f;
    c->inject = 0.5f;
    c->edit_every = 100;
    c->edit_fraction = 1.0;
    trn_adamw_config_default(&c->opt);
    c->opt.sched.lr = 2e-3f;
    c->opt.sched.min_lr = 2e-3f;
    c->opt.sched.warmup_steps = 50;
    c->opt.sched.total_steps = c->steps;
    c->opt.sched.decay = TRN_DECAY_CONSTANT;
    c->log_every = 100;
    c->eval_rows = 0;
    c->seed = 1;
}

void coord_config_mechanism(coord_config *c) {
    coord_config_default(c);
    c->world.entities = 16;
    c->world.relations = 4;
    c->world.unasked = 1;
    c->batch = 16;
    c->model.con_weight = 0.0f;
    c->model.head_pool = 1;
    c->model.tau_scale = 10.0f; /* 1/τ starts at 5, may rise to 10 */
    c->warm_others = 7;
    c->warm_ramp = 250;
    c->steps = c->warm_steps = c->opt.sched.total_steps = 1000;
    c->edit_every = 10;
    c->log_every = 50;
}

int coord_config_check(const coord_config *c, char *err) {
    if (world_config_check(&c->world, err)) return rv_fail_wrap(err, "coord config: world");
    if (c->n_sources < 1 || c->n_sources > COORD_MAX_SOURCES)
        return rv_fail(err, "coord config: n_sources is %d, must be in [1, %d]", c->n_sources,
                       COORD_MAX_SOURCES);
    for (int j = 0; j < c->n_sources; j++) {
        if (c->source_types[j] < WORLD_IMAGE_TEXT || c->source_types[j] > WORLD_TEXT)
            return rv_fail(err, "coord config: source_types[%d] is %d, not a world source", j,
                           (int)c->source_types[j]);
        for (int i = 0; i < j; i++)
            if (c->source_types[i] == c->source_types[j])
                return rv_fail(err, "coord config: source type %d is listed twice",
                               (int)c->source_types[j]);
    }
    if (c->batch < 2) return rv_fail(err, "coord config: batch is %d, must be ≥ 2", c->batch);
    if (c->steps < 0 || c->warm_steps < 0)
        return rv_fail(err, "coord config: steps (%ld) and warm_steps (%ld) must be ≥ 0", c->steps,
                       c->warm_steps);
    if (c->warm_others < 0 || c->warm_others >= c->batch)
        return rv_fail(err, "coord config: warm_others is %d, must be in [0, batch − 1 = %d]",
                       c->warm_others, c->batch - 1);
    if (c->warm_ramp < 0)
        return rv_fail(err, "coord config: warm_ramp is %ld, must be ≥ 0", c->warm_ramp);
    if (c->topk < 1) return rv_fail(err, "coord config: topk is %d, must be ≥ 1", c->topk);
    if (!(c->rho >= 0.0f && c->rho <= 1.0f))
        return rv_fail(err, "coord config: rho is %g, must be in [0, 1]", c->rho);
    if (!(c->inject >= 0.0f && c->inject <= 1.0f))
        return rv_fail(err, "coord config: inject is %g, must be in [0, 1]", c->inject);
    if (!(c->edit_fraction >= 0.0 && c->edit_fraction <= 1.0) || c->edit_every < 0)
        return rv_fail(err,
                       "coord config: edit_every %ld must be ≥ 0 and edit_fraction %g in "
                       "[0, 1]",
                       c->edit_every, c->edit_fraction);
    if (c->log_every < 0 || c->eval_rows < 0)
        return rv_fail(err, "coord config: log_every and eval_rows must be ≥ 0");
    if (c->model.image_size != c->world.image_size)
        return rv_fail(err, "coord config: model image_size %d differs from the world's %d",
                       c->model.image_size, c->world.image_size);
    return trn_adamw_config_check(&c->opt, err);
}

int coord_warm_others(const coord_config *c, long step) {
    if (c->warm_ramp <= 0) return c->warm_others;
    long stage = step / c->warm_ramp; /* M = 2^stage */
    return stage >= 30 || (1L << stage) - 1 >= c->warm_others ? c->warm_others
                                                              : (int)((1L << stage) - 1);
}

/* Next B training questions of the shuffled epoch order. */
static void next_rows(coord_trainer *t, size_t *rows, int B) {
    size_t n = t->w->n_train;
    for (int b = 0; b < B; b++) {
        if (t->order_pos == 0) /* a new epoch: Fisher-Yates with the epoch's stream */
            for (size_t i = n - 1; i > 0; i--) {
                size_t j = (size_t)(trn_rng_u64(t->cfg.seed, COORD_STREAM_ORDER,
                                                (uint64_t)t->epoch * n + i) %
                                    (i + 1));
                size_t x = t->order[i];
                t->order[i] = t->order[j];
                t->order[j] = x;
            }
        rows[b] = t->order[t->order_pos];
        if (++t->order_pos == n) {
            t->order_pos = 0;
            t->epoch++;
        }
    }
}

int coord_trainer_init(coord_trainer *t, const coord_config *cfg, char *err) {
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    coord_config *c = &t->cfg;
    if (coord_config_check(c, err)) return -1;
    if (world_create(&c->world, &t->w, err)) goto fail;
    if (coord_tokenizer_train(t->w, c->tok_vocab, &t->tok, err)) goto fail;
    c->model.vocab = trn_tok_vocab_size(t->tok);
    c->model.sources = c->n_sources;
    c->model.bos_id = TRN_TOK_BOS;
    c->model.eos_id = TRN_TOK_EOS;
    if (rvm_model_init(&t->model, &c->model, err)) goto fail;
    if (coord_texts_init(&t->texts, t->w, t->tok, c->model.text_max - 1, c->model.answer_max - 1,
                         err))
        goto fail;
    if (coord_memory_init(&t->mem, t->w, c->source_types, c->n_sources, c->model.key_dim,
                          c->model.latents * c->model.width, err))
        goto fail;
    t->order = malloc(t->w->n_train * sizeof *t->order);
    t->scratch = malloc(sizeof *t->scratch);
    if (!t->order || !t->scratch) {
        rv_fail(err, "out of memory");
        goto fail;
    }
    for (size_t q = 0, k = 0; q < t->w->n_questions; q++)
        if (!t->w->questions[q].is_test) t->order[k++] = q;
    int M = c->n_sources * c->topk;
    if (1 + c->warm_others > M) M = 1 + c->warm_others;
    if (coord_scratch_init(t->scratch, c->batch, M, c->model.key_dim, c->model.answer_max, err)) {
        free(t->scratch);
        t->scratch = NULL;
        goto fail;
    }
    if (coord_memory_refresh(&t->mem, &t->model, &t->texts, 1, 0, NULL, err)) goto fail;
    size_t cut = t->texts.cut;
    for (int j = 0; j < t->mem.n_sources; j++)
        for (size_t i = 0; i < t->mem.src[j].n; i++)
            cut += t->texts.item_cut[t->mem.src[j].item[i]];
    if (cut)
        rv_warn("%zu memory items, questions or answers were longer than the model's text_max "
                "or answer_max allow and were cut",
                cut);
    rv_info("trainer: world %d entities × %d relations (%zu train / %zu test questions), "
            "%zu items; vocabulary %d; model %zu parameters; memory %d sources",
            c->world.entities, c->world.relations, t->w->n_train, t->w->n_test, t->w->n_items,
            c->model.vocab, t->model.params.n_elements, c->n_sources);
    return 0;
fail:
    rv_fail_wrap(err, "trainer");
    coord_trainer_free(t);
    return -1;
}

void coord_trainer_free(coord_trainer *t) {
    if (t->scratch) coord_scratch_free(t->scratch);
    free(t->scratch);
    free(t->order);
    coord_memory_free(&t->mem);
    coord_texts_free(&t->texts);
    rvm_model_free(&t->model);
    trn_tok_free(t->tok);
    world_free(t->w);
    memset(t, 0, sizeof *t);
}

int coord_train_step(coord_trainer *t, coord_step_stats *st, char *err) {
    const coord_config *c = &t->cfg;
    struct coord_scratch *s = t->scratch;
    int B = c->batch;
    double t0 = rv_now();
    memset(st, 0, sizeof *st);
    st->step = t->step;
    st->warm = t->step < c->warm_steps;
    next_rows(t, s->rows, B);
    coord_batch_rows(t, s, B);
    rvm_batch batch = {
        .B = B, .queries = s->queries, .cands = &s->cands, .answers = s->answers, .gold = s->gold};
    if (c->memory_off)
        batch.cands = NULL;
    else if (st->warm)
        coord_batch_warm(t, s, B, coord_warm_others(c, t->step), (uint64_t)t->step);
    else if (coord_batch_memory(t, s, B, 1, (uint64_t)t->step, &st->recall, err))
        return -1;
    trn_params_zero_grad(&t->model.params);
    rvm_step_out out;
    if (rvm_step(&t->model, &batch, &out, err)) return rv_fail_wrap(err, "step %ld", t->step);
    trn_adamw_stats as;
    if (trn_adamw_step(&t->model.params, &c->opt, t->step, &as, err))
        return rv_fail_wrap(err, "AdamW at step %ld", t->step);
    t->step++;
    t->encoder_version++;
    st->loss = out.loss;
    st->gen = out.gen;
    st->con = out.con;
    for (int b = 0; b < B; b++) st->train_acc += out.correct[b];
    st->train_acc /= B;
    if (out.M > 0) st->p_gold = coord_p_gold(s, B, out.p, out.M);
    st->inv_tau = out.inv_tau;
    for (int b = 0; b < B && out.S > 1; b++)
        for (int j = 0; j < out.S; j++) {
            double g = out.gate[(size_t)b * out.S + j];
            if (g > 0) st->gate_entropy -= g * log(g) / B;
        }
    st->lr = as.lr;
    st->grad_norm = as.grad_norm;
    st->ms = 1e3 * (rv_now() - t0);
    return 0;
}

int coord_edit(coord_trainer *t, double fraction, uint64_t seed, int reencode_all,
               world_edit *edit_out, size_t *encoded, char *err) {
    world_edit e;
    size_t *items = NULL;
    int rc = -1;
    if (world_edit_fraction(t->w, fraction, seed, &e, err)) return rv_fail_wrap(err, "edit");
    items = malloc((e.n_items ? e.n_items : 1) * sizeof *items);
    if (!items) {
        rv_fail(err, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < e.n_items; i++) items[i] = e.items[i].item;
    if (coord_texts_update(&t->texts, t->w, t->tok, items, e.n_items, err)) goto cleanup;
    coord_memory_mark(&t->mem, &e);
    if (coord_memory_refresh(&t->mem, &t->model, &t->texts, reencode_all, t->encoder_version,
                             encoded, err))
        goto cleanup;
    rc = 0;
cleanup:
    free(items);
    if (rc == 0 && edit_out)
        *edit_out = e;
    else
        world_edit_free(&e);
    return rc;
}

/* The averages of the steps since the last curve line. */
typedef struct {
    coord_step_stats sum;
    int n;
} curve_acc;

static void curve_add(curve_acc *a, const coord_step_stats *s) {
    a->sum.loss += s->loss;
    a->sum.gen += s->gen;
    a->sum.con += s->con;
    a->sum.train_acc += s->train_acc;
    a->sum.recall += s->recall;
    a->sum.p_gold += s->p_gold;
    a->sum.gate_entropy += s->gate_entropy;
    a->sum.ms += s->ms;
    a->sum.inv_tau = s->inv_tau;
    a->sum.warm = s->warm;
    a->n++;
}

static int curve_line(coord_trainer *t, curve_acc *a, const size_t *eval_q, size_t n_eval,
                      char *err) {
    coord_eval ev;
    if (coord_evaluate(t, eval_q, n_eval, NULL, &ev, err)) return -1;
    double k = a->n ? 1.0 / a->n : 0.0;
    printf("step %5ld %-4s loss %.3f gen %.3f con %.3f | train acc %.2f p(gold) %.2f | test acc "
           "%.2f no-mem %.2f recall@%d %.2f p(gold) %.2f among %d golds %.2f | 1/tau %.2f gate H "
           "%.2f | %.0f ms/step\n",
           t->step, a->sum.warm ? "warm" : "mem", a->sum.loss * k, a->sum.gen * k, a->sum.con * k,
           a->sum.train_acc * k, a->sum.p_gold * k, ev.acc, ev.acc_nomem, t->cfg.topk, ev.recall,
           ev.p_gold, 1 + t->cfg.warm_others, ev.p_gold_warm, a->sum.inv_tau,
           a->sum.gate_entropy * k, a->sum.ms * k);
    fflush(stdout);
    memset(a, 0, sizeof *a);
    return 0;
}

int coord_train(coord_trainer *t, char *err) {
    const coord_config *c = &t->cfg;
    size_t n_eval = 0;
    size_t *eval_q = coord_test_questions(t->w, (size_t)c->eval_rows, &n_eval);
    curve_acc acc;
    int rc = -1;
    memset(&acc, 0, sizeof acc);
    if (!eval_q) return rv_fail(err, "out of memory");
    while (t->step < c->steps) {
        coord_step_stats st;
        if (coord_train_step(t, &st, err)) goto cleanup;
        curve_add(&acc, &st);
        if (c->edit_every > 0 && t->step % c->edit_every == 0) {
            /* Facts re-drawn: the decoder cannot memorise answers; the whole memory is
             * re-encoded since every stored key and value is stale by now anyway. */
            uint64_t seed = trn_rng_u64(c->seed, COORD_STREAM_EDIT, (uint64_t)t->edits++);
            if (coord_edit(t, c->edit_fraction, seed, 1, NULL, NULL, err)) goto cleanup;
        }
        if (c->log_every > 0 && (t->step % c->log_every == 0 || t->step == c->steps))
            if (curve_line(t, &acc, eval_q, n_eval, err)) goto cleanup;
    }
    rc = 0;
cleanup:
    free(eval_q);
    return rc;
}

/* The checkpoint's config: what must match for the parameters to mean the same. */
static int config_json(const coord_trainer *t, char *buf, size_t n) {
    const rvm_config *m = &t->cfg.model;
    const world_config *w = &t->cfg.world;
    return snprintf(buf, n,
                    "{\"world\":{\"seed\":%llu,\"entities\":%d,\"relations\":%d,\"objects\":%d,"
                    "\"image_size\":%d},\"model\":{\"vocab\":%d,\"width\":%d,\"heads\":%d,"
                    "\"mlp_hidden\":%d,\"patch\":%d,\"text_max\":%d,\"answer_max\":%d,"
                    "\"blocks\":[%d,%d,%d,%d,%d],\"latents\":%d,\"key_dim\":%d,\"sources\":%d,"
                    "\"head_pool\":%d}}",
                    (unsigned long long)w->seed, w->entities, w->relations, w->objects,
                    w->image_size, m->vocab, m->width, m->heads, m->mlp_hidden, m->patch,
                    m->text_max, m->answer_max, m->vit_blocks, m->text_blocks, m->head_blocks,
                    m->fusion_blocks, m->decoder_blocks, m->latents, m->key_dim, m->sources,
                    m->head_pool);
}

int coord_save(coord_trainer *t, const char *path, char *err) {
    char json[1024];
    int n = config_json(t, json, sizeof json);
    trn_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.step = (uint64_t)t->step;
    meta.config = json;
    meta.config_len = (size_t)n;
    meta.tokenizer = trn_tok_model(t->tok, &meta.tokenizer_len);
    return trn_ckpt_save(path, &t->model.params, &meta, err);
}

int coord_load(coord_trainer *t, const char *path, char *err) {
    char json[1024];
    int n = config_json(t, json, sizeof json);
    trn_ckpt ck;
    size_t tok_len = 0;
    const void *tok = trn_tok_model(t->tok, &tok_len);
    if (trn_ckpt_open(path, &ck, err)) return -1;
    int rc = -1;
    if (trn_ckpt_check_config(&ck, json, (size_t)n, err)) goto cleanup;
    if (ck.meta.tokenizer_len != tok_len || memcmp(ck.meta.tokenizer, tok, tok_len) != 0) {
        rv_fail(err, "%s: its tokenizer differs from the one trained on this world", path);
        goto cleanup;
    }
    if (trn_ckpt_restore(&ck, &t->model.params, err)) goto cleanup;
    t->step = (long)ck.meta.step;
    t->encoder_version++;
    if (coord_memory_refresh(&t->mem, &t->model, &t->texts, 1, t->encoder_version, NULL, err))
        goto cleanup;
    rc = 0;
cleanup:
    trn_ckpt_close(&ck);
    return rc;
}
