/* tests/test_engine_threads.c — where the thread count comes from (config, REVEAL_THREADS,
 * OPENBLAS_NUM_THREADS, default), that OpenBLAS and OpenMP report it back, and that bad values
 * are refused with the variable named. */
#include "check.h"
#include "rv.h"
#include "threads.h"

#include <stdlib.h>
#include <string.h>

static void expect(int config, int threads, const char *source) {
    trn_threads_info info;
    char err[RV_ERR_MAX], line[256];
    int rc = trn_threads_setup(config, &info, err);
    CHECKF(rc == 0, "%s", err);
    CHECKF(info.requested == threads && strcmp(info.source, source) == 0,
           "got %d from %s, want %d from %s", info.requested, info.source, threads, source);
    CHECKF(info.blas_threads == threads, "OpenBLAS reports %d threads, want %d", info.blas_threads,
           threads);
#ifdef _OPENMP
    CHECKF(info.omp_threads == threads, "OpenMP reports %d threads, want %d", info.omp_threads,
           threads);
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

int main(void) {
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
    return check_report("engine_threads");
}
