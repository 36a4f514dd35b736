/* tests/test_grad_layers.c — gradient checks (gradcheck.h) of the position-wise layers: linear,
 * token embedding + learned positions, patch embedding, RMSNorm, per-token weighting, L2
 * normalisation, gated-GELU MLP, softmax with temperature, dropout; plus their input errors
 * and the accuracy of the float build's vectorised exp and tanh against libm.
 * Each runs on a fixed odd shape and on random shapes from GRAD_SEED. */
#include "gradcheck.h"

#include "layer_impl.h" /* trn_exp, trn_tanh of the float build */
#include "rv.h"

#define TOL_FD  1e-6
#define TOL_F32 1e-4

typedef struct {
    int N, C, OC, V, B, T, Hi, Wi, p, H;
    int32_t tokens[64];
    double tau;
    uint64_t seed, stream;
    float p_drop;
} layer_ctx;

static layer_ctx *ctx_of(gc_case *c) {
    return c->ctx;
}

/* ---- linear ---- */
#define LINEAR_FNS(S)                                                                              \
    static void linear_fwd##S(gc_case *c) {                                                        \
        layer_ctx *k = ctx_of(c);                                                                  \
        trn_linear_forward##S(gc_y##S(c), gc_x##S(c, 0), gc_x##S(c, 1), k->N, k->C, k->OC);        \
    }                                                                                              \
    static void linear_bwd##S(gc_case *c) {                                                        \
        layer_ctx *k = ctx_of(c);                                                                  \
        trn_linear_backward##S(gc_g##S(c, 0), gc_g##S(c, 1), gc_dy##S(c), gc_x##S(c, 0),           \
                               gc_x##S(c, 1), k->N, k->C, k->OC);                                  \
    }
LINEAR_FNS()
LINEAR_FNS(_d)

static void check_linear(int N, int C, int OC, uint64_t seed) {
    gc_case c;
    char name[96];
    snprintf(name, sizeof name, "linear N=%d C=%d OC=%d", N, C, OC);
    gc_init(&c, name, (size_t)N * OC, seed);
    layer_ctx *k = c.ctx = gc_calloc(1, sizeof(layer_ctx));
    k->N = N, k->C = C, k->OC = OC;
    gc_tensor(&c, "x", (size_t)N * C, 1, 1);
    gc_tensor(&c, "w", (size_t)OC * C, 0.3, 1);
    c.fwd_d = linear_fwd_d, c.bwd_d = linear_bwd_d, c.fwd_f = linear_fwd, c.bwd_f = linear_bwd;
    gc_run(&c, TOL_FD, TOL_F32);
    gc_free(&c);
}

/* ---- token embedding + learned positions ---- */
#define EMBED_FNS(S)                                                                               \
    static void embed_fwd##S(gc_case *c) {                                                         \
        layer_ctx *k = ctx_of(c);                                                                  \
        REQUIRE(trn_embedding_forward##S(gc_y##S(c), k->tokens, gc_x##S(c, 0), k->B * k->T, k->V,  \
                                         k->C, NULL) == 0);                                        \
        trn_positions_forward##S(gc_y##S(c), gc_x##S(c, 1), k->B, k->T, k->C);                     \
    }                                                                                              \
    static void embed_bwd##S(gc_case *c) {                                                         \
        layer_ctx *k = ctx_of(c);                                                                  \
        trn_embedding_backward##S(gc_g##S(c, 0), gc_dy##S(c), k->tokens, k->B * k->T, k->C);       \
        trn_positions_backward##S(gc_g##S(c, 1), gc_dy##S(c), k->B, k->T, k->C);                   \
    }
EMBED_FNS()
EMBED_FNS(_d)

