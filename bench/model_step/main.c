/* bench/model_step/main.c — wall time of the model's calls at the scale LEARNING.md trained:
 * the default config (width 64, one block per stack, c = 4), B = 32 queries with pictures,
 * 3 sources × K = 4 candidates of which 1 per source is re-encoded (ρ = 0.25), gold items for
 * the contrastive loss; then a memory refresh of 384 items and the query encoding.
 * Prints the median of the repeats and the load average beside it (the machine is shared).
 *
 *   OPENBLAS_NUM_THREADS=1 build/bench/model_step/bench_model_step [repeats [head_pool]]
 * head_pool 1: the pooled query / key readout (docs/model.md) instead of position 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "rng.h"
#include "rv.h"

#define B     32
#define S     3
#define K     4
#define NITEM 384

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Wall time and this process's CPU time: under the shared machine's load the CPU time is the
 * steadier figure. */
typedef struct {
    double wall, cpu;
} stamp;

static stamp now(void) {
    stamp s = {clock_s(CLOCK_MONOTONIC), clock_s(CLOCK_PROCESS_CPUTIME_ID)};
    return s;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp);
    return t[n / 2];
}

static void load(char *buf, size_t n) {
    FILE *f = fopen("/proc/loadavg", "r");
    buf[0] = 0;
    if (f) {
        if (!fgets(buf, (int)n, f)) buf[0] = 0;
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = 0;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 10;
    if (reps < 1) reps = 1;
    char err[RV_ERR_MAX], la[128];
    rvm_config c;
    rvm_config_default(&c);
    c.vocab = 256;
    c.head_pool = argc > 2 ? atoi(argv[2]) : 0;
    rvm_model m;
    if (rvm_model_init(&m, &c, err)) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    static uint8_t img[NITEM][16 * 16 * 3];
    static int32_t tok[NITEM][8];
    static rvm_input items[NITEM];
    for (int i = 0; i < NITEM; i++) {
        for (int p = 0; p < 16 * 16 * 3; p++) img[i][p] = (uint8_t)trn_rng_u64(1, i, p);
        for (int t = 0; t < 8; t++) tok[i][t] = 5 + (int32_t)(trn_rng_u64(2, i, t) % 200);
        items[i].text.ids = tok[i];
        items[i].text.n = 4 + i % 4;
        items[i].image = img[i];
    }
    static float keys[NITEM][64], values[NITEM][4 * 64];
    rvm_encode_items(&m, items, NITEM, &keys[0][0], &values[0][0], err);
    static rvm_candidate cand[B * S * K];
    static rvm_text answers[B];
    int ks[S] = {K, K, K};
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < S * K; j++) {
            int it = (b * 7 + j * 13) % NITEM;
            if (j % K == 0) {
                cand[b * S * K + j].item = &items[it];
            } else {
                cand[b * S * K + j].key = keys[it];
                cand[b * S * K + j].value = values[it];
            }
        }
        answers[b].ids = tok[b];
        answers[b].n = 1;
    }
    rvm_candidates cands = {S, ks, 0, cand};
    rvm_batch batch = {B, items + 100, &cands, answers, items + 200, NULL, NULL};
    rvm_step_out out;
    double t[4][2][64]; /* call, wall / cpu, repeat */
    if (reps > 64) reps = 64;
    static float q[B * 64];
    for (int r = -1; r < reps; r++) { /* r = −1 warms up (and grows the arena) */
        stamp s[5];
        s[0] = now();
        trn_params_zero_grad(&m.params);
        if (rvm_step(&m, &batch, &out, err)) {
            fprintf(stderr, "bench: %s\n", err);
            return 1;
        }
        s[1] = now();
        rvm_forward(&m, &batch, &out, err);
        s[2] = now();
        rvm_encode_items(&m, items, NITEM, &keys[0][0], &values[0][0], err);
        s[3] = now();
        rvm_encode_queries(&m, items, B, q, err);
        s[4] = now();
        for (int i = 0; i < 4 && r >= 0; i++) {
            t[i][0][r] = s[i + 1].wall - s[i].wall;
            t[i][1][r] = s[i + 1].cpu - s[i].cpu;
        }
    }
    load(la, sizeof la);
    printf("model: %zu parameters, head_pool %d; batch B=%d, %d sources x K=%d (1 re-encoded "
           "each), gold items\n",
           m.params.n_elements, c.head_pool, B, S, K);
    const char *what[4] = {"step (forward + backward)", "forward only", "refresh 384 items",
                           "encode 32 queries"};
    printf("%-26s %12s %12s   (medians of %d)\n", "call", "wall ms", "cpu ms", reps);
    for (int i = 0; i < 4; i++)
        printf("%-26s %12.1f %12.1f\n", what[i], 1e3 * median(t[i][0], reps),
               1e3 * median(t[i][1], reps));
    printf("load average: %s\n", la);
    rvm_model_free(&m);
    return 0;
}
