/* trainer/batch.c — one training update on rank 0: the rows of the step, the query batch, the
 * candidates assembled from the stores' replies (shards of a source merged into one top-K, the
 * best R re-encoded, gold items injected; or, in the warm start, the rows' gold items fused
 * without retrieval), the model's step, the gradients of the re-encoded items back to their
 * stores, the all-reduce and the update. The data order and every random choice are functions
 * of (seed, step), so a resumed run repeats them exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "rv.h"
#include "tr_impl.h"

enum { STREAM_ORDER = 31, STREAM_WARM_SLOT = 32, STREAM_INJECT = 33 };

/* One item encoded with gradient by a store this step. */
typedef struct {
    const float *key, *value; /* in the store's reply */
    float *dkey, *dvalue;     /* ∂L/∂key, ∂L/∂value: the model adds into them */
    int used;
} fresh_item;

typedef struct {
    int B, M, S;
    size_t *rows;          /* (B) task rows */
    rvm_input *queries;    /* (B) */
    rvm_text *answers;     /* (B) */
    float *q;              /* (B, dk) */
    char **gold_keys;      /* (B) */
    uint32_t *gold_src;    /* (B) */
    uint32_t *k, *fresh;   /* (S) */
    int *ks;               /* (S) candidates per source in the batch */
    rvm_candidate *cand;   /* (B, M) */
    int *gold_slot;        /* (B) */
    const float **gkeys;   /* (B) */
    float **gdkeys;        /* (B) */
    fresh_item **fresh_of; /* (n_stores) */
    size_t *n_fresh;       /* (n_stores) */
    float **dk_buf, **dv_buf;
} step_bufs;

static void bufs_free(step_bufs *s, size_t n_stores) {
    if (s->fresh_of)
        for (size_t i = 0; i < n_stores; i++) {
            free(s->fresh_of[i]);
            free(s->dk_buf[i]);
            free(s->dv_buf[i]);
        }
    void *p[] = {s->rows,   s->queries,  s->answers, s->q,      s->gold_keys, s->gold_src,
                 s->k,      s->fresh,    s->ks,      s->cand,   s->gold_slot, s->gkeys,
                 s->gdkeys, s->fresh_of, s->n_fresh, s->dk_buf, s->dv_buf};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) free(p[i]);
}

/* The task row at position pos of the endless shuffled sequence. */
static size_t row_at(tr_job *j, uint64_t pos, uint64_t *epoch_cached) {
    size_t n = j->task.n;
    uint64_t epoch = pos / n;
    if (*epoch_cached != epoch) {
        for (size_t i = 0; i < n; i++) j->order[i] = i;
        for (size_t i = n - 1; i > 0; i--) {
            size_t r =
                (size_t)(trn_rng_u64((uint64_t)j->cfg.seed, STREAM_ORDER, epoch * n + i) % (i + 1));
            size_t t = j->order[i];
            j->order[i] = j->order[r];
            j->order[r] = t;
        }
        *epoch_cached = epoch;
    }
    return j->order[pos % n];
}

/* Index of item id among a reply's fresh ids, or -1. */
static long fresh_index(const Reveal__TopKReply *r, uint64_t id) {
    for (size_t f = 0; f < r->n_fresh_ids; f++)
        if (r->fresh_ids[f] == id) return (long)f;
    return -1;
}

static int take_fresh(step_bufs *s, size_t store, long f, rvm_candidate *c) {
    fresh_item *it = &s->fresh_of[store][f];
    it->used = 1;
    c->item = NULL;
    c->key = it->key;
    c->value = it->value;
    c->dkey = it->dkey;
    c->dvalue = it->dvalue;
    return 0;
}

