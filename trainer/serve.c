/* trainer/serve.c — the commands that use a trained model over the users' stores: `reveal
 * refresh` (re-encode the memory, or only what is new, changed or stale, with the checkpoint's
 * encoder), `reveal eval` (answers and recall on a task file, per question type, with or without
 * memory, over all or some sources, K overridden) and `reveal answer` (one question and the
 * knowledge it was answered from). All set up the same way from a checkpoint: its config names
 * the layout (or --layout does), every rank opens its stores where they are, the model's
 * parameters come from rank 0. The encoder version of a checkpoint is the low 32 bits of the
 * XXH3 of its parameters (never 0), so every model writes vectors under its own version. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "job.h"
#include "memstore.h"
#include "rv.h"
#include "tr_impl.h"

/* Rank 0 reads the checkpoint; every rank gets its config (with overrides) and the layout,
 * opens its stores, the tokenizer and the parameters. */
static int serve_open(tr_job *j, const tr_serve_args *a, int writable, char *err) {
    char mine[RV_ERR_MAX] = "", *text = NULL;
    trn_ckpt ck;
    int have_ck = 0, rc = -1;
    size_t len = 0;
    if (comm_create("serve", &j->c, err)) return -1;
    j->rank = comm_rank(j->c);
    j->size = comm_size(j->c);
    j->W = j->size - 1;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "[rank %d]", j->rank);
    rv_log_set_prefix(prefix);
    if (j->rank == 0) {
        /* a checkpoint directory of a run, or its model.ckpt file */
        char path[2 * TR_PATH_MAX + 16];
        snprintf(path, sizeof path, "%s/model.ckpt", a->checkpoint);
        if (access(path, F_OK) != 0) snprintf(path, sizeof path, "%s", a->checkpoint);
        if (trn_ckpt_open(path, &ck, mine) == 0) {
            have_ck = 1;
            text = strndup(ck.meta.config, ck.meta.config_len);
            len = ck.meta.config_len + 1;
            if (!text) rv_fail(mine, "out of memory");
        }
    }
    if ((rc = comm_agree(j->c, mine, err))) goto cleanup;
    rc = -1;
    if (tr_job_bcast_bytes(j, (void **)&text, &len, err)) goto cleanup;
    /* the checkpoint's config, then the layout override */
    char layout_set[TR_PATH_MAX + 16];
    char *sets[1] = {layout_set};
    snprintf(layout_set, sizeof layout_set, "data.layout=%s", a->layout ? a->layout : "");
    tr_config_default(&j->cfg);
    if (tr_config_load_text(&j->cfg, text, "the checkpoint's config", sets, a->layout ? 1 : 0,
                            mine))
        rv_fail_wrap(mine, "%s", a->checkpoint);
    j->timeout_s = j->cfg.timeout_s;
    if ((rc = comm_agree(j->c, j->rank == 0 ? mine : "", err)) ||
        tr_job_layout(j, j->cfg.layout, err) || tr_job_open_shards(j, NULL, writable, err) ||
        tr_setup_tokenizer(j, 1, have_ck ? &ck : NULL, err) ||
        tr_setup_model(j, have_ck ? &ck : NULL, err)) {
        rc = rc ? rc : -1;
        goto cleanup;
    }
    uint64_t h = XXH3_64bits(j->model.params.params, j->model.params.total * sizeof(float));
    j->version = (uint32_t)h ? (uint32_t)h : 1u;
    for (size_t i = 0; i < j->l->n_stores && !mine[0]; i++)
        if (j->owner[i] == j->rank) tr_shard_bind(j->shards[i], j->tok, &j->model, mine);
    rc = comm_agree(j->c, mine, err);
cleanup:
    if (have_ck) trn_ckpt_close(&ck);
    free(text);
    return rc;
}

/* Loads every shard's memory; missing vectors are encoded in RAM, stale ones counted. */
static int serve_memory(tr_job *j, char *err) {
    char mine[RV_ERR_MAX] = "";
    unsigned long long counts[2] = {0, 0}, total[2];
    for (size_t i = 0; i < j->l->n_stores && !mine[0]; i++) {
        if (j->owner[i] != j->rank) continue;
        size_t enc = 0, stale = 0;
        if (tr_shard_load_memory(j->shards[i], j->version, &enc, &stale, mine) == 0) {
            counts[0] += enc;
            counts[1] += stale;
        }
    }
    int rc = comm_agree(j->c, mine, err);
    if (rc) return rc;
    MPI_Reduce(counts, total, 2, MPI_UNSIGNED_LONG_LONG, MPI_SUM, 0, comm_mpi(j->c));
    if (j->rank == 0 && (total[0] || total[1]))
        rv_warn("memory: %llu items had no vectors of this model (encoded now, not stored), %llu "
                "carry another encoder version (used as they are): `reveal refresh` brings the "
                "stores up to this checkpoint",
                total[0], total[1]);
    return 0;
}

