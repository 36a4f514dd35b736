/* bench/train_step/bench_train_step.c — one training step (forward, backward, AdamW with
 * clipping) of the reference encoder-decoder transformer of issue 3, built from the engine's
 * layers as they are, timed; beside it, OpenBLAS sgemm alone on the step's own matmul shapes.
 *
 *   OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 bench_train_step [--steps N] [--warmup W]
 *   bench_train_step --dump FILE     (one step from the initial weights, for torch_step.py)
 *
 * The model (T5 v1.1 style, docs/train_step.md): shared token embedding (V, C) plus learned
 * absolute positions for each stack; LE pre-norm encoder blocks (self-attention with the source
 * padding mask, gated-GELU MLP) and a final RMSNorm; LD decoder blocks (causal self-attention
 * with the target padding mask, cross-attention to the encoder output with the source mask, MLP)
 * and a final RMSNorm; logits through the tied embedding; token cross-entropy (label smoothing
 * 0.1) over the real target tokens; AdamW (decay on matrices, not on norm scales), global-norm
 * clipping at 1. No biases, no dropout. Tokens are drawn from a fixed seed; a quarter of the
 * source rows and two thirds of the target rows carry padding.
 *
 * The matmul FLOPs are counted from the same list of sgemm calls the layers make (gemm_plan),
 * 2 per multiply-add, masked attention scores included (both engines compute them). That list
 * is also what the sgemm reference runs: every distinct shape, with its transposes and strides,
 * timed alone, times its count — the step's time if it did nothing but its matmuls at the rate
 * OpenBLAS reaches on them alone. Every figure is a median over the timed steps.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "layers.h"
#include "optim.h"
#include "params.h"
#include "rng.h"
#include "rv.h"
#include "threads.h"

enum {
    B = 32,   /* batch */
    TS = 64,  /* source tokens */
    TT = 16,  /* target tokens */
    C = 256,  /* width */
    NH = 4,   /* heads */
    H = 1024, /* MLP hidden width */
    V = 8000, /* vocabulary (tied output embedding) */
    LE = 4,   /* encoder blocks */
    LD = 2,   /* decoder blocks */
    PAD = 0,  /* padding token */
    BOS = 1,  /* first decoder input */
    IGNORE = -100,
    MAX_STEPS = 1000,
    MAX_SHAPES = 64,
};

#define SEED      1234
#define SMOOTHING 0.1f

/* ---- the model: tensor table, weight views, activations ---- */

typedef struct {
    trn_params p;
    float *wte, *wpe_enc, *wpe_dec, *ln_enc, *ln_dec;      // weights
    float *dwte, *dwpe_enc, *dwpe_dec, *dln_enc, *dln_dec; // their gradients
    trn_block_w enc[LE], denc[LE], dec[LD], ddec[LD];      // block weights and gradients
    trn_block_dims enc_dims, dec_dims;                     //
    int32_t src[B * TS], tgt_in[B * TT], targets[B * TT];  // tokens
    uint8_t src_mask[B * TS], tgt_mask[B * TT];            // 1 = real token
    float *enc_x[LE + 1];                                  // (B, TS, C) residual stream
    float *dec_x[LD + 1];                                  // (B, TT, C)
    trn_block_acts enc_a[LE], dec_a[LD];                   //
    float *enc_out, *enc_rstd, *dec_out, *dec_rstd;        // (B, TS|TT, C), (B, TS|TT)
    float *logits, *lse;                                   // (B·TT, V), (B·TT)
    float *dlogits;                                        // (B·TT, V)
    float *dres_a, *dres_b;                                // (B, TS, C) residual gradients
    float *denc_out, *ddec_out;                            // (B, TS, C), (B, TT, C)
    float *scratch;                                        // block scratch
    float *arena;                                          // every buffer above
    float loss;
} model;

/* Appends a tensor to the spec table; names live in a static pool (the table copies them). */
static void spec_add(trn_tensor_spec *s, int *n, const char *name, int rows, int cols) {
    static char pool[256][64];
    snprintf(pool[*n], sizeof pool[*n], "%s", name);
    trn_tensor_spec t = {pool[*n], cols ? 2 : 1, {rows, cols}, 1.0f, cols ? 1 : 0};
    s[(*n)++] = t;
}

