/* training/model_calls.c — the model's calls: input validation, the plan of one call (which
 * rows go through which part), the workspace layout (measured, grown, carved), and the forward
 * and backward passes in order; then training (rvm_forward, rvm_step), memory refresh
 * (rvm_encode_items), queries for the search (rvm_encode_queries), greedy answers
 * (rvm_answer), and the split encoding of distributed training (rvm_encode_grad,
 * rvm_encode_backward, fresh candidates and gold keys in rvm_step) on top.
 *
 * Encoder rows of one call: [B queries | Nr re-encoded items (distinct item pointers, in the
 * order of their first slot, row-major over the batch's candidate table) | Ng = B gold items
 * when the contrastive loss is computed from gold inputs]. The query head runs on the first
 * block, the key head on the second and third, the value head on the second. Fresh
 * candidates (distinct key pointers) are numbered after the Nr re-encoded items: their keys
 * and values are constants here and their gradients are handed back to the caller.
 */
#include "model_impl.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rv.h"

/* ---- validation ---- */

static int check_text(const rvm_config *c, const rvm_text *t, int max, const char *what, int row,
                      char *err) {
    if (t->n < 0 || t->n > max)
        return rv_fail(err, "%s %d: %d tokens, must be in [0, %d]", what, row, t->n, max);
    if (t->n && !t->ids) return rv_fail(err, "%s %d: %d tokens but no ids", what, row, t->n);
    for (int i = 0; i < t->n; i++)
        if (t->ids[i] < 0 || t->ids[i] >= c->vocab)
            return rv_fail(err, "%s %d: token %d at position %d is outside the vocabulary [0, %d)",
                           what, row, (int)t->ids[i], i, c->vocab);
    return 0;
}

