/* tests/test_job_fuzz.c — the job library's two parsers of outside input under libFuzzer.
 *
 * First byte even: the rest is a config file, then up to 8 --set arguments after NUL bytes.
 * Whatever is accepted must print (job_config_json) to a config that loads back to the same
 * struct. First byte odd: the rest is a checkpoint's manifest.json (sealed by a matching DONE)
 * beside one file; job_ckpt_verify must answer without a crash and accept only a manifest that
 * lists exactly that file with its size and hash.
 */
#define _GNU_SOURCE
#include "job.h"
#include "rv.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    long batch;
    double lr;
    int shuffle;
    char name[12];
} fuzz_cfg;

static const job_field fuzz_fields[] = {
    {"train.batch", JOB_INT, offsetof(fuzz_cfg, batch), -5, 1e15, 0, "b"},
    {"train.optim.lr", JOB_FLOAT, offsetof(fuzz_cfg, lr), -1e300, 1e300, 0, "l"},
    {"shuffle", JOB_BOOL, offsetof(fuzz_cfg, shuffle), 0, 0, 0, "s"},
    {"name", JOB_STRING, offsetof(fuzz_cfg, name), 0, 0, 12, "n"},
};
#define FUZZ_N (sizeof fuzz_fields / sizeof fuzz_fields[0])

static char fuzz_dir[64], fuzz_ckpt[96];

/* Writes fuzz_dir/name (plainly: durability is not under test here). */
static void fuzz_put(const char *name, const void *data, size_t n) {
    char path[160];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) abort();
    fclose(f);
}

static void fuzz_config(const char *data, size_t n) {
    char err[RV_ERR_MAX], path[128], *sets[8];
    const char *end = data + n, *file_end = memchr(data, 0, n);
    if (!file_end) file_end = end;
    fuzz_put("cfg.json", data, (size_t)(file_end - data));
    int n_sets = 0;
    for (const char *p = file_end; p < end && n_sets < 8;) {
        const char *start = p + 1, *stop = memchr(start, 0, (size_t)(end - start));
        if (!stop) stop = end;
        sets[n_sets++] = strndup(start, (size_t)(stop - start));
        p = stop;
    }
    fuzz_cfg c = {4, 0.5, 1, "x"}, back = {0, 0, 0, ""};
    snprintf(path, sizeof path, "%s/cfg.json", fuzz_dir);
    if (job_config_load(fuzz_fields, FUZZ_N, &c, path, sets, n_sets, err) == 0) {
        char *json = job_config_json(fuzz_fields, FUZZ_N, &c);
        if (!json) abort();
        fuzz_put("back.json", json, strlen(json));
        free(json);
        snprintf(path, sizeof path, "%s/back.json", fuzz_dir);
        if (job_config_load(fuzz_fields, FUZZ_N, &back, path, NULL, 0, err) != 0) {
            fprintf(stderr, "resolved config refused: %s\n", err);
            abort();
        }
        if (back.batch != c.batch || back.lr != c.lr || back.shuffle != c.shuffle ||
            strcmp(back.name, c.name) != 0)
            abort();
    } else if (!err[0]) {
        abort(); /* a refusal always says why */
    }
    for (int i = 0; i < n_sets; i++) free(sets[i]);
}

static void fuzz_manifest(const char *data, size_t n) {
    char err[RV_ERR_MAX] = "", done[96];
    fuzz_put("ckpt/manifest.json", data, n);
    int len = snprintf(done, sizeof done, "manifest.json xxh3 %016llx\n",
                       (unsigned long long)rv_hash64(data, n, 0));
    fuzz_put("ckpt/DONE", done, (size_t)len);
    if (job_ckpt_verify(fuzz_ckpt, err) == 0) {
        /* Accepted: then it names a.bin with its real size and hash, and nothing else. */
        char want[32];
        snprintf(want, sizeof want, "%016llx", (unsigned long long)rv_hash64("abc", 3, 0));
        if (!memmem(data, n, "a.bin", 5) || !memmem(data, n, want, 16)) abort();
    } else if (!err[0]) {
        abort();
    }
}

static void fuzz_cleanup(void) {
    rv_remove_tree(fuzz_dir, NULL);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t n) {
    if (!fuzz_dir[0]) {
        snprintf(fuzz_dir, sizeof fuzz_dir, "/tmp/rv_job_fuzz_%d", (int)getpid());
        snprintf(fuzz_ckpt, sizeof fuzz_ckpt, "%s/ckpt", fuzz_dir);
        char err[RV_ERR_MAX];
        if (rv_mkdirs(fuzz_ckpt, err) != 0) abort();
        fuzz_put("ckpt/a.bin", "abc", 3);
        atexit(fuzz_cleanup);
    }
    if (n == 0) return 0;
    if (data[0] & 1)
        fuzz_manifest((const char *)data + 1, n - 1);
    else
        fuzz_config((const char *)data + 1, n - 1);
    return 0;
}
