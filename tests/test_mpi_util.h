/* tests/test_mpi_util.h — what the mpi_ tests share. Each test executable plays two parts: run
 * by ctest it is the driver (builds stores, writes layouts, starts `mpirun ... <itself>` with
 * a time limit and checks what the job printed and how it ended); run by mpirun (the
 * OMPI_COMM_WORLD_SIZE variable is set) it is the job, rank 0 a test coordinator and the
 * other ranks real workers (wrk_role_run). */
#ifndef TEST_MPI_UTIL_H
#define TEST_MPI_UTIL_H

#include "check.h"
#include "comm.h"
#include "memstore.h"
#include "rv.h"
#include "worker.h"

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline int mpi_in_job(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") != NULL;
}

/* ---- driver side ---- */

typedef struct {
    int status;     /* exit code, 128 + signal, or -1 when the time limit killed it */
    double seconds; /* wall time */
    char *out;      /* stdout and stderr, merged */
} mpi_run;

static inline char *mpi_slurp(const char *path) {
    void *data;
    size_t n;
    char err[RV_ERR_MAX];
    if (rv_read_file(path, 64u << 20, &data, &n, err) != 0) return strdup("");
    return data;
}

/* Starts `mpirun --oversubscribe -np np [extra...] self args...` in its own process group with
 * output to out_path; returns the pid. */