static void check_embedding(int B, int T, int V, int C, uint64_t seed) {
    gc_case c;
    char name[96];
    snprintf(name, sizeof name, "embedding+positions B=%d T=%d V=%d C=%d", B, T, V, C);
    gc_init(&c, name, (size_t)B * T * C, seed);
    layer_ctx *k = c.ctx = gc_calloc(1, sizeof(layer_ctx));
    k->B = B, k->T = T, k->V = V, k->C = C;
    uint64_t ctr = 0;
    REQUIRE(B * T <= 64);
    /* repeated tokens, so the scatter into the table must add, not overwrite */
    for (int n = 0; n < B * T; n++) k->tokens[n] = gc_randint(seed, &ctr, 0, V / 2);
    /* rows of the tables that are never used must get exactly zero gradient: the finite
     * differences check them too */
    gc_tensor(&c, "wte", (size_t)V * C, 1, 1);
    gc_tensor(&c, "wpe", (size_t)(T + 2) * C, 1, 1);
    c.fwd_d = embed_fwd_d, c.bwd_d = embed_bwd_d, c.fwd_f = embed_fwd, c.bwd_f = embed_bwd;
    gc_run(&c, TOL_FD, TOL_F32);
    gc_free(&c);
}

/* ---- patch embedding: patchify (float image) then linear ---- */
#define PATCH_FNS(S, R)                                                                            \
    static void patch_fwd##S(gc_case *c) {                                                         \
        layer_ctx *k = ctx_of(c);                                                                  \
        R *patches = gc_acts##S(c);                                                                \
        int P = (k->Hi / k->p) * (k->Wi / k->p), PD = 3 * k->p * k->p;                             \
        trn_patchify##S(patches, gc_x##S(c, 0), k->B, k->Hi, k->Wi, k->p);                         \
        trn_linear_forward##S(gc_y##S(c), patches, gc_x##S(c, 1), k->B *P, PD, k->C);              \
    }                                                                                              \
    static void patch_bwd##S(gc_case *c) {                                                         \
        layer_ctx *k = ctx_of(c);                                                                  \
        R *patches = gc_acts##S(c), *dpatches = gc_scratch##S(c);                                  \
        int P = (k->Hi / k->p) * (k->Wi / k->p), PD = 3 * k->p * k->p;                             \
        memset(dpatches, 0, (size_t)k->B *P *PD * sizeof(R));                                      \
        trn_linear_backward##S(dpatches, gc_g##S(c, 1), gc_dy##S(c), patches, gc_x##S(c, 1),       \
                               k->B *P, PD, k->C);                                                 \
        trn_patchify_backward##S(gc_g##S(c, 0), dpatches, k->B, k->Hi, k->Wi, k->p);               \
    }
PATCH_FNS(, float)
PATCH_FNS(_d, double)

static void check_patch_embedding(int B, int Hi, int Wi, int p, int C, uint64_t seed) {
    gc_case c;
    char name[96];
    int P = (Hi / p) * (Wi / p), PD = 3 * p * p;
    snprintf(name, sizeof name, "patch embedding B=%d %dx%d p=%d C=%d", B, Hi, Wi, p, C);
    gc_init(&c, name, (size_t)B * P * C, seed);
    layer_ctx *k = c.ctx = gc_calloc(1, sizeof(layer_ctx));
    k->B = B, k->Hi = Hi, k->Wi = Wi, k->p = p, k->C = C;
    gc_tensor(&c, "image", (size_t)B * Hi * Wi * 3, 1, 1);
    gc_tensor(&c, "w", (size_t)C * PD, 0.3, 1);
    gc_buffers(&c, (size_t)B * P * PD, (size_t)B * P * PD);
    c.fwd_d = patch_fwd_d, c.bwd_d = patch_bwd_d, c.fwd_f = patch_fwd, c.bwd_f = patch_bwd;
    gc_run(&c, TOL_FD, TOL_F32);
    gc_free(&c);
}

/* uint8 pixels land in the patch the layout says, scaled to [0, 1]. */
static void check_patchify_u8(void) {
    enum { B = 2, Hi = 4, Wi = 6, p = 2, P = (Hi / p) * (Wi / p), PD = 3 * p * p };
    uint8_t img[B * Hi * Wi * 3];
    for (int i = 0; i < B * Hi * Wi * 3; i++) img[i] = (uint8_t)(i * 7 % 256);
    float patches[B * P * PD];
    trn_patchify_u8(patches, img, B, Hi, Wi, p);
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int y = 0; y < Hi; y++)
            for (int x = 0; x < Wi; x++)
                for (int ch = 0; ch < 3; ch++) {
                    int q = (y / p) * (Wi / p) + x / p;
                    int off = ((y % p) * p + x % p) * 3 + ch;
                    float want = img[((b * Hi + y) * Wi + x) * 3 + ch] / 255.0f;
                    bad += fabsf(patches[(b * P + q) * PD + off] - want) > 1e-7f;
                }
    CHECKF(bad == 0, "patchify_u8: %d pixels misplaced", bad);
}

