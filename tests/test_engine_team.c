/* tests/test_engine_team.c — the engine's work on its OpenMP team (training/layer_impl.h,
 * threads.h). Split matmuls, cut along rows or columns with each transpose the layers use and
 * cuts that do not fall evenly, agree with a double-precision product. RMSNorm and the
 * cross-entropy give the same bits at 1, 2 and 3 threads. Encoder and decoder blocks give the
 * same bits on every run at a fixed thread count, and agree with one thread to rounding.
 * AdamW, the gradient norm and gradient zeroing on the team match one thread bit for bit. */
#include "check.h"
#include "layers.h"
#include "optim.h"
#include "params.h"
#include "rng.h"
#include "rv.h"
#include "threads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEED 77

static void use_threads(int n) {
    char err[RV_ERR_MAX];
    trn_threads_info info;
    REQUIRE(trn_threads_setup(n, &info, err) == 0);
}

static float *randn(size_t n, uint64_t stream) {
    float *x = malloc(n * sizeof *x);
    REQUIRE(x != NULL);
    trn_rng_fill_normal(x, n, 1, SEED, stream);
    return x;
}

/* Largest |x - ref| over the scale sum |a||b| of each element, for C = op(A)·op(B) in double. */
static double gemm_error(const float *c, int ta, int tb, int M, int N, int K, const float *A,
                         int lda, const float *B, int ldb, const float *c0) {
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = c0 ? c0[(size_t)m * N + n] : 0, mag = fabs(s);
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k];
                double b = tb ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
                s += a * b;
                mag += fabs(a * b);
            }
            double e = fabs(c[(size_t)m * N + n] - s) / (mag + 1e-30);
            if (e > worst) worst = e;
        }
    return worst;
}

/* linear_forward (A·Bᵀ), linear_backward's dinp (A·B, accumulating) and dw (Aᵀ·B,
 * accumulating): with N rows, C inputs and OC outputs each product is above the split size,
 * and the shapes below cut every one along rows or columns with remainders. */
static void check_split_gemm(int N, int C, int OC, int threads) {
    float *inp = randn((size_t)N * C, 1), *w = randn((size_t)OC * C, 2);
    float *dout = randn((size_t)N * OC, 3), *out = malloc((size_t)N * OC * sizeof(float));
    float *dinp = randn((size_t)N * C, 4), *dw = randn((size_t)OC * C, 5);
    float *dinp0 = malloc((size_t)N * C * sizeof(float)),
          *dw0 = malloc((size_t)OC * C * sizeof(float));
    REQUIRE(out && dinp0 && dw0);
    memcpy(dinp0, dinp, (size_t)N * C * sizeof(float));
    memcpy(dw0, dw, (size_t)OC * C * sizeof(float));
    use_threads(threads);
    trn_linear_forward(out, inp, w, N, C, OC);
    trn_linear_backward(dinp, dw, dout, inp, w, N, C, OC);
    double e1 = gemm_error(out, 0, 1, N, OC, C, inp, C, w, C, NULL);
    double e2 = gemm_error(dinp, 0, 0, N, C, OC, dout, OC, w, C, dinp0);
    double e3 = gemm_error(dw, 1, 0, OC, C, N, dout, OC, inp, C, dw0);
    CHECKF(e1 < 1e-5 && e2 < 1e-5 && e3 < 1e-5,
           "N %d C %d OC %d, %d threads: relative errors %.3g (forward), %.3g (dinp), %.3g (dw)", N,
           C, OC, threads, e1, e2, e3);
    free(inp), free(w), free(dout), free(out), free(dinp), free(dw), free(dinp0), free(dw0);
}

