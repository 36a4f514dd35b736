/* tests/test_grad_rng.c — the counter-based RNG behind dropout and initialisation: draws are a
 * pure function of (seed, stream, index) and pinned (a resumed run or another build must see
 * the same masks), streams and seeds are unrelated, and the distributions are right (moments,
 * a 64-bin chi-square, correlation of neighbouring indices and streams). */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "rng.h"

#define DRAWS       200000
#define RNG_PIN_123 0x0ee3bb459e9e297bULL
#define RNG_PIN_000 0xa706dd2f4d197e6fULL

int main(void) {
    /* Pinned values: changing the generator changes every dropout mask of every checkpoint. */
    printf("u64(1,2,3) = 0x%016llx\n", (unsigned long long)trn_rng_u64(1, 2, 3));
    CHECK(trn_rng_u64(1, 2, 3) == RNG_PIN_123);
    CHECK(trn_rng_u64(0, 0, 0) == RNG_PIN_000);
    CHECK(trn_rng_u64(1, 2, 3) == trn_rng_u64(1, 2, 3));
    CHECK(trn_rng_u64(1, 2, 3) != trn_rng_u64(1, 3, 2));
    CHECK(trn_rng_u64(1, 2, 3) != trn_rng_u64(2, 1, 3));

    double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0, lag = 0, cross = 0;
    long bins[64] = {0};
    for (long i = 0; i < DRAWS; i++) {
        double u = trn_rng_uniform(42, 7, i), u1 = trn_rng_uniform(42, 7, i + 1);
        double v = trn_rng_uniform(42, 8, i);
        CHECK(u >= 0 && u < 1);
        sum += u, sum2 += u * u;
        lag += (u - 0.5) * (u1 - 0.5);
        cross += (u - 0.5) * (v - 0.5);
        bins[(int)(u * 64)]++;
        double z = trn_rng_normal(42, 9, i);
        nsum += z, nsum2 += z * z;
    }
    double mean = sum / DRAWS, var = sum2 / DRAWS - mean * mean;
    /* bounds are ~6 standard errors of each statistic */
    printf("uniform mean %.5f var %.5f, normal mean %.5f var %.5f\n", mean, var, nsum / DRAWS,
           nsum2 / DRAWS);
    CHECKF(fabs(mean - 0.5) < 6 * sqrt(1.0 / 12 / DRAWS), "uniform mean %f", mean);
    CHECKF(fabs(var - 1.0 / 12) < 6 * sqrt(1.0 / 180 / DRAWS), "uniform variance %f", var);
    CHECKF(fabs(nsum / DRAWS) < 6 / sqrt(DRAWS), "normal mean %f", nsum / DRAWS);
    CHECKF(fabs(nsum2 / DRAWS - 1) < 6 * sqrt(2.0 / DRAWS), "normal variance %f", nsum2 / DRAWS);
    /* correlation of u_i with u_{i+1} and with the next stream; sd of each is 1/sqrt(n) */
    double corr_lag = lag / DRAWS * 12, corr_cross = cross / DRAWS * 12;
    printf("correlation: next index %.5f, next stream %.5f\n", corr_lag, corr_cross);
    CHECKF(fabs(corr_lag) < 6 / sqrt(DRAWS), "neighbouring indices correlate: %f", corr_lag);
    CHECKF(fabs(corr_cross) < 6 / sqrt(DRAWS), "neighbouring streams correlate: %f", corr_cross);
    /* chi-square with 63 degrees of freedom: mean 63, sd 11.2; 130 is p < 1e-6 */
    double chi2 = 0, expect = DRAWS / 64.0;
    for (int b = 0; b < 64; b++) chi2 += (bins[b] - expect) * (bins[b] - expect) / expect;
    printf("chi-square over 64 bins: %.1f\n", chi2);
    CHECKF(chi2 < 130, "uniform draws fail the chi-square test: %f", chi2);

    float a[5], b[5];
    trn_rng_fill_normal(a, 5, 0.02f, 3, 4);
    trn_rng_fill_normal(b, 5, 0.02f, 3, 4);
    for (int i = 0; i < 5; i++)
        CHECK(a[i] == b[i] && a[i] == 0.02f * (float)trn_rng_normal(3, 4, i));
    return check_report("grad_rng");
}