/* The table, in the order torch_step.py builds its parameters. */
static int model_specs(trn_tensor_spec *s) {
    int n = 0;
    char name[64];
    spec_add(s, &n, "wte", V, C);
    spec_add(s, &n, "wpe_enc", TS, C);
    spec_add(s, &n, "wpe_dec", TT, C);
    for (int l = 0; l < LE + LD; l++) {
        int dec = l >= LE;
        const char *stack = dec ? "dec" : "enc";
        int i = dec ? l - LE : l;
#define ADD(field, r, c)                                                                           \
    do {                                                                                           \
        snprintf(name, sizeof name, "%s.%d.%s", stack, i, field);                                  \
        spec_add(s, &n, name, r, c);                                                               \
    } while (0)
        ADD("ln_attn", C, 0);
        ADD("attn.wq", C, C);
        ADD("attn.wk", C, C);
        ADD("attn.wv", C, C);
        ADD("attn.wo", C, C);
        if (dec) {
            ADD("ln_cross", C, 0);
            ADD("cross.wq", C, C);
            ADD("cross.wk", C, C);
            ADD("cross.wv", C, C);
            ADD("cross.wo", C, C);
        }
        ADD("ln_mlp", C, 0);
        ADD("mlp.w0", H, C);
        ADD("mlp.w1", H, C);
        ADD("mlp.w2", C, H);
#undef ADD
    }
    spec_add(s, &n, "ln_enc", C, 0);
    spec_add(s, &n, "ln_dec", C, 0);
    return n;
}

/* Sets w and dw to the parameter and gradient slices of the tensors from index *i on. */
static void attn_views(trn_attn_w *w, trn_attn_w *dw, const trn_params *p, int *i) {
    float **wf[4] = {&w->wq, &w->wk, &w->wv, &w->wo},
          **gf[4] = {&dw->wq, &dw->wk, &dw->wv, &dw->wo};
    for (int k = 0; k < 4; k++, (*i)++) {
        trn_view v = trn_params_at(p, *i);
        *wf[k] = v.w;
        *gf[k] = v.g;
    }
}

static void block_views(trn_block_w *w, trn_block_w *dw, const trn_params *p, int *i, int cross) {
    memset(w, 0, sizeof *w);
    memset(dw, 0, sizeof *dw);
    trn_view v = trn_params_at(p, (*i)++);
    w->ln_attn = v.w, dw->ln_attn = v.g;
    attn_views(&w->attn, &dw->attn, p, i);
    if (cross) {
        v = trn_params_at(p, (*i)++);
        w->ln_cross = v.w, dw->ln_cross = v.g;
        attn_views(&w->cross, &dw->cross, p, i);
    }
    v = trn_params_at(p, (*i)++);
    w->ln_mlp = v.w, dw->ln_mlp = v.g;
    float **wf[3] = {&w->mlp.w0, &w->mlp.w1, &w->mlp.w2};
    float **gf[3] = {&dw->mlp.w0, &dw->mlp.w1, &dw->mlp.w2};
    for (int k = 0; k < 3; k++, (*i)++) {
        v = trn_params_at(p, *i);
        *wf[k] = v.w;
        *gf[k] = v.g;
    }
}

/* Deterministic initialisation: matrices N(0, 0.02²) (the MLP's output and the attention
 * output 0.02/sqrt(2·layers), GPT-2 style), norm scales 1. */
static void model_init_weights(model *m) {
    const trn_params *p = &m->p;
    for (int i = 0; i < p->n; i++) {
        trn_view v = trn_params_at(p, i);
        if (v.ndim == 1) {
            for (size_t k = 0; k < v.numel; k++) v.w[k] = 1;
            continue;
        }
        int out_proj = strstr(v.name, ".wo") || strstr(v.name, ".w2");
        float scale = out_proj ? 0.02f / 3.4641016f : 0.02f; /* sqrt(2 · 6 blocks) */
        trn_rng_fill_normal(v.w, v.numel, scale, SEED, (uint64_t)i);
    }
}

/* Random tokens in [3, V); source row b has 8·(b mod 4) padded tokens at its end, target row b
 * 3·(b mod 3). Decoder input = BOS then the target shifted right; padded targets are ignored. */
