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

#endif
