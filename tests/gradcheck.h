/* tests/gradcheck.h — the gradient-check harness of the grad_* tests.
 *
 * A case registers its input tensors (in double), an output size, and forward/backward
 * functions for both builds of the layer (trn_<name> float, trn_<name>_d double). The checked
 * scalar is f = Σ out ⊙ R for a fixed random R, so backward is called with dout = R. gc_run:
 *   1. finite differences: for every differentiable tensor (all elements, or GC_SAMPLE random
 *      ones of a large tensor), the central difference (f(x+h) − f(x−h)) / 2h of the double
 *      build against its analytic backward; error = max|analytic − numeric| / max|numeric|,
 *      bounded by tol_fd. A gradient that is identically zero fails (the check would be empty);
 *   2. accumulation: backward called twice must give exactly twice the gradient;
 *   3. float against double: the float build's output and gradients, from the same inputs
 *      rounded to float, against the double build; normwise error bounded by tol_f32.
 * Every error is printed, so the logs show the measured margins.
 */
#ifndef RV_GRADCHECK_H
#define RV_GRADCHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "layers.h"
#include "rng.h"

#define GC_MAX    24
#define GC_SAMPLE 400

typedef struct gc_case gc_case;
typedef void (*gc_fn)(gc_case *c);

struct gc_case {
    const char *name;
    int n;
    const char *tname[GC_MAX];
    size_t len[GC_MAX];
    int diff[GC_MAX];               /* 1 = its gradient is checked */
    double *x[GC_MAX], *g[GC_MAX];  /* double inputs and gradients */
    float *xf[GC_MAX], *gf[GC_MAX]; /* float twins */
    size_t nout;
    double *y, *dy;
    float *yf, *dyf;
    double *acts, *scratch; /* per-case activation and scratch buffers, both builds */
    float *actsf, *scratchf;
    gc_fn fwd_d, bwd_d, fwd_f, bwd_f;
    void *ctx;
    uint64_t seed, stream;
};

static inline double *gc_x_d(gc_case *c, int i) {
    return c->x[i];
}
static inline float *gc_x(gc_case *c, int i) {
    return c->xf[i];
}
static inline double *gc_g_d(gc_case *c, int i) {
    return c->g[i];
}
static inline float *gc_g(gc_case *c, int i) {
    return c->gf[i];
}
static inline double *gc_y_d(gc_case *c) {
    return c->y;
}
static inline float *gc_y(gc_case *c) {
    return c->yf;
}
static inline double *gc_dy_d(gc_case *c) {
    return c->dy;
}
static inline float *gc_dy(gc_case *c) {
    return c->dyf;
}
static inline double *gc_acts_d(gc_case *c) {
    return c->acts;
}
static inline float *gc_acts(gc_case *c) {
    return c->actsf;
}
static inline double *gc_scratch_d(gc_case *c) {
    return c->scratch;
}
static inline float *gc_scratch(gc_case *c) {
    return c->scratchf;
}

static inline void *gc_calloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    REQUIRE(p != NULL);
    return p;
}

/* Seed of the random shapes and values: GRAD_SEED in the environment, else a fixed one. */
static inline uint64_t gc_seed(void) {
    const char *s = getenv("GRAD_SEED");
    return s ? strtoull(s, NULL, 10) : 20230618;
}

/* A uniform integer in [lo, hi], drawn from the case stream of `seed`. */
static inline int gc_randint(uint64_t seed, uint64_t *counter, int lo, int hi) {
    return lo + (int)(trn_rng_u64(seed, 999, (*counter)++) % (uint64_t)(hi - lo + 1));
}

static inline void gc_init(gc_case *c, const char *name, size_t nout, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->name = name;
    c->seed = seed;
    c->nout = nout;
    c->y = gc_calloc(nout, sizeof(double));
    c->dy = gc_calloc(nout, sizeof(double));
    c->yf = gc_calloc(nout, sizeof(float));
    c->dyf = gc_calloc(nout, sizeof(float));
    trn_rng_fill_normal_d(c->dy, nout, 1.0, seed, 1000);
}

/* Adds an input tensor of N(0, scale²) values; returns its index. */
static inline int gc_tensor(gc_case *c, const char *name, size_t len, double scale, int diff) {
    REQUIRE(c->n < GC_MAX);
    int i = c->n++;
    c->tname[i] = name;
    c->len[i] = len;
    c->diff[i] = diff;
    c->x[i] = gc_calloc(len, sizeof(double));
    c->g[i] = gc_calloc(len, sizeof(double));
    c->xf[i] = gc_calloc(len, sizeof(float));
    c->gf[i] = gc_calloc(len, sizeof(float));
    trn_rng_fill_normal_d(c->x[i], len, scale, c->seed, ++c->stream);
    return i;
}

static inline void gc_buffers(gc_case *c, size_t acts, size_t scratch) {
    c->acts = gc_calloc(acts, sizeof(double));
    c->scratch = gc_calloc(scratch, sizeof(double));
    c->actsf = gc_calloc(acts, sizeof(float));
    c->scratchf = gc_calloc(scratch, sizeof(float));
}

static inline void gc_free(gc_case *c) {
    for (int i = 0; i < c->n; i++) {
        free(c->x[i]);
        free(c->g[i]);
        free(c->xf[i]);
        free(c->gf[i]);
    }
    free(c->y);
    free(c->dy);
    free(c->yf);
    free(c->dyf);
    free(c->acts);
    free(c->scratch);
    free(c->actsf);
    free(c->scratchf);
    free(c->ctx);
}

