/* training/rng.h — a seeded, counter-based random number generator.
 *
 * Every draw is a pure function of (seed, stream, index): there is no state to carry, save or
 * synchronise. A dropout mask drawn on rank 3 at step 1200 is the same mask on rank 0, in a
 * one-process run, and after a resume from a checkpoint, as long as the caller derives the
 * stream the same way (e.g. from the layer id and the step). The mixing function is
 * splitmix64's finaliser applied to a Weyl-style combination of the three words, applied
 * twice so that neighbouring indices and neighbouring streams decorrelate.
 */
#ifndef TRN_RNG_H
#define TRN_RNG_H

#include <stddef.h>
#include <stdint.h>

/* 64 random bits for (seed, stream, index). */
uint64_t trn_rng_u64(uint64_t seed, uint64_t stream, uint64_t index);
/* Uniform in [0, 1) with 24 random bits (exactly representable as a float). */
float trn_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);
/* Standard normal (Box–Muller over two uniforms drawn at 2·index and 2·index + 1). */
double trn_rng_normal(uint64_t seed, uint64_t stream, uint64_t index);

/* Fills x[i] = scale · N(0, 1) draw at index i: deterministic parameter initialisation. */
void trn_rng_fill_normal(float *x, size_t n, float scale, uint64_t seed, uint64_t stream);
void trn_rng_fill_normal_d(double *x, size_t n, double scale, uint64_t seed, uint64_t stream);

#endif
