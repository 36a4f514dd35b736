/* job/ckpt.c — checkpoint directories of a run: DIR/checkpoints/step-%08llu/.
 *
 * The ranks write their files into step-N.tmp; rank 0 seals it. A checkpoint counts only once it
 * is renamed to step-N with a DONE marker, and its manifest lets anyone check every byte later:
 * a checkpoint damaged by a crash, a full disk or a bad copy is found and skipped on resume,
 * never loaded. docs/run.md describes the format.
 */
#define _GNU_SOURCE
#include "job_internal.h"
#include "rv.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define CKPT_FORMAT       1
#define CKPT_MANIFEST     "manifest.json"
#define CKPT_DONE         "DONE"
#define CKPT_MANIFEST_MAX ((size_t)256 << 20)
#define CKPT_CHUNK        ((size_t)1 << 20)

/* A growing list of malloc'ed strings. */
typedef struct {
    char **items;
    size_t n, cap;
} ckpt_list;

static int ckpt_list_add(ckpt_list *l, const char *s, char *err) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **items = realloc(l->items, cap * sizeof *items);
        if (!items) return rv_fail(err, "out of memory listing a checkpoint");
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n] = strdup(s);
    if (!l->items[l->n]) return rv_fail(err, "out of memory listing a checkpoint");
    l->n++;
    return 0;
}

