/* tests/test_engine_optim.c — the learning-rate schedule and AdamW against values computed by
 * hand, clipping on and off, frozen tensors, refusal of NaN gradients, determinism.
 *
 * The two-step fixture: tensors A (3 floats, decay on, lr_mult 1), B (2 floats, decay off,
 * lr_mult 0.5) and F (2 floats, frozen, with huge gradients that must count for nothing);
 * beta (0.9, 0.999), eps 1e-8, weight decay 0.1; lr 0.1 with 2 warmup steps, cosine to 0.01 at
 * step 10, so step 0 runs at 0.05 and step 1 at 0.1.
 * Step 0 by hand: Adam's first step moves each weight by lr * g/|g| (m̂ = g, v̂ = g²), after decay:
 *     A = [1·(1 − 0.05·0.1) − 0.05, −0.5·0.995 + 0.05, 0.25·0.995 − 0.05] = [0.945, −0.4475,
 * 0.19875] B = [0.75 (g = 0: no move, no decay), −2 − 0.025] = [0.75, −2.025] Step 1 follows the
 * same formulas (AdamW paper form, double precision, with t = 2 bias corrections); clipping to 0.5
 * scales the step-0 and step-1 gradients by different factors, which changes step 1 but not step 0
 * (Adam's first step does not see the gradient's scale).
 */
#include "check.h"
#include "optim.h"
#include "params.h"
#include "rv.h"
#include "threads.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int close_to(double got, double want, double tol) {
    return fabs(got - want) <= tol * (1.0 + fabs(want));
}

static void fixture_config(trn_adamw_config *c, float clip) {
    trn_adamw_config_default(c);
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = 0.1f;
    c->clip_norm = clip;
    c->sched = (trn_schedule){.lr = 0.1f,
                              .min_lr = 0.01f,
                              .warmup_steps = 2,
                              .total_steps = 10,
                              .decay = TRN_DECAY_COSINE};
}

static void fixture_params(trn_params *p) {
    trn_tensor_spec specs[] = {
        {"A", 1, {3}, 1.0f, 1},
        {"B", 1, {2}, 0.5f, 0},
        {"F", 1, {2}, 0.0f, 1},
    };
    char err[RV_ERR_MAX];
    REQUIRE(trn_params_init(p, specs, 3, err) == 0);
    const float a[] = {1.0f, -0.5f, 0.25f}, b[] = {0.75f, -2.0f}, f[] = {3.0f, 4.0f};
    memcpy(trn_params_at(p, 0).w, a, sizeof a);
    memcpy(trn_params_at(p, 1).w, b, sizeof b);
    memcpy(trn_params_at(p, 2).w, f, sizeof f);
}

static void set_grads(trn_params *p, int step) {
    static const float ga[2][3] = {{0.3f, -0.4f, 1.2f}, {-0.1f, 0.2f, 0.6f}};
    static const float gb[2][2] = {{0.0f, 2.0f}, {0.5f, 1.0f}};
    trn_params_zero_grad(p);
    memcpy(trn_params_at(p, 0).g, ga[step], sizeof ga[step]);
    memcpy(trn_params_at(p, 1).g, gb[step], sizeof gb[step]);
    trn_params_at(p, 2).g[0] = 100.0f;
    trn_params_at(p, 2).g[1] = -100.0f;
}

/* expected[case][step] = {grad_norm, clip_scale, A0, A1, A2, B0, B1} */
static const double expected[3][2][7] = {
    /* clip off */
    {{2.38537209, 1, 0.945000002, -0.447500001, 0.19875, 0.75, -2.025},
     {1.28840987, 1, 0.895528146, -0.416391298, 0.103544538, 0.71279316, -2.07160898}},
    /* clip 10: inactive, the same numbers */
    {{2.38537209, 1, 0.945000002, -0.447500001, 0.19875, 0.75, -2.025},
     {1.28840987, 1, 0.895528146, -0.416391298, 0.103544538, 0.71279316, -2.07160898}},
    /* clip 0.5: active at both steps */
    {{2.38537209, 0.209610816, 0.945000008, -0.447500006, 0.198750002, 0.75, -2.025},
     {1.28840987, 0.388074962, 0.917631004, -0.444429001, 0.0970378369, 0.712793162, -2.07486233}},
};

