/* tests/test_grad_losses.c — gradient checks (gradcheck.h) of the losses: token cross-entropy
 * with label smoothing and ignored (padding) targets, and the in-batch InfoNCE loss (gradient to
 * queries and keys, through L2-normalised rows as the retriever uses it). Also checks the loss
 * values against a direct computation and the error on a bad target. */
#include "gradcheck.h"

#include "rv.h"

#define TOL_FD    1e-6
#define TOL_F32   1e-4
#define IGNORE_ID (-100)

typedef struct {
    int N, V, D;
    int32_t targets[256];
    double smoothing, tau;
} loss_ctx;

#define CE_FNS(S)                                                                                  \
    static void ce_fwd##S(gc_case *c) {                                                            \
        loss_ctx *k = c->ctx;                                                                      \
        REQUIRE(trn_crossentropy_forward##S(gc_y##S(c), gc_acts##S(c), gc_x##S(c, 0), k->targets,  \
                                            IGNORE_ID, k->smoothing, k->N, k->V, NULL) == 0);      \
    }                                                                                              \
    static void ce_bwd##S(gc_case *c) {                                                            \
        loss_ctx *k = c->ctx;                                                                      \
        trn_crossentropy_backward##S(gc_g##S(c, 0), gc_dy##S(c)[0], gc_x##S(c, 0), gc_acts##S(c),  \
                                     k->targets, IGNORE_ID, k->smoothing, k->N, k->V);             \
    }
CE_FNS()
CE_FNS(_d)

static void check_crossentropy(int N, int V, double smoothing, uint64_t seed) {
    gc_case c;
    char name[96];
    snprintf(name, sizeof name, "cross-entropy N=%d V=%d smoothing=%.2f", N, V, smoothing);
    gc_init(&c, name, 1, seed);
    loss_ctx *k = c.ctx = gc_calloc(1, sizeof(loss_ctx));
    k->N = N, k->V = V, k->smoothing = smoothing;
    REQUIRE(N <= 256);
    uint64_t ctr = 0;
    int counted = 0;
    for (int n = 0; n < N; n++) {
        int pad = n > 0 && gc_randint(seed, &ctr, 0, 3) == 0;
        k->targets[n] = pad ? IGNORE_ID : gc_randint(seed, &ctr, 0, V - 1);
        counted += !pad;
    }
    int lg = gc_tensor(&c, "logits", (size_t)N * V, 3, 1);
    gc_buffers(&c, N, 0);
    c.fwd_d = ce_fwd_d, c.bwd_d = ce_bwd_d, c.fwd_f = ce_fwd, c.bwd_f = ce_bwd;
    gc_run(&c, TOL_FD, TOL_F32);

    /* the value: mean over counted rows of −Σ q log p, computed directly */
    double want = 0;
    for (int n = 0; n < N; n++) {
        if (k->targets[n] == IGNORE_ID) continue;
        const double *x = c.x[lg] + (size_t)n * V;
        double mx = x[0], z = 0;
        for (int v = 1; v < V; v++) mx = fmax(mx, x[v]);
        for (int v = 0; v < V; v++) z += exp(x[v] - mx);
        for (int v = 0; v < V; v++) {
            double q = smoothing / V + (v == k->targets[n] ? 1 - smoothing : 0);
            want -= q * (x[v] - mx - log(z));
        }
    }
    want /= counted;
    c.fwd_d(&c);
    CHECKF(fabs(c.y[0] - want) <= 1e-12 * fabs(want), "%s: loss %.15g, expected %.15g", name,
           c.y[0], want);
    /* ignored rows get no gradient */
    size_t nonzero = 0;
    for (int n = 0; n < N; n++)
        for (int v = 0; v < V && k->targets[n] == IGNORE_ID; v++)
            nonzero += c.g[lg][(size_t)n * V + v] != 0;
    CHECKF(nonzero == 0, "%s: %zu gradient entries on ignored rows", name, nonzero);
    gc_free(&c);
}

