/* training/rng.c — counter-based RNG (see rng.h for why it is stateless). */
#include "rng.h"

#include <math.h>

static inline uint64_t rng_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t trn_rng_u64(uint64_t seed, uint64_t stream, uint64_t index) {
    /* The key (seed, stream) is hashed first so that streams of one seed are unrelated; the
     * index then walks a Weyl sequence through the second mix. */
    uint64_t key = rng_mix(seed + 0x9e3779b97f4a7c15ULL * (stream + 1));
    return rng_mix(key + 0x9e3779b97f4a7c15ULL * (index + 1));
}

float trn_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    return (float)(trn_rng_u64(seed, stream, index) >> 40) * (1.0f / 16777216.0f);
}

double trn_rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    /* 53-bit uniforms; u1 in (0, 1] so the logarithm is finite. */
    double u1 = ((double)(trn_rng_u64(seed, stream, 2 * index) >> 11) + 1.0) * 0x1p-53;
    double u2 = (double)(trn_rng_u64(seed, stream, 2 * index + 1) >> 11) * 0x1p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void trn_rng_fill_normal(float *x, size_t n, float scale, uint64_t seed, uint64_t stream) {
    for (size_t i = 0; i < n; i++) x[i] = scale * (float)trn_rng_normal(seed, stream, i);
}

void trn_rng_fill_normal_d(double *x, size_t n, double scale, uint64_t seed, uint64_t stream) {
    for (size_t i = 0; i < n; i++) x[i] = scale * trn_rng_normal(seed, stream, i);
}