/* RMSNorm forward and backward and the cross-entropy at `threads`, outputs appended to out. */
static void row_layers(float *out, int threads) {
    enum { N = 400, C = 200, NV = 40, V = 2000 };
    use_threads(threads);
    float *x = randn(N * C, 10), *g = randn(C, 11), *dy = randn(N * C, 12);
    float *logits = randn(NV * V, 13);
    int32_t targets[NV];
    for (int n = 0; n < NV; n++) targets[n] = n % 5 == 0 ? -100 : (n * 37) % V;
    float *y = out, *rstd = y + N * C, *dx = rstd + N, *dg = dx + N * C, *loss = dg + C;
    float *lse = loss + 1, *dlogits = lse + NV;
    memset(dx, 0, (N * C + C) * sizeof(float));
    memset(dlogits, 0, (size_t)NV * V * sizeof(float));
    trn_rmsnorm_forward(y, rstd, x, g, N, C);
    trn_rmsnorm_backward(dx, dg, dy, x, g, rstd, N, C);
    char err[RV_ERR_MAX];
    CHECKF(trn_crossentropy_forward(loss, lse, logits, targets, -100, 0.1f, NV, V, err) == 0, "%s",
           err);
    trn_crossentropy_backward(dlogits, 1, logits, lse, targets, -100, 0.1f, NV, V);
    free(x), free(g), free(dy), free(logits);
}

static void check_row_layers(void) {
    size_t n = 400 * 200 * 2 + 400 + 200 + 1 + 40 + 40 * 2000;
    float *one = malloc(n * sizeof(float)), *many = malloc(n * sizeof(float));
    REQUIRE(one && many);
    row_layers(one, 1);
    for (int t = 2; t <= 3; t++) {
        row_layers(many, t);
        CHECKF(memcmp(one, many, n * sizeof(float)) == 0,
               "RMSNorm / cross-entropy at %d threads differ from 1 thread", t);
    }
    free(one), free(many);
}

/* One block's forward and backward: output, dx, dctx and every weight gradient, in out. */
static size_t block_run(float *out, const trn_block_dims *d, int threads) {
    int B = d->B, T = d->T, S = d->S, C = d->C, H = d->H;
    size_t BTC = (size_t)B * T * C, BSC = (size_t)B * S * C;
    size_t nw = 3 * (size_t)C + 8 * (size_t)C * C + 3 * (size_t)H * C;
    use_threads(threads);
    float *w = randn(nw, 20), *x = randn(BTC, 21), *ctx = randn(BSC, 22), *dout = randn(BTC, 23);
    float *omega = randn((size_t)B * T, 24);
    float *acts = malloc(trn_block_acts_size(d) * sizeof(float));
    float *scratch = malloc(trn_block_scratch_size(d) * sizeof(float));
    REQUIRE(acts && scratch);
    for (size_t i = 0; i < nw; i++) w[i] *= 0.1f;
    uint8_t xmask[4096], ctxmask[4096];
    for (int i = 0; i < B * T; i++) xmask[i] = i % T < T - (i / T) % 5;
    for (int i = 0; i < B * S; i++) ctxmask[i] = i % S < S - 2 * ((i / S) % 4);
    float *y = out, *dx = y + BTC, *dctx = dx + BTC, *dw = dctx + BSC, *domega = dw + nw;
    memset(dx, 0, (BTC + BSC + nw + (size_t)B * T) * sizeof(float));
    trn_block_w bw, bdw;
    float *cur[2] = {w, dw};
    trn_block_w *v[2] = {&bw, &bdw};
    for (int k = 0; k < 2; k++) {
        float *p = cur[k];
        trn_block_w *b = v[k];
        memset(b, 0, sizeof *b);
        b->ln_attn = p, p += C;
        b->ln_cross = p, p += C;
        b->ln_mlp = p, p += C;
        trn_attn_w a = {p, p + C * C, p + 2 * C * C, p + 3 * C * C},
                   c = {p + 4 * C * C, p + 5 * C * C, p + 6 * C * C, p + 7 * C * C};
        b->attn = a, b->cross = c, p += 8 * C * C;
        trn_mlp_w m = {p, p + H * C, p + 2 * H * C};
        b->mlp = m;
    }
    for (int i = 0; i < C; i++) w[i] += 1, w[C + i] += 1, w[2 * C + i] += 1; /* norm scales */
    trn_block_acts a;
    trn_block_acts_carve(&a, acts, d);
    const float *om = d->cross ? NULL : omega; /* the encoder case is a fusion layer (ω) */
    trn_block_forward(y, &a, x, om, xmask, d->cross ? ctx : NULL, d->cross ? ctxmask : NULL, &bw,
                      d);
    trn_block_backward(dx, om ? domega : NULL, d->cross ? dctx : NULL, &bdw, dout, &a, x, om,
                       d->cross ? ctx : NULL, &bw, scratch, d);
    free(w), free(x), free(ctx), free(dout), free(omega), free(acts), free(scratch);
    return 2 * BTC + BSC + nw + (size_t)B * T;
}