/* InfoNCE over L2-normalised queries and keys, as the retriever computes it. */
#define NCE_FNS(S, R)                                                                              \
    static void nce_fwd##S(gc_case *c) {                                                           \
        loss_ctx *k = c->ctx;                                                                      \
        size_t BD = (size_t)k->N * k->D;                                                           \
        R *qn = gc_acts##S(c), *kn = qn + BD, *nq = kn + BD, *nk = nq + k->N;                      \
        R *probs = nk + k->N;                                                                      \
        trn_l2norm_forward##S(qn, nq, gc_x##S(c, 0), k->N, k->D);                                  \
        trn_l2norm_forward##S(kn, nk, gc_x##S(c, 1), k->N, k->D);                                  \
        trn_infonce_forward##S(gc_y##S(c), probs, qn, kn, k->tau, k->N, k->D);                     \
    }                                                                                              \
    static void nce_bwd##S(gc_case *c) {                                                           \
        loss_ctx *k = c->ctx;                                                                      \
        size_t BD = (size_t)k->N * k->D;                                                           \
        R *qn = gc_acts##S(c), *kn = qn + BD, *nq = kn + BD, *nk = nq + k->N;                      \
        R *probs = nk + k->N;                                                                      \
        R *dqn = gc_scratch##S(c), *dkn = dqn + BD, *inner = dkn + BD;                             \
        memset(dqn, 0, 2 * BD * sizeof(R));                                                        \
        trn_infonce_backward##S(dqn, dkn, gc_dy##S(c)[0], probs, qn, kn, inner, k->tau, k->N,      \
                                k->D);                                                             \
        trn_l2norm_backward##S(gc_g##S(c, 0), dqn, qn, nq, k->N, k->D);                            \
        trn_l2norm_backward##S(gc_g##S(c, 1), dkn, kn, nk, k->N, k->D);                            \
    }
NCE_FNS(, float)
NCE_FNS(_d, double)

static void check_infonce(int B, int D, uint64_t seed) {
    gc_case c;
    char name[96];
    snprintf(name, sizeof name, "infonce (l2-normalised) B=%d D=%d tau=0.2", B, D);
    gc_init(&c, name, 1, seed);
    loss_ctx *k = c.ctx = gc_calloc(1, sizeof(loss_ctx));
    k->N = B, k->D = D, k->tau = 0.2;
    gc_tensor(&c, "q", (size_t)B * D, 1, 1);
    gc_tensor(&c, "k", (size_t)B * D, 1, 1);
    gc_buffers(&c, 2 * (size_t)B * D + 2 * (size_t)B + (size_t)B * B,
               2 * (size_t)B * D + trn_infonce_scratch_size(B));
    c.fwd_d = nce_fwd_d, c.bwd_d = nce_bwd_d, c.fwd_f = nce_fwd, c.bwd_f = nce_bwd;
    gc_run(&c, TOL_FD, TOL_F32);
    /* identical queries and keys, orthogonal rows: the loss is log(1 + (B−1)·e^(−1/τ)) */
    if (B <= D) {
        double *q = gc_calloc((size_t)B * D, sizeof(double)), *p = gc_calloc((size_t)B * B, 8);
        for (int i = 0; i < B; i++) q[(size_t)i * D + i] = 1;
        double loss;
        trn_infonce_forward_d(&loss, p, q, q, 0.2, B, D);
        double want = log(1 + (B - 1) * exp(-1 / 0.2));
        CHECKF(fabs(loss - want) <= 1e-12, "%s: orthogonal loss %.15g, expected %.15g", name, loss,
               want);
        free(q);
        free(p);
    }
    gc_free(&c);
}

static void check_errors(void) {
    char err[RV_ERR_MAX] = "";
    float logits[3 * 4] = {0}, lse[3], loss;
    int32_t targets[3] = {1, IGNORE_ID, 7};
    CHECK(trn_crossentropy_forward(&loss, lse, logits, targets, IGNORE_ID, 0, 3, 4, err) == -1);
    CHECKF(strstr(err, "target 7 at position 2") != NULL, "message: %s", err);
    int32_t none[3] = {IGNORE_ID, IGNORE_ID, IGNORE_ID};
    CHECK(trn_crossentropy_forward(&loss, lse, logits, none, IGNORE_ID, 0.1f, 3, 4, err) == 0);
    CHECKF(loss == 0, "a batch with no counted target has loss %g", loss);
}

int main(void) {
    uint64_t seed = gc_seed(), ctr = 0;
    printf("GRAD_SEED=%llu\n", (unsigned long long)seed);
    check_crossentropy(14, 11, 0.1, seed);
    check_crossentropy(9, 37, 0.0, seed);
    check_infonce(7, 12, seed);
    for (int r = 0; r < 2; r++) {
        uint64_t s = seed + 1 + r;
        check_crossentropy(gc_randint(s, &ctr, 1, 40), gc_randint(s, &ctr, 2, 60),
                           gc_randint(s, &ctr, 0, 3) * 0.05, s);
        check_infonce(gc_randint(s, &ctr, 2, 16), gc_randint(s, &ctr, 2, 20), s);
    }
    check_errors();
    return check_report("grad_losses");
}