static void model_init_data(model *m) {
    for (int b = 0; b < B; b++) {
        int src_len = TS - 8 * (b % 4), tgt_len = TT - 3 * (b % 3);
        for (int t = 0; t < TS; t++) {
            int real = t < src_len;
            m->src_mask[b * TS + t] = (uint8_t)real;
            uint64_t r = trn_rng_u64(SEED, 1000, (uint64_t)(b * TS + t));
            m->src[b * TS + t] = real ? 3 + (int32_t)(r % (V - 3)) : PAD;
        }
        for (int t = 0; t < TT; t++) {
            int real = t < tgt_len;
            uint64_t r = trn_rng_u64(SEED, 1001, (uint64_t)(b * TT + t));
            m->targets[b * TT + t] = real ? 3 + (int32_t)(r % (V - 3)) : IGNORE;
            m->tgt_mask[b * TT + t] = (uint8_t)real;
        }
        for (int t = 0; t < TT; t++) {
            int32_t prev = t == 0 ? BOS : m->targets[b * TT + t - 1];
            m->tgt_in[b * TT + t] = m->tgt_mask[b * TT + t] ? prev : PAD;
        }
    }
}

static int model_build(model *m, char *err) {
    trn_tensor_spec specs[256];
    int n = model_specs(specs);
    memset(m, 0, sizeof *m);
    if (trn_params_init(&m->p, specs, n, err)) return rv_fail_wrap(err, "reference model");
    const trn_params *p = &m->p;
    int i = 0;
    trn_view v;
    float **wf[3] = {&m->wte, &m->wpe_enc, &m->wpe_dec},
          **gf[3] = {&m->dwte, &m->dwpe_enc, &m->dwpe_dec};
    for (; i < 3; i++) {
        v = trn_params_at(p, i);
        *wf[i] = v.w, *gf[i] = v.g;
    }
    for (int l = 0; l < LE; l++) block_views(&m->enc[l], &m->denc[l], p, &i, 0);
    for (int l = 0; l < LD; l++) block_views(&m->dec[l], &m->ddec[l], p, &i, 1);
    v = trn_params_at(p, i++);
    m->ln_enc = v.w, m->dln_enc = v.g;
    v = trn_params_at(p, i++);
    m->ln_dec = v.w, m->dln_dec = v.g;

    trn_block_dims ed = {B, TS, TS, C, NH, H, 0, 0, 0}, dd = {B, TT, TS, C, NH, H, 1, 1, 0};
    if (trn_block_dims_check(&ed, err) || trn_block_dims_check(&dd, err)) return -1;
    m->enc_dims = ed, m->dec_dims = dd;
    size_t es = (size_t)B * TS * C, ds = (size_t)B * TT * C, nv = (size_t)B * TT * V;
    size_t ea = trn_block_acts_size(&ed), da = trn_block_acts_size(&dd);
    size_t scratch = trn_block_scratch_size(&ed);
    if (trn_block_scratch_size(&dd) > scratch) scratch = trn_block_scratch_size(&dd);
    size_t total = (LE + 1) * es + (LD + 1) * ds + LE * ea + LD * da + 4 * es + 2 * ds + B * TS +
                   2 * B * TT + 2 * nv + scratch;
    m->arena = calloc(total, sizeof(float));
    if (!m->arena) return rv_fail(err, "out of memory for %zu activation floats", total);
    float *cur = m->arena;
#define TAKE(n) (cur += (n), cur - (n))
    for (int l = 0; l <= LE; l++) m->enc_x[l] = TAKE(es);
    for (int l = 0; l <= LD; l++) m->dec_x[l] = TAKE(ds);
    for (int l = 0; l < LE; l++) trn_block_acts_carve(&m->enc_a[l], TAKE(ea), &ed);
    for (int l = 0; l < LD; l++) trn_block_acts_carve(&m->dec_a[l], TAKE(da), &dd);
    m->enc_out = TAKE(es);
    m->enc_rstd = TAKE((size_t)B * TS);
    m->dec_out = TAKE(ds);
    m->dec_rstd = TAKE((size_t)B * TT);
    m->logits = TAKE(nv);
    m->dlogits = TAKE(nv);
    m->lse = TAKE((size_t)B * TT);
    m->dres_a = TAKE(es);
    m->dres_b = TAKE(es);
    m->denc_out = TAKE(es);
    m->ddec_out = TAKE(ds);
    m->scratch = TAKE(scratch);
#undef TAKE
    model_init_weights(m);
    model_init_data(m);
    return 0;
}

static void model_free(model *m) {
    trn_params_free(&m->p);
    free(m->arena);
}