/* The row's gold item as the store of its source that holds it re-encoded it. */
static int gold_fresh(tr_job *j, step_bufs *s, int b, size_t *store, long *f, char *err) {
    const wrk_layout_source *src = &j->l->sources[s->gold_src[b]];
    for (uint32_t h = 0; h < src->n_shards; h++) {
        size_t i = src->first + h;
        const Reveal__TopKReply *r = j->replies[i];
        if (r->n_gold_fresh && r->gold_fresh[b] >= 0) {
            *store = i;
            *f = r->gold_fresh[b];
            return 0;
        }
    }
    const tr_row *row = &j->task.rows[s->rows[b]];
    return rv_fail(err, "%s: gold item \"%s\" is in no store of source %s", row->id, row->gold_key,
                   src->name);
}

static int hit_order(const void *a, const void *b) {
    const tr_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int tr_source_counts(const tr_job *j, const uint32_t *k, int *ks) {
    int M = 0;
    for (size_t src = 0; src < j->l->n_sources; src++) {
        const wrk_layout_source *ls = &j->l->sources[src];
        int got = 0;
        for (uint32_t h = 0; h < ls->n_shards; h++) got += (int)j->replies[ls->first + h]->k;
        ks[src] = got < (int)k[src] ? got : (int)k[src];
        M += ks[src];
    }
    return M;
}

size_t tr_merge_hits(const tr_job *j, int src, int b, tr_hit *hits) {
    const wrk_layout_source *ls = &j->l->sources[src];
    size_t nh = 0;
    for (uint32_t h = 0; h < ls->n_shards; h++) {
        size_t i = ls->first + h;
        const Reveal__TopKReply *r = j->replies[i];
        for (uint32_t x = 0; x < r->k; x++) {
            size_t at = (size_t)b * r->k + x;
            hits[nh++] = (tr_hit){r->scores[at], r->ids[at], i, at};
        }
    }
    qsort(hits, nh, sizeof *hits, hit_order);
    return nh;
}

/* Memory stage: per source, the stores' top-k lists of row b merged into one top-K. */
static int memory_cands(tr_job *j, step_bufs *s, uint64_t draw, double *recall, char *err) {
    int B = s->B, M = 0, found = 0;
    int dk = j->mcfg.key_dim, cd = j->mcfg.latents * j->mcfg.width;
    s->M = M = tr_source_counts(j, s->k, s->ks);
    tr_hit *hits = malloc(((size_t)j->cfg.topk * j->l->n_stores + 1) * sizeof *hits);
    if (!hits) return rv_fail(err, "out of memory");
    int off = 0, rc = -1;
    for (int src = 0; src < s->S; src++) {
        int K = s->ks[src], R = (int)s->fresh[src] < K ? (int)s->fresh[src] : K;
        for (int b = 0; b < B; b++) {
            tr_merge_hits(j, src, b, hits);
            rvm_candidate *c = s->cand + (size_t)b * M + off;
            int gold_pos = -1;
            for (int x = 0; x < K; x++) {
                const Reveal__TopKReply *r = j->replies[hits[x].store];
                if (r->n_gold_ids && r->gold_ids[b] && r->gold_ids[b] == hits[x].id &&
                    s->gold_src[b] == (uint32_t)src)
                    gold_pos = x;
                if (x < R) {
                    long f = fresh_index(r, hits[x].id);
                    if (f < 0) {
                        rv_fail(err, "store %zu did not re-encode its item 0x%016llx of row %d",
                                hits[x].store, (unsigned long long)hits[x].id, b);
                        goto cleanup;
                    }
                    take_fresh(s, hits[x].store, f, &c[x]);
                } else {
                    c[x] = (rvm_candidate){.key = r->keys + hits[x].at * dk,
                                           .value = r->values + hits[x].at * cd};
                }
            }
            if (gold_pos >= 0) {
                found++;
                s->gold_slot[b] = off + gold_pos;
            }
            if (s->gold_src[b] != (uint32_t)src || !s->gold_keys[b][0] || !K ||
                trn_rng_uniform((uint64_t)j->cfg.seed, STREAM_INJECT, draw * B + b) >=
                    j->cfg.inject)
                continue;
            /* gold injection: a retrieved gold is made fresh, a missing one takes the last slot */
            size_t store;
            long f;
            if (gold_fresh(j, s, b, &store, &f, err)) goto cleanup;
            int slot = gold_pos >= 0 ? gold_pos : K - 1;
            take_fresh(s, store, f, &c[slot]);
            s->gold_slot[b] = off + slot;
        }
        off += K;
    }
    *recall = B ? (double)found / B : 0;
    rc = 0;
cleanup:
    free(hits);
    return rc;
}

/* Warm start: row b fuses its own gold and the golds of `others` other rows, no gate. */
static int warm_cands(tr_job *j, step_bufs *s, uint64_t draw, char *err) {
    int B = s->B, others = (int)j->cfg.warm_others < B - 1 ? (int)j->cfg.warm_others : B - 1;
    int M = 1 + others;
    s->M = M;
    s->ks[0] = M;
    for (int b = 0; b < B; b++) {
        int own =
            (int)(trn_rng_u64((uint64_t)j->cfg.seed, STREAM_WARM_SLOT, draw * B + b) % (uint64_t)M);
        rvm_candidate *c = s->cand + (size_t)b * M;
        for (int i = 0, o = 1; i < M; i++) {
            int row = i == own ? b : (b + o++) % B;
            size_t store;
            long f;
            if (gold_fresh(j, s, row, &store, &f, err)) return -1;
            take_fresh(s, store, f, &c[i]);
        }
        s->gold_slot[b] = own;
    }
    return 0;
}

static int alloc_bufs(tr_job *j, step_bufs *s, char *err) {
    size_t B = (size_t)s->B, S = (size_t)s->S, NS = j->l->n_stores;
    size_t Mmax = (size_t)j->cfg.topk * S + (size_t)j->cfg.warm_others + 1;
    s->rows = calloc(B, sizeof *s->rows);
    s->queries = calloc(B, sizeof *s->queries);
    s->answers = calloc(B, sizeof *s->answers);
    s->q = calloc(B * (size_t)j->mcfg.key_dim, sizeof *s->q);
    s->gold_keys = calloc(B, sizeof *s->gold_keys);
    s->gold_src = calloc(B, sizeof *s->gold_src);
    s->k = calloc(S, sizeof *s->k);
    s->fresh = calloc(S, sizeof *s->fresh);
    s->ks = calloc(S, sizeof *s->ks);
    s->cand = calloc(B * Mmax, sizeof *s->cand);
    s->gold_slot = calloc(B, sizeof *s->gold_slot);
    s->gkeys = calloc(B, sizeof *s->gkeys);
    s->gdkeys = calloc(B, sizeof *s->gdkeys);
    s->fresh_of = calloc(NS, sizeof *s->fresh_of);
    s->n_fresh = calloc(NS, sizeof *s->n_fresh);
    s->dk_buf = calloc(NS, sizeof *s->dk_buf);
    s->dv_buf = calloc(NS, sizeof *s->dv_buf);
    if (!s->rows || !s->queries || !s->answers || !s->q || !s->gold_keys || !s->gold_src || !s->k ||
        !s->fresh || !s->ks || !s->cand || !s->gold_slot || !s->gkeys || !s->gdkeys ||
        !s->fresh_of || !s->n_fresh || !s->dk_buf || !s->dv_buf)
        return rv_fail(err, "out of memory for a batch of %zu rows", B);
    return 0;
}

/* The fresh items of every reply with zeroed gradient buffers. */
static int index_fresh(tr_job *j, step_bufs *s, char *err) {
    int dk = j->mcfg.key_dim, cd = j->mcfg.latents * j->mcfg.width;
    for (size_t i = 0; i < j->l->n_stores; i++) {
        const Reveal__TopKReply *r = j->replies[i];
        size_t nf = r->n_fresh_ids;
        if (nf && (r->dk != (uint32_t)dk || (size_t)r->c * r->d != (size_t)cd))
            return rv_fail(err, "store %zu re-encoded items of another shape (dk %u, c×d %u×%u)", i,
                           r->dk, r->c, r->d);
        s->n_fresh[i] = nf;
        s->fresh_of[i] = calloc(nf ? nf : 1, sizeof *s->fresh_of[i]);
        s->dk_buf[i] = calloc((nf ? nf : 1) * (size_t)dk, sizeof(float));
        s->dv_buf[i] = calloc((nf ? nf : 1) * (size_t)cd, sizeof(float));
        if (!s->fresh_of[i] || !s->dk_buf[i] || !s->dv_buf[i]) return rv_fail(err, "out of memory");
        for (size_t f = 0; f < nf; f++) {
            fresh_item *it = &s->fresh_of[i][f];
            it->key = r->fresh_keys + f * dk;
            it->value = r->fresh_values + f * cd;
            it->dkey = s->dk_buf[i] + f * dk;
            it->dvalue = s->dv_buf[i] + f * cd;
        }
    }
    return 0;
}

/* ItemGrads of every store: the fresh items the step used, with their gradients. */
static int send_item_grads(tr_job *j, step_bufs *s, char *err) {
    size_t NS = j->l->n_stores;
    int dk = j->mcfg.key_dim, cd = j->mcfg.latents * j->mcfg.width, rc = -1;
    Reveal__ItemGrads *g = calloc(NS, sizeof *g), **gp = calloc(NS, sizeof *gp);
    if (!g || !gp) {
        rv_fail(err, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < NS; i++) {
        reveal__item_grads__init(&g[i]);
        gp[i] = &g[i];
        size_t nu = 0, nf = s->n_fresh[i];
        for (size_t f = 0; f < nf; f++) nu += s->fresh_of[i][f].used;
        g[i].step = (uint64_t)j->step;
        g[i].source = (uint32_t)i;
        g[i].dk = (uint32_t)dk;
        g[i].c = (uint32_t)j->mcfg.latents;
        g[i].d = (uint32_t)j->mcfg.width;
        g[i].ids = malloc((nu ? nu : 1) * sizeof *g[i].ids);
        g[i].key_grads = malloc((nu ? nu : 1) * dk * sizeof(float));
        g[i].value_grads = malloc((nu ? nu : 1) * cd * sizeof(float));
        if (!g[i].ids || !g[i].key_grads || !g[i].value_grads) {
            rv_fail(err, "out of memory");
            goto cleanup;
        }
        for (size_t f = 0; f < nf; f++) {
            const fresh_item *it = &s->fresh_of[i][f];
            if (!it->used) continue;
            size_t u = g[i].n_ids++;
            g[i].ids[u] = j->replies[i]->fresh_ids[f];
            memcpy(g[i].key_grads + u * dk, it->dkey, (size_t)dk * sizeof(float));
            memcpy(g[i].value_grads + u * cd, it->dvalue, (size_t)cd * sizeof(float));
        }
        g[i].n_key_grads = g[i].n_ids * dk;
        g[i].n_value_grads = g[i].n_ids * cd;
    }
    rc = tr_send_grads(j, gp, err);
cleanup:
    for (size_t i = 0; g && i < NS; i++) {
        free(g[i].ids);
        free(g[i].key_grads);
        free(g[i].value_grads);
    }
    free(g);
    free(gp);
    return rc;
}

int tr_train_step(tr_job *j, tr_step_stats *st, char *err) {
    memset(st, 0, sizeof *st);
    double t0 = rv_now();
    step_bufs s = {0};
    s.B = (int)j->cfg.batch;
    s.S = (int)j->l->n_sources;
    int warm = j->step < j->cfg.warm_steps, rc = -1;
    uint64_t draw = (uint64_t)j->step, epoch = UINT64_MAX;
    if (alloc_bufs(j, &s, err)) goto cleanup;
    for (int b = 0; b < s.B; b++) {
        size_t r = row_at(j, (uint64_t)j->step * s.B + b, &epoch);
        const tr_row *row = &j->task.rows[r];
        s.rows[b] = r;
        s.queries[b] = j->queries[r];
        s.answers[b] = j->answers[r];
        s.gold_keys[b] = row->gold_key;
        s.gold_src[b] = row->gold_source < 0 ? 0 : (uint32_t)row->gold_source;
        s.gold_slot[b] = -1;
        if (!row->gold_key[0] && (warm || j->mcfg.con_weight > 0)) {
            rv_fail(err, "%s has no gold item, which the warm start and the contrastive loss need",
                    row->id);
            goto cleanup;
        }
    }
    int R = (int)ceil(j->cfg.rho * (double)j->cfg.topk - 1e-9);
    for (int src = 0; src < s.S; src++) {
        s.k[src] = warm ? 0 : (uint32_t)j->cfg.topk;
        s.fresh[src] = warm ? 0 : (uint32_t)R;
    }
    if (!warm && rvm_encode_queries(&j->model, s.queries, s.B, s.q, err)) goto cleanup;
    Reveal__QueryBatch q = REVEAL__QUERY_BATCH__INIT;
    q.step = (uint64_t)j->step;
    q.batch = (uint32_t)s.B;
    q.dk = (uint32_t)j->mcfg.key_dim;
    q.n_queries = (size_t)s.B * j->mcfg.key_dim;
    q.queries = s.q;
    q.n_k = q.n_fresh = (size_t)s.S;
    q.k = s.k;
    q.fresh = s.fresh;
    q.train = 1;
    q.n_gold_keys = q.n_gold_sources = (size_t)s.B;
    q.gold_keys = s.gold_keys;
    q.gold_sources = s.gold_src;
    if (tr_exchange(j, &q, err) || index_fresh(j, &s, err)) goto cleanup;
    double t1 = rv_now();
    if (warm ? warm_cands(j, &s, draw, err) : memory_cands(j, &s, draw, &st->recall, err))
        goto cleanup;
    int use_gold = j->mcfg.con_weight > 0;
    for (int b = 0; use_gold && b < s.B; b++) {
        size_t store;
        long f;
        if (gold_fresh(j, &s, b, &store, &f, err)) goto cleanup;
        fresh_item *it = &s.fresh_of[store][f];
        it->used = 1;
        s.gkeys[b] = it->key;
        s.gdkeys[b] = it->dkey;
    }
    rvm_candidates cands = {warm ? 1 : s.S, s.ks, warm, s.cand};
    rvm_batch batch = {.B = s.B, .queries = s.queries, .cands = &cands, .answers = s.answers};
    if (use_gold) {
        batch.gold_keys = s.gkeys;
        batch.gold_dkeys = s.gdkeys;
    }
    rvm_step_out out;
    if (rvm_step(&j->model, &batch, &out, err)) goto cleanup;
    double t2 = rv_now();
    st->warm = warm;
    st->loss = out.loss;
    st->gen = out.gen;
    st->con = out.con;
    st->inv_tau = out.inv_tau;
    for (int b = 0; b < s.B; b++) {
        st->train_acc += out.correct[b];
        if (s.gold_slot[b] >= 0) st->p_gold += out.p[(size_t)b * out.M + s.gold_slot[b]];
    }
    st->train_acc /= s.B;
    st->p_gold /= s.B;
    if (send_item_grads(j, &s, err)) goto cleanup;
    double t3 = rv_now();
    trn_adamw_stats as;
    if (tr_apply_update(j, &as, err)) goto cleanup;
    double t4 = rv_now();
    st->lr = as.lr;
    st->grad_norm = as.grad_norm;
    st->ms.retrieval = 1e3 * (t1 - t0);
    st->ms.fusion = 1e3 * (t2 - t1);
    st->ms.backward = 1e3 * (t3 - t2);
    st->ms.allreduce = 1e3 * (t4 - t3);
    st->ms.total = 1e3 * (t4 - t0);
    rc = 0;
cleanup:
    tr_exchange_release(j);
    bufs_free(&s, j->l->n_stores);
    return rc;
}