static int serve_close(tr_job *j, int ok, char *err) {
    int code = ok ? 0 : 1;
    if (j->rank == 0 && j->l) {
        char why[RV_ERR_MAX];
        if (tr_control(j, REVEAL__CONTROL_COMMAND__SHUTDOWN, 0, NULL, why) && ok) {
            snprintf(err, RV_ERR_MAX, "%s", why);
            code = 1;
        }
    }
    return code;
}

/* Workers serve until rank 0 shuts them down. */
static int serve_workers(tr_job *j, char *err) {
    return tr_worker_loop(j, err);
}

int tr_refresh_main(const tr_serve_args *a) {
    tr_job j = {0};
    char err[RV_ERR_MAX] = "";
    int code = TR_EXIT_FAIL, lone = 0;
    if (serve_open(&j, a, 1, err)) goto done;
    lone = 1;
    if (j.rank) {
        /* the items' stored versions, read once: a re-run after a kill skips what was done */
        for (size_t i = 0; i < j.l->n_stores; i++)
            if (j.owner[i] == j.rank && tr_shard_load_versions(j.shards[i], err)) goto done;
        code = serve_workers(&j, err) ? TR_EXIT_FAIL : TR_EXIT_OK;
        goto done;
    }
    for (size_t i = 0; i < j.l->n_stores; i++)
        if (j.owner[i] == 0 && tr_shard_load_versions(j.shards[i], err)) goto done;
    rv_info("refresh with encoder version %u (%s)%s", j.version, a->checkpoint,
            a->stale_only ? ", new, changed and stale items only" : "");
    double t0 = rv_now();
    Reveal__Control ctl = REVEAL__CONTROL__INIT;
    ctl.command = REVEAL__CONTROL_COMMAND__REFRESH;
    ctl.version = j.version;
    ctl.stale_only = a->stale_only;
    ctl.path = "";
    uint64_t done = 0;
    if (tr_control_msg(&j, &ctl, &done, err)) goto done;
    double secs = rv_now() - t0;
    printf("refresh: %llu items encoded with version %u in %.2f s (%s)\n", (unsigned long long)done,
           j.version, secs, a->stale_only ? "stale only" : "every item");
    code = serve_close(&j, 1, err);
done:
    if (code && err[0] && (j.rank == 0 || lone)) fprintf(stderr, "reveal refresh: %s\n", err);
    if (code && lone) code = TR_EXIT_ABORT;
    tr_job_free(&j);
    return code;
}

/* --sources a,b → use (S) flags; NULL: all. */
static int parse_sources(const tr_job *j, const char *list, uint8_t *use, char *err) {
    memset(use, 0, j->l->n_sources);
    char *copy = strdup(list), *save = NULL;
    if (!copy) return rv_fail(err, "out of memory");
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
        size_t s = 0;
        while (s < j->l->n_sources && strcmp(j->l->sources[s].name, t)) s++;
        if (s == j->l->n_sources)
            rc = rv_fail(err, "--sources: \"%s\" is not a source of the layout", t);
        else
            use[s] = 1;
    }
    free(copy);
    return rc;
}

static cJSON *table_json(const trn_score_table *t, char *err) {
    cJSON *out = NULL;
    return trn_score_table_json(t, "accuracy", &out, err) ? NULL : out;
}

