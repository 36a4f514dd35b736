/* training/layer_mlp.c — the T5 v1.1 gated-GELU MLP: out = (gelu(x·W0ᵀ) ⊙ x·W1ᵀ)·W2ᵀ with the
 * tanh approximation of GELU. Three sgemms forward, six backward; the elementwise parts are
 * plain loops the compiler vectorises, split over the team (layer_impl.h) when large. */
#include "layer_impl.h"

#define GELU_K 0.7978845608028654 /* sqrt(2 / pi) */
#define GELU_A 0.044715

/* Sizes are the same in both precisions: defined once, in the float build. */
#ifndef TRN_F64
size_t trn_mlp_acts_size(int N, int H) {
    return 3 * (size_t)N * H;
}

size_t trn_mlp_scratch_size(int N, int H) {
    return 2 * (size_t)N * H;
}
#endif

void TRN(mlp_acts_carve)(TRN(mlp_acts) * acts, real *buf, int N, int H) {
    size_t nh = (size_t)N * H;
    acts->h0 = buf;
    acts->h1 = buf + nh;
    acts->a = buf + 2 * nh;
}

TRN_HOT void TRN(mlp_forward)(real *out,            // (N, C)
                              TRN(mlp_acts) * acts, //
                              const real *inp,      // (N, C)
                              const TRN(mlp_w) * w, //
                              int N, int C, int H) {
    real *h0 = acts->h0, *h1 = acts->h1, *a = acts->a; // (N, H) each
    gemm(0, 1, N, H, C, 1, inp, C, w->w0, C, 0, h0, H);
    gemm(0, 1, N, H, C, 1, inp, C, w->w1, C, 0, h1, H);
    size_t nh = (size_t)N * H;
#pragma omp parallel for schedule(static) if (trn_par(nh))
    for (size_t i = 0; i < nh; i++) {
        real x = h0[i];
        real t = trn_tanh((real)GELU_K * (x + (real)GELU_A * x * x * x));
        a[i] = (real)0.5 * x * (1 + t) * h1[i];
    }
    gemm(0, 1, N, C, H, 1, a, H, w->w2, H, 0, out, C);
}

TRN_HOT void TRN(mlp_backward)(real *dinp,                 // (N, C)
                               TRN(mlp_w) * dw,            //
                               const real *dout,           // (N, C)
                               const TRN(mlp_acts) * acts, //
                               const real *inp,            // (N, C)
                               const TRN(mlp_w) * w,       //
                               real *scratch,              // (2 N H)
                               int N, int C, int H) {
    size_t nh = (size_t)N * H;
    real *da = scratch, *dh0 = scratch + nh; // (N, H) each; da becomes dh1 in place
    gemm(0, 0, N, H, C, 1, dout, C, w->w2, H, 0, da, H);
    gemm(1, 0, C, H, N, 1, dout, C, acts->a, H, 1, dw->w2, H);
    const real *h0 = acts->h0, *h1 = acts->h1;
#pragma omp parallel for schedule(static) if (trn_par(nh))
    for (size_t i = 0; i < nh; i++) {
        real x = h0[i];
        real u = (real)GELU_K * (x + (real)GELU_A * x * x * x);
        real t = trn_tanh(u);
        real gelu = (real)0.5 * x * (1 + t);
        real dgelu = (real)0.5 * (1 + t) +
                     (real)0.5 * x * (1 - t * t) * (real)GELU_K * (1 + (real)(3 * GELU_A) * x * x);
        dh0[i] = da[i] * h1[i] * dgelu;
        da[i] = da[i] * gelu;
    }
    real *dh1 = da;
    gemm(0, 0, N, C, H, 1, dh0, H, w->w0, C, 1, dinp, C);
    gemm(0, 0, N, C, H, 1, dh1, H, w->w1, C, 1, dinp, C);
    gemm(1, 0, H, C, N, 1, dh0, H, inp, C, 1, dw->w0, C);
    gemm(1, 0, H, C, N, 1, dh1, H, inp, C, 1, dw->w1, C);
}
