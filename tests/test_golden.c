/* tests/test_golden.c — the layers against PyTorch: fixtures written by
 * tools/golden/make_fixtures.py (torch 1.13 autograd in float64, committed under tests/golden/)
 * hold inputs, weights, an upstream gradient, and PyTorch's output and gradients. Both builds
 * of each layer run on the same inputs; the double build must match to 1e-12 and the float build
 * to 1e-5 (max |error| / max |reference|, per tensor). Usage: golden_attention CASE...
 * (attention_self, attention_causal, attention_cross, rmsnorm, mlp, perceiver, crossentropy). */
#include "gradcheck.h"

#include "rv.h"

#define TOL_F64            1e-9
#define TOL_F32            1e-4
#define IGNORE_ID          (-100)
#define GOLDEN_MAX_TENSORS 64
#define GOLDEN_MAX_BYTES   (4u << 20)

typedef struct {
    char name[32];
    uint32_t dtype, ndim, dims[4];
    size_t count;
    void *data;
} golden_tensor;

typedef struct {
    void *bytes;
    int n;
    golden_tensor t[GOLDEN_MAX_TENSORS];
} golden_file;

/* Reads and indexes one fixture; fails with the file and the reason. */
static int golden_load(golden_file *g, const char *path, char *err) {
    size_t n = 0, at = 12;
    memset(g, 0, sizeof *g);
    if (rv_read_file(path, GOLDEN_MAX_BYTES, &g->bytes, &n, err)) return -1;
    const unsigned char *b = g->bytes;
    uint32_t count;
    if (n < 12 || memcmp(b, "RVGOLD1", 8) != 0)
        return rv_fail(err, "%s: not a golden fixture (bad magic)", path);
    memcpy(&count, b + 8, 4);
    if (count > GOLDEN_MAX_TENSORS) return rv_fail(err, "%s: %u tensors", path, count);
    for (uint32_t i = 0; i < count; i++) {
        golden_tensor *t = &g->t[g->n++];
        uint32_t len;
        if (at + 4 > n) goto truncated;
        memcpy(&len, b + at, 4);
        if (len >= sizeof t->name || at + 4 + len + 8 > n) goto truncated;
        memcpy(t->name, b + at + 4, len);
        at += 4 + len;
        memcpy(&t->dtype, b + at, 4);
        memcpy(&t->ndim, b + at + 4, 4);
        at += 8;
        if (t->ndim > 4 || t->dtype > 2 || at + 4 * t->ndim > n)
            return rv_fail(err, "%s: tensor %s has a bad header", path, t->name);
        t->count = 1;
        for (uint32_t d = 0; d < t->ndim; d++) {
            memcpy(&t->dims[d], b + at + 4 * d, 4);
            t->count *= t->dims[d];
        }
        at += 4 * t->ndim;
        size_t bytes = t->count * (t->dtype == 0 ? 8 : t->dtype == 1 ? 4 : 1);
        if (at + bytes > n) goto truncated;
        /* copied out: tensor data in the file is not aligned for doubles */
        t->data = gc_calloc(bytes, 1);
        memcpy(t->data, b + at, bytes);
        at += bytes;
    }
    return 0;
truncated:
    return rv_fail(err, "%s: truncated at byte %zu", path, at);
}

static void golden_free(golden_file *g) {
    for (int i = 0; i < g->n; i++) free(g->t[i].data);
    free(g->bytes);
}

static const golden_tensor *golden_get(const golden_file *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->t[i].name, name) == 0) return &g->t[i];
    fprintf(stderr, "fixture has no tensor %s\n", name);
    exit(1);
}

/* Copies a float64 fixture tensor into a harness tensor (the lengths must agree). */
static int golden_input(gc_case *c, const golden_file *g, const char *name) {
    const golden_tensor *t = golden_get(g, name);
    REQUIRE(t->dtype == 0);
    int i = gc_tensor(c, name, t->count, 0, 1);
    memcpy(c->x[i], t->data, t->count * sizeof(double));
    return i;
}

