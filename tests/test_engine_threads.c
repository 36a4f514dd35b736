/* tests/test_engine_threads.c — where the thread count comes from (config, REVEAL_THREADS,
 * OPENBLAS_NUM_THREADS, default), that it goes to the OpenMP team with OpenBLAS on one thread,
 * that bad values are refused with the variable named, and how the team and its shares of a
 * range are worked out. */
#include "check.h"
#include "rv.h"
#include "threads.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static void expect(int config, int threads, const char *source) {
    trn_threads_info info;
    char err[RV_ERR_MAX], line[256];
    int rc = trn_threads_setup(config, &info, err);
    CHECKF(rc == 0, "%s", err);
    CHECKF(info.requested == threads && strcmp(info.source, source) == 0,
           "got %d from %s, want %d from %s", info.requested, info.source, threads, source);
#ifdef _OPENMP
    /* one pool: the OpenMP team gets the count, OpenBLAS runs each call on the caller */
    CHECKF(info.blas_threads == 1, "OpenBLAS reports %d threads, want 1", info.blas_threads);
    CHECKF(info.omp_threads == threads, "OpenMP reports %d threads, want %d", info.omp_threads,
           threads);
    CHECKF(trn_threads_team() == threads, "team of %d threads, want %d", trn_threads_team(),
           threads);
#else
    CHECKF(info.blas_threads == threads, "OpenBLAS reports %d threads, want %d", info.blas_threads,
           threads);
    CHECK(trn_threads_team() == 1);
#endif
    CHECK(info.cores >= 1);
    trn_threads_describe(&info, line, sizeof line);
    CHECKF(strstr(line, source) != NULL, "%s", line);
    printf("%s\n", line);
}

static void expect_error(int config, const char *needle) {
    trn_threads_info info;
    char err[RV_ERR_MAX] = "";
    CHECK(trn_threads_setup(config, &info, err) == -1);
    CHECKF(strstr(err, needle), "error '%s' does not mention '%s'", err, needle);
}

/* The team is 1 inside a parallel region and while OpenBLAS has threads of its own; the
 * threads' shares of n items are contiguous, in thread order, and cover [0, n) once. */
static void check_team_and_shares(void) {
#ifdef _OPENMP
    char err[RV_ERR_MAX] = "";
    trn_threads_info info;
    CHECKF(trn_threads_setup(3, &info, err) == 0, "%s", err);
    int inner = -1;
#pragma omp parallel num_threads(2)
    {
#pragma omp single
        inner = trn_threads_team();
    }
    CHECKF(inner == 1, "team of %d inside a parallel region, want 1", inner);
    openblas_set_num_threads(2);
    CHECKF(trn_threads_team() == 1, "team of %d beside 2 OpenBLAS threads, want 1",
           trn_threads_team());
    openblas_set_num_threads(1);
    for (size_t n = 0; n < 12; n++) {
        size_t lo[3] = {0}, hi[3] = {0};
        int seen = 0;
#pragma omp parallel num_threads(3) reduction(+ : seen)
        {
            int t = omp_get_thread_num();
            trn_threads_share(n, &lo[t], &hi[t]);
            seen = 1;
        }
        CHECK(seen == 3);
        CHECKF(lo[0] == 0 && hi[0] == lo[1] && hi[1] == lo[2] && hi[2] == n,
               "n %zu: shares [%zu, %zu) [%zu, %zu) [%zu, %zu)", n, lo[0], hi[0], lo[1], hi[1],
               lo[2], hi[2]);
    }
#endif
    size_t lo = 7, hi = 7;
    trn_threads_share(5, &lo, &hi);
    CHECKF(lo == 0 && hi == 5, "outside a region the share is [%zu, %zu), want [0, 5)", lo, hi);
}

int main(void) {
#ifdef _OPENMP
    omp_set_num_threads(2);
    CHECKF(trn_threads_team() == 1, "team of %d before trn_threads_setup, want 1",
           trn_threads_team());
#endif
    unsetenv("REVEAL_THREADS");
    unsetenv("OPENBLAS_NUM_THREADS");
    expect(0, 1, "default");
    setenv("OPENBLAS_NUM_THREADS", "3", 1);
    expect(0, 3, "OPENBLAS_NUM_THREADS");
    setenv("REVEAL_THREADS", "2", 1);
    expect(0, 2, "REVEAL_THREADS");
    expect(4, 4, "config");
    expect(-1, 2, "REVEAL_THREADS");
    setenv("REVEAL_THREADS", "", 1);
    expect(0, 3, "OPENBLAS_NUM_THREADS");
    setenv("REVEAL_THREADS", "two", 1);
    expect_error(0, "REVEAL_THREADS='two' is not a thread count");
    expect(1, 1, "config"); /* the config wins over a bad variable */
    setenv("REVEAL_THREADS", "0", 1);
    expect_error(0, "REVEAL_THREADS='0'");
    setenv("REVEAL_THREADS", "8x", 1);
    expect_error(0, "REVEAL_THREADS='8x'");
    unsetenv("REVEAL_THREADS");
    setenv("OPENBLAS_NUM_THREADS", "99999", 1);
    expect_error(0, "OPENBLAS_NUM_THREADS='99999'");
    expect_error(5000, "config threads = 5000");
    check_team_and_shares();
    return check_report("engine_threads");
}
