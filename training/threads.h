/* training/threads.h — one place that decides how many threads OpenBLAS and OpenMP use.
 *
 * Order of precedence: a positive value from the config, then the environment variable
 * REVEAL_THREADS, then OPENBLAS_NUM_THREADS, else 1. Built with OpenMP, the count goes to the
 * OpenMP team, which splits the matmuls as well as the engine's loops, and OpenBLAS runs each
 * call on the calling thread: one pool of threads, not two competing for the same cores. One thread
 * is the default because a node usually runs several ranks and small models run fastest with
 * parallelism across ranks (ranks × threads should not exceed the cores).
 */
#ifndef TRN_THREADS_H
#define TRN_THREADS_H

#include <stddef.h>

#define TRN_THREADS_MAX 1024

typedef struct {
    int requested;      /* the count chosen */
    const char *source; /* "config", "REVEAL_THREADS", "OPENBLAS_NUM_THREADS" or "default" */
    int blas_threads;   /* openblas_get_num_threads() after setting (1 with OpenMP) */
    int omp_threads;    /* omp_get_max_threads() after setting; 0 when built without OpenMP */
    int blas_parallel;  /* openblas_get_parallel(): 0 sequential, 1 pthreads, 2 OpenMP */
    int cores;          /* online processors */
} trn_threads_info;

/* Chooses the count (config_threads <= 0 means "not set"), applies it to OpenBLAS and OpenMP, and
 * reports what is in effect. Refuses a variable that is not an integer in 1..TRN_THREADS_MAX,
 * naming it and its value. */
int trn_threads_setup(int config_threads, trn_threads_info *info, char *err);

/* Threads of the engine's OpenMP team for work started outside a parallel region: the count
 * trn_threads_setup chose, while OpenBLAS runs each call on the calling thread (as it sets it);
 * 1 in a process that never called it, inside a parallel region, or beside OpenBLAS threads. With
 * OpenBLAS's own threads busy on the matmuls, a second pool only competes with them for the cores,
 * so the engine's loops stay serial (docs/train_step.md). */
int trn_threads_team(void);

/* The calling thread's share [*lo, *hi) of n items: the team's threads take contiguous
 * shares in thread order (the whole range outside a parallel region). */
void trn_threads_share(size_t n, size_t *lo, size_t *hi);

/* One line for the log: "threads 2 (from REVEAL_THREADS): OpenBLAS 2 (pthreads), OpenMP 2, 2
 * cores, kernels x86-64-v3". */
void trn_threads_describe(const trn_threads_info *info, char *buf, int n);

/* GCC on x86-64 builds the elementwise kernels twice (layer_impl.h, TRN_HOT) and the loader
 * picks one per CPU. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define TRN_CLONES 1
#endif

/* The elementwise kernels this process runs: "x86-64-v3" (AVX2, FMA) or "baseline". */
const char *trn_kernels(void);

#endif