/* ---- RMSNorm then per-token weighting: U = RMSNorm(x) ⊙ ω (attentive fusion) ---- */
#define NORMW_FNS(S, R)                                                                            \
    static void normw_fwd##S(gc_case *c) {                                                         \
        layer_ctx *k = ctx_of(c);                                                                  \
        R *n = gc_acts##S(c), *rstd = n + (size_t)k->N * k->C;                                     \
        trn_rmsnorm_forward##S(n, rstd, gc_x##S(c, 0), gc_x##S(c, 1), k->N, k->C);                 \
        trn_weight_forward##S(gc_y##S(c), n, gc_x##S(c, 2), k->N, k->C);                           \
    }                                                                                              \
    static void normw_bwd##S(gc_case *c) {                                                         \
        layer_ctx *k = ctx_of(c);                                                                  \
        R *n = gc_acts##S(c), *rstd = n + (size_t)k->N * k->C, *dn = gc_scratch##S(c);             \
        memset(dn, 0, (size_t)k->N * k->C * sizeof(R));                                            \
        trn_weight_backward##S(dn, gc_g##S(c, 2), gc_dy##S(c), n, gc_x##S(c, 2), k->N, k->C);      \
        trn_rmsnorm_backward##S(gc_g##S(c, 0), gc_g##S(c, 1), dn, gc_x##S(c, 0), gc_x##S(c, 1),    \
                                rstd, k->N, k->C);                                                 \
    }
NORMW_FNS(, float)
NORMW_FNS(_d, double)

static void check_rmsnorm_weight(int N, int C, uint64_t seed) {
    gc_case c;
    char name[96];
    snprintf(name, sizeof name, "rmsnorm + weight N=%d C=%d", N, C);
    gc_init(&c, name, (size_t)N * C, seed);
    layer_ctx *k = c.ctx = gc_calloc(1, sizeof(layer_ctx));
    k->N = N, k->C = C;
    gc_tensor(&c, "x", (size_t)N * C, 2, 1);
    int g = gc_tensor(&c, "g", C, 0.2, 1);
    int om = gc_tensor(&c, "omega", N, 0.5, 1);
    for (int i = 0; i < C; i++) c.x[g][i] += 1;
    for (int i = 0; i < N; i++) c.x[om][i] = fabs(c.x[om][i]) * N; /* ω = M·p, up to ~M */
    gc_buffers(&c, (size_t)N * C + N, (size_t)N * C);
    c.fwd_d = normw_fwd_d, c.bwd_d = normw_bwd_d, c.fwd_f = normw_fwd, c.bwd_f = normw_bwd;
    gc_run(&c, TOL_FD, TOL_F32);
    gc_free(&c);
}

/* ---- L2 normalisation ---- */
#define L2_FNS(S)                                                                                  \
    static void l2_fwd##S(gc_case *c) {                                                            \
        layer_ctx *k = ctx_of(c);                                                                  \
        trn_l2norm_forward##S(gc_y##S(c), gc_acts##S(c), gc_x##S(c, 0), k->N, k->C);               \
    }                                                                                              \
    static void l2_bwd##S(gc_case *c) {                                                            \
        layer_ctx *k = ctx_of(c);                                                                  \
        trn_l2norm_backward##S(gc_g##S(c, 0), gc_dy##S(c), gc_y##S(c), gc_acts##S(c), k->N, k->C); \
    }
L2_FNS()
L2_FNS(_d)