static void check_block(const trn_block_dims *d, const char *name) {
    size_t cap = 2 * (size_t)d->B * d->T * d->C + (size_t)d->B * d->S * d->C + 3 * (size_t)d->C +
                 8 * (size_t)d->C * d->C + 3 * (size_t)d->H * d->C + (size_t)d->B * d->T;
    float *one = malloc(cap * sizeof(float)), *a = malloc(cap * sizeof(float)),
          *b = malloc(cap * sizeof(float));
    REQUIRE(one && a && b);
    size_t n = block_run(one, d, 1);
    for (int t = 2; t <= 3; t++) {
        block_run(a, d, t);
        block_run(b, d, t);
        CHECKF(memcmp(a, b, n * sizeof(float)) == 0, "%s block: two runs at %d threads differ",
               name, t);
        double num = 0, den = 0;
        for (size_t i = 0; i < n; i++) {
            num = fmax(num, fabs((double)a[i] - one[i]));
            den = fmax(den, fabs((double)one[i]));
        }
        CHECKF(num <= 1e-5 * den, "%s block: %d threads against 1, max difference %.3g of %.3g",
               name, t, num, den);
    }
    free(one), free(a), free(b);
}

/* AdamW, the gradient norm and zeroing on the team against one thread. Tensor sizes are not
 * multiples of the thread count, and one tensor is frozen. */
static void optim_run(trn_params *p, double *norm, int threads) {
    static const trn_tensor_spec specs[] = {{"a", 2, {300, 301}, 1.0f, 1},
                                            {"b", 1, {77}, 0.5f, 0},
                                            {"frozen", 1, {50000}, 0.0f, 1},
                                            {"c", 2, {257, 519}, 1.0f, 1}};
    char err[RV_ERR_MAX];
    REQUIRE(trn_params_init(p, specs, 4, err) == 0);
    use_threads(threads);
    trn_rng_fill_normal(p->params, p->total, 0.02f, SEED, 30);
    trn_adamw_config c;
    trn_adamw_config_default(&c);
    c.sched.lr = 1e-2f, c.sched.total_steps = 10;
    for (long step = 0; step < 3; step++) {
        trn_rng_fill_normal(p->grads, p->total, 1.0f, SEED, 31 + (uint64_t)step);
        CHECKF(trn_grad_norm(p, norm, err) == 0, "%s", err);
        CHECKF(trn_adamw_step(p, &c, step, NULL, err) == 0, "%s", err);
    }
    trn_params_zero_grad(p);
    for (size_t i = 0; i < p->total; i++)
        if (p->grads[i] != 0) {
            CHECKF(0, "gradient %zu not zeroed at %d threads", i, threads);
            break;
        }
}

static void check_optim(void) {
    trn_params one, many;
    double n1, n2;
    optim_run(&one, &n1, 1);
    for (int t = 2; t <= 3; t++) {
        optim_run(&many, &n2, t);
        size_t bytes = one.total * sizeof(float);
        CHECKF(memcmp(&n1, &n2, sizeof n1) == 0, "gradient norm %.17g at 1 thread, %.17g at %d", n1,
               n2, t);
        CHECKF(memcmp(one.params, many.params, bytes) == 0 && memcmp(one.m, many.m, bytes) == 0 &&
                   memcmp(one.v, many.v, bytes) == 0,
               "AdamW at %d threads differs from 1 thread", t);
        trn_params_free(&many);
    }
    trn_params_free(&one);
}

int main(void) {
    unsetenv("REVEAL_THREADS");
    for (int t = 2; t <= 3; t++) {
        check_split_gemm(1000, 64, 77, t); /* all three cut along rows, dw with Aᵀ */
        check_split_gemm(60, 80, 1030, t); /* forward and dinp along columns, dw along rows */
        check_split_gemm(1000, 96, 70, t); /* dw along columns with Aᵀ */
    }
    check_row_layers();
    trn_block_dims enc = {8, 48, 48, 64, 4, 256, 0, 0, 0}, dec = {8, 48, 40, 64, 4, 256, 1, 1, 0};
    check_block(&enc, "encoder");
    check_block(&dec, "decoder");
    check_optim();
    return check_report("engine_team");
}
