/* training/layer_attention.c — multi-head attention: self (key padding mask), causal self, and
 * cross-attention, with Q, K, V, O projections.
 *
 * Per (batch, head) the scores Q_h·K_hᵀ and the products P·V_h are sgemms over strided views of
 * the (B, T, C) projections (row stride C, column offset h·HS), so no head is ever copied or
 * transposed. The (batch, head) pairs are split over the engine's team (layer_impl.h), each
 * pair's small sgemms and softmax on one thread; when OpenBLAS threads the matmuls itself the
 * loop stays serial (a second pool beside OpenBLAS's was slower, docs/engine.md, Speed). */
#include "layer_impl.h"

#include "rv.h"

#ifndef TRN_F64
size_t trn_attn_acts_size(const trn_attn_dims *d) {
    size_t BTC = (size_t)d->B * d->T * d->C, BSC = (size_t)d->B * d->S * d->C;
    return 2 * BTC + 2 * BSC + (size_t)d->B * d->NH * d->T * d->S;
}

size_t trn_attn_scratch_size(const trn_attn_dims *d) {
    /* dy, dq (B, T, C); dk, dv (B, S, C); dp (B, NH, T, S) */
    return trn_attn_acts_size(d);
}

int trn_attn_dims_check(const trn_attn_dims *d, char *err) {
    if (d->B <= 0 || d->T <= 0 || d->S <= 0 || d->C <= 0 || d->NH <= 0)
        return rv_fail(err,
                       "attention: dimensions must be positive (B %d, T %d, S %d, C %d, NH %d)",
                       d->B, d->T, d->S, d->C, d->NH);
    if (d->C % d->NH)
        return rv_fail(err, "attention: width %d is not divisible by %d heads", d->C, d->NH);
    if (d->causal && d->T != d->S)
        return rv_fail(err, "attention: causal attention needs as many keys as queries (%d != %d)",
                       d->S, d->T);
    return 0;
}
#endif

void TRN(attn_acts_carve)(TRN(attn_acts) * acts, real *buf, const trn_attn_dims *d) {
    size_t BTC = (size_t)d->B * d->T * d->C, BSC = (size_t)d->B * d->S * d->C;
    acts->q = buf;
    acts->k = acts->q + BTC;
    acts->v = acts->k + BSC;
    acts->y = acts->v + BSC;
    acts->p = acts->y + BTC;
}

/* Number of keys query t may see before padding: all S, or t + 1 when causal. */
static inline int attn_visible(const trn_attn_dims *d, int t) {
    return d->causal ? t + 1 : d->S;
}

/* Softmax of one score row in place over its visible, unmasked keys; the others become 0.
 * Hidden keys are set to −∞ first so that the max and the exp loops have no branch and
 * vectorise (trn_exp(−∞) is exactly 0); a row with nothing visible is all 0. */
TRN_HOT static void softmax_row(real *row, int S, int vis, const uint8_t *kmask) {
    if (kmask)
        for (int s = 0; s < S; s++) row[s] = kmask[s] ? row[s] : -INFINITY;
    for (int s = vis; s < S; s++) row[s] = -INFINITY;
    real mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int s = 0; s < S; s++) mx = row[s] > mx ? row[s] : mx;
    if (mx == -INFINITY) {
        memset(row, 0, (size_t)S * sizeof(real));
        return;
    }
    real sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int s = 0; s < S; s++) {
        real e = trn_exp(row[s] - mx);
        row[s] = e;
        sum += e;
    }
    real inv = 1 / sum;
#pragma omp simd
    for (int s = 0; s < S; s++) row[s] *= inv;
}