int tr_eval_main(const tr_serve_args *a) {
    tr_job j = {0};
    char err[RV_ERR_MAX] = "";
    int code = TR_EXIT_FAIL, lone = 0;
    tr_task t = {0};
    int32_t *q_ids = NULL;
    rvm_input *queries = NULL;
    tr_eval on = {0}, off = {0};
    uint8_t *use = NULL;
    cJSON *js = NULL;
    if (serve_open(&j, a, 0, err) || serve_memory(&j, err)) goto done;
    lone = 1;
    if (j.rank) {
        code = serve_workers(&j, err) ? TR_EXIT_FAIL : TR_EXIT_OK;
        goto done;
    }
    long K = a->topk > 0 ? a->topk : j.cfg.topk;
    if (a->sources) {
        use = malloc(j.l->n_sources);
        if (!use || parse_sources(&j, a->sources, use, err)) goto done;
    }
    if (tr_task_load(&t, a->data, j.l, (uint32_t)j.cfg.image_size, err) ||
        tr_task_tokenize(&j, &t, &q_ids, &queries, NULL, NULL, err))
        goto done;
    tr_eval_opts o_on = {1, K, use}, o_off = {0, K, NULL};
    double t0 = rv_now();
    if ((!a->no_memory && tr_evaluate(&j, &t, queries, &o_on, &on, err)) ||
        tr_evaluate(&j, &t, queries, &o_off, &off, err))
        goto done;
    double secs = rv_now() - t0;
    printf("%s: %zu questions, checkpoint %s, K %ld, sources %s (%.1f s)\n\n", a->data, t.n,
           a->checkpoint, K, a->sources ? a->sources : "all", secs);
    tr_print_table(a->no_memory ? NULL : &on.by_type, &off.by_type);
    if (!a->no_memory)
        printf("recall@%ld of the gold item: %.3f (%zu questions with a gold item)\n", K, on.recall,
               on.n_gold);
    if (off.n_captions) {
        if (!a->no_memory)
            printf("captions (%zu): BLEU-4 %.4f, CIDEr-D %.4f with memory; ", off.n_captions,
                   on.bleu4, on.cider);
        else
            printf("captions (%zu): ", off.n_captions);
        printf("BLEU-4 %.4f, CIDEr-D %.4f memory removed\n", off.bleu4, off.cider);
    }
    fflush(stdout);
    if (a->json) {
        js = cJSON_CreateObject();
        cJSON_AddStringToObject(js, "data", a->data);
        cJSON_AddStringToObject(js, "checkpoint", a->checkpoint);
        cJSON_AddNumberToObject(js, "questions", (double)t.n);
        cJSON_AddNumberToObject(js, "k", (double)K);
        cJSON_AddStringToObject(js, "sources", a->sources ? a->sources : "all");
        if (!a->no_memory) {
            cJSON_AddNumberToObject(js, "accuracy", on.acc);
            cJSON_AddNumberToObject(js, "recall", on.recall);
            cJSON *bt = table_json(&on.by_type, err);
            if (!bt) goto done;
            cJSON_AddItemToObject(js, "by_type", bt);
        }
        cJSON_AddNumberToObject(js, "accuracy_memory_removed", off.acc);
        if (off.n_captions) {
            cJSON_AddNumberToObject(js, "captions", (double)off.n_captions);
            if (!a->no_memory) {
                cJSON_AddNumberToObject(js, "bleu4", on.bleu4);
                cJSON_AddNumberToObject(js, "cider_d", on.cider);
            }
            cJSON_AddNumberToObject(js, "bleu4_memory_removed", off.bleu4);
            cJSON_AddNumberToObject(js, "cider_d_memory_removed", off.cider);
        }
        cJSON *bt = table_json(&off.by_type, err);
        if (!bt) goto done;
        cJSON_AddItemToObject(js, "by_type_memory_removed", bt);
        cJSON *preds = cJSON_AddArrayToObject(js, "predictions");
        for (size_t i = 0; i < t.n; i++) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "id", t.rows[i].id);
            cJSON_AddStringToObject(p, "type", t.rows[i].type);
            if (!a->no_memory) cJSON_AddStringToObject(p, "answer", on.pred[i]);
            cJSON_AddStringToObject(p, "answer_memory_removed", off.pred[i]);
            cJSON_AddItemToArray(preds, p);
        }
        char *text = cJSON_Print(js);
        if (!text || rv_write_file_atomic(a->json, text, strlen(text), err)) {
            free(text);
            if (!err[0]) rv_fail(err, "out of memory");
            goto done;
        }
        free(text);
    }
    code = serve_close(&j, 1, err);
done:
    if (code && err[0] && (j.rank == 0 || lone)) fprintf(stderr, "reveal eval: %s\n", err);
    if (code && lone && j.size > 1) code = TR_EXIT_ABORT;
    cJSON_Delete(js);
    free(use);
    tr_eval_free(&on);
    tr_eval_free(&off);
    free(q_ids);
    free(queries);
    tr_task_free(&t);
    tr_job_free(&j);
    return code;
}

typedef struct {
    float p;
    int slot;
} ranked;

static int by_p(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    return x->p > y->p ? -1 : x->p < y->p;
}