static inline double gc_objective(gc_case *c) {
    c->fwd_d(c);
    long double f = 0;
    for (size_t j = 0; j < c->nout; j++) f += (long double)c->y[j] * c->dy[j];
    return (double)f;
}

static inline void gc_zero_grads(gc_case *c) {
    for (int i = 0; i < c->n; i++) {
        memset(c->g[i], 0, c->len[i] * sizeof(double));
        memset(c->gf[i], 0, c->len[i] * sizeof(float));
    }
}

static inline double gc_maxabs(const double *a, size_t n) {
    double m = 0;
    for (size_t j = 0; j < n; j++) m = fmax(m, fabs(a[j]));
    return m;
}

/* max|a − b| / max|b| between a float and a double vector. */
static inline double gc_relerr_f(const float *a, const double *b, size_t n) {
    double e = 0;
    for (size_t j = 0; j < n; j++) e = fmax(e, fabs((double)a[j] - b[j]));
    double m = gc_maxabs(b, n);
    return m > 0 ? e / m : e;
}

/* Runs the three checks; the verdict goes through CHECKF. */
static inline void gc_run(gc_case *c, double tol_fd, double tol_f32) {
    printf("%s\n", c->name);
    for (int i = 0; i < c->n; i++)
        for (size_t j = 0; j < c->len[i]; j++) c->xf[i][j] = (float)c->x[i][j];
    for (size_t j = 0; j < c->nout; j++) c->dyf[j] = (float)c->dy[j];

    /* 1. finite differences on the double build */
    gc_zero_grads(c);
    c->fwd_d(c);
    c->bwd_d(c);
    double *ga[GC_MAX] = {0};
    for (int i = 0; i < c->n; i++) {
        ga[i] = gc_calloc(c->len[i], sizeof(double));
        memcpy(ga[i], c->g[i], c->len[i] * sizeof(double));
    }
    for (int i = 0; i < c->n; i++) {
        if (!c->diff[i]) continue;
        size_t checks = c->len[i] <= GC_SAMPLE ? c->len[i] : GC_SAMPLE;
        double err = 0, mnum = 0;
        for (size_t s = 0; s < checks; s++) {
            size_t j = c->len[i] <= GC_SAMPLE ? s : trn_rng_u64(c->seed, 77 + i, s) % c->len[i];
            double orig = c->x[i][j], h = 1e-5 * fmax(1.0, fabs(orig));
            c->x[i][j] = orig + h;
            double fp = gc_objective(c);
            c->x[i][j] = orig - h;
            double fm = gc_objective(c);
            c->x[i][j] = orig;
            double num = (fp - fm) / (2 * h);
            err = fmax(err, fabs(num - ga[i][j]));
            mnum = fmax(mnum, fabs(num));
        }
        double rel = mnum > 0 ? err / mnum : err;
        printf("  %-10s fd    rel err %.2e  (%zu of %zu elements, max |grad| %.2e)\n", c->tname[i],
               rel, checks, c->len[i], mnum);
        CHECKF(rel <= tol_fd, "%s: gradient of %s differs from finite differences: %.3e > %.1e",
               c->name, c->tname[i], rel, tol_fd);
        CHECKF(mnum > 1e-9, "%s: gradient of %s is zero, the check is empty", c->name, c->tname[i]);
    }

    /* 2. backward accumulates */
    gc_zero_grads(c);
    c->fwd_d(c);
    c->bwd_d(c);
    c->bwd_d(c);
    for (int i = 0; i < c->n; i++) {
        if (!c->diff[i]) continue;
        double e = 0, m = gc_maxabs(ga[i], c->len[i]);
        for (size_t j = 0; j < c->len[i]; j++) e = fmax(e, fabs(c->g[i][j] - 2 * ga[i][j]));
        CHECKF(e <= 1e-12 * (m > 0 ? m : 1), "%s: backward into %s does not accumulate (%.3e)",
               c->name, c->tname[i], e);
    }

    /* 3. float build against double build */
    gc_zero_grads(c);
    c->fwd_f(c);
    double ey = gc_relerr_f(c->yf, c->y, c->nout);
    printf("  %-10s f32   rel err %.2e\n", "output", ey);
    CHECKF(ey <= tol_f32, "%s: float output differs from double: %.3e > %.1e", c->name, ey,
           tol_f32);
    c->bwd_f(c);
    for (int i = 0; i < c->n; i++) {
        if (!c->diff[i]) continue;
        double e = gc_relerr_f(c->gf[i], ga[i], c->len[i]);
        printf("  %-10s f32   rel err %.2e\n", c->tname[i], e);
        CHECKF(e <= tol_f32, "%s: float gradient of %s differs from double: %.3e > %.1e", c->name,
               c->tname[i], e, tol_f32);
    }
    for (int i = 0; i < c->n; i++) free(ga[i]);
}

/* Padding mask: row 0 all real; other rows keep token 0 and drop each other token with
 * probability 0.3, so padding appears at the end and in the middle. */
static inline void gc_mask(uint8_t *m, int B, int T, uint64_t seed, uint64_t *counter) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            m[(size_t)b * T + t] = b == 0 || t == 0 || gc_randint(seed, counter, 0, 9) >= 3;
}

#endif
