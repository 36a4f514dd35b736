/* tests/test_grad_blocks.c — gradient checks (gradcheck.h) of the composite blocks: the
 * pre-norm encoder block with a key padding mask and random fusion weights ω (the fusion layer
 * of DESIGN.md §3), the decoder block (causal self-attention with padding, cross-attention to a
 * padded context, MLP) and the Perceiver block (latent self-attention, cross-attention to
 * RMSNorm(inputs), MLP). Every parameter, the input, ω and the context are checked. */
#include "gradcheck.h"

#define TOL_FD  1e-6
#define TOL_F32 1e-4

typedef struct {
    trn_block_dims d;
    uint8_t xmask[512], ctxmask[512];
    int use_xmask, use_omega;
    /* tensor indices; -1 when the configuration has no such tensor */
    int x, omega, ctx, ln_attn, attn, ln_cross, ln_ctx, cross, ln_mlp, mlp;
} block_ctx;

#define BLOCK_FNS(S, R)                                                                            \
    static trn_block_w##S block_weights##S(gc_case *c, int grad) {                                 \
        block_ctx *k = c->ctx;                                                                     \
        R *(*get)(gc_case *, int) = grad ? gc_g##S : gc_x##S;                                      \
        trn_block_w##S w;                                                                          \
        memset(&w, 0, sizeof w);                                                                   \
        w.ln_attn = get(c, k->ln_attn);                                                            \
        trn_attn_w##S sa = {get(c, k->attn), get(c, k->attn + 1), get(c, k->attn + 2),             \
                            get(c, k->attn + 3)};                                                  \
        w.attn = sa;                                                                               \
        if (k->d.cross) {                                                                          \
            w.ln_cross = get(c, k->ln_cross);                                                      \
            trn_attn_w##S ca = {get(c, k->cross), get(c, k->cross + 1), get(c, k->cross + 2),      \
                                get(c, k->cross + 3)};                                             \
            w.cross = ca;                                                                          \
            if (k->d.norm_ctx) w.ln_ctx = get(c, k->ln_ctx);                                       \
        }                                                                                          \
        w.ln_mlp = get(c, k->ln_mlp);                                                              \
        trn_mlp_w##S m = {get(c, k->mlp), get(c, k->mlp + 1), get(c, k->mlp + 2)};                 \
        w.mlp = m;                                                                                 \
        return w;                                                                                  \
    }                                                                                              \
    static R *opt##S(gc_case *c, int i, int grad) {                                                \
        return i < 0 ? NULL : grad ? gc_g##S(c, i) : gc_x##S(c, i);                                \
    }                                                                                              \
    static void block_fwd##S(gc_case *c) {                                                         \
        block_ctx *k = c->ctx;                                                                     \
        trn_block_w##S w = block_weights##S(c, 0);                                                 \
        trn_block_acts##S a;                                                                       \
        trn_block_acts_carve##S(&a, gc_acts##S(c), &k->d);                                         \
        trn_block_forward##S(gc_y##S(c), &a, gc_x##S(c, k->x), opt##S(c, k->omega, 0),             \
                             k->use_xmask ? k->xmask : NULL, opt##S(c, k->ctx, 0),                 \
                             k->d.cross ? k->ctxmask : NULL, &w, &k->d);                           \
    }                                                                                              \
    static void block_bwd##S(gc_case *c) {                                                         \
        block_ctx *k = c->ctx;                                                                     \
        trn_block_w##S w = block_weights##S(c, 0), dw = block_weights##S(c, 1);                    \
        trn_block_acts##S a;                                                                       \
        trn_block_acts_carve##S(&a, gc_acts##S(c), &k->d);                                         \
        trn_block_backward##S(gc_g##S(c, k->x), opt##S(c, k->omega, 1), opt##S(c, k->ctx, 1), &dw, \
                              gc_dy##S(c), &a, gc_x##S(c, k->x), opt##S(c, k->omega, 0),           \
                              opt##S(c, k->ctx, 0), &w, gc_scratch##S(c), &k->d);                  \
    }
BLOCK_FNS(, float)
BLOCK_FNS(_d, double)

/* RMSNorm scales near 1, as initialised in practice. */
static int norm_scale(gc_case *c, const char *name, int C) {
    int i = gc_tensor(c, name, C, 0.2, 1);
    for (int j = 0; j < C; j++) c->x[i][j] += 1;
    return i;
}