int tr_answer_main(const tr_serve_args *a) {
    tr_job j = {0};
    char err[RV_ERR_MAX] = "";
    int code = TR_EXIT_FAIL;
    uint8_t *pixels = NULL;
    float *q = NULL, *p = NULL;
    rvm_candidate *cand = NULL;
    tr_hit *hits = NULL;
    ranked *order = NULL;
    const char **texts = NULL;
    int *src_of = NULL;
    char *answer = NULL;
    if (serve_open(&j, a, 0, err)) goto done;
    if (j.size > 1) {
        if (j.rank == 0)
            rv_fail(err, "reveal answer runs in one process (it reads the retrieved items' texts "
                         "from the stores); run it without mpirun");
        goto done;
    }
    if (serve_memory(&j, err)) goto done;
    int S = (int)j.l->n_sources, dk = j.mcfg.key_dim, cd = j.mcfg.latents * j.mcfg.width;
    long K = a->topk > 0 ? a->topk : j.cfg.topk;
    int32_t ids[4096], len = 0;
    int nq = 0;
    if (mem_image_load(a->image, (uint32_t)j.cfg.image_size, &pixels, err) ||
        trn_tok_encode(j.tok, a->question, strlen(a->question), 0, j.mcfg.text_max - 1, ids, &nq,
                       NULL, err))
        goto done;
    rvm_input in = {{ids, nq}, pixels};
    q = malloc((size_t)dk * sizeof *q);
    uint32_t *k = calloc((size_t)S, sizeof *k);
    int *ks = calloc((size_t)S, sizeof *ks);
    cand = calloc((size_t)K * S + 1, sizeof *cand);
    hits = malloc(((size_t)K * j.l->n_stores + 1) * sizeof *hits);
    p = malloc(((size_t)K * S + 1) * sizeof *p);
    texts = calloc((size_t)K * S + 1, sizeof *texts);
    src_of = calloc((size_t)K * S + 1, sizeof *src_of);
    order = calloc((size_t)K * S + 1, sizeof *order);
    if (!q || !k || !ks || !cand || !hits || !p || !texts || !src_of || !order) {
        free(k);
        free(ks);
        rv_fail(err, "out of memory");
        goto done;
    }
    for (int s = 0; s < S; s++) k[s] = (uint32_t)K;
    if (rvm_encode_queries(&j.model, &in, 1, q, err)) goto done;
    Reveal__QueryBatch qb = REVEAL__QUERY_BATCH__INIT;
    qb.batch = 1;
    qb.dk = (uint32_t)dk;
    qb.n_queries = (size_t)dk;
    qb.queries = q;
    qb.n_k = (size_t)S;
    qb.k = k;
    if (tr_exchange(&j, &qb, err)) {
        free(k);
        free(ks);
        goto done;
    }
    int M = 0;
    for (int s = 0; s < S; s++) {
        size_t nh = tr_merge_hits(&j, s, 0, hits);
        ks[s] = (int)(nh < (size_t)K ? nh : (size_t)K);
        for (int x = 0; x < ks[s]; x++, M++) {
            const Reveal__TopKReply *r = j.replies[hits[x].store];
            cand[M] = (rvm_candidate){.key = r->keys + hits[x].at * dk,
                                      .value = r->values + hits[x].at * cd};
            texts[M] = tr_shard_text_of(j.shards[hits[x].store], hits[x].id);
            src_of[M] = s;
        }
    }
    rvm_candidates cands = {S, ks, 0, cand};
    int32_t out[1024];
    int amax = j.mcfg.answer_max - 1;
    size_t alen;
    if (rvm_answer(&j.model, &in, 1, &cands, amax, out, &len, p, err) ||
        trn_tok_decode(j.tok, out, len, &answer, &alen, err)) {
        free(k);
        free(ks);
        goto done;
    }
    tr_utf8_repair(answer, alen);
    free(k);
    free(ks);
    printf(
        "question: %s\nimage:    %s\nanswer:   %s\n\nretrieved knowledge (p(m|x), best first):\n",
        a->question, a->image, answer);
    for (int m = 0; m < M; m++) order[m] = (ranked){p[m], m};
    qsort(order, (size_t)M, sizeof *order, by_p);
    int shown = M < a->show ? M : a->show;
    for (int i = 0; i < shown; i++) {
        int m = order[i].slot;
        printf("  %.3f  %-12s %s\n", order[i].p, j.l->sources[src_of[m]].name,
               texts[m] ? texts[m] : "(text not found)");
    }
    code = serve_close(&j, 1, err);
done:
    if (code && err[0] && j.rank == 0) fprintf(stderr, "reveal answer: %s\n", err);
    free(answer);
    free(pixels);
    free(q);
    free(cand);
    free(hits);
    free(p);
    free(texts);
    free(src_of);
    free(order);
    tr_job_free(&j);
    return code;
}
