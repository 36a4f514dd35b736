/* tests/test_grad_attention.c — gradient checks (gradcheck.h) of multi-head attention in its
 * three kinds: self-attention with a key padding mask, causal self-attention with a padding
 * mask, cross-attention with the context's padding mask (one context row fully padded). Also
 * checks that padded keys receive exactly zero gradient and that a query with no visible key
 * gets a zero output. Runs a fixed odd shape (T = 7, C = 12, NH = 3) and random shapes. */
#include "gradcheck.h"

#define TOL_FD  1e-6
#define TOL_F32 1e-4

typedef struct {
    trn_attn_dims d;
    int cross; /* 1: tensor 1 is the context; 0: tensor 0 serves as queries and keys */
    uint8_t mask[512];
} attn_ctx;

enum { T_XQ = 0 }; /* tensor indices: xq, [xkv], wq, wk, wv, wo */

#define ATTN_FNS(S, R)                                                                             \
    static trn_attn_w##S attn_weights##S(gc_case *c, int grad) {                                   \
        attn_ctx *k = c->ctx;                                                                      \
        int w0 = k->cross ? 2 : 1;                                                                 \
        R *(*get)(gc_case *, int) = grad ? gc_g##S : gc_x##S;                                      \
        trn_attn_w##S w = {get(c, w0), get(c, w0 + 1), get(c, w0 + 2), get(c, w0 + 3)};            \
        return w;                                                                                  \
    }                                                                                              \
    static void attn_fwd##S(gc_case *c) {                                                          \
        attn_ctx *k = c->ctx;                                                                      \
        trn_attn_w##S w = attn_weights##S(c, 0);                                                   \
        trn_attn_acts##S a;                                                                        \
        trn_attn_acts_carve##S(&a, gc_acts##S(c), &k->d);                                          \
        trn_attention_forward##S(gc_y##S(c), &a, gc_x##S(c, 0), gc_x##S(c, k->cross), k->mask, &w, \
                                 &k->d);                                                           \
    }                                                                                              \
    static void attn_bwd##S(gc_case *c) {                                                          \
        attn_ctx *k = c->ctx;                                                                      \
        trn_attn_w##S w = attn_weights##S(c, 0), dw = attn_weights##S(c, 1);                       \
        trn_attn_acts##S a;                                                                        \
        trn_attn_acts_carve##S(&a, gc_acts##S(c), &k->d);                                          \
        trn_attention_backward##S(gc_g##S(c, 0), gc_g##S(c, k->cross), &dw, gc_dy##S(c), &a,       \
                                  gc_x##S(c, 0), gc_x##S(c, k->cross), &w, gc_scratch##S(c),       \
                                  &k->d);                                                          \
    }
ATTN_FNS(, float)
ATTN_FNS(_d, double)

/* kind: 0 self with padding, 1 causal self with padding, 2 cross with the context's padding */
static void check_attention(int kind, int B, int T, int S, int C, int NH, uint64_t seed) {
    static const char *kinds[] = {"self", "causal", "cross"};
    if (kind != 2) S = T;
    gc_case c;
    char name[128];
    snprintf(name, sizeof name, "attention %s B=%d T=%d S=%d C=%d NH=%d", kinds[kind], B, T, S, C,
             NH);
    gc_init(&c, name, (size_t)B * T * C, seed);
    attn_ctx *k = c.ctx = gc_calloc(1, sizeof(attn_ctx));
    trn_attn_dims d = {B, T, S, C, NH, kind == 1};
    k->d = d;
    k->cross = kind == 2;
    REQUIRE(trn_attn_dims_check(&k->d, NULL) == 0);
    REQUIRE((size_t)B * S <= sizeof k->mask);
    uint64_t ctr = 0;
    gc_mask(k->mask, B, S, seed, &ctr);
    if (kind == 2 && B > 1)
        for (int s = 0; s < S; s++) k->mask[(size_t)(B - 1) * S + s] = 0; /* nothing to see */
    gc_tensor(&c, "xq", (size_t)B * T * C, 1, 1);
    if (k->cross) gc_tensor(&c, "xkv", (size_t)B * S * C, 1, 1);
    gc_tensor(&c, "wq", (size_t)C * C, 0.6, 1);
    gc_tensor(&c, "wk", (size_t)C * C, 0.6, 1);
    gc_tensor(&c, "wv", (size_t)C * C, 0.6, 1);
    gc_tensor(&c, "wo", (size_t)C * C, 0.6, 1);
    gc_buffers(&c, trn_attn_acts_size(&k->d), trn_attn_scratch_size(&k->d));
    c.fwd_d = attn_fwd_d, c.bwd_d = attn_bwd_d, c.fwd_f = attn_fwd, c.bwd_f = attn_bwd;
    gc_run(&c, TOL_FD, TOL_F32);

    /* padded keys (cross-attention: the whole context row of a padded key) get exactly 0 */
    if (k->cross) {
        size_t nonzero = 0;
        for (int i = 0; i < B * S; i++)
            for (int ch = 0; ch < C && !k->mask[i]; ch++)
                nonzero += c.g[1][(size_t)i * C + ch] != 0;
        CHECKF(nonzero == 0, "%s: %zu gradient entries on padded context tokens", name, nonzero);
        /* the fully padded context row: zero output for its queries */
        size_t out_nonzero = 0;
        for (size_t j = (size_t)(B - 1) * T * C; B > 1 && j < (size_t)B * T * C; j++)
            out_nonzero += c.y[j] != 0;
        CHECKF(out_nonzero == 0, "%s: queries with no visible key have nonzero output", name);
    }
    /* causal: the output at position t does not depend on later positions — perturbing the
     * last token leaves every earlier output unchanged */
    if (kind == 1 && T > 1) {
        double *before = gc_calloc(c.nout, sizeof(double));
        c.fwd_d(&c);
        memcpy(before, c.y, c.nout * sizeof(double));
        for (int b = 0; b < B; b++)
            for (int ch = 0; ch < C; ch++) c.x[0][((size_t)b * T + T - 1) * C + ch] += 1;
        c.fwd_d(&c);
        size_t changed = 0, changed_last = 0;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                for (int ch = 0; ch < C; ch++) {
                    size_t j = ((size_t)b * T + t) * C + ch;
                    if (t < T - 1)
                        changed += c.y[j] != before[j];
                    else
                        changed_last += c.y[j] != before[j];
                }
        CHECKF(changed == 0, "%s: %zu earlier outputs depend on the last token", name, changed);
        CHECKF(changed_last > 0, "%s: the last output ignores its own token", name);
        free(before);
    }
    gc_free(&c);
}

int main(void) {
    uint64_t seed = gc_seed(), ctr = 0;
    printf("GRAD_SEED=%llu\n", (unsigned long long)seed);
    for (int kind = 0; kind < 3; kind++) check_attention(kind, 2, 7, 5, 12, 3, seed);
    for (int r = 0; r < 3; r++) {
        uint64_t s = seed + 1 + r;
        int NH = gc_randint(s, &ctr, 1, 4), HS = gc_randint(s, &ctr, 1, 6);
        /* T, S ≥ 2: over a single key the softmax is constant and Wq, Wk get no gradient */
        int B = gc_randint(s, &ctr, 1, 3), T = gc_randint(s, &ctr, 2, 9);
        int S = gc_randint(s, &ctr, 2, 9);
        for (int kind = 0; kind < 3; kind++) check_attention(kind, B, T, S, NH * HS, NH, s);
    }
    return check_report("grad_attention");
}