TRN_HOT void TRN(attention_forward)(real *out,             // (B, T, C)
                                    TRN(attn_acts) * acts, //
                                    const real *xq,        // (B, T, C)
                                    const real *xkv,       // (B, S, C)
                                    const uint8_t *kmask,  // (B, S) or NULL
                                    const TRN(attn_w) * w, //
                                    const trn_attn_dims *d) {
    int B = d->B, T = d->T, S = d->S, C = d->C, NH = d->NH, HS = C / NH;
    real scale = 1 / sqrt((real)HS);
    gemm(0, 1, B * T, C, C, 1, xq, C, w->wq, C, 0, acts->q, C);
    gemm(0, 1, B * S, C, C, 1, xkv, C, w->wk, C, 0, acts->k, C);
    gemm(0, 1, B * S, C, C, 1, xkv, C, w->wv, C, 0, acts->v, C);
#pragma omp parallel for schedule(static) if (trn_par((size_t)B * NH * T * S))
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const real *q = acts->q + (size_t)b * T * C + h * HS; // (T, HS) stride C
        const real *k = acts->k + (size_t)b * S * C + h * HS; // (S, HS) stride C
        const real *v = acts->v + (size_t)b * S * C + h * HS; // (S, HS) stride C
        real *p = acts->p + ((size_t)b * NH + h) * T * S;     // (T, S)
        real *y = acts->y + (size_t)b * T * C + h * HS;       // (T, HS) stride C
        const uint8_t *m = kmask ? kmask + (size_t)b * S : NULL;
        gemm(0, 1, T, S, HS, scale, q, C, k, C, 0, p, S);
        for (int t = 0; t < T; t++) softmax_row(p + (size_t)t * S, S, attn_visible(d, t), m);
        gemm(0, 0, T, HS, S, 1, p, S, v, C, 0, y, C);
    }
    gemm(0, 1, B * T, C, C, 1, acts->y, C, w->wo, C, 0, out, C);
}

TRN_HOT void TRN(attention_backward)(real *dxq,                   // (B, T, C)
                                     real *dxkv,                  // (B, S, C)
                                     TRN(attn_w) * dw,            //
                                     const real *dout,            // (B, T, C)
                                     const TRN(attn_acts) * acts, //
                                     const real *xq,              // (B, T, C)
                                     const real *xkv,             // (B, S, C)
                                     const TRN(attn_w) * w,       //
                                     real *scratch,               // (trn_attn_scratch_size)
                                     const trn_attn_dims *d) {
    int B = d->B, T = d->T, S = d->S, C = d->C, NH = d->NH, HS = C / NH;
    real scale = 1 / sqrt((real)HS);
    size_t BTC = (size_t)B * T * C, BSC = (size_t)B * S * C;
    real *dy = scratch;     // (B, T, C)
    real *dq = dy + BTC;    // (B, T, C)
    real *dk = dq + BTC;    // (B, S, C)
    real *dv = dk + BSC;    // (B, S, C)
    real *dpall = dv + BSC; // (B, NH, T, S)
    gemm(0, 0, B * T, C, C, 1, dout, C, w->wo, C, 0, dy, C);
    gemm(1, 0, C, C, B * T, 1, dout, C, acts->y, C, 1, dw->wo, C);
#pragma omp parallel for schedule(static) if (trn_par((size_t)B * NH * T * S))
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        size_t oq = (size_t)b * T * C + h * HS, ok = (size_t)b * S * C + h * HS;
        const real *p = acts->p + ((size_t)b * NH + h) * T * S; // (T, S)
        real *dp = dpall + ((size_t)b * NH + h) * T * S;        // (T, S)
        /* dP = dY_h·V_hᵀ, dV_h = Pᵀ·dY_h */
        gemm(0, 1, T, S, HS, 1, dy + oq, C, acts->v + ok, C, 0, dp, S);
        gemm(1, 0, S, HS, T, 1, p, S, dy + oq, C, 0, dv + ok, C);
        /* softmax backward, in place: dS = P ⊙ (dP − Σ P ⊙ dP) · scale; masked P are 0 */
        for (int t = 0; t < T; t++) {
            const real *pr = p + (size_t)t * S;
            real *dr = dp + (size_t)t * S;
            double dot = 0;
            for (int s = 0; s < S; s++) dot += (double)pr[s] * dr[s];
            real dt = (real)dot;
            for (int s = 0; s < S; s++) dr[s] = pr[s] * (dr[s] - dt) * scale;
        }
        /* dQ_h = dS·K_h, dK_h = dSᵀ·Q_h */
        gemm(0, 0, T, HS, S, 1, dp, S, acts->k + ok, C, 0, dq + oq, C);
        gemm(1, 0, S, HS, T, 1, dp, S, acts->q + oq, C, 0, dk + ok, C);
    }
    gemm(0, 0, B * T, C, C, 1, dq, C, w->wq, C, 1, dxq, C);
    gemm(0, 0, B * S, C, C, 1, dk, C, w->wk, C, 1, dxkv, C);
    gemm(0, 0, B * S, C, C, 1, dv, C, w->wv, C, 1, dxkv, C);
    gemm(1, 0, C, C, B * T, 1, dq, C, xq, C, 1, dw->wq, C);
    gemm(1, 0, C, C, B * S, 1, dk, C, xkv, C, 1, dw->wk, C);
    gemm(1, 0, C, C, B * S, 1, dv, C, xkv, C, 1, dw->wv, C);
}