static void ckpt_list_free(ckpt_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

static int ckpt_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void ckpt_list_sort(ckpt_list *l) {
    if (l->n > 1) qsort(l->items, l->n, sizeof *l->items, ckpt_cmp_str);
}

/* Walks root/rel: regular files go to files as paths relative to root, directories to dirs as
 * full paths, children before their parent (the order in which they are fsynced). Anything else
 * (a symlink, a device) is refused: a checkpoint must hold its own bytes. */
static int ckpt_walk(const char *root, const char *rel, ckpt_list *files, ckpt_list *dirs,
                     char *err) {
    char full[JOB_PATH_MAX];
    if (snprintf(full, sizeof full, "%s%s%s", root, rel[0] ? "/" : "", rel) >= (int)sizeof full)
        return rv_fail(err, "%s/%s: path too long", root, rel);
    DIR *d = opendir(full);
    if (!d) return rv_fail(err, "%s: cannot open directory: %s", full, strerror(errno));
    int rc = -1;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char child_rel[JOB_PATH_MAX], child[JOB_PATH_MAX];
        if (snprintf(child_rel, sizeof child_rel, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >=
                (int)sizeof child_rel ||
            snprintf(child, sizeof child, "%s/%s", root, child_rel) >= (int)sizeof child) {
            rv_fail(err, "%s/%s: path too long", full, e->d_name);
            goto cleanup;
        }
        struct stat st;
        if (lstat(child, &st) != 0) {
            rv_fail(err, "%s: cannot stat: %s", child, strerror(errno));
            goto cleanup;
        }
        if (S_ISDIR(st.st_mode)) {
            if (ckpt_walk(root, child_rel, files, dirs, err) != 0) goto cleanup;
        } else if (S_ISREG(st.st_mode)) {
            if (ckpt_list_add(files, child_rel, err) != 0) goto cleanup;
        } else {
            rv_fail(err,
                    "%s: not a regular file or directory (a checkpoint holds copies, not "
                    "links)",
                    child);
            goto cleanup;
        }
        errno = 0;
    }
    if (errno != 0) {
        rv_fail(err, "%s: cannot read directory: %s", full, strerror(errno));
        goto cleanup;
    }
    if (dirs && ckpt_list_add(dirs, full, err) != 0) goto cleanup;
    rc = 0;
cleanup:
    closedir(d);
    return rc;
}

/* Size and XXH3-64 of a file, streamed (store copies may be gigabytes); fsyncs it on request. */
static int ckpt_hash_file(const char *path, int sync, uint64_t *size, uint64_t *hash, char *err) {
    int rc = -1, fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rv_fail(err, "%s: cannot open: %s", path, strerror(errno));
    XXH3_state_t *state = XXH3_createState();
    char *buf = malloc(CKPT_CHUNK);
    if (!state || !buf) {
        rv_fail(err, "%s: out of memory hashing", path);
        goto cleanup;
    }
    XXH3_64bits_reset(state);
    *size = 0;
    for (;;) {
        ssize_t got = read(fd, buf, CKPT_CHUNK);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            rv_fail(err, "%s: read failed: %s", path, strerror(errno));
            goto cleanup;
        }
        if (got == 0) break;
        XXH3_64bits_update(state, buf, (size_t)got);
        *size += (uint64_t)got;
    }
    *hash = XXH3_64bits_digest(state);
    if (sync && fsync(fd) != 0) {
        rv_fail(err, "%s: fsync failed: %s", path, strerror(errno));
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(buf);
    XXH3_freeState(state);
    close(fd);
    return rc;
}

/* "step-123" (digits only, as made by %08llu or by hand) → 123; else -1. */
static int ckpt_parse_name(const char *name, uint64_t *step) {
    if (strncmp(name, "step-", 5) != 0) return -1;
    const char *digits = name + 5;
    size_t n = strspn(digits, "0123456789");
    if (n == 0 || n > 20 || digits[n] != 0) return -1;
    errno = 0;
    unsigned long long v = strtoull(digits, NULL, 10);
    if (errno == ERANGE) return -1;
    *step = v;
    return 0;
}

typedef struct {
    uint64_t step;
    char name[32];
} ckpt_entry;

static int ckpt_cmp_newest_first(const void *a, const void *b) {
    uint64_t x = ((const ckpt_entry *)a)->step, y = ((const ckpt_entry *)b)->step;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The sealed checkpoints in cdir, newest first; leftover *.tmp names go to tmps if given.
 * A missing cdir holds none. */
static int ckpt_scan(const char *cdir, ckpt_entry **out, size_t *n_out, ckpt_list *tmps,
                     char *err) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(cdir);
    if (!d) {
        if (errno == ENOENT) return 0;
        return rv_fail(err, "%s: cannot open directory: %s", cdir, strerror(errno));
    }
    ckpt_entry *list = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        uint64_t step;
        if (len > 4 && !strcmp(e->d_name + len - 4, ".tmp") && !strncmp(e->d_name, "step-", 5)) {
            if (tmps && ckpt_list_add(tmps, e->d_name, err) != 0) goto cleanup;
            continue;
        }
        if (ckpt_parse_name(e->d_name, &step) != 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            ckpt_entry *grown = realloc(list, cap * sizeof *grown);
            if (!grown) {
                rv_fail(err, "%s: out of memory listing checkpoints", cdir);
                goto cleanup;
            }
            list = grown;
        }
        list[n].step = step;
        snprintf(list[n].name, sizeof list[n].name, "%s", e->d_name);
        n++;
    }
    if (n > 1) qsort(list, n, sizeof *list, ckpt_cmp_newest_first);
    *out = list;
    *n_out = n;
    list = NULL;
    rc = 0;
cleanup:
    free(list);
    closedir(d);
    return rc;
}

static void ckpt_paths(const job_run *r, uint64_t step, char *cdir, char *tmp, char *final) {
    snprintf(cdir, JOB_PATH_MAX, "%s/checkpoints", r->dir);
    snprintf(tmp, JOB_PATH_MAX, "%s/step-%08llu.tmp", cdir, (unsigned long long)step);
    snprintf(final, JOB_PATH_MAX, "%s/step-%08llu", cdir, (unsigned long long)step);
}

/* Refuses, before any work is done, a caller's buffer too small for the path it will get. */
static int ckpt_check_room(size_t cap, const char *src, char *err) {
    if (cap == 0 || strlen(src) >= cap)
        return rv_fail(err, "%s: path longer than the %zu bytes given for it", src, cap);
    return 0;
}