static int attn_weights(gc_case *c, int cross, int C) {
    static const char *names[2][4] = {{"attn.wq", "attn.wk", "attn.wv", "attn.wo"},
                                      {"cross.wq", "cross.wk", "cross.wv", "cross.wo"}};
    int first = gc_tensor(c, names[cross][0], (size_t)C * C, 0.5, 1);
    for (int j = 1; j < 4; j++) gc_tensor(c, names[cross][j], (size_t)C * C, 0.5, 1);
    return first;
}

/* kind: 0 encoder (fusion, with ω and padding), 1 decoder, 2 Perceiver */
static void check_block(int kind, int B, int T, int S, int C, int NH, int H, uint64_t seed) {
    static const char *kinds[] = {"encoder+omega", "decoder", "perceiver"};
    trn_block_dims d = {B, T, kind ? S : T, C, NH, H, kind == 1, kind != 0, kind == 2};
    REQUIRE(trn_block_dims_check(&d, NULL) == 0);
    gc_case c;
    char name[128];
    snprintf(name, sizeof name, "block %s B=%d T=%d S=%d C=%d NH=%d H=%d", kinds[kind], B, T, d.S,
             C, NH, H);
    gc_init(&c, name, (size_t)B * T * C, seed);
    block_ctx *k = c.ctx = gc_calloc(1, sizeof(block_ctx));
    k->d = d;
    REQUIRE((size_t)B * T <= sizeof k->xmask && (size_t)B * d.S <= sizeof k->ctxmask);
    uint64_t ctr = 0;
    k->use_xmask = kind != 2; /* Perceiver latents are never padded */
    gc_mask(k->xmask, B, T, seed, &ctr);
    gc_mask(k->ctxmask, B, d.S, seed, &ctr);
    k->omega = k->ctx = k->ln_cross = k->ln_ctx = k->cross = -1;
    k->x = gc_tensor(&c, "x", (size_t)B * T * C, 1, 1);
    if (kind == 0) {
        k->omega = gc_tensor(&c, "omega", (size_t)B * T, 1, 1);
        /* ω = 1 on query tokens, M·p(m|x) on retrieved tokens: positive, around 1 */
        for (int i = 0; i < B * T; i++) c.x[k->omega][i] = 0.2 + fabs(c.x[k->omega][i]);
    }
    if (d.cross) k->ctx = gc_tensor(&c, "ctx", (size_t)B * d.S * C, 1, 1);
    k->ln_attn = norm_scale(&c, "ln_attn", C);
    k->attn = attn_weights(&c, 0, C);
    if (d.cross) {
        k->ln_cross = norm_scale(&c, "ln_cross", C);
        k->cross = attn_weights(&c, 1, C);
        if (d.norm_ctx) k->ln_ctx = norm_scale(&c, "ln_ctx", C);
    }
    k->ln_mlp = norm_scale(&c, "ln_mlp", C);
    k->mlp = gc_tensor(&c, "mlp.w0", (size_t)H * C, 0.5, 1);
    gc_tensor(&c, "mlp.w1", (size_t)H * C, 0.5, 1);
    gc_tensor(&c, "mlp.w2", (size_t)C * H, 0.5, 1);
    gc_buffers(&c, trn_block_acts_size(&d), trn_block_scratch_size(&d));
    c.fwd_d = block_fwd_d, c.bwd_d = block_bwd_d, c.fwd_f = block_fwd, c.bwd_f = block_bwd;
    gc_run(&c, TOL_FD, TOL_F32);
    gc_free(&c);
}

int main(void) {
    uint64_t seed = gc_seed(), ctr = 0;
    printf("GRAD_SEED=%llu\n", (unsigned long long)seed);
    for (int kind = 0; kind < 3; kind++) check_block(kind, 2, 7, 5, 12, 3, 20, seed);
    for (int r = 0; r < 2; r++) {
        uint64_t s = seed + 1 + r;
        int NH = gc_randint(s, &ctr, 1, 3), HS = gc_randint(s, &ctr, 2, 5);
        int B = gc_randint(s, &ctr, 1, 3), T = gc_randint(s, &ctr, 2, 8);
        int S = gc_randint(s, &ctr, 2, 8), H = gc_randint(s, &ctr, 1, 24);
        for (int kind = 0; kind < 3; kind++) check_block(kind, B, T, S, NH * HS, NH, H, s);
    }
    return check_report("grad_blocks");
}
