/* training/layer_impl.h — private to layer_*.c: the precision a layer file is compiled for.
 *
 * Each layer_*.c is compiled twice by training/CMakeLists.txt: once as is (float, names
 * trn_<name>) and once with -DTRN_F64 (double, names trn_<name>_d). The body is written once
 * over `real`, so the gradient checks in double test the very code that trains in float.
 * <tgmath.h> picks expf/exp, sqrtf/sqrt, ... from the argument type.
 */
#ifndef TRN_LAYER_IMPL_H
#define TRN_LAYER_IMPL_H

#include "layers.h"

#include <cblas.h>
#include <string.h>
#include <tgmath.h>

#ifdef TRN_F64
typedef double real;
#define TRN(name)      trn_##name##_d
#define trn_cblas_gemm cblas_dgemm
#else
typedef float real;
#define TRN(name)      trn_##name
#define trn_cblas_gemm cblas_sgemm
#endif

/* Row-major C = alpha·op(A)·op(B) + beta·C with op(X) = Xᵀ when tX is nonzero;
 * C is (M, N), the inner dimension is K, and each matrix has its own row stride. */
static inline void gemm(int ta, int tb, int M, int N, int K, real alpha, const real *A, int lda,
                        const real *B, int ldb, real beta, real *C, int ldc) {
    trn_cblas_gemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                   N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* exp and tanh of the elementwise loops. The double build (the gradient-check reference) uses
 * libm. The float build uses versions the compiler vectorises, because libm's expf/tanhf are
 * scalar calls (≈ 20–45 ns each here) and the MLP, attention and cross-entropy evaluate
 * millions per step: exp(x) = 2^k · e^r with k = round(x / ln 2), |r| ≤ ln 2 / 2, and e^r by
 * its Taylor series to r⁷ (truncation < 6e-9 relative, below float rounding). The float-vs-
 * double checks of every layer bound the difference this makes. */
#ifdef TRN_F64
static inline real trn_exp(real x) {
    return exp(x);
}
static inline real trn_tanh(real x) {
    return tanh(x);
}
#else
static inline float trn_exp(float x) {
    x = x < -87.0f ? -87.0f : x; /* 2^k stays a normal float */
    x = x > 88.0f ? 88.0f : x;
    /* round to nearest by the 1.5·2^23 trick, which needs no SSE4.1 rounding instruction */
    float k = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
    float r = (x - k * 0.693145752f) - k * 1.42860677e-6f; /* ln 2 in two parts */
    float p = 1.0f / 5040;                                 /* Horner: Σ r^i / i! for i = 7 .. 0 */
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
static inline float trn_tanh(float x) {
    x = x < -9.0f ? -9.0f : x; /* tanh(±9) rounds to ±1 in float */
    x = x > 9.0f ? 9.0f : x;
    float e = trn_exp(2.0f * x);
    float big = (e - 1.0f) / (e + 1.0f);
    /* near 0, e − 1 cancels: the odd Taylor series to x⁷ keeps the relative error small */
    float x2 = x * x;
    float small = x * (1.0f + x2 * (-1.0f / 3 + x2 * (2.0f / 15 + x2 * (-17.0f / 315))));
    return fabsf(x) < 0.1f ? small : big;
}
#endif

#endif