static int ckpt_copy_out(char *dst, size_t cap, const char *src, char *err) {
    if (!dst) return 0;
    if (ckpt_check_room(cap, src, err) != 0) return -1;
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

int job_ckpt_begin(job_run *r, uint64_t step, char *path, size_t cap, char *err) {
    char cdir[JOB_PATH_MAX], tmp[JOB_PATH_MAX], final[JOB_PATH_MAX];
    ckpt_paths(r, step, cdir, tmp, final);
    if (path && ckpt_check_room(cap, tmp, err) != 0) return -1;
    if (rv_mkdirs(cdir, err) != 0) return -1;
    if (rv_remove_tree(tmp, err) != 0) return rv_fail_wrap(err, "leftover checkpoint");
    if (mkdir(tmp, 0755) != 0) return rv_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
    return ckpt_copy_out(path, cap, tmp, err);
}

/* manifest.json for the files under dir (fsyncing each as it is hashed). */
static char *ckpt_manifest(const char *dir, uint64_t step, const ckpt_list *files, char *err) {
    char *text = NULL, full[JOB_PATH_MAX], num[32];
    cJSON *root = cJSON_CreateObject(), *list = NULL;
    if (!root) goto oom;
    snprintf(num, sizeof num, "%llu", (unsigned long long)step);
    if (!cJSON_AddNumberToObject(root, "format", CKPT_FORMAT) ||
        !cJSON_AddRawToObject(root, "step", num) ||
        !cJSON_AddStringToObject(root, "git_revision", job_git_revision()) ||
        !cJSON_AddNumberToObject(root, "created_unix", (double)time(NULL)) ||
        !(list = cJSON_AddArrayToObject(root, "files")))
        goto oom;
    for (size_t i = 0; i < files->n; i++) {
        uint64_t size, hash;
        snprintf(full, sizeof full, "%s/%s", dir, files->items[i]);
        if (ckpt_hash_file(full, 1, &size, &hash, err) != 0) goto fail;
        cJSON *f = cJSON_CreateObject();
        if (!f || !cJSON_AddItemToArray(list, f)) {
            cJSON_Delete(f);
            goto oom;
        }
        char size_text[32], hex[24];
        snprintf(size_text, sizeof size_text, "%llu", (unsigned long long)size);
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)hash);
        if (!cJSON_AddStringToObject(f, "path", files->items[i]) ||
            !cJSON_AddRawToObject(f, "size", size_text) || !cJSON_AddStringToObject(f, "xxh3", hex))
            goto oom;
    }
    text = cJSON_Print(root);
    if (!text) goto oom;
    cJSON_Delete(root);
    return text;
oom:
    rv_fail(err, "%s: out of memory writing the manifest", dir);
fail:
    cJSON_Delete(root);
    return NULL;
}