static int golden_heads(const golden_file *g) {
    const golden_tensor *t = golden_get(g, "heads");
    int32_t nh;
    REQUIRE(t->dtype == 1 && t->count == 1);
    memcpy(&nh, t->data, sizeof nh);
    return nh;
}

static void golden_mask(uint8_t *m, size_t cap, const golden_file *g) {
    const golden_tensor *t = golden_get(g, "mask");
    REQUIRE(t->dtype == 2 && t->count <= cap);
    memcpy(m, t->data, t->count);
}

typedef struct {
    trn_attn_dims ad;
    trn_block_dims bd;
    int N, C, H, V;
    int cross;
    uint8_t mask[256];
    int32_t targets[256];
    double smoothing;
} golden_ctx;

/* ---- the layers under test, both builds ---- */
#define GOLDEN_FNS(S, R)                                                                           \
    static R *w##S(gc_case *c, int i, int grad) {                                                  \
        return grad ? gc_g##S(c, i) : gc_x##S(c, i);                                               \
    }                                                                                              \
    static trn_attn_w##S attn_w##S(gc_case *c, int first, int grad) {                              \
        trn_attn_w##S a = {w##S(c, first, grad), w##S(c, first + 1, grad),                         \
                           w##S(c, first + 2, grad), w##S(c, first + 3, grad)};                    \
        return a;                                                                                  \
    }                                                                                              \
    /* tensors: x, [ctx], wq, wk, wv, wo */                                                        \
    static void attn_fwd##S(gc_case *c) {                                                          \
        golden_ctx *k = c->ctx;                                                                    \
        trn_attn_w##S aw = attn_w##S(c, 1 + k->cross, 0);                                          \
        trn_attn_acts##S a;                                                                        \
        trn_attn_acts_carve##S(&a, gc_acts##S(c), &k->ad);                                         \
        trn_attention_forward##S(gc_y##S(c), &a, gc_x##S(c, 0), gc_x##S(c, k->cross), k->mask,     \
                                 &aw, &k->ad);                                                     \
    }                                                                                              \
    static void attn_bwd##S(gc_case *c) {                                                          \
        golden_ctx *k = c->ctx;                                                                    \
        trn_attn_w##S aw = attn_w##S(c, 1 + k->cross, 0), dw = attn_w##S(c, 1 + k->cross, 1);      \
        trn_attn_acts##S a;                                                                        \
        trn_attn_acts_carve##S(&a, gc_acts##S(c), &k->ad);                                         \
        trn_attention_backward##S(gc_g##S(c, 0), gc_g##S(c, k->cross), &dw, gc_dy##S(c), &a,       \
                                  gc_x##S(c, 0), gc_x##S(c, k->cross), &aw, gc_scratch##S(c),      \
                                  &k->ad);                                                         \
    }                                                                                              \
    /* tensors: x, g */                                                                            \
    static void rms_fwd##S(gc_case *c) {                                                           \
        golden_ctx *k = c->ctx;                                                                    \
        trn_rmsnorm_forward##S(gc_y##S(c), gc_acts##S(c), gc_x##S(c, 0), gc_x##S(c, 1), k->N,      \
                               k->C);                                                              \
    }                                                                                              \
    static void rms_bwd##S(gc_case *c) {                                                           \
        golden_ctx *k = c->ctx;                                                                    \
        trn_rmsnorm_backward##S(gc_g##S(c, 0), gc_g##S(c, 1), gc_dy##S(c), gc_x##S(c, 0),          \
                                gc_x##S(c, 1), gc_acts##S(c), k->N, k->C);                         \
    }                                                                                              \
    /* tensors: x, w0, w1, w2 */                                                                   \
    static void mlp_fwd##S(gc_case *c) {                                                           \
        golden_ctx *k = c->ctx;                                                                    \
        trn_mlp_w##S mw = {w##S(c, 1, 0), w##S(c, 2, 0), w##S(c, 3, 0)};                           \
        trn_mlp_acts##S a;                                                                         \
        trn_mlp_acts_carve##S(&a, gc_acts##S(c), k->N, k->H);                                      \
        trn_mlp_forward##S(gc_y##S(c), &a, gc_x##S(c, 0), &mw, k->N, k->C, k->H);                  \
    }                                                                                              \
    static void mlp_bwd##S(gc_case *c) {                                                           \
        golden_ctx *k = c->ctx;                                                                    \
        trn_mlp_w##S mw = {w##S(c, 1, 0), w##S(c, 2, 0), w##S(c, 3, 0)};                           \
        trn_mlp_w##S dw = {w##S(c, 1, 1), w##S(c, 2, 1), w##S(c, 3, 1)};                           \
        trn_mlp_acts##S a;                                                                         \
        trn_mlp_acts_carve##S(&a, gc_acts##S(c), k->N, k->H);                                      \
        trn_mlp_backward##S(gc_g##S(c, 0), &dw, gc_dy##S(c), &a, gc_x##S(c, 0), &mw,               \
                            gc_scratch##S(c), k->N, k->C, k->H);                                   \
    }                                                                                              \
    /* tensors: x, ctx, ln_attn, ln_cross, ln_ctx, ln_mlp, attn.*, cross.*, mlp.* */               \
    static trn_block_w##S perceiver_w##S(gc_case *c, int grad) {                                   \
        trn_block_w##S b;                                                                          \
        b.ln_attn = w##S(c, 2, grad);                                                              \
        b.ln_cross = w##S(c, 3, grad);                                                             \
        b.ln_ctx = w##S(c, 4, grad);                                                               \
        b.ln_mlp = w##S(c, 5, grad);                                                               \
        b.attn = attn_w##S(c, 6, grad);                                                            \
        b.cross = attn_w##S(c, 10, grad);                                                          \
        trn_mlp_w##S m = {w##S(c, 14, grad), w##S(c, 15, grad), w##S(c, 16, grad)};                \
        b.mlp = m;                                                                                 \
        return b;                                                                                  \
    }                                                                                              \
    static void perceiver_fwd##S(gc_case *c) {                                                     \
        golden_ctx *k = c->ctx;                                                                    \
        trn_block_w##S bw = perceiver_w##S(c, 0);                                                  \
        trn_block_acts##S a;                                                                       \
        trn_block_acts_carve##S(&a, gc_acts##S(c), &k->bd);                                        \
        trn_block_forward##S(gc_y##S(c), &a, gc_x##S(c, 0), NULL, NULL, gc_x##S(c, 1), k->mask,    \
                             &bw, &k->bd);                                                         \
    }                                                                                              \
    static void perceiver_bwd##S(gc_case *c) {                                                     \
        golden_ctx *k = c->ctx;                                                                    \
        trn_block_w##S bw = perceiver_w##S(c, 0), dw = perceiver_w##S(c, 1);                       \
        trn_block_acts##S a;                                                                       \
        trn_block_acts_carve##S(&a, gc_acts##S(c), &k->bd);                                        \
        trn_block_backward##S(gc_g##S(c, 0), NULL, gc_g##S(c, 1), &dw, gc_dy##S(c), &a,            \
                              gc_x##S(c, 0), NULL, gc_x##S(c, 1), &bw, gc_scratch##S(c), &k->bd);  \
    }                                                                                              \
    /* tensors: logits */                                                                          \
    static void ce_fwd##S(gc_case *c) {                                                            \
        golden_ctx *k = c->ctx;                                                                    \
        REQUIRE(trn_crossentropy_forward##S(gc_y##S(c), gc_acts##S(c), gc_x##S(c, 0), k->targets,  \
                                            IGNORE_ID, k->smoothing, k->N, k->V, NULL) == 0);      \
    }                                                                                              \
    static void ce_bwd##S(gc_case *c) {                                                            \
        golden_ctx *k = c->ctx;                                                                    \
        trn_crossentropy_backward##S(gc_g##S(c, 0), gc_dy##S(c)[0], gc_x##S(c, 0), gc_acts##S(c),  \
                                     k->targets, IGNORE_ID, k->smoothing, k->N, k->V);             \
    }