static void check_l2norm(int N, int C, uint64_t seed) {
    gc_case c;
    char name[96];
    snprintf(name, sizeof name, "l2norm N=%d C=%d", N, C);
    gc_init(&c, name, (size_t)N * C, seed);
    layer_ctx *k = c.ctx = gc_calloc(1, sizeof(layer_ctx));
    k->N = N, k->C = C;
    gc_tensor(&c, "x", (size_t)N * C, 1, 1);
    gc_buffers(&c, N, 0);
    c.fwd_d = l2_fwd_d, c.bwd_d = l2_bwd_d, c.fwd_f = l2_fwd, c.bwd_f = l2_bwd;
    gc_run(&c, TOL_FD, TOL_F32);
    gc_free(&c);
}

/* ---- gated-GELU MLP ---- */
#define MLP_FNS(S)                                                                                 \
    /* the weights (grad = 0) or their gradients (grad = 1) */                                     \
    static trn_mlp_w##S mlp_weights##S(gc_case *c, int grad) {                                     \
        trn_mlp_w##S w = {grad ? gc_g##S(c, 1) : gc_x##S(c, 1),                                    \
                          grad ? gc_g##S(c, 2) : gc_x##S(c, 2),                                    \
                          grad ? gc_g##S(c, 3) : gc_x##S(c, 3)};                                   \
        return w;                                                                                  \
    }                                                                                              \
    static void mlp_fwd##S(gc_case *c) {                                                           \
        layer_ctx *k = ctx_of(c);                                                                  \
        trn_mlp_w##S w = mlp_weights##S(c, 0);                                                     \
        trn_mlp_acts##S a;                                                                         \
        trn_mlp_acts_carve##S(&a, gc_acts##S(c), k->N, k->H);                                      \
        trn_mlp_forward##S(gc_y##S(c), &a, gc_x##S(c, 0), &w, k->N, k->C, k->H);                   \
    }                                                                                              \
    static void mlp_bwd##S(gc_case *c) {                                                           \
        layer_ctx *k = ctx_of(c);                                                                  \
        trn_mlp_w##S w = mlp_weights##S(c, 0), dw = mlp_weights##S(c, 1);                          \
        trn_mlp_acts##S a;                                                                         \
        trn_mlp_acts_carve##S(&a, gc_acts##S(c), k->N, k->H);                                      \
        trn_mlp_backward##S(gc_g##S(c, 0), &dw, gc_dy##S(c), &a, gc_x##S(c, 0), &w,                \
                            gc_scratch##S(c), k->N, k->C, k->H);                                   \
    }

MLP_FNS()
MLP_FNS(_d)

static void check_mlp(int N, int C, int H, uint64_t seed) {
    gc_case c;
    char name[96];
    snprintf(name, sizeof name, "gated-gelu mlp N=%d C=%d H=%d", N, C, H);
    gc_init(&c, name, (size_t)N * C, seed);
    layer_ctx *k = c.ctx = gc_calloc(1, sizeof(layer_ctx));
    k->N = N, k->C = C, k->H = H;
    gc_tensor(&c, "x", (size_t)N * C, 1, 1);
    gc_tensor(&c, "w0", (size_t)H * C, 0.5, 1);
    gc_tensor(&c, "w1", (size_t)H * C, 0.5, 1);
    gc_tensor(&c, "w2", (size_t)C * H, 0.5, 1);
    gc_buffers(&c, trn_mlp_acts_size(N, H), trn_mlp_scratch_size(N, H));
    c.fwd_d = mlp_fwd_d, c.bwd_d = mlp_bwd_d, c.fwd_f = mlp_fwd, c.bwd_f = mlp_bwd;
    gc_run(&c, TOL_FD, TOL_F32);
    gc_free(&c);
}

/* ---- softmax with temperature (gradient to the scores and to tau) ---- */
#define SOFTMAX_FNS(S)                                                                             \
    static void softmax_fwd##S(gc_case *c) {                                                       \
        layer_ctx *k = ctx_of(c);                                                                  \
        trn_softmax_forward##S(gc_y##S(c), gc_x##S(c, 0), gc_x##S(c, 1)[0], k->N, k->C);           \
    }                                                                                              \
    static void softmax_bwd##S(gc_case *c) {                                                       \
        layer_ctx *k = ctx_of(c);                                                                  \
        trn_softmax_backward##S(gc_g##S(c, 0), gc_g##S(c, 1), gc_dy##S(c), gc_y##S(c),             \
                                gc_x##S(c, 0), gc_x##S(c, 1)[0], k->N, k->C);                      \
    }
