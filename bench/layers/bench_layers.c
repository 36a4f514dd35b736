/* bench/layers/bench_layers.c — how fast the layers run at the reference model's shapes
 * (issue 3: width 256, 4 heads, MLP 1024, batch 32, source 64 / target 16, vocabulary 8,000).
 *
 *   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 build/bench/layers/bench_layers [reps]
 *
 * For each item: median forward and backward time over `reps` runs after 2 warm-up runs, and
 * the achieved GFLOP/s of its useful work (2 flops per multiply-add; backward counted as twice
 * the forward), beside the sgemm rate on the MLP's first matmul ((B·T) × H × C) measured in
 * the same run. Run it on an idle machine, or report the load beside the figures. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "rng.h"
#include "rv.h"

enum { B = 32, TS = 64, TT = 16, C = 256, NH = 4, H = 1024, V = 8000, MAXREPS = 101 };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t, int n) {
    qsort(t, n, sizeof *t, cmp_double);
    return t[n / 2];
}

/* n floats, N(0, scale²), or zeros when scale is 0. Exits on allocation failure. */
static float *buffer(size_t n, float scale) {
    static uint64_t stream;
    float *p = calloc(n, sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_layers: out of memory (%zu floats)\n", n);
        exit(1);
    }
    if (scale != 0) trn_rng_fill_normal(p, n, scale, 7, ++stream);
    return p;
}

static float *ones(size_t n) {
    float *p = buffer(n, 0);
    for (size_t i = 0; i < n; i++) p[i] = 1;
    return p;
}

static trn_attn_w attn_params(float scale) {
    trn_attn_w w = {buffer((size_t)C * C, scale), buffer((size_t)C * C, scale),
                    buffer((size_t)C * C, scale), buffer((size_t)C * C, scale)};
    return w;
}

static trn_block_w block_params(int grads) {
    float s = grads ? 0 : 0.06f;
    trn_block_w w = {0};
    w.ln_attn = grads ? buffer(C, 0) : ones(C);
    w.ln_cross = grads ? buffer(C, 0) : ones(C);
    w.attn = attn_params(s);
    w.cross = attn_params(s);
    w.ln_mlp = grads ? buffer(C, 0) : ones(C);
    trn_mlp_w m = {buffer((size_t)H * C, s), buffer((size_t)H * C, s),
                   buffer((size_t)C * H, s / 2)};
    w.mlp = m;
    return w;
}

/* Multiply-adds of one block's forward pass. */
static double block_macs(const trn_block_dims *d) {
    double tok = (double)d->B * d->T;
    double m = tok * (4.0 * C * C + 3.0 * C * H) + 2.0 * tok * d->T * C;
    if (d->cross) m += tok * 2.0 * C * C + 2.0 * d->B * d->S * C * C + 2.0 * tok * d->S * C;
    return m;
}

static void bench_block(const char *name, int T, int S, int causal, int cross, int reps) {
    trn_block_dims d = {B, T, S, C, NH, H, causal, cross, 0};
    char err[RV_ERR_MAX];
    if (trn_block_dims_check(&d, err)) {
        fprintf(stderr, "bench_layers: %s\n", err);
        exit(1);
    }
    trn_block_w w = block_params(0), dw = block_params(1);
    size_t BTC = (size_t)B * T * C, BSC = (size_t)B * S * C;
    float *x = buffer(BTC, 1), *ctx = buffer(BSC, 1), *out = buffer(BTC, 0);
    float *dout = buffer(BTC, 1), *dx = buffer(BTC, 0), *dctx = buffer(BSC, 0);
    float *acts = buffer(trn_block_acts_size(&d), 0),
          *scratch = buffer(trn_block_scratch_size(&d), 0);
    uint8_t *xmask = malloc((size_t)B * T), *ctxmask = malloc((size_t)B * S);
    for (int i = 0; i < B * T; i++) xmask[i] = i % T < T - i % 5; /* a few padded tokens */
    for (int i = 0; i < B * S; i++) ctxmask[i] = i % S < S - i % 7;
    trn_block_acts a;
    trn_block_acts_carve(&a, acts, &d);
    double tf[MAXREPS] = {0}, tb[MAXREPS] = {0};
    for (int r = -2; r < reps; r++) {
        double t0 = rv_now();
        trn_block_forward(out, &a, x, NULL, xmask, cross ? ctx : NULL, ctxmask, &w, &d);
        double t1 = rv_now();
        trn_block_backward(dx, NULL, cross ? dctx : NULL, &dw, dout, &a, x, NULL,
                           cross ? ctx : NULL, &w, scratch, &d);
        double t2 = rv_now();
        if (r >= 0) tf[r] = t1 - t0, tb[r] = t2 - t1;
    }
    double f = median(tf, reps), b = median(tb, reps), flops = 2 * 3 * block_macs(&d);
    printf("%-34s fwd %7.2f ms  bwd %7.2f ms  %6.1f GFLOP/s\n", name, f * 1e3, b * 1e3,
           flops / (f + b) / 1e9);
}