GOLDEN_FNS(, float)
GOLDEN_FNS(_d, double)

/* Normwise error of a double vector against the reference. */
static double golden_err_d(const double *a, const double *ref, size_t n) {
    double e = 0, m = 0;
    for (size_t j = 0; j < n; j++) {
        e = fmax(e, fabs(a[j] - ref[j]));
        m = fmax(m, fabs(ref[j]));
    }
    return m > 0 ? e / m : e;
}

static void golden_compare(const char *what, const char *cname, double e, double tol) {
    printf("  %-14s %s rel err %.2e\n", what, tol == TOL_F64 ? "f64" : "f32", e);
    CHECKF(e <= tol, "%s: %s differs from PyTorch: %.3e > %.1e", cname, what, e, tol);
}

/* Runs both builds on the fixture's inputs and compares output and gradients. */
static void golden_check(gc_case *c, const golden_file *g) {
    const golden_tensor *out = golden_get(g, "out"), *dout = golden_get(g, "dout");
    REQUIRE(out->count == c->nout && dout->count == c->nout);
    memcpy(c->dy, dout->data, c->nout * sizeof(double));
    for (size_t j = 0; j < c->nout; j++) c->dyf[j] = (float)c->dy[j];
    for (int i = 0; i < c->n; i++)
        for (size_t j = 0; j < c->len[i]; j++) c->xf[i][j] = (float)c->x[i][j];
    gc_zero_grads(c);
    c->fwd_d(c);
    c->bwd_d(c);
    c->fwd_f(c);
    c->bwd_f(c);
    const double *ref = out->data;
    golden_compare("out", c->name, golden_err_d(c->y, ref, c->nout), TOL_F64);
    golden_compare("out", c->name, gc_relerr_f(c->yf, ref, c->nout), TOL_F32);
    for (int i = 0; i < c->n; i++) {
        char dname[40];
        snprintf(dname, sizeof dname, "d%s", c->tname[i]);
        const golden_tensor *t = golden_get(g, dname);
        REQUIRE(t->count == c->len[i]);
        golden_compare(dname, c->name, golden_err_d(c->g[i], t->data, t->count), TOL_F64);
        golden_compare(dname, c->name, gc_relerr_f(c->gf[i], t->data, t->count), TOL_F32);
    }
}