static void test_two_steps_by_hand(void) {
    const float clips[3] = {0.0f, 10.0f, 0.5f};
    for (int k = 0; k < 3; k++) {
        trn_params p;
        trn_adamw_config c;
        fixture_params(&p);
        fixture_config(&c, clips[k]);
        for (int step = 0; step < 2; step++) {
            set_grads(&p, step);
            trn_adamw_stats st;
            char err[RV_ERR_MAX];
            REQUIRE(trn_adamw_step(&p, &c, step, &st, err) == 0);
            const double *e = expected[k][step];
            CHECKF(close_to(st.grad_norm, e[0], 1e-6), "clip %g step %d: norm %.9g, want %.9g",
                   clips[k], step, st.grad_norm, e[0]);
            CHECKF(close_to(st.clip_scale, e[1], 1e-6), "clip %g step %d: scale %.9g, want %.9g",
                   clips[k], step, st.clip_scale, e[1]);
            CHECK(close_to(st.lr, step == 0 ? 0.05 : 0.1, 1e-7));
            const float *a = trn_params_at(&p, 0).w, *b = trn_params_at(&p, 1).w;
            const float got[5] = {a[0], a[1], a[2], b[0], b[1]};
            for (int i = 0; i < 5; i++)
                CHECKF(close_to(got[i], e[2 + i], 2e-7),
                       "clip %g step %d weight %d: %.9g, want %.9g", clips[k], step, i, got[i],
                       e[2 + i]);
            /* the frozen tensor never moves and its optimiser state stays zero */
            const float *f = trn_params_at(&p, 2).w;
            size_t fo = p.offset[2];
            CHECK(f[0] == 3.0f && f[1] == 4.0f);
            CHECK(p.m[fo] == 0 && p.m[fo + 1] == 0 && p.v[fo] == 0 && p.v[fo + 1] == 0);
        }
        trn_params_free(&p);
    }
}