static int model_forward(model *m, char *err) {
    int NS = B * TS, NT = B * TT;
    if (trn_embedding_forward(m->enc_x[0], m->src, m->wte, NS, V, C, err)) return -1;
    trn_positions_forward(m->enc_x[0], m->wpe_enc, B, TS, C);
    for (int l = 0; l < LE; l++)
        trn_block_forward(m->enc_x[l + 1], &m->enc_a[l], m->enc_x[l], NULL, m->src_mask, NULL, NULL,
                          &m->enc[l], &m->enc_dims);
    trn_rmsnorm_forward(m->enc_out, m->enc_rstd, m->enc_x[LE], m->ln_enc, NS, C);
    if (trn_embedding_forward(m->dec_x[0], m->tgt_in, m->wte, NT, V, C, err)) return -1;
    trn_positions_forward(m->dec_x[0], m->wpe_dec, B, TT, C);
    for (int l = 0; l < LD; l++)
        trn_block_forward(m->dec_x[l + 1], &m->dec_a[l], m->dec_x[l], NULL, m->tgt_mask, m->enc_out,
                          m->src_mask, &m->dec[l], &m->dec_dims);
    trn_rmsnorm_forward(m->dec_out, m->dec_rstd, m->dec_x[LD], m->ln_dec, NT, C);
    trn_linear_forward(m->logits, m->dec_out, m->wte, NT, C, V);
    return trn_crossentropy_forward(&m->loss, m->lse, m->logits, m->targets, IGNORE, SMOOTHING, NT,
                                    V, err);
}

static void model_backward(model *m) {
    int NS = B * TS, NT = B * TT;
    size_t es = (size_t)NS * C, ds = (size_t)NT * C;
    trn_params_zero_grad(&m->p);
    memset(m->dlogits, 0, (size_t)NT * V * sizeof(float));
    trn_crossentropy_backward(m->dlogits, 1, m->logits, m->lse, m->targets, IGNORE, SMOOTHING, NT,
                              V);
    memset(m->ddec_out, 0, ds * sizeof(float));
    trn_linear_backward(m->ddec_out, m->dwte, m->dlogits, m->dec_out, m->wte, NT, C, V);
    float *dcur = m->dres_a, *dprev = m->dres_b;
    memset(dcur, 0, ds * sizeof(float));
    trn_rmsnorm_backward(dcur, m->dln_dec, m->ddec_out, m->dec_x[LD], m->ln_dec, m->dec_rstd, NT,
                         C);
    memset(m->denc_out, 0, es * sizeof(float));
    for (int l = LD - 1; l >= 0; l--) {
        memset(dprev, 0, ds * sizeof(float));
        trn_block_backward(dprev, NULL, m->denc_out, &m->ddec[l], dcur, &m->dec_a[l], m->dec_x[l],
                           NULL, m->enc_out, &m->dec[l], m->scratch, &m->dec_dims);
        float *t = dcur;
        dcur = dprev, dprev = t;
    }
    trn_embedding_backward(m->dwte, dcur, m->tgt_in, NT, C);
    trn_positions_backward(m->dwpe_dec, dcur, B, TT, C);
    memset(dcur, 0, es * sizeof(float));
    trn_rmsnorm_backward(dcur, m->dln_enc, m->denc_out, m->enc_x[LE], m->ln_enc, m->enc_rstd, NS,
                         C);
    for (int l = LE - 1; l >= 0; l--) {
        memset(dprev, 0, es * sizeof(float));
        trn_block_backward(dprev, NULL, NULL, &m->denc[l], dcur, &m->enc_a[l], m->enc_x[l], NULL,
                           NULL, &m->enc[l], m->scratch, &m->enc_dims);
        float *t = dcur;
        dcur = dprev, dprev = t;
    }
    trn_embedding_backward(m->dwte, dcur, m->src, NS, C);
    trn_positions_backward(m->dwpe_enc, dcur, B, TS, C);
}

static void adamw_config(trn_adamw_config *c) {
    trn_adamw_config_default(c);
    c->sched.lr = 1e-3f;
    c->sched.min_lr = 1e-3f;
    c->sched.decay = TRN_DECAY_CONSTANT;
}

/* ---- the step's sgemm calls, for the FLOP count and the sgemm reference ---- */

typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc;
    double count;
} gemm_shape;

typedef struct {
    gemm_shape s[MAX_SHAPES];
    int n;
} gemm_plan;