static inline pid_t mpi_start(const char *mpirun, int np, const char *const *extra,
                              const char *self, const char *const *args, const char *out_path) {
    const char *argv[64];
    char nps[16];
    snprintf(nps, sizeof nps, "%d", np);
    int a = 0;
    argv[a++] = mpirun;
    argv[a++] = "--oversubscribe";
    argv[a++] = "-np";
    argv[a++] = nps;
    for (; extra && *extra && a < 40; extra++) argv[a++] = *extra;
    argv[a++] = self;
    for (; args && *args && a < 62; args++) argv[a++] = *args;
    argv[a] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        FILE *f = freopen(out_path, "w", stdout);
        if (!f || dup2(fileno(stdout), 2) < 0) _exit(127);
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        setenv("OMP_NUM_THREADS", "1", 1);
        execv(mpirun, (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

/* Waits for the job at most limit_s seconds (then kills its process group). */
static inline mpi_run mpi_wait(pid_t pid, double limit_s, double started, const char *out_path) {
    mpi_run r = {.status = -1};
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (rv_now() - started > limit_s) {
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        usleep(20000);
    }
    r.seconds = rv_now() - started;
    r.out = mpi_slurp(out_path);
    return r;
}

static inline mpi_run mpi_job(const char *mpirun, int np, const char *const *extra,
                              const char *self, const char *const *args, double limit_s) {
    char out_path[64];
    snprintf(out_path, sizeof out_path, "mpi_out_%d.txt", (int)getpid());
    double t0 = rv_now();
    pid_t pid = mpi_start(mpirun, np, extra, self, args, out_path);
    mpi_run r = mpi_wait(pid, limit_s, t0, out_path);
    unlink(out_path);
    return r;
}

static inline size_t count_of(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* ---- stores ---- */

enum { T_DK = 16, T_C = 2, T_D = 4 };

static inline uint64_t t_rng(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline float t_uniform(uint64_t *s) {
    return (float)((t_rng(s) >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* An L2-normalised vector of n floats. */
static inline void t_unit(float *v, size_t n, uint64_t *s) {
    double norm = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = t_uniform(s);
        norm += (double)v[i] * v[i];
    }
    for (size_t i = 0; i < n; i++) v[i] = (float)(v[i] / sqrt(norm));
}

/* A store of n items of `type` (kg or qa); every item but each `keyless`-th gets a key (dk)
 * and a value (c, d) drawn from the seed. Returns the items with a key. */
static inline size_t t_build_store(const char *dir, Reveal__SourceType type, const char *name,
                                   size_t n, size_t keyless, uint64_t seed) {
    char err[RV_ERR_MAX], a[64], b[64];
    mem_config cfg = {.type = type, .image_size = 16};
    snprintf(cfg.name, sizeof cfg.name, "%s", name);
    mem_store *s;
    REQUIRE(mem_open_or_create(dir, &cfg, &s, err) == 0);
    mem_batch *bt = mem_batch_new(s);
    uint64_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        Reveal__KnowledgeItem it = REVEAL__KNOWLEDGE_ITEM__INIT;
        it.type = type;
        snprintf(a, sizeof a, "%s entity %zu", name, i);
        snprintf(b, sizeof b, "object %llu", (unsigned long long)(seed * 1000003u + i));
        if (type == REVEAL__SOURCE_TYPE__KG_TRIPLE) {
            it.subject = a;
            it.relation = "has";
            it.object = b;
        } else {
            it.question = a;
            it.answer = b;
        }
        int outcome;
        if (mem_batch_put_item(bt, &it, &ids[i], &outcome, err)) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
    }
    REQUIRE(mem_batch_commit(bt, 1, err) == 0);
    mem_batch_free(bt);
    uint64_t rs = seed;
    size_t keyed = 0;
    for (size_t i = 0; i < n; i++) {
        if (keyless && i % keyless == keyless - 1) continue;
        float key[T_DK], value[T_C * T_D];
        t_unit(key, T_DK, &rs);
        for (int j = 0; j < T_C * T_D; j++) value[j] = t_uniform(&rs);
        REQUIRE(mem_put_vectors(s, ids[i], 1, key, T_DK, value, T_C, T_D, err) == 0);
        keyed++;
    }
    free(ids);
    mem_close(s);
    return keyed;
}

/* Items in a store (it must open). */
static inline uint64_t t_store_items(const char *dir) {
    char err[RV_ERR_MAX];
    mem_store *s;
    if (mem_open(dir, 1, &s, err)) {
        fprintf(stderr, "%s\n", err);
        return UINT64_MAX;
    }
    mem_stats st;
    uint64_t n = mem_get_stats(s, &st, err) ? UINT64_MAX : st.items;
    mem_close(s);
    return n;
}

static inline void t_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    REQUIRE(fputs(text, f) >= 0);
    REQUIRE(fclose(f) == 0);
}

/* ---- job side ---- */

/* Ends a rank of the job with `code`. With exit_dir, the rank first records its code in
 * exit_dir/exit-<rank> and waits for the others to do the same, so the driver can check that
 * every rank ended, and how, before mpirun tears the job down. */
static inline void t_job_exit(comm *c, int code, const char *exit_dir) {
    if (exit_dir) {
        char path[512], text[16];
        snprintf(path, sizeof path, "%s/exit-%d", exit_dir, comm_rank(c));
        snprintf(text, sizeof text, "%d\n", code);
        t_write_text(path, text);
        MPI_Barrier(comm_mpi(c));
    }
    comm_free(c);
    MPI_Finalize();
    exit(code);
}

/* MPI_Init, the communicator, and the worker part for ranks ≥ 1: returns only on rank 0. A
 * worker exits 0 after SHUTDOWN and 1 when the set-up failed (rank 0 reports it); a failure
 * while serving is printed and aborts the job, as a role's main does. */
static inline comm *t_job_start(int *argc, char ***argv, const char *layout,
                                const wrk_role_options *o, const char *exit_dir) {
    MPI_Init(argc, argv);
    char err[RV_ERR_MAX];
    comm *c;
    if (comm_create("test", &c, err)) {
        fprintf(stderr, "%s\n", err);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (comm_rank(c) == COMM_ROOT) return c;
    int rc = wrk_role_run(c, layout, o, err);
    if (rc < 0) {
        rv_error("%s", err);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    t_job_exit(c, rc ? 1 : 0, exit_dir);
    return NULL;
}

#endif
