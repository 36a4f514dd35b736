/* coordinator/coord_impl.h — what the coordinator's files share privately: the per-batch
 * scratch buffers and the batch builders (batch.c). */
#ifndef COORD_IMPL_H
#define COORD_IMPL_H

#include "coordinator.h"

/* Buffers for one batch of at most cap rows, reused by every step and evaluation. */
struct coord_scratch {
    int cap, M;          /* rows; candidates per row at most (S·K, or 1 + warm_others) */
    size_t *rows;        /* (cap) question index of each row */
    rvm_input *queries;  /* (cap) */
    rvm_input *gold;     /* (cap) each row's gold item */
    rvm_text *answers;   /* (cap) */
    float *q;            /* (cap, dk) detached queries for the top-K */
    uint64_t *ids;       /* (cap, K) top-K of one source */
    float *scores;       /* (cap, K) */
    rvm_candidate *cand; /* (cap, M) */
    int *gold_slot;      /* (cap) candidate slot holding the row's gold item, −1 if none */
    int ks[COORD_MAX_SOURCES];
    rvm_candidates cands;
    int32_t *answer_out; /* (cap, answer_max − 1) greedy answers */
    int *answer_len;     /* (cap) */
    float *p;            /* (cap, M) p(m|x) of greedy answering */
};

int coord_scratch_init(struct coord_scratch *s, int cap, int M, int key_dim, int answer_max,
                       char *err);
void coord_scratch_free(struct coord_scratch *s);

/* Fills queries, gold and answers of the n rows in s->rows. */
void coord_batch_rows(coord_trainer *t, struct coord_scratch *s, int n);
/* Warm start: each row fused with its own gold item and the gold items of `others` other rows,
 * all re-encoded, the own gold at a slot drawn from the seed. */
void coord_batch_warm(coord_trainer *t, struct coord_scratch *s, int n, int others, uint64_t draw);
/* Memory: candidates from the top-K of each source with a detached query. train = 1 re-encodes
 * the best ceil(rho·K) per source and injects gold items; 0 uses stored entries only.
 * *recall (may be NULL) receives the share of rows whose gold is in the top-K of its source. */
int coord_batch_memory(coord_trainer *t, struct coord_scratch *s, int n, int train, uint64_t draw,
                       double *recall, char *err);
/* Mean over rows of p at each row's gold slot (0 for rows without one); p is (n, M). */
double coord_p_gold(const struct coord_scratch *s, int n, const float *p, int M);

#endif