/* Adds `count` calls of C (M, N) = op(A)·op(B) with inner dimension K; lda/ldb/ldc 0 mean
 * packed rows. Repeated shapes are merged. */
static void plan_add(gemm_plan *pl, double count, int ta, int tb, int M, int N, int K, int lda,
                     int ldb, int ldc) {
    gemm_shape g = {
        ta, tb, M, N, K, lda ? lda : (ta ? M : K), ldb ? ldb : (tb ? K : N), ldc ? ldc : N, count};
    for (int i = 0; i < pl->n; i++) {
        gemm_shape *h = &pl->s[i];
        if (h->ta == g.ta && h->tb == g.tb && h->M == g.M && h->N == g.N && h->K == g.K &&
            h->lda == g.lda && h->ldb == g.ldb && h->ldc == g.ldc) {
            h->count += count;
            return;
        }
    }
    if (pl->n == MAX_SHAPES) {
        fprintf(stderr, "bench_train_step: more than %d distinct sgemm shapes\n", MAX_SHAPES);
        exit(1);
    }
    pl->s[pl->n++] = g;
}

/* The calls of linear_forward + linear_backward (layer_linear.c). */
static void plan_linear(gemm_plan *pl, double n, int N, int Cin, int OC, int dinp) {
    plan_add(pl, n, 0, 1, N, OC, Cin, 0, 0, 0);
    if (dinp) plan_add(pl, n, 0, 0, N, Cin, OC, 0, 0, 0);
    plan_add(pl, n, 1, 0, OC, Cin, N, 0, 0, 0);
}

/* The calls of attention_forward + attention_backward (layer_attention.c): four projections as
 * linears, and per (batch, head) the score and value products on strided head views. */
static void plan_attention(gemm_plan *pl, double n, int T, int S) {
    int HS = C / NH;
    double bh = n * B * NH;
    plan_linear(pl, n, B * T, C, C, 1);        /* Q */
    plan_linear(pl, 2 * n, B * S, C, C, 1);    /* K, V */
    plan_linear(pl, n, B * T, C, C, 1);        /* O */
    plan_add(pl, bh, 0, 1, T, S, HS, C, C, S); /* scores; dP = dY·Vᵀ */
    plan_add(pl, bh, 0, 0, T, HS, S, S, C, C); /* P·V; dQ = dS·K */
    plan_add(pl, bh, 0, 1, T, S, HS, C, C, S);
    plan_add(pl, bh, 1, 0, S, HS, T, S, C, C); /* dV = Pᵀ·dY; dK = dSᵀ·Q */
    plan_add(pl, bh, 0, 0, T, HS, S, S, C, C);
    plan_add(pl, bh, 1, 0, S, HS, T, S, C, C);
}

static void plan_mlp(gemm_plan *pl, double n, int N) {
    plan_linear(pl, 2 * n, N, C, H, 1); /* W0, W1 */
    plan_linear(pl, n, N, H, C, 1);     /* W2 */
}

static void plan_step(gemm_plan *pl) {
    memset(pl, 0, sizeof *pl);
    plan_attention(pl, LE, TS, TS);
    plan_mlp(pl, LE, B * TS);
    plan_attention(pl, LD, TT, TT);
    plan_attention(pl, LD, TT, TS);
    plan_mlp(pl, LD, B * TT);
    plan_linear(pl, 1, B * TT, C, V, 1); /* tied output projection */
}