SOFTMAX_FNS()
SOFTMAX_FNS(_d)

static void check_softmax(int N, int K, uint64_t seed) {
    gc_case c;
    char name[96];
    snprintf(name, sizeof name, "softmax/tau N=%d K=%d", N, K);
    gc_init(&c, name, (size_t)N * K, seed);
    layer_ctx *k = c.ctx = gc_calloc(1, sizeof(layer_ctx));
    k->N = N, k->C = K;
    gc_tensor(&c, "scores", (size_t)N * K, 1, 1);
    int tau = gc_tensor(&c, "tau", 1, 0, 1);
    c.x[tau][0] = 0.37;
    c.fwd_d = softmax_fwd_d, c.bwd_d = softmax_bwd_d, c.fwd_f = softmax_fwd, c.bwd_f = softmax_bwd;
    gc_run(&c, TOL_FD, TOL_F32);
    gc_free(&c);
}

/* ---- dropout ---- */
#define DROPOUT_FNS(S)                                                                             \
    static void dropout_fwd##S(gc_case *c) {                                                       \
        layer_ctx *k = ctx_of(c);                                                                  \
        trn_dropout_forward##S(gc_y##S(c), gc_x##S(c, 0), k->p_drop, k->seed, k->stream,           \
                               (size_t)k->N);                                                      \
    }                                                                                              \
    static void dropout_bwd##S(gc_case *c) {                                                       \
        layer_ctx *k = ctx_of(c);                                                                  \
        trn_dropout_backward##S(gc_g##S(c, 0), gc_dy##S(c), k->p_drop, k->seed, k->stream,         \
                                (size_t)k->N);                                                     \
    }
DROPOUT_FNS()
DROPOUT_FNS(_d)

static void check_dropout(int N, float p, uint64_t seed) {
    gc_case c;
    char name[96];
    snprintf(name, sizeof name, "dropout N=%d p=%.2f", N, p);
    gc_init(&c, name, (size_t)N, seed);
    layer_ctx *k = c.ctx = gc_calloc(1, sizeof(layer_ctx));
    k->N = N, k->p_drop = p, k->seed = seed, k->stream = 5;
    gc_tensor(&c, "x", (size_t)N, 1, 1);
    c.fwd_d = dropout_fwd_d, c.bwd_d = dropout_bwd_d, c.fwd_f = dropout_fwd, c.bwd_f = dropout_bwd;
    gc_run(&c, TOL_FD, TOL_F32);
    /* the kept fraction matches 1 − p (binomial, 6 standard deviations) and the float and
     * double builds drop the same elements */
    size_t kept = 0, same = 0;
    for (int i = 0; i < N; i++) {
        kept += c.y[i] != 0;
        same += (c.y[i] != 0) == (c.yf[i] != 0);
    }
    double sd = sqrt(N * p * (1.0 - p));
    CHECKF(fabs((double)kept - N * (1.0 - p)) <= 6 * sd + 1, "dropout kept %zu of %d at p=%.2f",
           kept, N, p);
    CHECKF(same == (size_t)N, "dropout masks of the float and double builds differ");
    gc_free(&c);
}

/* The float build's exp and tanh against libm in double, over their whole useful range:
 * measured 1.0e-7 relative (exp), 1.3e-7 absolute and 3.3e-7 relative (tanh). */