static int check_inputs(const rvm_config *c, const rvm_input *in, int n, const char *what,
                        char *err) {
    if (n > 0 && !in) return rv_fail(err, "%s: missing (%d expected)", what, n);
    for (int i = 0; i < n; i++)
        if (check_text(c, &in[i].text, c->text_max - 1, what, i, err)) return -1;
    return 0;
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static int cands_M(const rvm_candidates *cs) {
    int M = 0;
    for (int j = 0; cs && j < cs->n_sources; j++) M += cs->k[j];
    return M;
}

static int check_cands(const rvm_config *c, const rvm_candidates *cs, int B, char *err) {
    if (!cs || !cs->n_sources) return 0;
    if (cs->n_sources < 0 || !cs->k)
        return rv_fail(err, "candidates: n_sources %d needs a K per source", cs->n_sources);
    if (cs->warm && cs->n_sources != 1)
        return rv_fail(err, "candidates: warm start takes one pseudo-source, not %d",
                       cs->n_sources);
    if (!cs->warm && cs->n_sources != c->sources)
        return rv_fail(err, "candidates: %d sources given, the model's gate has %d", cs->n_sources,
                       c->sources);
    long M = 0;
    for (int j = 0; j < cs->n_sources; j++) {
        if (cs->k[j] < 0 || cs->k[j] > 1 << 16)
            return rv_fail(err, "candidates: K of source %d is %d", j, cs->k[j]);
        M += cs->k[j];
    }
    if (M && !cs->cand) return rv_fail(err, "candidates: %ld per row but no table", M);
    for (long i = 0; i < (long)B * M; i++) {
        const rvm_candidate *k = &cs->cand[i];
        int row = (int)(i / M), slot = (int)(i % M);
        int fresh = k->dkey || k->dvalue;
        if (k->item ? k->key || k->value || fresh : !fresh && (!k->key || !k->value))
            return rv_fail(err,
                           "candidate %d of row %d: give either the item (re-encoded) or its key "
                           "and value (stored, or fresh with dkey and dvalue), not both or neither",
                           slot, row);
        if (k->item) {
            if (check_inputs(c, k->item, 1, "candidate item", err))
                return rv_fail_wrap(err, "row %d, candidate %d", row, slot);
            continue;
        }
        if (fresh && (!k->key || !k->value || !k->dkey || !k->dvalue))
            return rv_fail(err, "candidate %d of row %d: a fresh candidate has no %s", slot, row,
                           !k->key     ? "key"
                           : !k->value ? "value"
                           : !k->dkey  ? "dkey"
                                       : "dvalue");
        if (!all_finite(k->key, c->key_dim) || !all_finite(k->value, (size_t)c->latents * c->width))
            return rv_fail(err, "candidate %d of row %d: %s key or value is not finite", slot, row,
                           fresh ? "fresh" : "stored");
    }
    return 0;
}

static int check_batch(const rvm_config *c, const rvm_batch *bt, int backward, char *err) {
    if (bt->B < 1) return rv_fail(err, "batch: %d rows", bt->B);
    if (check_inputs(c, bt->queries, bt->B, "query", err)) return -1;
    if (!bt->answers) return rv_fail(err, "batch: no answers");
    for (int b = 0; b < bt->B; b++)
        if (check_text(c, &bt->answers[b], c->answer_max - 1, "answer", b, err)) return -1;
    if (bt->gold && bt->gold_keys)
        return rv_fail(err,
                       "batch: give the gold items (gold) or their keys (gold_keys), not both");
    if (bt->gold_dkeys && !bt->gold_keys)
        return rv_fail(err, "batch: gold_dkeys given without gold_keys");
    if (c->con_weight > 0 && !bt->gold && !bt->gold_keys)
        return rv_fail(err,
                       "batch: the contrastive loss (con_weight %g) needs gold items (gold or "
                       "gold_keys)",
                       (double)c->con_weight);
    if (bt->gold && check_inputs(c, bt->gold, bt->B, "gold item", err)) return -1;
    if (bt->gold_keys && backward && !bt->gold_dkeys)
        return rv_fail(err, "batch: gold_keys need gold_dkeys to receive the keys' gradient");
    for (int b = 0; bt->gold_keys && b < bt->B; b++) {
        if (!bt->gold_keys[b] || (backward && !bt->gold_dkeys[b]))
            return rv_fail(err, "gold key %d: no %s", b, bt->gold_keys[b] ? "dkey" : "key");
        if (!all_finite(bt->gold_keys[b], c->key_dim))
            return rv_fail(err, "gold key %d: not finite", b);
    }
    return check_cands(c, bt->cands, bt->B, err);
}

/* ---- plan and layout ---- */

/* The identity of a candidate's item with gradient: the item pointer of a re-encoded one
 * (fresh = 0), the key pointer of a fresh one (fresh = 1); NULL otherwise. */
static const void *item_id(const rvm_candidate *k, int fresh) {
    return fresh ? (k->dkey ? (const void *)k->key : NULL) : (const void *)k->item;
}

/* The table position of id: where it is, or the empty one where it goes. */
static size_t table_find(const struct RVM(state) * st, const void *id, int fresh) {
    const rvm_candidate *cand = st->job.cands->cand;
    size_t mask = st->table_n - 1;
    size_t h = (size_t)(((uint64_t)(uintptr_t)id * 0x9E3779B97F4A7C15ull) >> 32) & mask;
    while (st->table[h] >= 0 && item_id(&cand[st->first[st->table[h]]], fresh) != id)
        h = (h + 1) & mask;
    return h;
}

/* Numbers the items with gradient among the candidates: the distinct re-encoded items
 * 0 .. Nr − 1, then the distinct fresh ones Nr .. Nr + Nf − 1, each in the order of its first
 * slot (st->vrow, st->first). Refuses one key given as two different fresh items, or as fresh
 * in one slot and stored in another. */
static int number_items(struct RVM(state) * st, char *err) {
    const RVM(job) *j = &st->job;
    long n = (long)j->B * cands_M(j->cands), M = cands_M(j->cands);
    st->Nr = j->items ? j->n_items : 0;
    st->Nf = 0;
    if (j->items) return 0;
    for (int fresh = 0; fresh < 2; fresh++) {
        for (size_t h = 0; h < st->table_n; h++) st->table[h] = -1;
        for (long i = 0; i < n; i++) {
            const rvm_candidate *k = &j->cands->cand[i];
            const void *id = item_id(k, fresh);
            if (!fresh) st->vrow[i] = -1;
            if (!id) continue;
            size_t h = table_find(st, id, fresh);
            if (st->table[h] < 0) {
                st->table[h] = st->Nr + st->Nf;
                st->first[st->table[h]] = (int)i;
                *(fresh ? &st->Nf : &st->Nr) += 1;
            } else if (fresh) {
                long o = st->first[st->table[h]];
                const rvm_candidate *ko = &j->cands->cand[o];
                if (ko->value != k->value || ko->dkey != k->dkey || ko->dvalue != k->dvalue)
                    return rv_fail(err,
                                   "candidate %ld of row %ld: the key of fresh candidate %ld of "
                                   "row %ld with another value, dkey or dvalue",
                                   i % M, i / M, o % M, o / M);
            }
            st->vrow[i] = st->table[h];
        }
    }
    for (long i = 0; i < n && st->Nf; i++) {
        const rvm_candidate *k = &j->cands->cand[i];
        if (k->item || k->dkey) continue;
        size_t h = table_find(st, k->key, 1);
        if (st->table[h] >= 0) {
            long o = st->first[st->table[h]];
            return rv_fail(err,
                           "candidate %ld of row %ld: stored, but its key is fresh in candidate "
                           "%ld of row %ld",
                           i % M, i / M, o % M, o / M);
        }
    }
    return 0;
}

/* Encoder row r's input. */
static const rvm_input *row_input(const struct RVM(state) * st, int r) {
    const RVM(job) *j = &st->job;
    if (r < j->B) return &j->queries[r];
    r -= j->B;
    if (j->items) return &j->items[r];
    if (r < st->Nr) return j->cands->cand[st->first[r]].item;
    return &j->gold[r - st->Nr];
}

static void plan(struct RVM(state) * st, const rvm_config *c) {
    const RVM(job) *j = &st->job;
    st->B = j->B;
    st->Ng = j->gold ? j->B : 0;
    st->con = j->gold || j->gold_keys;
    RVM(enc_ws) *e = &st->enc;
    e->N = st->B + st->Nr + st->Ng;
    e->Tt = 1;
    e->Ni = 0;
    for (int r = 0; r < e->N; r++) {
        const rvm_input *in = row_input(st, r);
        if (in->text.n + 1 > e->Tt) e->Tt = in->text.n + 1;
        e->Ni += in->image != NULL;
    }
    e->P = (c->image_size / c->patch) * (c->image_size / c->patch);
    e->Tb = e->Tt + (e->Ni ? e->P : 0);
    st->fu.M = cands_M(j->cands);
    st->fu.S = j->cands && j->cands->n_sources && !j->cands->warm ? c->sources : 1;
    st->fu.Tf = e->Tb + st->fu.M * c->latents;
    st->dec.T = j->gen_len + 1;
    if (j->answers) {
        st->dec.T = 1;
        for (int b = 0; b < j->B; b++)
            if (j->answers[b].n + 1 > st->dec.T) st->dec.T = j->answers[b].n + 1;
    }
}

static int use_khead(const struct RVM(state) * st) {
    return st->Nr + st->Ng > 0 && (!st->job.items || st->job.keys);
}
static int use_vhead(const struct RVM(state) * st) {
    return (st->Nr > 0 && (!st->job.items || st->job.values)) || st->Nf > 0;
}
static int use_decoder(const struct RVM(state) * st) {
    return st->B > 0 && (st->job.answers || st->job.gen_len);
}

/* The plan's arrays over the call's `slots` candidate slots, at the front of the arena. */
static void plan_carve(struct RVM(state) * st, rvm_arena *a, long slots) {
    st->vrow = RVM_TAKE(a, int, slots);
    st->first = RVM_TAKE(a, int, slots);
    st->table = RVM_TAKE(a, int, st->table_n);
}

static void layout(struct RVM(state) * st, const rvm_config *c, rvm_arena *a) {
    int bw = st->job.backward, dk = c->key_dim;
    st->scratch_n = 0;
    RVM(enc_carve)(st, c, a);
    st->qh.n = st->kh.n = st->vh.n = st->vh.nv = 0;
    if (st->B) RVM(head_carve)(&st->qh, st, c, a, 0, st->B);
    if (use_khead(st)) RVM(head_carve)(&st->kh, st, c, a, st->B, st->Nr + st->Ng);
    if (use_vhead(st)) RVM(value_carve)(st, c, a, st->B, st->Nr, st->Nf);
    st->dfkey = bw ? RVM_TAKE(a, real, (size_t)st->Nf * dk) : NULL;
    st->gkey_buf = st->dgkey_buf = NULL;
    if (st->job.gold_keys) {
        st->gkey_buf = RVM_TAKE(a, real, (size_t)st->B * dk);
        if (bw) st->dgkey_buf = RVM_TAKE(a, real, (size_t)st->B * dk);
    }
    if (use_decoder(st)) {
        RVM(fusion_carve)(st, c, a);
        RVM(dec_carve)(st, c, a, st->dec.T);
    }
    st->scratch = bw ? RVM_TAKE(a, real, st->scratch_n) : NULL;
}

/* Grows the arena to bytes; realloc keeps the plan at its front. */
static int arena_reserve(struct RVM(state) * st, size_t bytes, char *err) {
    if (bytes <= st->arena.cap) return 0;
    char *p = realloc(st->arena.base, bytes);
    if (!p) return rv_fail(err, "model: out of memory (%zu bytes)", bytes);
    st->arena.base = p;
    st->arena.cap = bytes;
    return 0;
}

/* Plans the call, grows the arena if needed, carves it and lists the encoder rows. */
static int prepare(RVM(model) * m, const RVM(job) * job, char *err) {
    struct RVM(state) *st = m->st;
    st->job = *job;
    st->grad_ready = 0;
    long slots = job->items ? 0 : (long)job->B * cands_M(job->cands);
    if (slots > INT_MAX / 4) return rv_fail(err, "model: %ld candidate slots in one call", slots);
    for (st->table_n = slots ? 16 : 0; st->table_n && st->table_n < 2 * (size_t)slots;)
        st->table_n *= 2;
    rvm_arena measure = {0};
    plan_carve(st, &measure, slots);
    if (arena_reserve(st, measure.used, err)) return -1;
    st->arena.used = 0;
    plan_carve(st, &st->arena, slots);
    if (number_items(st, err)) return -1;
    plan(st, &m->cfg);
    layout(st, &m->cfg, &measure);
    if (arena_reserve(st, measure.used, err)) return -1;
    st->arena.used = 0;
    plan_carve(st, &st->arena, slots);
    layout(st, &m->cfg, &st->arena);
    for (int r = 0; r < st->enc.N; r++) st->enc.in[r] = row_input(st, r);
    size_t gold_off = (size_t)st->Nr * m->cfg.key_dim;
    st->gkey = st->Ng ? st->kh.out + gold_off : st->gkey_buf;
    st->dgkey = st->Ng && job->backward ? st->kh.dout + gold_off : st->dgkey_buf;
    return 0;
}

/* The constants of items encoded with gradient by another call: the fresh values (after the
 * head's rows of V) and the gold keys. */
static void load_fresh(struct RVM(state) * st, const rvm_config *c) {
    size_t cd = (size_t)c->latents * c->width, dk = (size_t)c->key_dim;
    for (int f = 0; f < st->Nf; f++) {
        const float *v = st->job.cands->cand[st->first[st->Nr + f]].value;
        real *V = st->vh.V + (st->vh.n + (size_t)f) * cd;
        for (size_t i = 0; i < cd; i++) V[i] = (real)v[i];
    }
    for (int b = 0; st->job.gold_keys && b < st->B; b++)
        for (size_t i = 0; i < dk; i++) st->gkey_buf[b * dk + i] = (real)st->job.gold_keys[b][i];
}

/* Adds the gradients of the fresh items and the gold keys into the caller's buffers, once per
 * distinct fresh item and once per row's gold key. */
static void give_fresh_grads(struct RVM(state) * st, const rvm_config *c) {
    size_t cd = (size_t)c->latents * c->width, dk = (size_t)c->key_dim;
    for (int f = 0; f < st->Nf; f++) {
        const rvm_candidate *k = &st->job.cands->cand[st->first[st->Nr + f]];
        const real *dkey = st->dfkey + f * dk, *dv = st->vh.dv + (st->vh.n + (size_t)f) * cd;
        for (size_t i = 0; i < dk; i++) k->dkey[i] += (float)dkey[i];
        for (size_t i = 0; i < cd; i++) k->dvalue[i] += (float)dv[i];
    }
    for (int b = 0; st->job.gold_keys && b < st->B; b++)
        for (size_t i = 0; i < dk; i++)
            st->job.gold_dkeys[b][i] += (float)st->dgkey_buf[b * dk + i];
}

static int forward(RVM(model) * m, char *err) {
    struct RVM(state) *st = m->st;
    const rvm_config *c = &m->cfg;
    st->loss_gen = st->loss_con = st->loss_dis = st->loss_gap = 0;
    if (RVM(enc_forward)(st, c, err)) return -1;
    if (st->qh.n) RVM(head_forward)(&st->qh, st, c, st->w.qhead, st->w.q_ln);
    if (st->kh.n) RVM(head_forward)(&st->kh, st, c, st->w.khead, st->w.k_ln);
    if (st->vh.n) RVM(value_forward)(st, c);
    load_fresh(st, c);
    if (st->vh.nv && st->job.answers) RVM(value_regularisers)(st, c);
    if (!use_decoder(st)) return 0;
    RVM(fusion_forward)(st, c);
    if (st->con) RVM(con_forward)(st, c);
    return st->job.answers ? RVM(dec_forward)(st, c, err) : 0;
}

static void backward(RVM(model) * m) {
    struct RVM(state) *st = m->st;
    const rvm_config *c = &m->cfg;
    int d = c->width, dk = c->key_dim;
    real r = (real)c->con_weight;
    memset(st->enc.db, 0, (size_t)st->enc.N * st->enc.Tb * d * sizeof(real));
    memset(st->qh.dout, 0, (size_t)st->qh.n * dk * sizeof(real));
    if (st->kh.n) memset(st->kh.dout, 0, (size_t)st->kh.n * dk * sizeof(real));
    if (st->vh.nv) memset(st->vh.dv, 0, (size_t)st->vh.nv * c->latents * d * sizeof(real));
    if (st->Nf) memset(st->dfkey, 0, (size_t)st->Nf * dk * sizeof(real));
    if (st->dgkey_buf) memset(st->dgkey_buf, 0, (size_t)st->B * dk * sizeof(real));
    memset(st->fu.dF, 0, (size_t)st->B * st->fu.Tf * d * sizeof(real));
    RVM(dec_backward)(st, c, 1 - r);
    RVM(fusion_backward)(st, c);
    if (st->con) RVM(con_backward)(st, c, r);
    if (st->vh.nv) RVM(value_backward)(st, c, (real)c->dis_weight, (real)c->gap_weight);
    RVM(head_backward)(&st->qh, st, c, st->w.qhead, st->w.q_ln, st->g.qhead, st->g.q_ln);
    if (st->kh.n)
        RVM(head_backward)(&st->kh, st, c, st->w.khead, st->w.k_ln, st->g.khead, st->g.k_ln);
    RVM(enc_backward)(st, c);
    give_fresh_grads(st, c);
}

/* ---- the calls ---- */

static int train_call(RVM(model) * m, const rvm_batch *bt, RVM(step_out) * out, int bw, char *err) {
    const rvm_config *c = &m->cfg;
    if (rvm_config_check(c, err) || check_batch(c, bt, bw, err)) return -1;
    RVM(job)
    job = {.B = bt->B,
           .queries = bt->queries,
           .cands = bt->cands,
           .gold = bt->gold,
           .gold_keys = bt->gold_keys,
           .gold_dkeys = bt->gold_dkeys,
           .answers = bt->answers,
           .backward = bw};
    if (prepare(m, &job, err) || forward(m, err)) return -1;
    struct RVM(state) *st = m->st;
    double r = c->con_weight;
    memset(out, 0, sizeof *out);
    out->gen = st->loss_gen;
    out->con = st->loss_con;
    out->dis = st->loss_dis;
    out->gap = st->loss_gap;
    out->loss =
        (1 - r) * out->gen + r * out->con + c->dis_weight * out->dis + c->gap_weight * out->gap;
    out->B = st->B;
    out->M = st->fu.M;
    out->S = st->fu.S;
    out->T = st->dec.T;
    out->inv_tau = st->fu.inv_tau;
    out->p = st->fu.p;
    out->gate = st->fu.gate;
    out->pred = st->dec.pred;
    out->target = st->dec.tgt;
    out->correct = st->dec.correct;
    if (bw) backward(m);
    return 0;
}

int RVM(forward)(RVM(model) * m, const rvm_batch *batch, RVM(step_out) * out, char *err) {
    return train_call(m, batch, out, 0, err);
}

int RVM(step)(RVM(model) * m, const rvm_batch *batch, RVM(step_out) * out, char *err) {
    return train_call(m, batch, out, 1, err);
}

int RVM(encode_items)(RVM(model) * m, const rvm_input *items, int n, float *keys, float *values,
                      char *err) {
    const rvm_config *c = &m->cfg;
    if (n < 0) return rv_fail(err, "encode items: %d items", n);
    if (!n || (!keys && !values)) return 0;
    if (check_inputs(c, items, n, "item", err)) return -1;
    RVM(job) job = {.items = items, .n_items = n, .keys = keys != NULL, .values = values != NULL};
    if (prepare(m, &job, err) || forward(m, err)) return -1;
    struct RVM(state) *st = m->st;
    if (keys)
        for (size_t i = 0; i < (size_t)n * c->key_dim; i++) keys[i] = (float)st->kh.out[i];
    if (values) {
        const real *V = st->vh.st.x[st->vh.st.L];
        for (size_t i = 0; i < (size_t)n * c->latents * c->width; i++) values[i] = (float)V[i];
    }
    return 0;
}

int RVM(encode_grad)(RVM(model) * m, const rvm_input *items, int n, float *keys, float *values,
                     char *err) {
    const rvm_config *c = &m->cfg;
    m->st->grad_ready = 0;
    if (n < 1) return rv_fail(err, "encode with gradient: %d items, at least 1", n);
    if (!keys || !values)
        return rv_fail(err, "encode with gradient: no %s output buffer", keys ? "values" : "keys");
    if (check_inputs(c, items, n, "item", err)) return -1;
    RVM(job) job = {.items = items, .n_items = n, .keys = 1, .values = 1, .backward = 1};
    if (prepare(m, &job, err) || forward(m, err)) return -1;
    struct RVM(state) *st = m->st;
    for (size_t i = 0; i < (size_t)n * c->key_dim; i++) keys[i] = (float)st->kh.out[i];
    for (size_t i = 0; i < (size_t)n * c->latents * c->width; i++) values[i] = (float)st->vh.V[i];
    st->grad_ready = 1;
    return 0;
}

int RVM(encode_backward)(RVM(model) * m, const float *dkeys, const float *dvalues, char *err) {
    const rvm_config *c = &m->cfg;
    struct RVM(state) *st = m->st;
    if (!st->grad_ready)
        return rv_fail(err, "encode backward: the last call on this model was not "
                            "rvm_encode_grad (no activations wait for their gradient)");
    int n = st->job.n_items;
    size_t nk = (size_t)n * c->key_dim, nv = (size_t)n * c->latents * c->width;
    if ((dkeys && !all_finite(dkeys, nk)) || (dvalues && !all_finite(dvalues, nv)))
        return rv_fail(err, "encode backward: %s of the %d items are not finite",
                       dkeys && !all_finite(dkeys, nk) ? "dkeys" : "dvalues", n);
    st->grad_ready = 0;
    memset(st->enc.db, 0, (size_t)st->enc.N * st->enc.Tb * c->width * sizeof(real));
    for (size_t i = 0; i < nk; i++) st->kh.dout[i] = dkeys ? (real)dkeys[i] : 0;
    for (size_t i = 0; i < nv; i++) st->vh.dv[i] = dvalues ? (real)dvalues[i] : 0;
    RVM(value_backward)(st, c, 0, 0);
    RVM(head_backward)(&st->kh, st, c, st->w.khead, st->w.k_ln, st->g.khead, st->g.k_ln);
    RVM(enc_backward)(st, c);
    return 0;
}

int RVM(encode_queries)(RVM(model) * m, const rvm_input *queries, int n, float *q, char *err) {
    const rvm_config *c = &m->cfg;
    if (n < 0) return rv_fail(err, "encode queries: %d queries", n);
    if (!n) return 0;
    if (!q) return rv_fail(err, "encode queries: no output buffer");
    if (check_inputs(c, queries, n, "query", err)) return -1;
    RVM(job) job = {.B = n, .queries = queries};
    if (prepare(m, &job, err) || forward(m, err)) return -1;
    for (size_t i = 0; i < (size_t)n * c->key_dim; i++) q[i] = (float)m->st->qh.out[i];
    return 0;
}

int RVM(answer)(RVM(model) * m, const rvm_input *queries, int B, const rvm_candidates *cands,
                int max_len, int32_t *out, int *len, float *p, char *err) {
    const rvm_config *c = &m->cfg;
    if (B < 1) return rv_fail(err, "answer: %d queries", B);
    if (max_len < 1 || max_len > c->answer_max - 1)
        return rv_fail(err, "answer: max_len %d must be in [1, %d] (answer_max − 1)", max_len,
                       c->answer_max - 1);
    if (!out || !len) return rv_fail(err, "answer: no output buffers");
    if (check_inputs(c, queries, B, "query", err) || check_cands(c, cands, B, err)) return -1;
    RVM(job) job = {.B = B, .queries = queries, .cands = cands, .gen_len = max_len};
    if (prepare(m, &job, err) || forward(m, err)) return -1;
    struct RVM(state) *st = m->st;
    if (p)
        for (size_t i = 0; i < (size_t)B * st->fu.M; i++) p[i] = (float)st->fu.p[i];
    return RVM(dec_generate)(st, c, max_len, out, len, err);
}
