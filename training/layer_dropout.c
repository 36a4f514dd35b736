/* training/layer_dropout.c — inverted dropout whose mask is a pure function of (seed, stream,
 * element index) through the counter-based RNG, so the backward pass, another rank and a
 * resumed run all recompute the same mask instead of storing it. */
#include "layer_impl.h"

#include "rng.h"

/* The keep factor of element i: 0 or 1 / (1 − p). */
static inline real dropout_keep(real p, real scale, uint64_t seed, uint64_t stream, size_t i) {
    return trn_rng_uniform(seed, stream, i) >= (float)p ? scale : 0;
}

void TRN(dropout_forward)(real *out,       // (N)
                          const real *inp, // (N)
                          real p, uint64_t seed, uint64_t stream, size_t N) {
    real scale = p < 1 ? 1 / (1 - p) : 0;
    for (size_t i = 0; i < N; i++) out[i] = inp[i] * dropout_keep(p, scale, seed, stream, i);
}

void TRN(dropout_backward)(real *dinp,       // (N)
                           const real *dout, // (N)
                           real p, uint64_t seed, uint64_t stream, size_t N) {
    real scale = p < 1 ? 1 / (1 - p) : 0;
    for (size_t i = 0; i < N; i++) dinp[i] += dout[i] * dropout_keep(p, scale, seed, stream, i);
}
