/* coordinator/batch.c — world questions → model inputs. A row is a question (picture + text),
 * its answer and its gold item (the KG triple stating the fact). Candidates come either from
 * the warm start (the row's gold and other rows' golds, fused without retrieval) or from the
 * real top-K of every memory source searched with a detached query; training re-encodes the
 * best ceil(ρ·K) of each source and injects the gold item into a fraction of the rows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "coord_impl.h"
#include "rng.h"
#include "rv.h"

/* RNG streams of the batch builders (seed: the trainer's seed). */
enum { COORD_STREAM_WARM_SLOT = 11, COORD_STREAM_INJECT = 12 };

int coord_scratch_init(struct coord_scratch *s, int cap, int M, int key_dim, int answer_max,
                       char *err) {
    memset(s, 0, sizeof *s);
    s->cap = cap;
    s->M = M;
    size_t n = (size_t)cap, m = (size_t)(M > 0 ? M : 1);
    s->rows = calloc(n, sizeof *s->rows);
    s->queries = calloc(n, sizeof *s->queries);
    s->gold = calloc(n, sizeof *s->gold);
    s->answers = calloc(n, sizeof *s->answers);
    s->q = calloc(n * (size_t)key_dim, sizeof *s->q);
    s->ids = calloc(n * m, sizeof *s->ids);
    s->scores = calloc(n * m, sizeof *s->scores);
    s->cand = calloc(n * m, sizeof *s->cand);
    s->gold_slot = calloc(n, sizeof *s->gold_slot);
    s->answer_out = calloc(n * (size_t)answer_max, sizeof *s->answer_out);
    s->answer_len = calloc(n, sizeof *s->answer_len);
    s->p = calloc(n * m, sizeof *s->p);
    if (!s->rows || !s->queries || !s->gold || !s->answers || !s->q || !s->ids || !s->scores ||
        !s->cand || !s->gold_slot || !s->answer_out || !s->answer_len || !s->p) {
        coord_scratch_free(s);
        return rv_fail(err, "out of memory for batch buffers (%d rows, %d candidates)", cap, M);
    }
    return 0;
}

void coord_scratch_free(struct coord_scratch *s) {
    free(s->rows);
    free(s->queries);
    free(s->gold);
    free(s->answers);
    free(s->q);
    free(s->ids);
    free(s->scores);
    free(s->cand);
    free(s->gold_slot);
    free(s->answer_out);
    free(s->answer_len);
    free(s->p);
    memset(s, 0, sizeof *s);
}

void coord_batch_rows(coord_trainer *t, struct coord_scratch *s, int n) {
    for (int b = 0; b < n; b++) {
        size_t qi = s->rows[b];
        s->queries[b] = t->texts.questions[qi];
        s->answers[b] = t->texts.answers[qi];
        s->gold[b] = t->texts.items[t->w->questions[qi].gold_item];
    }
}

void coord_batch_warm(coord_trainer *t, struct coord_scratch *s, int n, int others, uint64_t draw) {
    int M = 1 + others;
    for (int b = 0; b < n; b++) {
        int own = (int)(trn_rng_u64(t->cfg.seed, COORD_STREAM_WARM_SLOT, draw * s->cap + b) %
                        (uint64_t)M);
        rvm_candidate *c = s->cand + (size_t)b * M;
        for (int i = 0, o = 1; i < M; i++) {
            int row = i == own ? b : (b + o++) % n;
            c[i].item = &s->gold[row];
            c[i].key = c[i].value = NULL;
        }
        s->gold_slot[b] = own;
    }
    s->ks[0] = M;
    s->cands.n_sources = 1;
    s->cands.k = s->ks;
    s->cands.warm = 1;
    s->cands.cand = s->cand;
}

int coord_batch_memory(coord_trainer *t, struct coord_scratch *s, int n, int train, uint64_t draw,
                       double *recall, char *err) {
    const coord_config *cfg = &t->cfg;
    coord_memory *mem = &t->mem;
    int S = mem->n_sources, K = cfg->topk, M = S * K;
    int reenc = train ? (int)ceilf(cfg->rho * (float)K - 1e-6f) : 0;
    int found = 0;
    if (rvm_encode_queries(&t->model, s->queries, n, s->q, err))
        return rv_fail_wrap(err, "query encoding for the top-K");
    for (int b = 0; b < n; b++) s->gold_slot[b] = -1;
    for (int j = 0; j < S; j++) {
        coord_source *src = &mem->src[j];
        size_t k = 0;
        if (wrk_topk_search(src->index, s->q, (size_t)n, (size_t)K, s->ids, s->scores, &k, err))
            return rv_fail_wrap(err, "top-K of memory source %d", j);
        if ((int)k != K)
            return rv_fail(err, "memory source %d holds %zu items, fewer than K = %d", j,
                           wrk_topk_count(src->index), K);
        for (int b = 0; b < n; b++) {
            rvm_candidate *c = s->cand + (size_t)b * M + (size_t)j * K;
            size_t gold = t->w->questions[s->rows[b]].gold_item;
            for (int i = 0; i < K; i++) {
                size_t pos = (size_t)s->ids[(size_t)b * K + i];
                if (src->item[pos] == gold) {
                    s->gold_slot[b] = j * K + i;
                    found++;
                }
                if (i < reenc) {
                    c[i].item = &t->texts.items[src->item[pos]];
                    c[i].key = c[i].value = NULL;
                } else {
                    c[i].item = NULL;
                    c[i].key = src->keys + pos * (size_t)mem->key_dim;
                    c[i].value = src->values + pos * (size_t)mem->value_floats;
                }
            }
            /* Gold injection: a retrieved gold is made fresh (re-encoded); a missing one takes
             * the last slot of its source. Either way the gold carries gradient. */
            if (!train || src->type != t->w->items[gold].type ||
                trn_rng_uniform(cfg->seed, COORD_STREAM_INJECT, draw * s->cap + b) >= cfg->inject)
                continue;
            int slot = s->gold_slot[b] >= j * K && s->gold_slot[b] < (j + 1) * K
                           ? s->gold_slot[b] - j * K
                           : K - 1;
            c[slot].item = &s->gold[b];
            c[slot].key = c[slot].value = NULL;
            s->gold_slot[b] = j * K + slot;
        }
    }
    if (recall) *recall = n ? (double)found / n : 0.0;
    for (int j = 0; j < S; j++) s->ks[j] = K;
    s->cands.n_sources = S;
    s->cands.k = s->ks;
    s->cands.warm = 0;
    s->cands.cand = s->cand;
    return 0;
}

double coord_p_gold(const struct coord_scratch *s, int n, const float *p, int M) {
    double sum = 0.0;
    for (int b = 0; b < n; b++)
        if (s->gold_slot[b] >= 0) sum += p[(size_t)b * M + s->gold_slot[b]];
    return n ? sum / n : 0.0;
}
