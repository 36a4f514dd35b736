/* training/layer_loss.c — softmax with a temperature (the retriever's p(m|x)), token
 * cross-entropy with label smoothing and an ignore id, and the in-batch contrastive (InfoNCE)
 * loss. Losses sum in double and use log-sum-exp, so large logits neither overflow nor lose the
 * small differences that carry the gradient. */
#include "layer_impl.h"

#include "rv.h"

#define CE_BATCH 256 /* cross-entropy rows whose losses are held before they are added */

#ifndef TRN_F64
size_t trn_infonce_scratch_size(int B) {
    return (size_t)B * B;
}
#endif

/* Writes softmax(row / tau) into out and returns log Σ exp(row / tau). */
static double softmax_row(real *out, const real *row, real tau, int K) {
    real inv = 1 / tau, mx = row[0] * inv;
#pragma omp simd reduction(max : mx)
    for (int k = 1; k < K; k++)
        if (row[k] * inv > mx) mx = row[k] * inv;
    out[0] = trn_exp(row[0] * inv - mx);
    double sum = out[0]; /* the first term keeps sum > 0 where a reader cannot see K ≥ 1 */
#pragma omp simd reduction(+ : sum)
    for (int k = 1; k < K; k++) {
        out[k] = trn_exp(row[k] * inv - mx);
        sum += out[k];
    }
    real s = (real)(1 / sum);
    for (int k = 0; k < K; k++) out[k] *= s;
    return mx + log(sum);
}

void TRN(softmax_forward)(real *out,       // (N, K)
                          const real *inp, // (N, K)
                          real tau, int N, int K) {
    for (int n = 0; n < N; n++) softmax_row(out + (size_t)n * K, inp + (size_t)n * K, tau, K);
}

void TRN(softmax_backward)(real *dinp,       // (N, K)
                           real *dtau,       // (1) or NULL
                           const real *dout, // (N, K)
                           const real *out,  // (N, K)
                           const real *inp,  // (N, K)
                           real tau, int N, int K) {
    /* With z = inp / tau: dz = y ⊙ (dy − ⟨y, dy⟩), dinp = dz / tau, dtau = −⟨dz, inp⟩ / tau². */
    double dt = 0;
    for (int n = 0; n < N; n++) {
        const real *y = out + (size_t)n * K, *dy = dout + (size_t)n * K, *x = inp + (size_t)n * K;
        real *dx = dinp + (size_t)n * K;
        double dot = 0;
        for (int k = 0; k < K; k++) dot += (double)y[k] * dy[k];
        for (int k = 0; k < K; k++) {
            real dz = y[k] * (dy[k] - (real)dot);
            dx[k] += dz / tau;
            dt -= (double)dz * x[k];
        }
    }
    if (dtau) *dtau += (real)(dt / ((double)tau * tau));
}

/* Log-sum-exp of a row, without writing probabilities; *total gets the row's sum (the same pass
 * over the row serves both). */
TRN_HOT static double logsumexp(double *total, const real *row, int V) {
    real mx = row[0];
#pragma omp simd reduction(max : mx)
    for (int v = 1; v < V; v++)
        if (row[v] > mx) mx = row[v];
    double sum = trn_exp(row[0] - mx), sx = row[0];
#pragma omp simd reduction(+ : sum, sx)
    for (int v = 1; v < V; v++) {
        sum += trn_exp(row[v] - mx);
        sx += row[v];
    }
    *total = sx;
    return mx + log(sum);
}

TRN_HOT int TRN(crossentropy_forward)(real *loss,             // (1)
                                      real *lse,              // (N)
                                      const real *logits,     // (N, V)
                                      const int32_t *targets, // (N)
                                      int ignore_id, real smoothing, int N, int V, char *err) {
    for (int n = 0; n < N; n++)
        if (targets[n] != ignore_id && (targets[n] < 0 || targets[n] >= V))
            return rv_fail(err,
                           "cross-entropy: target %d at position %d is outside the vocabulary "
                           "[0, %d) and is not the ignore id %d",
                           targets[n], n, V, ignore_id);
    double total = 0;
    int count = 0;
    /* rows in parallel, their losses added in row order whatever the thread count */
    for (int n0 = 0; n0 < N; n0 += CE_BATCH) {
        double row_loss[CE_BATCH];
        int nb = N - n0 < CE_BATCH ? N - n0 : CE_BATCH;
#pragma omp parallel for schedule(static) if (trn_par((size_t)nb * V))
        for (int i = 0; i < nb; i++) {
            int n = n0 + i;
            const real *x = logits + (size_t)n * V;
            double sx, l = logsumexp(&sx, x, V);
            lse[n] = (real)l;
            /* −Σ q_v log p_v = lse − Σ q_v x_v with q = (1 − ε)·onehot + ε / V */
            if (targets[n] != ignore_id)
                row_loss[i] =
                    l - (1 - (double)smoothing) * x[targets[n]] - (double)smoothing * (sx / V);
        }
        for (int i = 0; i < nb; i++)
            if (targets[n0 + i] != ignore_id) {
                total += row_loss[i];
                count++;
            }
    }
    *loss = count ? (real)(total / count) : 0;
    return 0;
}

TRN_HOT void TRN(crossentropy_backward)(real *dlogits,          // (N, V)
                                        real dloss,             //
                                        const real *logits,     // (N, V)
                                        const real *lse,        // (N)
                                        const int32_t *targets, // (N)
                                        int ignore_id, real smoothing, int N, int V) {
    int count = 0;
    for (int n = 0; n < N; n++) count += targets[n] != ignore_id;
    if (!count) return;
    real scale = dloss / (real)count, uniform = smoothing / (real)V;
#pragma omp parallel for schedule(static) if (trn_par((size_t)N * V))
    for (int n = 0; n < N; n++) {
        if (targets[n] == ignore_id) continue;
        const real *x = logits + (size_t)n * V;
        real *dx = dlogits + (size_t)n * V, l = lse[n];
        for (int v = 0; v < V; v++) dx[v] += scale * (trn_exp(x[v] - l) - uniform);
        dx[targets[n]] -= scale * (1 - smoothing);
    }
}

void TRN(infonce_forward)(real *loss,    // (1)
                          real *probs,   // (B, B)
                          const real *q, // (B, D)
                          const real *k, // (B, D)
                          real tau, int B, int D) {
    gemm(0, 1, B, B, D, 1, q, D, k, D, 0, probs, B); /* raw scores q·kᵀ, then softmax in place */
    double total = 0;
    for (int i = 0; i < B; i++) {
        real *row = probs + (size_t)i * B;
        real diag = row[i] / tau;
        total += softmax_row(row, row, tau, B) - diag;
    }
    *loss = (real)(total / B);
}

void TRN(infonce_backward)(real *dq,          // (B, D)
                           real *dk,          // (B, D)
                           real dloss,        //
                           const real *probs, // (B, B)
                           const real *q,     // (B, D)
                           const real *k,     // (B, D)
                           real *scratch,     // (B, B)
                           real tau, int B, int D) {
    real *ds = scratch; // (B, B) gradient of the scores q·kᵀ
    real scale = dloss / ((real)B * tau);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++)
            ds[(size_t)i * B + j] = scale * (probs[(size_t)i * B + j] - (i == j));
    gemm(0, 0, B, D, B, 1, ds, B, k, D, 1, dq, D);
    gemm(1, 0, B, D, B, 1, ds, B, q, D, 1, dk, D);
}
