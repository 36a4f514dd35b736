/* tests/test_store_cli.h — running the `reveal` command from tests and checking what it left:
 * a child process with captured output (and optionally a file-size limit), small file helpers,
 * and the store check every ingest test ends with (opens, counters equal the items found). */
#ifndef TEST_STORE_CLI_H
#define TEST_STORE_CLI_H

#include "check.h"
#include "memstore.h"
#include "rv.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    int status; /* exit code, or 128 + signal */
    char *out;  /* stdout, NUL-terminated */
    char *err;  /* stderr */
} cli_result;

static inline char *slurp(const char *path) {
    void *data;
    size_t n;
    char err[RV_ERR_MAX];
    if (rv_read_file(path, 64u << 20, &data, &n, err) != 0) return strdup("");
    return data;
}

static inline void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    REQUIRE(fwrite(data, 1, n, f) == n);
    REQUIRE(fclose(f) == 0);
}

static inline void write_text(const char *path, const char *text) {
    write_file(path, text, strlen(text));
}

/* Runs a shell command with stdout and stderr captured; fsize_limit > 0 caps the size of any
 * file the command writes (RLIMIT_FSIZE, SIGXFSZ ignored so writes fail with EFBIG). */
static inline cli_result run_limited(long fsize_limit, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char out_path[64], err_path[64];
    snprintf(out_path, sizeof out_path, "/tmp/rv_cli_out_%d", (int)getpid());
    snprintf(err_path, sizeof err_path, "/tmp/rv_cli_err_%d", (int)getpid());
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (!freopen(out_path, "w", stdout) || !freopen(err_path, "w", stderr)) _exit(127);
        if (fsize_limit > 0) {
            struct rlimit rl = {(rlim_t)fsize_limit, (rlim_t)fsize_limit};
            signal(SIGXFSZ, SIG_IGN);
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(127);
        }
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    cli_result r;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    unlink(out_path);
    unlink(err_path);
    return r;
}

#define run_cli(...) run_limited(0, __VA_ARGS__)

static inline void cli_free(cli_result *r) {
    free(r->out);
    free(r->err);
}

static inline const char *reveal_bin(void) {
    const char *b = getenv("REVEAL_BIN");
    REQUIRE(b != NULL && b[0]);
    return b;
}

/* The store opens, its item counter equals the live items iterated (each of which decodes),
 * and every live logical key maps to a live item. Returns the item count. */
static inline uint64_t store_check(const char *dir, mem_stats *st_out) {
    char err[RV_ERR_MAX];
    mem_store *s;
    int opened = mem_open(dir, 1, &s, err);
    CHECKF(opened == 0, "store %s does not open: %s", dir, err);
    if (opened != 0) return 0;
    mem_stats st;
    REQUIRE(mem_get_stats(s, &st, err) == 0);
    mem_iter *it;
    REQUIRE(mem_iter_new(s, 0, &it, err) == 0);
    uint64_t n = 0, id;
    Reveal__KnowledgeItem *item;
    int got;
    while ((got = mem_iter_next(it, &id, &item, err)) == 1) {
        n++;
        if (item->key && item->key[0]) {
            uint64_t mapped;
            CHECKF(mem_lookup_key(s, item->key, &mapped, err) == 1 && mapped == id,
                   "key of item %llu does not map back to it", (unsigned long long)id);
        }
        reveal__knowledge_item__free_unpacked(item, NULL);
    }
    CHECKF(got == 0, "iterating %s: %s", dir, err);
    CHECKF(n == st.items, "store %s: counters say %llu items, iteration found %llu", dir,
           (unsigned long long)st.items, (unsigned long long)n);
    mem_iter_free(it);
    mem_close(s);
    if (st_out) *st_out = st;
    return n;
}

#endif
