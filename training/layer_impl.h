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
#include "threads.h"

#include <cblas.h>
#include <string.h>
#include <tgmath.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The elementwise loops (softmax, GELU, RMSNorm, residual adds, the loss) run about twice as
 * fast with AVX2 and FMA, which the portable x86-64 baseline lacks: TRN_HOT builds a function
 * twice, for x86-64-v3 and the baseline, and the loader picks one for the CPU (an ifunc). The
 * choice is per machine, so every rank of a run on one kind of node computes alike; AdamW
 * (optim.c), which must update every rank's replica identically, is not cloned. The double
 * build, the reference of the gradient checks, is not cloned either. trn_kernels (threads.h)
 * names the one in use; the test portable_kernels runs the layer checks on the baseline. */
#if defined(TRN_CLONES) && !defined(TRN_F64)
#define TRN_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define TRN_HOT
#endif

#ifdef TRN_F64
typedef double real;
#define TRN(name)      trn_##name##_d
#define trn_cblas_gemm cblas_dgemm
#else
typedef float real;
#define TRN(name)      trn_##name
#define trn_cblas_gemm cblas_sgemm
#endif

/* Threads. With more than one thread (training/threads.c), OpenBLAS runs each call on the
 * calling thread and the engine's one OpenMP team does all the parallel work: large matmuls
 * are cut into row or column blocks, one single-threaded sgemm per thread, and the elementwise
 * loops are split by rows. Two pools on the same cores (OpenBLAS's pthreads beside libgomp's
 * team) were slower than one pool: each spun while the other needed the core
 * (docs/train_step.md). When OpenBLAS has threads of its own, everything here stays serial
 * and OpenBLAS threads the matmuls, as before.
 *
 * Every split gives each output element to one thread and fixes which thread, so a step is
 * bitwise repeatable for a given thread count. The elementwise loops and the row reductions
 * (fixed column blocks, layer_norm.c; fixed row batches, layer_loss.c) give the same bits at
 * every thread count; a split matmul may differ from the whole one in the last bits, as
 * OpenBLAS's own split does. */
#define TRN_PAR_MIN      65536 /* elements: below this a loop is not worth waking the team */
#define TRN_GEMM_PAR_MIN 4e6   /* multiply-adds: below this a matmul is not split */
#define TRN_GEMM_CUT     16    /* a split falls on a multiple of this many rows or columns */

/* Whether a loop over n elements runs on the team. */
static inline int trn_par(size_t n) {
    return n >= TRN_PAR_MIN && trn_threads_team() > 1;
}

static inline void gemm_call(int ta, int tb, int M, int N, int K, real alpha, const real *A,
                             int lda, const real *B, int ldb, real beta, real *C, int ldc) {
    trn_cblas_gemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                   N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Where part t of nt of len rows (or columns) starts. */
static inline int gemm_cut(int len, int t, int nt) {
    return t == nt ? len : (int)((long)len * t / nt) / TRN_GEMM_CUT * TRN_GEMM_CUT;
}

/* Row-major C = alpha·op(A)·op(B) + beta·C with op(X) = Xᵀ when tX is nonzero;
 * C is (M, N), the inner dimension is K, and each matrix has its own row stride. A large call
 * on the team is cut along the longer of M and N. */
static inline void gemm(int ta, int tb, int M, int N, int K, real alpha, const real *A, int lda,
                        const real *B, int ldb, real beta, real *C, int ldc) {
    int team = (double)M * N * K >= TRN_GEMM_PAR_MIN ? trn_threads_team() : 1;
    if (team == 1) {
        gemm_call(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#ifdef _OPENMP
    int rows = M >= N;
#pragma omp parallel num_threads(team)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int lo = gemm_cut(rows ? M : N, t, nt), hi = gemm_cut(rows ? M : N, t + 1, nt);
        if (hi > lo && rows)
            gemm_call(ta, tb, hi - lo, N, K, alpha, ta ? A + lo : A + (size_t)lo * lda, lda, B, ldb,
                      beta, C + (size_t)lo * ldc, ldc);
        else if (hi > lo)
            gemm_call(ta, tb, M, hi - lo, K, alpha, A, lda, tb ? B + (size_t)lo * ldb : B + lo, ldb,
                      beta, C + lo, ldc);
    }
#endif
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
    /* below −87 the result is 0 (e^−87 is near the smallest normal float), so that a score
     * masked with −∞ gives exactly 0; the clamp keeps 2^k a normal float meanwhile */
    int below = x < -87.0f;
    x = below ? -87.0f : x;
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
    return below ? 0.0f : p * scale;
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