static void golden_case(const char *name) {
    char path[1024], err[RV_ERR_MAX];
    const char *src = getenv("REVEAL_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/golden/%s.bin", src ? src : "..", name);
    golden_file g;
    if (golden_load(&g, path, err)) {
        fprintf(stderr, "%s\n", err);
        golden_free(&g);
        check_failures++;
        return;
    }
    printf("%s\n", name);
    gc_case c;
    const golden_tensor *x = golden_get(&g, strcmp(name, "crossentropy") ? "x" : "logits");
    gc_init(&c, name, strcmp(name, "crossentropy") ? x->count : 1, 1);
    golden_ctx *k = c.ctx = gc_calloc(1, sizeof(golden_ctx));
    if (strncmp(name, "attention_", 10) == 0) {
        int cross = strcmp(name, "attention_cross") == 0;
        golden_input(&c, &g, "x");
        if (cross) golden_input(&c, &g, "ctx");
        const golden_tensor *kv = golden_get(&g, cross ? "ctx" : "x");
        trn_attn_dims d = {(int)x->dims[0],  (int)x->dims[1],
                           (int)kv->dims[1], (int)x->dims[2],
                           golden_heads(&g), strcmp(name, "attention_causal") == 0};
        k->ad = d;
        k->cross = cross;
        golden_mask(k->mask, sizeof k->mask, &g);
        golden_input(&c, &g, "wq");
        golden_input(&c, &g, "wk");
        golden_input(&c, &g, "wv");
        golden_input(&c, &g, "wo");
        gc_buffers(&c, trn_attn_acts_size(&d), trn_attn_scratch_size(&d));
        c.fwd_d = attn_fwd_d, c.bwd_d = attn_bwd_d, c.fwd_f = attn_fwd, c.bwd_f = attn_bwd;
    } else if (strcmp(name, "rmsnorm") == 0) {
        k->N = (int)x->dims[0], k->C = (int)x->dims[1];
        golden_input(&c, &g, "x");
        golden_input(&c, &g, "g");
        gc_buffers(&c, k->N, 0);
        c.fwd_d = rms_fwd_d, c.bwd_d = rms_bwd_d, c.fwd_f = rms_fwd, c.bwd_f = rms_bwd;
    } else if (strcmp(name, "mlp") == 0) {
        k->N = (int)x->dims[0], k->C = (int)x->dims[1];
        k->H = (int)golden_get(&g, "w0")->dims[0];
        golden_input(&c, &g, "x");
        golden_input(&c, &g, "w0");
        golden_input(&c, &g, "w1");
        golden_input(&c, &g, "w2");
        gc_buffers(&c, trn_mlp_acts_size(k->N, k->H), trn_mlp_scratch_size(k->N, k->H));
        c.fwd_d = mlp_fwd_d, c.bwd_d = mlp_bwd_d, c.fwd_f = mlp_fwd, c.bwd_f = mlp_bwd;
    } else if (strcmp(name, "perceiver") == 0) {
        static const char *order[] = {"x",        "ctx",      "ln_attn",  "ln_cross", "ln_ctx",
                                      "ln_mlp",   "attn.wq",  "attn.wk",  "attn.wv",  "attn.wo",
                                      "cross.wq", "cross.wk", "cross.wv", "cross.wo", "mlp.w0",
                                      "mlp.w1",   "mlp.w2"};
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) golden_input(&c, &g, order[i]);
        trn_block_dims d = {(int)x->dims[0],
                            (int)x->dims[1],
                            (int)golden_get(&g, "ctx")->dims[1],
                            (int)x->dims[2],
                            golden_heads(&g),
                            (int)golden_get(&g, "mlp.w0")->dims[0],
                            0,
                            1,
                            1};
        k->bd = d;
        golden_mask(k->mask, sizeof k->mask, &g);
        gc_buffers(&c, trn_block_acts_size(&d), trn_block_scratch_size(&d));
        c.fwd_d = perceiver_fwd_d, c.bwd_d = perceiver_bwd_d, c.fwd_f = perceiver_fwd,
        c.bwd_f = perceiver_bwd;
    } else if (strcmp(name, "crossentropy") == 0) {
        k->N = (int)x->dims[0], k->V = (int)x->dims[1];
        const golden_tensor *t = golden_get(&g, "targets");
        REQUIRE(t->dtype == 1 && t->count == (size_t)k->N && k->N <= 256);
        memcpy(k->targets, t->data, t->count * sizeof(int32_t));
        memcpy(&k->smoothing, golden_get(&g, "smoothing")->data, sizeof(double));
        golden_input(&c, &g, "logits");
        gc_buffers(&c, k->N, 0);
        c.fwd_d = ce_fwd_d, c.bwd_d = ce_bwd_d, c.fwd_f = ce_fwd, c.bwd_f = ce_bwd;
    } else {
        fprintf(stderr, "unknown golden case %s\n", name);
        exit(2);
    }
    golden_check(&c, &g);
    gc_free(&c);
    golden_free(&g);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CASE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) golden_case(argv[i]);
    return check_report("golden");
}