static void check_fast_math(void) {
    double exp_rel = 0, tanh_abs = 0, tanh_rel = 0;
    for (int i = 0; i <= 1000000; i++) {
        float x = -87.0f + 175.0f * (float)i / 1000000.0f;
        double want = exp((double)x);
        exp_rel = fmax(exp_rel, fabs((double)trn_exp(x) - want) / want);
        float y = -12.0f + 24.0f * (float)i / 1000000.0f;
        double t = tanh((double)y), err = fabs((double)trn_tanh(y) - t);
        tanh_abs = fmax(tanh_abs, err);
        if (fabs(y) >= 1e-6) tanh_rel = fmax(tanh_rel, err / fabs(t));
    }
    printf("fast math: exp rel err %.2e, tanh abs err %.2e, tanh rel err %.2e\n", exp_rel, tanh_abs,
           tanh_rel);
    CHECKF(exp_rel <= 3e-7, "trn_exp relative error %.3e", exp_rel);
    CHECKF(tanh_abs <= 3e-7, "trn_tanh absolute error %.3e", tanh_abs);
    CHECKF(tanh_rel <= 1e-6, "trn_tanh relative error %.3e", tanh_rel);
    CHECKF(trn_exp(-1000.0f) >= 0 && trn_exp(1000.0f) < INFINITY && trn_tanh(50.0f) == 1.0f &&
               trn_tanh(-50.0f) == -1.0f && trn_tanh(0.0f) == 0.0f,
           "trn_exp / trn_tanh misbehave at the ends of their range");
}

/* Bad input gets an error naming what is wrong. */
static void check_errors(void) {
    char err[RV_ERR_MAX] = "";
    float wte[4 * 2] = {0}, out[3 * 2];
    int32_t tok[3] = {1, 4, 0};
    CHECK(trn_embedding_forward(out, tok, wte, 3, 4, 2, err) == -1);
    CHECKF(strstr(err, "token 4 at position 1") != NULL, "message: %s", err);
    trn_attn_dims bad = {2, 5, 6, 12, 5, 0};
    CHECK(trn_attn_dims_check(&bad, err) == -1);
    CHECKF(strstr(err, "not divisible by 5 heads") != NULL, "message: %s", err);
    trn_attn_dims causal = {2, 5, 6, 12, 3, 1};
    CHECK(trn_attn_dims_check(&causal, err) == -1);
    CHECKF(strstr(err, "causal") != NULL, "message: %s", err);
    trn_block_dims blk = {2, 5, 6, 12, 3, 0, 0, 1, 0};
    CHECK(trn_block_dims_check(&blk, err) == -1);
    CHECKF(strstr(err, "MLP width") != NULL, "message: %s", err);
}

int main(void) {
    uint64_t seed = gc_seed(), ctr = 0;
    printf("GRAD_SEED=%llu\n", (unsigned long long)seed);
    printf("kernels %s\n", trn_kernels());
    check_linear(14, 12, 7, seed);
    check_embedding(2, 7, 11, 12, seed);
    check_patch_embedding(2, 6, 9, 3, 12, seed);
    check_patchify_u8();
    check_rmsnorm_weight(14, 12, seed);
    check_l2norm(14, 12, seed);
    check_mlp(14, 12, 20, seed);
    check_softmax(5, 9, seed);
    check_dropout(4001, 0.3f, seed);
    for (int r = 0; r < 2; r++) {
        uint64_t s = seed + 1 + r;
        /* C ≥ 2: a one-wide row normalises to a constant, whose gradient is empty */
        int N = gc_randint(s, &ctr, 1, 40), C = gc_randint(s, &ctr, 2, 33);
        check_linear(N, C, gc_randint(s, &ctr, 1, 30), s);
        check_embedding(gc_randint(s, &ctr, 1, 4), gc_randint(s, &ctr, 1, 15),
                        gc_randint(s, &ctr, 2, 40), C, s);
        int p = gc_randint(s, &ctr, 1, 4);
        check_patch_embedding(gc_randint(s, &ctr, 1, 3), p * gc_randint(s, &ctr, 1, 3),
                              p * gc_randint(s, &ctr, 1, 3), p, C, s);
        check_rmsnorm_weight(N, C, s);
        check_l2norm(N, C, s);
        check_mlp(N, C, gc_randint(s, &ctr, 1, 50), s);
        check_softmax(gc_randint(s, &ctr, 1, 9), gc_randint(s, &ctr, 2, 17), s);
    }
    check_fast_math();
    check_errors();
    return check_report("grad_layers");
}
