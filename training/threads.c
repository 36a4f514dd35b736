/* training/threads.c — thread counts for OpenBLAS and OpenMP from config or environment. */
#include "threads.h"

#include "rv.h"

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int parse_count(const char *var, const char *text, int *out, char *err) {
    char *end;
    errno = 0;
    long x = strtol(text, &end, 10);
    if (errno || end == text || *end != 0 || x < 1 || x > TRN_THREADS_MAX)
        return rv_fail(err, "%s='%s' is not a thread count (an integer from 1 to %d)", var, text,
                       TRN_THREADS_MAX);
    *out = (int)x;
    return 0;
}

/* The team size trn_threads_setup chose; a process that never calls it keeps the engine's
 * loops serial whatever OpenMP's default would be (ranks × threads must not exceed the cores). */
static int team_size = 1;

int trn_threads_setup(int config_threads, trn_threads_info *info, char *err) {
    static const char *vars[] = {"REVEAL_THREADS", "OPENBLAS_NUM_THREADS"};
    info->requested = 1;
    info->source = "default";
    if (config_threads > TRN_THREADS_MAX)
        return rv_fail(err, "config threads = %d, expected at most %d", config_threads,
                       TRN_THREADS_MAX);
    if (config_threads > 0) {
        info->requested = config_threads;
        info->source = "config";
    } else {
        for (int i = 0; i < 2; i++) {
            const char *text = getenv(vars[i]);
            if (!text || !text[0]) continue;
            if (parse_count(vars[i], text, &info->requested, err) != 0) return -1;
            info->source = vars[i];
            break;
        }
    }
#ifdef _OPENMP
    /* One pool: the engine's OpenMP team splits the matmuls and the elementwise loops, and
     * OpenBLAS runs each call on the calling thread (training/layer_impl.h). */
    openblas_set_num_threads(1);
    omp_set_num_threads(info->requested);
    info->omp_threads = omp_get_max_threads();
    team_size = info->requested;
#else
    openblas_set_num_threads(info->requested);
    info->omp_threads = 0;
#endif
    info->blas_threads = openblas_get_num_threads();
    info->blas_parallel = openblas_get_parallel();
    info->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return 0;
}

void trn_threads_describe(const trn_threads_info *info, char *buf, int n) {
    static const char *kinds[] = {"sequential", "pthreads", "OpenMP"};
    const char *kind = info->blas_parallel >= 0 && info->blas_parallel <= 2
                           ? kinds[info->blas_parallel]
                           : "unknown";
    char omp[32] = "off";
    if (info->omp_threads > 0) snprintf(omp, sizeof omp, "%d", info->omp_threads);
    snprintf(
        buf, (size_t)n, "threads %d (from %s): OpenBLAS %d (%s), OpenMP %s, %d cores, kernels %s",
        info->requested, info->source, info->blas_threads, kind, omp, info->cores, trn_kernels());
}

const char *trn_kernels(void) {
#ifdef TRN_CLONES
    /* the test GCC's resolver of target_clones("arch=x86-64-v3") makes */
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v3") ? "x86-64-v3" : "baseline";
#else
    return "baseline";
#endif
}

int trn_threads_team(void) {
#ifdef _OPENMP
    if (team_size == 1 || omp_in_parallel() || openblas_get_num_threads() != 1) return 1;
    int n = omp_get_max_threads();
    return n < team_size ? n : team_size;
#else
    return 1;
#endif
}

void trn_threads_share(size_t n, size_t *lo, size_t *hi) {
    size_t j = 0, nt = 1;
#ifdef _OPENMP
    j = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
#endif
    *lo = n / nt * j;
    *hi = j + 1 == nt ? n : n / nt * (j + 1);
}