static double plan_flops(const gemm_plan *pl) {
    double f = 0;
    for (int i = 0; i < pl->n; i++)
        f += pl->s[i].count * 2.0 * pl->s[i].M * pl->s[i].N * pl->s[i].K;
    return f;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *t, int n) {
    double s[MAX_STEPS];
    memcpy(s, t, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/* This process's CPU seconds (all threads). Under the shared machine's load a single-threaded
 * run's CPU time is close to what it would take alone, where its wall time is not. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Times every shape of the plan alone (median of reps after one warm-up) and returns the summed
 * wall time of the step's matmuls at those rates; *cpu_total is the same sum in CPU time, *best
 * and *best_cpu the fastest rates seen (GFLOP/s), by wall and by CPU time. */
static double plan_time(const gemm_plan *pl, int reps, double *cpu_total, double *best,
                        double *best_cpu) {
    size_t maxa = 0, maxb = 0, maxc = 0;
    for (int i = 0; i < pl->n; i++) {
        const gemm_shape *g = &pl->s[i];
        size_t a = (size_t)(g->ta ? g->K : g->M) * g->lda,
               b = (size_t)(g->tb ? g->N : g->K) * g->ldb;
        size_t c = (size_t)g->M * g->ldc;
        maxa = a > maxa ? a : maxa, maxb = b > maxb ? b : maxb, maxc = c > maxc ? c : maxc;
    }
    float *A = malloc(maxa * sizeof(float)), *Bm = malloc(maxb * sizeof(float));
    float *Cm = calloc(maxc, sizeof(float));
    if (!A || !Bm || !Cm) {
        fprintf(stderr, "bench_train_step: out of memory for the sgemm reference\n");
        exit(1);
    }
    trn_rng_fill_normal(A, maxa, 1, SEED, 2000);
    trn_rng_fill_normal(Bm, maxb, 1, SEED, 2001);
    double total = 0;
    *cpu_total = *best = *best_cpu = 0;
    for (int i = 0; i < pl->n; i++) {
        const gemm_shape *g = &pl->s[i];
        /* small shapes are timed in batches so the clock's resolution does not matter */
        double flops = 2.0 * g->M * g->N * g->K;
        int inner = flops < 2e7 ? (int)(2e7 / flops) : 1;
        double t[MAX_STEPS] = {0}, tc[MAX_STEPS] = {0};
        for (int r = -1; r < reps; r++) {
            double t0 = rv_now(), c0 = cpu_now();
            for (int k = 0; k < inner; k++)
                cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans,
                            g->tb ? CblasTrans : CblasNoTrans, g->M, g->N, g->K, 1, A, g->lda, Bm,
                            g->ldb, 1, Cm, g->ldc);
            if (r >= 0) t[r] = (rv_now() - t0) / inner, tc[r] = (cpu_now() - c0) / inner;
        }
        double m = median(t, reps), mc = median(tc, reps), rate = flops / m / 1e9;
        if (rate > *best) *best = rate;
        if (flops / mc / 1e9 > *best_cpu) *best_cpu = flops / mc / 1e9;
        total += g->count * m;
        *cpu_total += g->count * mc;
        printf("  sgemm %c%c M %5d N %5d K %5d  x%6.0f  %8.3f ms each  %6.1f GFLOP/s (cpu %6.1f)  "
               "%4.1f%% of the step's FLOPs\n",
               g->ta ? 'T' : 'N', g->tb ? 'T' : 'N', g->M, g->N, g->K, g->count, m * 1e3, rate,
               flops / mc / 1e9, 100 * g->count * flops / plan_flops(pl));
    }
    free(A);
    free(Bm);
    free(Cm);
    return total;
}

/* ---- the correctness dump for torch_step.py ---- */

typedef struct {
    unsigned char *buf;
    size_t n, cap;
} bytes;

static int put(bytes *o, const void *p, size_t n) {
    if (o->n + n > o->cap) {
        size_t cap = (o->cap + n) * 2;
        unsigned char *b = realloc(o->buf, cap);
        if (!b) return -1;
        o->buf = b, o->cap = cap;
    }
    memcpy(o->buf + o->n, p, n);
    o->n += n;
    return 0;
}

static int put_i32(bytes *o, int32_t x) {
    return put(o, &x, sizeof x);
}

/* Every tensor's elements in table order, without the alignment gaps. */
static int put_tensors(bytes *o, const trn_params *p, const float *buf) {
    for (int i = 0; i < p->n; i++)
        if (put(o, buf + p->offset[i], p->numel[i] * sizeof(float))) return -1;
    return 0;
}

/* Layout (little-endian; torch_step.py's docstring repeats it): "RVTSTEP1"; int32 B, TS, TT, C,
 * NH, H, V, LE, LD, n_tensors; per tensor int32 name length, name, int32 ndim, int32 shape[ndim];
 * int32 src (B·TS), tgt_in (B·TT), targets (B·TT); uint8 src_mask, tgt_mask; float32 lr, beta1,
 * beta2, eps, weight_decay, clip_norm, smoothing; then float32 initial weights, loss, gradients
 * (before clipping), weights after the AdamW update, each in table order. */
static int dump_step(model *m, const char *path, char *err) {
    bytes o = {0};
    int rc = -1;
    trn_adamw_config ac;
    adamw_config(&ac);
    int32_t dims[] = {B, TS, TT, C, NH, H, V, LE, LD, m->p.n};
    float *w0 = malloc(m->p.total * sizeof(float));
    if (!w0) {
        rv_fail(err, "out of memory");
        goto cleanup;
    }
    memcpy(w0, m->p.params, m->p.total * sizeof(float));
    if (model_forward(m, err)) goto cleanup;
    model_backward(m);
    float loss = m->loss;
    int bad = put(&o, "RVTSTEP1", 8);
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) bad |= put_i32(&o, dims[i]);
    for (int i = 0; i < m->p.n; i++) {
        const trn_tensor_spec *s = &m->p.specs[i];
        bad |= put_i32(&o, (int32_t)strlen(s->name)) | put(&o, s->name, strlen(s->name));
        bad |= put_i32(&o, s->ndim);
        for (int d = 0; d < s->ndim; d++) bad |= put_i32(&o, s->shape[d]);
    }
    bad |= put(&o, m->src, sizeof m->src) | put(&o, m->tgt_in, sizeof m->tgt_in);
    bad |= put(&o, m->targets, sizeof m->targets);
    bad |= put(&o, m->src_mask, sizeof m->src_mask) | put(&o, m->tgt_mask, sizeof m->tgt_mask);
    float hyper[] = {ac.sched.lr,     ac.beta1,     ac.beta2, ac.eps,
                     ac.weight_decay, ac.clip_norm, SMOOTHING};
    bad |= put(&o, hyper, sizeof hyper);
    bad |= put_tensors(&o, &m->p, w0) | put(&o, &loss, sizeof loss);
    bad |= put_tensors(&o, &m->p, m->p.grads);
    trn_adamw_stats st;
    if (trn_adamw_step(&m->p, &ac, 0, &st, err)) goto cleanup;
    bad |= put_tensors(&o, &m->p, m->p.params);
    if (bad) {
        rv_fail(err, "out of memory for the dump");
        goto cleanup;
    }
    if (rv_write_file_atomic(path, o.buf, o.n, err)) goto cleanup;
    printf("wrote %s: %zu bytes, loss %.6f, gradient norm %.6f (clip scale %.6f)\n", path, o.n,
           (double)loss, (double)st.grad_norm, (double)st.clip_scale);
    rc = 0;
cleanup:
    free(w0);
    free(o.buf);
    return rc;
}

