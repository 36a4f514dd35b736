/* bench/model_step/main.c — wall time of the model's calls at two scales:
 *   learning  the scale LEARNING.md trained: the default config (width 64, one block per stack,
 *             c = 4), 16-pixel pictures, 3 sources × K = 4 candidates;
 *   flags     the flags demo's model (tools/flags/job.sh: 32-pixel pictures in 8-pixel patches,
 *             texts of up to 20 pieces, c = 16 latents, pooled readouts, vocabulary 3000),
 *             4 sources × K candidates (K = 4 unless given, at most 4) — the memory-phase
 *             update of scripts/demo.sh.
 * Both: B = 32 queries with pictures, 1 candidate per source re-encoded (ρ = 0.25), gold items
 * for the contrastive loss; then a memory refresh of 384 items and the query encoding.
 * Prints the median of the repeats and the load average beside it (the machine is shared).
 *
 *   OPENBLAS_NUM_THREADS=1 build/bench/model_step/bench_model_step [repeats [head_pool [flags
 * [K]]]] REVEAL_THREADS=n runs the engine's team of n threads (training/threads.h). head_pool 1:
 * the pooled query / key readout (docs/model.md) instead of position 0 (the flags preset always
 * pools).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "rng.h"
#include "rv.h"
#include "threads.h"

#define B      32
#define K_MAX  4
#define NITEM  384
#define S_MAX  4
#define TOKMAX 20

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
    int flags = argc > 3 && strcmp(argv[3], "flags") == 0;
    char err[RV_ERR_MAX], la[128], desc[256];
    trn_threads_info ti;
    if (trn_threads_setup(0, &ti, err)) {
        fprintf(stderr, "bench: %s\n", err);
        return 2;
    }
    trn_threads_describe(&ti, desc, sizeof desc);
    rvm_config c;
    rvm_config_default(&c);
    c.vocab = 256;
    c.head_pool = argc > 2 ? atoi(argv[2]) : 0;
    int S = 3, K = 4, tok_lo = 4, tok_span = 4, ans_n = 1;
    if (flags) {
        c.vocab = 3000;
        c.image_size = 32;
        c.patch = 8;
        c.text_max = 20;
        c.answer_max = 10;
        c.latents = 16;
        c.head_pool = 1;
        c.tau_scale = 10;
        c.sources = S = 4;
        tok_lo = 10, tok_span = 10, ans_n = 4;
        if (argc > 4) K = atoi(argv[4]);
        if (K < 1 || K > K_MAX) K = 4;
    }
    rvm_model m;
    if (rvm_model_init(&m, &c, err)) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    size_t npix = (size_t)c.image_size * c.image_size * 3, cd = (size_t)c.latents * c.width;
    uint8_t *img = malloc(NITEM * npix);                // (NITEM, image_size, image_size, 3)
    float *keys = malloc(NITEM * 64 * sizeof(float));   // (NITEM, key_dim)
    float *values = malloc(NITEM * cd * sizeof(float)); // (NITEM, latents · width)
    if (!img || !keys || !values) {
        fprintf(stderr, "bench: out of memory\n");
        return 1;
    }
    static int32_t tok[NITEM][TOKMAX];
    static rvm_input items[NITEM];
    for (int i = 0; i < NITEM; i++) {
        for (size_t p = 0; p < npix; p++) img[i * npix + p] = (uint8_t)trn_rng_u64(1, i, p);
        for (int t = 0; t < TOKMAX; t++)
            tok[i][t] = 5 + (int32_t)(trn_rng_u64(2, i, t) % (uint64_t)(c.vocab - 10));
        items[i].text.ids = tok[i];
        items[i].text.n = tok_lo + i % tok_span;
        items[i].image = img + i * npix;
    }
    rvm_encode_items(&m, items, NITEM, keys, values, err);
    static rvm_candidate cand[B * S_MAX * K_MAX];
    static rvm_text answers[B];
    int ks[S_MAX] = {K, K, K, K};
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < S * K; j++) {
            int it = (b * 7 + j * 13) % NITEM;
            if (j % K == 0) {
                cand[b * S * K + j].item = &items[it];
            } else {
                cand[b * S * K + j].key = keys + (size_t)it * 64;
                cand[b * S * K + j].value = values + (size_t)it * cd;
            }
        }
        answers[b].ids = tok[b];
        answers[b].n = ans_n;
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
        rvm_encode_items(&m, items, NITEM, keys, values, err);
        s[3] = now();
        rvm_encode_queries(&m, items, B, q, err);
        s[4] = now();
        for (int i = 0; i < 4 && r >= 0; i++) {
            t[i][0][r] = s[i + 1].wall - s[i].wall;
            t[i][1][r] = s[i + 1].cpu - s[i].cpu;
        }
    }
    load(la, sizeof la);
    printf("%s\n", desc);
    printf("model (%s): %zu parameters, head_pool %d, c=%d; batch B=%d, %d sources x K=%d (1 "
           "re-encoded each), gold items\n",
           flags ? "flags" : "learning", m.params.n_elements, c.head_pool, c.latents, B, S, K);
    const char *what[4] = {"step (forward + backward)", "forward only", "refresh 384 items",
                           "encode 32 queries"};
    printf("%-26s %12s %12s   (medians of %d)\n", "call", "wall ms", "cpu ms", reps);
    for (int i = 0; i < 4; i++)
        printf("%-26s %12.1f %12.1f\n", what[i], 1e3 * median(t[i][0], reps),
               1e3 * median(t[i][1], reps));
    printf("load average: %s\n", la);
    rvm_model_free(&m);
    free(img);
    free(keys);
    free(values);
    return 0;
}