/* Output projection to the vocabulary and the token cross-entropy (the generator's head). */
static void bench_head(int reps) {
    int N = B * TT;
    float *x = buffer((size_t)N * C, 1), *w = buffer((size_t)V * C, 0.06f);
    float *logits = buffer((size_t)N * V, 0), *dlogits = buffer((size_t)N * V, 0);
    float *dx = buffer((size_t)N * C, 0), *dw = buffer((size_t)V * C, 0), lse[B * TT], loss;
    int32_t targets[B * TT];
    for (int n = 0; n < N; n++) targets[n] = n % 5 == 4 ? -100 : (n * 131) % V;
    double tf[MAXREPS] = {0}, tb[MAXREPS] = {0}, tce[MAXREPS] = {0};
    char err[RV_ERR_MAX];
    for (int r = -2; r < reps; r++) {
        double t0 = rv_now();
        trn_linear_forward(logits, x, w, N, C, V);
        double t1 = rv_now();
        if (trn_crossentropy_forward(&loss, lse, logits, targets, -100, 0.1f, N, V, err)) {
            fprintf(stderr, "bench_layers: %s\n", err);
            exit(1);
        }
        memset(dlogits, 0, (size_t)N * V * sizeof(float));
        trn_crossentropy_backward(dlogits, 1, logits, lse, targets, -100, 0.1f, N, V);
        double t2 = rv_now();
        trn_linear_backward(dx, dw, dlogits, x, w, N, C, V);
        double t3 = rv_now();
        if (r >= 0) tf[r] = t1 - t0, tce[r] = t2 - t1, tb[r] = t3 - t2;
    }
    double f = median(tf, reps), ce = median(tce, reps), b = median(tb, reps);
    printf("%-34s fwd %7.2f ms  bwd %7.2f ms  %6.1f GFLOP/s (matmuls)\n",
           "head: linear 512x256 -> 8000", f * 1e3, b * 1e3, 2.0 * 3 * N * C * V / (f + b) / 1e9);
    printf("%-34s fwd+bwd %7.2f ms  (%.1f ns per logit)\n", "cross-entropy, smoothing 0.1",
           ce * 1e3, ce / ((double)N * V) * 1e9);
}

static void bench_sgemm(int reps) {
    int M = B * TS, N = H, K = C;
    float *a = buffer((size_t)M * K, 1), *b = buffer((size_t)N * K, 1),
          *c = buffer((size_t)M * N, 0);
    double t[MAXREPS] = {0};
    for (int r = -2; r < reps; r++) {
        double t0 = rv_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, 0, c, N);
        if (r >= 0) t[r] = rv_now() - t0;
    }
    double m = median(t, reps);
    printf("%-34s %7.2f ms  %6.1f GFLOP/s (reference)\n", "sgemm 2048x1024x256", m * 1e3,
           2.0 * M * N * K / m / 1e9);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 10;
    if (reps < 1 || reps > MAXREPS) {
        fprintf(stderr, "usage: bench_layers [reps 1..%d]\n", MAXREPS);
        return 2;
    }
    const char *ob = getenv("OPENBLAS_NUM_THREADS"), *omp = getenv("OMP_NUM_THREADS");
    printf("bench_layers: median of %d runs; OPENBLAS_NUM_THREADS=%s OMP_NUM_THREADS=%s\n", reps,
           ob ? ob : "(unset)", omp ? omp : "(unset)");
    bench_sgemm(reps);
    bench_block("encoder block B=32 T=64", TS, TS, 0, 0, reps);
    bench_block("decoder block B=32 T=16 S=64", TT, TS, 1, 1, reps);
    bench_head(reps);
    bench_sgemm(reps);
    return 0;
}