/* Removes cdir/name, saying why, since it deletes a checkpoint. */
static int ckpt_remove(const char *cdir, const char *name, const char *why, char *err) {
    char path[JOB_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", cdir, name);
    rv_info("removing %s (%s)", path, why);
    return rv_remove_tree(path, err);
}

int job_ckpt_commit(job_run *r, uint64_t step, int keep_last, char *path_out, size_t cap,
                    char *err) {
    char cdir[JOB_PATH_MAX], tmp[JOB_PATH_MAX], final[JOB_PATH_MAX], file[JOB_PATH_MAX + 32];
    ckpt_list files = {0}, dirs = {0}, tmps = {0};
    ckpt_entry *have = NULL;
    size_t n_have = 0;
    char *manifest = NULL;
    int rc = -1;
    ckpt_paths(r, step, cdir, tmp, final);
    if (path_out && ckpt_check_room(cap, final, err) != 0) return -1;
    if (keep_last < 0)
        return rv_fail(err, "keep_last is %d; it must be 0 (keep all) or more", keep_last);
    struct stat st;
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode))
        return rv_fail(err, "%s: no checkpoint begun for step %llu", tmp, (unsigned long long)step);
    /* The lines of the steps this checkpoint covers must survive whatever it survives. */
    if (job_metrics_sync(r, err) != 0) return -1;

    if (ckpt_walk(tmp, "", &files, &dirs, err) != 0) goto cleanup;
    ckpt_list_sort(&files);
    for (size_t i = 0; i < files.n; i++) {
        if (!strcmp(files.items[i], CKPT_MANIFEST) || !strcmp(files.items[i], CKPT_DONE)) {
            rv_fail(err, "%s/%s: the name is reserved for the checkpoint's seal", tmp,
                    files.items[i]);
            goto cleanup;
        }
    }
    manifest = ckpt_manifest(tmp, step, &files, err);
    if (!manifest) goto cleanup;
    snprintf(file, sizeof file, "%s/%s", tmp, CKPT_MANIFEST);
    if (rv_write_file_atomic(file, manifest, strlen(manifest), err) != 0) goto cleanup;
    char done[96];
    int done_len = snprintf(done, sizeof done, "%s xxh3 %016llx\n", CKPT_MANIFEST,
                            (unsigned long long)rv_hash64(manifest, strlen(manifest), 0));
    snprintf(file, sizeof file, "%s/%s", tmp, CKPT_DONE);
    if (rv_write_file_atomic(file, done, (size_t)done_len, err) != 0) goto cleanup;
    for (size_t i = 0; i < dirs.n; i++)
        if (rv_fsync_dir(dirs.items[i], err) != 0) goto cleanup;

    /* One run directory holds one history: a checkpoint of this step or a later one was left by
     * an earlier pass (resumed from further back, or restarted with --resume never). */
    if (ckpt_scan(cdir, &have, &n_have, NULL, err) != 0) goto cleanup;
    for (size_t i = 0; i < n_have; i++) {
        if (have[i].step < step) continue;
        if (have[i].step > step)
            rv_warn("%s/%s is newer than step %llu being committed: it belongs to an abandoned "
                    "history of this run",
                    cdir, have[i].name, (unsigned long long)step);
        if (ckpt_remove(cdir, have[i].name, "replaced by the new history", err) != 0) goto cleanup;
    }
    if (rename(tmp, final) != 0) {
        rv_fail(err, "%s: cannot rename to %s: %s", tmp, final, strerror(errno));
        goto cleanup;
    }
    if (rv_fsync_dir(cdir, err) != 0) goto cleanup;

    free(have);
    have = NULL;
    if (ckpt_scan(cdir, &have, &n_have, &tmps, err) != 0) goto cleanup;
    for (size_t i = keep_last ? (size_t)keep_last : n_have; i < n_have; i++)
        if (ckpt_remove(cdir, have[i].name, "beyond --keep-last", err) != 0) goto cleanup;
    for (size_t i = 0; i < tmps.n; i++)
        if (ckpt_remove(cdir, tmps.items[i], "left unsealed by a killed run", err) != 0)
            goto cleanup;
    rc = ckpt_copy_out(path_out, cap, final, err);
cleanup:
    free(manifest);
    free(have);
    ckpt_list_free(&files);
    ckpt_list_free(&dirs);
    ckpt_list_free(&tmps);
    return rc;
}

/* A manifest path must stay inside the checkpoint. */
static int ckpt_safe_relative(const char *p) {
    if (!p[0] || p[0] == '/') return 0;
    for (const char *part = p; part;) {
        const char *slash = strchr(part, '/');
        size_t len = slash ? (size_t)(slash - part) : strlen(part);
        if (len == 0 || (len == 2 && !strncmp(part, "..", 2)) || (len == 1 && part[0] == '.'))
            return 0;
        part = slash ? slash + 1 : NULL;
    }
    return 1;
}

static int ckpt_parse_hex(const char *s, uint64_t *v) {
    if (strlen(s) != 16 || strspn(s, "0123456789abcdef") != 16) return -1;
    *v = strtoull(s, NULL, 16);
    return 0;
}