static void test_schedule(void) {
    trn_schedule s = {.lr = 0.1f,
                      .min_lr = 0.01f,
                      .warmup_steps = 2,
                      .total_steps = 10,
                      .decay = TRN_DECAY_COSINE};
    /* (step, cosine, linear, constant) */
    const double table[][4] = {
        {0, 0.05, 0.05, 0.05},           /* warmup: lr·1/2 */
        {1, 0.1, 0.1, 0.1},              /* warmup ends at the peak */
        {2, 0.1, 0.1, 0.1},              /* decay starts at the peak */
        {4, 0.0868198052, 0.0775, 0.1},  /* progress 1/4: 0.01 + 0.09·(1 + cos(π/4))/2 */
        {6, 0.055, 0.055, 0.1},          /* half way */
        {9, 0.0134254210, 0.02125, 0.1}, /* progress 7/8 */
        {10, 0.01, 0.01, 0.1},           /* the floor */
        {1000, 0.01, 0.01, 0.1},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        for (int kind = 0; kind < 3; kind++) {
            s.decay = (trn_decay_kind)kind;
            double got = trn_schedule_lr(&s, (long)table[i][0]);
            CHECKF(close_to(got, table[i][1 + kind], 1e-6), "decay %d step %g: %.9g, want %.9g",
                   kind, table[i][0], got, table[i][1 + kind]);
        }
    s.warmup_steps = 0;
    s.decay = TRN_DECAY_COSINE;
    CHECK(trn_schedule_lr(&s, 0) == 0.1f);
}

static void test_config_refusals(void) {
    trn_adamw_config c;
    char err[RV_ERR_MAX];
    fixture_config(&c, 1);
    CHECK(trn_adamw_config_check(&c, err) == 0);
    c.beta2 = 1.0f;
    CHECK(trn_adamw_config_check(&c, err) == -1 && strstr(err, "beta2 = 1"));
    fixture_config(&c, 1);
    c.sched.min_lr = 0.5f;
    CHECK(trn_adamw_config_check(&c, err) == -1 && strstr(err, "min_lr = 0.5"));
    fixture_config(&c, 1);
    c.sched.warmup_steps = 20;
    CHECK(trn_adamw_config_check(&c, err) == -1 && strstr(err, "total_steps = 10"));
    fixture_config(&c, 1);
    c.eps = 0;
    CHECK(trn_adamw_config_check(&c, err) == -1 && strstr(err, "eps = 0"));
    fixture_config(&c, -1);
    CHECK(trn_adamw_config_check(&c, err) == -1 && strstr(err, "clip_norm = -1"));
    fixture_config(&c, 1);
    c.sched.decay = (trn_decay_kind)7;
    CHECK(trn_adamw_config_check(&c, err) == -1 && strstr(err, "unknown decay kind 7"));
}

/* A NaN or infinite gradient skips the step, names the tensor, and changes nothing. */
static void test_nonfinite_refused(void) {
    trn_params p;
    trn_adamw_config c;
    fixture_params(&p);
    fixture_config(&c, 1);
    set_grads(&p, 0);
    char err[RV_ERR_MAX];
    REQUIRE(trn_adamw_step(&p, &c, 0, NULL, err) == 0);
    size_t bytes = p.total * sizeof(float);
    float *w = malloc(bytes), *m = malloc(bytes), *v = malloc(bytes);
    REQUIRE(w && m && v);
    memcpy(w, p.params, bytes);
    memcpy(m, p.m, bytes);
    memcpy(v, p.v, bytes);
    set_grads(&p, 1);
    trn_params_at(&p, 1).g[1] = NAN;
    CHECK(trn_adamw_step(&p, &c, 1, NULL, err) == -1);
    CHECKF(strstr(err, "AdamW step 1 skipped: gradient of tensor 'B' holds NaN or infinity"), "%s",
           err);
    trn_params_at(&p, 1).g[1] = 0;
    trn_params_at(&p, 0).g[2] = INFINITY;
    CHECK(trn_adamw_step(&p, &c, 1, NULL, err) == -1 && strstr(err, "tensor 'A'"));
    CHECK(memcmp(w, p.params, bytes) == 0 && memcmp(m, p.m, bytes) == 0 &&
          memcmp(v, p.v, bytes) == 0);
    /* a NaN in a frozen tensor's gradient is never read */
    set_grads(&p, 1);
    trn_params_at(&p, 2).g[0] = NAN;
    CHECK(trn_adamw_step(&p, &c, 1, NULL, err) == 0);
    free(w);
    free(m);
    free(v);
    trn_params_free(&p);
}

/* AdamW in the paper's form, double precision, written independently of optim.c. */
static void reference_adamw(double *w, double *m, double *v, const double *g, size_t n,
                            const trn_adamw_config *c, double lr, double scale, int decay, long t) {
    for (size_t i = 0; i < n; i++) {
        double gi = g[i] * scale;
        m[i] = c->beta1 * m[i] + (1 - c->beta1) * gi;
        v[i] = c->beta2 * v[i] + (1 - c->beta2) * gi * gi;
        double mh = m[i] / (1 - pow(c->beta1, (double)t));
        double vh = v[i] / (1 - pow(c->beta2, (double)t));
        w[i] -= lr * (mh / (sqrt(vh) + c->eps) + (decay ? c->weight_decay * w[i] : 0));
    }
}

static uint64_t rng = 88172645463325252ull;
static double uniform(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2 - 1;
}

/* Twenty steps on random tensors (odd sizes, clipping sometimes active, through warmup into the
 * cosine decay) against the double-precision reference; then the same run again must be
 * bit-identical. */
static void test_random_against_reference(void) {
    trn_tensor_spec specs[] = {
        {"w1", 2, {7, 13}, 1.0f, 1}, {"b1", 1, {13}, 1.0f, 0}, {"w2", 2, {13, 5}, 0.25f, 1}};
    const int n_steps = 20;
    float *final[2] = {NULL, NULL};
    size_t total = 0;
    for (int run = 0; run < 2; run++) {
        trn_params p;
        char err[RV_ERR_MAX];
        REQUIRE(trn_params_init(&p, specs, 3, err) == 0);
        double *w = calloc(p.n_elements, sizeof(double)), *m = calloc(p.n_elements, sizeof(double)),
               *v = calloc(p.n_elements, sizeof(double)), *g = calloc(p.n_elements, sizeof(double));
        REQUIRE(w && m && v && g);
        rng = 88172645463325252ull;
        for (int i = 0, k = 0; i < p.n; i++)
            for (size_t j = 0; j < p.numel[i]; j++, k++) {
                w[k] = (float)uniform();
                p.params[p.offset[i] + j] = (float)w[k];
            }
        trn_adamw_config c;
        trn_adamw_config_default(&c);
        c.clip_norm = 2.0f;
        c.sched = (trn_schedule){.lr = 0.02f,
                                 .min_lr = 0.002f,
                                 .warmup_steps = 5,
                                 .total_steps = 15,
                                 .decay = TRN_DECAY_COSINE};
        double worst = 0;
        int clipped = 0;
        for (long step = 0; step < n_steps; step++) {
            double amp = step % 3 == 0 ? 1.0 : 0.1, norm2 = 0;
            for (int i = 0, k = 0; i < p.n; i++)
                for (size_t j = 0; j < p.numel[i]; j++, k++) {
                    g[k] = (float)(amp * uniform());
                    p.grads[p.offset[i] + j] = (float)g[k];
                    norm2 += g[k] * g[k];
                }
            double scale = sqrt(norm2) > c.clip_norm ? c.clip_norm / (sqrt(norm2) + 1e-6) : 1.0;
            clipped += scale < 1;
            trn_adamw_stats st;
            REQUIRE(trn_adamw_step(&p, &c, step, &st, err) == 0);
            for (int i = 0, k = 0; i < p.n; k += (int)p.numel[i], i++)
                reference_adamw(w + k, m + k, v + k, g + k, p.numel[i], &c,
                                trn_schedule_lr(&c.sched, step) * (double)specs[i].lr_mult, scale,
                                specs[i].decay, step + 1);
            for (int i = 0, k = 0; i < p.n; i++)
                for (size_t j = 0; j < p.numel[i]; j++, k++) {
                    double d = fabs(p.params[p.offset[i] + j] - w[k]) / (1 + fabs(w[k]));
                    if (d > worst) worst = d;
                }
        }
        CHECKF(worst < 1e-5, "largest relative difference to the reference %.3g", worst);
        CHECK(clipped > 0 && clipped < n_steps);
        if (run == 0)
            printf("20 random AdamW steps: max rel. difference to double reference %.3g "
                   "(%d clipped)\n",
                   worst, clipped);
        total = p.total;
        final[run] = malloc(p.total * sizeof(float));
        REQUIRE(final[run]);
        memcpy(final[run], p.params, p.total * sizeof(float));
        free(w);
        free(m);
        free(v);
        free(g);
        trn_params_free(&p);
    }
    CHECK(memcmp(final[0], final[1], total * sizeof(float)) == 0);
    free(final[0]);
    free(final[1]);
}

/* The gradient norm sums fixed blocks in a fixed order: the same bits with 1 or 2 threads. */
static void test_norm_thread_independent(void) {
    trn_tensor_spec specs[] = {{"big", 2, {1031, 517}, 1.0f, 1}};
    trn_params p;
    char err[RV_ERR_MAX];
    REQUIRE(trn_params_init(&p, specs, 1, err) == 0);
    for (size_t i = 0; i < p.numel[0]; i++) p.grads[i] = (float)uniform();
    double n1, n2;
    trn_threads_info info;
    REQUIRE(trn_threads_setup(1, &info, err) == 0);
    REQUIRE(trn_grad_norm(&p, &n1, err) == 0);
    REQUIRE(trn_threads_setup(2, &info, err) == 0); /* the engine's team of 2 (threads.h) */
    REQUIRE(trn_grad_norm(&p, &n2, err) == 0);
    REQUIRE(trn_threads_setup(1, &info, err) == 0);
    CHECKF(memcmp(&n1, &n2, sizeof n1) == 0, "norm with 1 thread %.17g, with 2 %.17g", n1, n2);
    double direct = 0;
    for (size_t i = 0; i < p.numel[0]; i++) direct += (double)p.grads[i] * p.grads[i];
    CHECK(close_to(n1, sqrt(direct), 1e-12));
    trn_params_free(&p);
}

int main(void) {
    test_schedule();
    test_two_steps_by_hand();
    test_config_refusals();
    test_nonfinite_refused();
    test_random_against_reference();
    test_norm_thread_independent();
    return check_report("engine_optim");
}