/* ---- the timed run ---- */

static void loadavg(char *buf, size_t n) {
    FILE *f = fopen("/proc/loadavg", "r");
    buf[0] = 0;
    if (f) {
        if (!fgets(buf, (int)n, f)) buf[0] = 0;
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = 0;
}

static int run(model *m, int steps, int warmup, int ref_reps, int threads, char *err) {
    trn_adamw_config ac;
    adamw_config(&ac);
    gemm_plan pl;
    plan_step(&pl);
    double flops = plan_flops(&pl);
    double tf[MAX_STEPS] = {0}, tb[MAX_STEPS] = {0}, to[MAX_STEPS] = {0}, tall[MAX_STEPS] = {0},
           tcpu[MAX_STEPS] = {0};
    char load[128];
    loadavg(load, sizeof load);
    printf("model: %zu parameters; B %d, source %d, target %d, C %d, NH %d, H %d, V %d, %d+%d "
           "blocks\n",
           m->p.n_elements, B, TS, TT, C, NH, H, V, LE, LD);
    printf("matmul FLOPs per step (forward + backward, counted from the sgemm calls): %.4g\n",
           flops);
    printf("load before: %s\n", load);
    for (int s = -warmup; s < steps; s++) {
        double t0 = rv_now(), c0 = cpu_now();
        if (model_forward(m, err)) return -1;
        double t1 = rv_now();
        model_backward(m);
        double t2 = rv_now();
        if (trn_adamw_step(&m->p, &ac, s + warmup, NULL, err)) return -1;
        double t3 = rv_now(), c3 = cpu_now();
        if (s >= 0)
            tf[s] = t1 - t0, tb[s] = t2 - t1, to[s] = t3 - t2, tall[s] = t3 - t0, tcpu[s] = c3 - c0;
        printf("step %3d%s loss %.4f  %.1f ms (cpu %.1f ms)\n", s + warmup,
               s < 0 ? " (warm-up)" : "", (double)m->loss, (t3 - t0) * 1e3, (c3 - c0) * 1e3);
    }
    double step = median(tall, steps), cpu = median(tcpu, steps);
    loadavg(load, sizeof load);
    printf("load after: %s\n", load);
    printf("c step median %.1f ms (forward %.1f, backward %.1f, AdamW %.1f), cpu %.1f ms, over %d "
           "steps\n",
           step * 1e3, median(tf, steps) * 1e3, median(tb, steps) * 1e3, median(to, steps) * 1e3,
           cpu * 1e3, steps);
    printf("c achieved %.1f GFLOP/s of matmul work (%.1f by cpu time)\n", flops / step / 1e9,
           flops / cpu / 1e9);
    if (ref_reps == 0) {
        printf("RESULT c_step_ms=%.2f c_cpu_ms=%.2f flops=%.6g\n", step * 1e3, cpu * 1e3, flops);
        return 0;
    }
    /* the reference is OpenBLAS threading each call itself at the step's thread count (the
     * engine's step runs OpenBLAS single-threaded under its own OpenMP team, threads.h) */
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(threads);
    double ref_cpu, best, best_cpu;
    double ref = plan_time(&pl, ref_reps, &ref_cpu, &best, &best_cpu);
    openblas_set_num_threads(blas_threads);
    loadavg(load, sizeof load);
    printf(
        "sgemm alone on the step's %d shapes: %.1f ms, %.1f GFLOP/s (cpu %.1f ms, %.1f GFLOP/s); "
        "best shape %.1f GFLOP/s (cpu %.1f); load %s\n",
        pl.n, ref * 1e3, flops / ref / 1e9, ref_cpu * 1e3, flops / ref_cpu / 1e9, best, best_cpu,
        load);
    printf("c step at %.0f%% of the sgemm rate on its shapes (%.0f%% by cpu time)\n",
           100 * ref / step, 100 * ref_cpu / cpu);
    printf("RESULT c_step_ms=%.2f c_cpu_ms=%.2f flops=%.6g sgemm_shapes_gflops=%.2f "
           "sgemm_shapes_cpu_gflops=%.2f sgemm_best_gflops=%.2f sgemm_best_cpu_gflops=%.2f\n",
           step * 1e3, cpu * 1e3, flops, flops / ref / 1e9, flops / ref_cpu / 1e9, best, best_cpu);
    return 0;
}

/* Parses a whole decimal integer in [lo, hi]; names the option when it is not one. */
static int parse_count(const char *opt, const char *text, int lo, int hi, int *out) {
    char *end;
    long x = strtol(text, &end, 10);
    if (end == text || *end || x < lo || x > hi) {
        fprintf(stderr, "bench_train_step: %s '%s' is not an integer from %d to %d\n", opt, text,
                lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int usage(void) {
    fprintf(stderr,
            "usage: bench_train_step [--steps N (10)] [--warmup W (3)] [--sgemm-reps R (5; 0 "
            "skips the sgemm reference)] | --dump FILE\n");
    return 2;
}

int main(int argc, char **argv) {
    int steps = 10, warmup = 3, ref_reps = 5;
    const char *dump = NULL;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage();
        int bad = 0;
        if (!strcmp(a, "--steps"))
            bad = parse_count(a, v, 1, MAX_STEPS, &steps);
        else if (!strcmp(a, "--warmup"))
            bad = parse_count(a, v, 0, MAX_STEPS, &warmup);
        else if (!strcmp(a, "--sgemm-reps"))
            bad = parse_count(a, v, 0, MAX_STEPS, &ref_reps);
        else if (!strcmp(a, "--dump"))
            dump = v;
        else
            return usage();
        if (bad) return 2;
    }
    char err[RV_ERR_MAX], desc[256];
    trn_threads_info ti;
    if (trn_threads_setup(0, &ti, err)) {
        fprintf(stderr, "bench_train_step: %s\n", err);
        return 2;
    }
    trn_threads_describe(&ti, desc, sizeof desc);
    printf("bench_train_step: %s\n", desc);
    model m;
    int rc = model_build(&m, err);
    if (!rc)
        rc = dump ? dump_step(&m, dump, err) : run(&m, steps, warmup, ref_reps, ti.requested, err);
    if (rc) fprintf(stderr, "bench_train_step: %s\n", err);
    model_free(&m);
    return rc ? 1 : 0;
}