/* Checks one listed file against its size and hash. */
static int ckpt_check_file(const char *dir, const cJSON *entry, size_t index, char *err) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(entry, "path");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(entry, "size");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(entry, "xxh3");
    uint64_t want_hash, size, hash;
    if (!cJSON_IsString(p) || !ckpt_safe_relative(p->valuestring) || !cJSON_IsNumber(s) ||
        s->valuedouble < 0 || !cJSON_IsString(h) || ckpt_parse_hex(h->valuestring, &want_hash))
        return rv_fail(err,
                       "%s/%s: entry %zu of \"files\" is malformed (needs a relative path, "
                       "a size and a 16-digit xxh3)",
                       dir, CKPT_MANIFEST, index);
    char full[JOB_PATH_MAX];
    if (snprintf(full, sizeof full, "%s/%s", dir, p->valuestring) >= (int)sizeof full)
        return rv_fail(err, "%s/%s: path too long", dir, p->valuestring);
    struct stat st;
    if (lstat(full, &st) != 0)
        return rv_fail(err, "%s: missing (listed in %s)", full, CKPT_MANIFEST);
    if (!S_ISREG(st.st_mode)) return rv_fail(err, "%s: not a regular file", full);
    if ((double)st.st_size != s->valuedouble)
        return rv_fail(err, "%s: %lld bytes, %s says %.0f", full, (long long)st.st_size,
                       CKPT_MANIFEST, s->valuedouble);
    if (ckpt_hash_file(full, 0, &size, &hash, err) != 0) return -1;
    if (hash != want_hash)
        return rv_fail(err, "%s: content hash %016llx, %s says %s (the file is damaged)", full,
                       (unsigned long long)hash, CKPT_MANIFEST, h->valuestring);
    return 0;
}

/* job_ckpt_verify, also returning the checkpoint's step. */
static int ckpt_verify_step(const char *dir, uint64_t *step, char *err) {
    char path[JOB_PATH_MAX + 32];
    char *done = NULL, *manifest = NULL;
    size_t n_done, n_manifest;
    cJSON *root = NULL;
    ckpt_list files = {0}, listed = {0};
    int rc = -1;
    snprintf(path, sizeof path, "%s/%s", dir, CKPT_DONE);
    if (access(path, F_OK) != 0) return rv_fail(err, "%s: no DONE marker (never sealed)", dir);
    if (rv_read_file(path, 4096, (void **)&done, &n_done, err) != 0) goto cleanup;
    snprintf(path, sizeof path, "%s/%s", dir, CKPT_MANIFEST);
    if (rv_read_file(path, CKPT_MANIFEST_MAX, (void **)&manifest, &n_manifest, err) != 0)
        goto cleanup;
    char want[24] = "", got[24];
    snprintf(got, sizeof got, "%016llx", (unsigned long long)rv_hash64(manifest, n_manifest, 0));
    if (sscanf(done, CKPT_MANIFEST " xxh3 %16s", want) != 1) {
        rv_fail(err, "%s/%s: malformed", dir, CKPT_DONE);
        goto cleanup;
    }
    if (strcmp(want, got) != 0) {
        rv_fail(err, "%s: content hash %s, DONE says %s (the manifest is damaged)", path, got,
                want);
        goto cleanup;
    }
    root = cJSON_ParseWithLength(manifest, n_manifest);
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "step");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "files");
    if (!cJSON_IsObject(root) || !cJSON_IsNumber(s) || s->valuedouble < 0 || !cJSON_IsArray(list)) {
        rv_fail(err, "%s: not a checkpoint manifest (needs \"format\", \"step\", \"files\")", path);
        goto cleanup;
    }
    if (!cJSON_IsNumber(format) || format->valuedouble != CKPT_FORMAT) {
        char got_format[32] = "missing";
        if (cJSON_IsNumber(format))
            snprintf(got_format, sizeof got_format, "%g", format->valuedouble);
        rv_fail(err, "%s: format %s, this build reads format %d", path, got_format, CKPT_FORMAT);
        goto cleanup;
    }
    *step = (uint64_t)s->valuedouble;
    const char *base = strrchr(dir, '/');
    uint64_t named;
    if (ckpt_parse_name(base ? base + 1 : dir, &named) == 0 && named != *step) {
        rv_fail(err, "%s: says step %llu, the directory is named for step %llu", path,
                (unsigned long long)*step, (unsigned long long)named);
        goto cleanup;
    }
    size_t index = 0;
    for (const cJSON *e = list->child; e; e = e->next, index++) {
        if (ckpt_check_file(dir, e, index, err) != 0) goto cleanup;
        if (ckpt_list_add(&listed, cJSON_GetObjectItemCaseSensitive(e, "path")->valuestring, err) !=
            0)
            goto cleanup;
    }
    if (ckpt_walk(dir, "", &files, NULL, err) != 0) goto cleanup;
    ckpt_list_sort(&files);
    ckpt_list_sort(&listed);
    for (size_t i = 1; i < listed.n; i++) {
        if (!strcmp(listed.items[i - 1], listed.items[i])) {
            rv_fail(err, "%s: lists %s twice", path, listed.items[i]);
            goto cleanup;
        }
    }
    /* Both sorted: one merge pass finds what is on disk but not listed. */
    for (size_t i = 0, j = 0; i < files.n; i++) {
        const char *f = files.items[i];
        while (j < listed.n && strcmp(listed.items[j], f) < 0) j++;
        if (j < listed.n && !strcmp(listed.items[j], f)) continue;
        if (!strcmp(f, CKPT_MANIFEST) || !strcmp(f, CKPT_DONE)) continue;
        rv_fail(err, "%s/%s: not listed in %s", dir, f, CKPT_MANIFEST);
        goto cleanup;
    }
    rc = 0;
