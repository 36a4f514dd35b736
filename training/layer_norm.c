/* training/layer_norm.c — RMSNorm, per-token weighting (attentive fusion's U = x ⊙ ω) and L2
 * normalisation of rows. Row reductions accumulate in double: at C = 256–1024 float sums lose
 * digits the gradient check would notice, and the cost is negligible beside the matmuls. RMSNorm's
 * rows are split over the team (layer_impl.h) when large. */
#include "layer_impl.h"

#define RMSNORM_EPS     1e-6
#define L2NORM_EPS      1e-12
#define RMSNORM_DG_COLS 64 /* columns of dg per work item of rmsnorm_backward */

TRN_HOT void TRN(rmsnorm_forward)(real *out,       // (N, C)
                                  real *rstd,      // (N)
                                  const real *inp, // (N, C)
                                  const real *g,   // (C)
                                  int N, int C) {
#pragma omp parallel for schedule(static) if (trn_par((size_t)N * C))
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        real *o = out + (size_t)n * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        real r = (real)(1.0 / sqrt(ss / C + RMSNORM_EPS));
        for (int c = 0; c < C; c++) o[c] = x[c] * r * g[c];
        rstd[n] = r;
    }
}

TRN_HOT void TRN(rmsnorm_backward)(real *dinp,       // (N, C)
                                   real *dg,         // (C)
                                   const real *dout, // (N, C)
                                   const real *inp,  // (N, C)
                                   const real *g,    // (C)
                                   const real *rstd, // (N)
                                   int N, int C) {
    int par = trn_par((size_t)N * C);
#pragma omp parallel if (par)
    {
#pragma omp for schedule(static) nowait
        for (int n = 0; n < N; n++) {
            const real *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            real *dx = dinp + (size_t)n * C;
            real r = rstd[n];
            /* y = g x r with r = (mean x² + eps)^-1/2, so ∂r/∂x_c = −r³ x_c / C. */
            double dot = 0;
            for (int c = 0; c < C; c++) dot += (double)dy[c] * g[c] * x[c];
            real k = (real)(dot * r * r * r / C);
            for (int c = 0; c < C; c++) dx[c] += dy[c] * g[c] * r - k * x[c];
            if (!par) /* one thread: dg in the same pass over the row */
                for (int c = 0; c < C; c++) dg[c] += dy[c] * x[c] * r;
        }
        /* On the team, dg sums over the rows in a second pass: a thread takes whole column
         * blocks and adds their rows in ascending order, as one thread does above, so dg does
         * not depend on the thread count. */
        if (par) {
#pragma omp for schedule(static)
            for (int c0 = 0; c0 < C; c0 += RMSNORM_DG_COLS) {
                int c1 = c0 + RMSNORM_DG_COLS < C ? c0 + RMSNORM_DG_COLS : C;
                for (int n = 0; n < N; n++) {
                    const real *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
                    real r = rstd[n];
                    for (int c = c0; c < c1; c++) dg[c] += dy[c] * x[c] * r;
                }
            }
        }
    }
}

TRN_HOT void TRN(weight_forward)(real *out,         // (N, C)
                                 const real *inp,   // (N, C)
                                 const real *omega, // (N)
                                 int N, int C) {
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        real *o = out + (size_t)n * C, w = omega[n];
        for (int c = 0; c < C; c++) o[c] = x[c] * w;
    }
}

TRN_HOT void TRN(weight_backward)(real *dinp,        // (N, C) or NULL
                                  real *domega,      // (N) or NULL
                                  const real *dout,  // (N, C)
                                  const real *inp,   // (N, C)
                                  const real *omega, // (N)
                                  int N, int C) {
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        if (dinp) {
            real *dx = dinp + (size_t)n * C, w = omega[n];
            for (int c = 0; c < C; c++) dx[c] += dy[c] * w;
        }
        if (domega) {
            double dot = 0;
            for (int c = 0; c < C; c++) dot += (double)dy[c] * x[c];
            domega[n] += (real)dot;
        }
    }
}

void TRN(l2norm_forward)(real *out,       // (N, C)
                         real *norm,      // (N)
                         const real *inp, // (N, C)
                         int N, int C) {
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        real *o = out + (size_t)n * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        real nr = (real)sqrt(ss + L2NORM_EPS), inv = 1 / nr;
        for (int c = 0; c < C; c++) o[c] = x[c] * inv;
        norm[n] = nr;
    }
}

void TRN(l2norm_backward)(real *dinp,       // (N, C)
                          const real *dout, // (N, C)
                          const real *out,  // (N, C)
                          const real *norm, // (N)
                          int N, int C) {
    for (int n = 0; n < N; n++) {
        const real *y = out + (size_t)n * C, *dy = dout + (size_t)n * C;
        real *dx = dinp + (size_t)n * C;
        /* y = x / |x|: the Jacobian (I − y yᵀ) / |x| is symmetric. */
        double dot = 0;
        for (int c = 0; c < C; c++) dot += (double)dy[c] * y[c];
        real inv = 1 / norm[n], d = (real)dot;
        for (int c = 0; c < C; c++) dx[c] += (dy[c] - d * y[c]) * inv;
    }
}