cleanup:
    cJSON_Delete(root);
    free(done);
    free(manifest);
    ckpt_list_free(&files);
    ckpt_list_free(&listed);
    return rc;
}

int job_ckpt_verify(const char *dir, char *err) {
    uint64_t step;
    return ckpt_verify_step(dir, &step, err);
}

int job_resume_parse(const char *arg, job_resume_mode *mode, char *err) {
    if (!arg || !arg[0])
        return rv_fail(err, "--resume: empty; expected auto, never or a checkpoint directory");
    if (!strcmp(arg, "auto"))
        *mode = JOB_RESUME_AUTO;
    else if (!strcmp(arg, "never"))
        *mode = JOB_RESUME_NEVER;
    else if (strlen(arg) >= JOB_PATH_MAX)
        return rv_fail(err, "--resume %.64s...: path too long", arg);
    else
        *mode = JOB_RESUME_PATH;
    return 0;
}

int job_ckpt_find(job_run *r, job_resume_mode mode, const char *path, char *found, size_t cap,
                  uint64_t *step, char *err) {
    if (cap > 0) found[0] = 0;
    *step = 0;
    if (mode == JOB_RESUME_NEVER) return 0;
    if (mode == JOB_RESUME_PATH) {
        if (!path || !path[0]) return rv_fail(err, "--resume: no checkpoint path given");
        if (ckpt_verify_step(path, step, err) != 0) return rv_fail_wrap(err, "--resume");
        return ckpt_copy_out(found, cap, path, err);
    }
    char cdir[JOB_PATH_MAX], dir[JOB_PATH_MAX + 40], why[RV_ERR_MAX];
    snprintf(cdir, sizeof cdir, "%s/checkpoints", r->dir);
    ckpt_entry *have = NULL;
    size_t n_have = 0;
    if (ckpt_scan(cdir, &have, &n_have, NULL, err) != 0) return -1;
    int rc = 0;
    for (size_t i = 0; i < n_have; i++) {
        snprintf(dir, sizeof dir, "%s/%s", cdir, have[i].name);
        uint64_t s;
        if (ckpt_verify_step(dir, &s, why) != 0) {
            rv_warn("--resume auto: skipping a damaged checkpoint: %s", why);
            continue;
        }
        rc = ckpt_copy_out(found, cap, dir, err);
        if (rc == 0) *step = s;
        break;
    }
    free(have);
    return rc;
}
