/* job/run.c — the run directory: an exclusive lock so two jobs never share one, the resolved
 * config written atomically, and metrics.jsonl appended a whole line at a time and cut back to
 * a checkpoint's step on resume. */
#define _GNU_SOURCE
#include "job_internal.h"
#include "rv.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* metrics.jsonl may hold millions of lines; it is read whole only on resume. */
#define RUN_METRICS_MAX ((size_t)1 << 30)

/* The pid written into DIR/lock by the job holding it. The holder writes it just after taking
 * the lock, so an empty file is read again for a moment before the pid is called unknown. */
static void run_lock_holder(int fd, char *pid, size_t cap) {
    for (int attempt = 0; attempt < 50; attempt++) {
        char buf[32];
        ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
        long v = 0;
        if (got > 0) {
            buf[got] = 0;
            v = strtol(buf, NULL, 10);
        }
        if (v > 0) {
            snprintf(pid, cap, "%ld", v);
            return;
        }
        usleep(2000);
    }
    snprintf(pid, cap, "unknown");
}

/* Temporaries of config.json and metrics.jsonl left by a job killed while replacing them
 * (rv_write_file_atomic names them FILE.tmp.PID); only the lock holder may remove them. */
static int run_remove_leftovers(const char *dir, char *err) {
    DIR *d = opendir(dir);
    if (!d) return rv_fail(err, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "config.json.tmp.", 16) != 0 &&
            strncmp(e->d_name, "metrics.jsonl.tmp.", 18) != 0)
            continue;
        char path[JOB_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0 && errno != ENOENT) {
            rc = rv_fail(err, "%s: cannot remove a leftover: %s", path, strerror(errno));
            break;
        }
        rv_info("%s: removed, left by a killed job", path);
    }
    closedir(d);
    return rc;
}

int job_run_open(const char *dir, job_run **out, char *err) {
    *out = NULL;
    job_run *r = calloc(1, sizeof *r);
    if (!r) return rv_fail(err, "%s: out of memory", dir);
    r->lock_fd = r->metrics_fd = -1;
    char lock[JOB_PATH_MAX + 8];
    if (!dir[0] || strlen(dir) >= JOB_PATH_MAX - 64) {
        rv_fail(err, "run directory \"%.64s\": empty or too long", dir);
        goto fail;
    }
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    if (rv_mkdirs(dir, err) != 0) goto fail;
    snprintf(lock, sizeof lock, "%s/lock", dir);
    r->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (r->lock_fd < 0) {
        rv_fail(err, "%s: cannot open: %s", lock, strerror(errno));
        goto fail;
    }
    if (flock(r->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            char pid[32];
            run_lock_holder(r->lock_fd, pid, sizeof pid);
            rv_fail(err, "%s: run directory in use by another job (pid %s holds %s)", dir, pid,
                    lock);
        } else {
            rv_fail(err, "%s: cannot lock: %s", lock, strerror(errno));
        }
        goto fail;
    }
    /* The file is never removed: unlinking a lock file lets a waiting job lock a dead inode. */
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(r->lock_fd, 0) != 0 || pwrite(r->lock_fd, pid, (size_t)len, 0) != len) {
        rv_fail(err, "%s: cannot write the pid: %s", lock, strerror(errno));
        goto fail;
    }
    if (run_remove_leftovers(dir, err) != 0) goto fail;
    *out = r;
    return 0;
fail:
    if (r->lock_fd >= 0) close(r->lock_fd);
    free(r);
    return -1;
}

void job_run_close(job_run *r) {
    if (!r) return;
    if (r->metrics_fd >= 0) close(r->metrics_fd);
    if (r->lock_fd >= 0) {
        /* An empty file while unlocked: a pid found there names a live holder, or one killed. */
        if (ftruncate(r->lock_fd, 0) != 0)
            rv_warn("%s/lock: cannot clear: %s", r->dir, strerror(errno));
        close(r->lock_fd); /* closing releases the flock */
    }
    free(r);
}

const char *job_run_dir(const job_run *r) {
    return r->dir;
}

/* Refuses text that is not one JSON object: config.json and metrics lines are read by tools. */
static int run_check_object(const char *json, const char *what, char *err) {
    cJSON *v = cJSON_ParseWithOpts(json, NULL, 1);
    int ok = cJSON_IsObject(v);
    cJSON_Delete(v);
    if (!ok) return rv_fail(err, "%s: not a JSON object: %.80s", what, json);
    return 0;
}

int job_run_write_config(job_run *r, const char *json, char *err) {
    char path[JOB_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/config.json", r->dir);
    if (run_check_object(json, path, err) != 0) return -1;
    size_t n = strlen(json);
    char *text = malloc(n + 2);
    if (!text) return rv_fail(err, "%s: out of memory", path);
    memcpy(text, json, n);
    text[n] = '\n';
    int rc = rv_write_file_atomic(path, text, n + 1, err);
    free(text);
    return rc;
}

int job_metrics_append(job_run *r, const char *json, char *err) {
    char path[JOB_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
    if (strchr(json, '\n')) return rv_fail(err, "%s: a metrics line holds a newline", path);
    if (run_check_object(json, path, err) != 0) return -1;
    if (r->metrics_fd < 0) {
        r->metrics_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (r->metrics_fd < 0) return rv_fail(err, "%s: cannot open: %s", path, strerror(errno));
    }
    size_t n = strlen(json);
    char *line = malloc(n + 1);
    if (!line) return rv_fail(err, "%s: out of memory", path);
    memcpy(line, json, n);
    line[n] = '\n';
    ssize_t w;
    do w = write(r->metrics_fd, line, n + 1);
    while (w < 0 && errno == EINTR);
    int e = errno;
    free(line);
    if (w < 0) return rv_fail(err, "%s: write failed: %s", path, strerror(e));
    /* A short write (disk full) leaves a torn line, which job_metrics_truncate drops. */
    if ((size_t)w != n + 1)
        return rv_fail(err, "%s: short write (%zd of %zu bytes)", path, w, n + 1);
    return 0;
}

int job_metrics_sync(job_run *r, char *err) {
    if (r->metrics_fd >= 0 && fsync(r->metrics_fd) != 0)
        return rv_fail(err, "%s/metrics.jsonl: fsync failed: %s", r->dir, strerror(errno));
    return 0;
}

/* Whether a complete line stays: lines of steps past the checkpoint go; a line without a step
 * (an event, a note) stays; a line that does not parse is corruption and goes, with a warning. */
static int run_keep_line(const char *line, size_t len, uint64_t step, const char *path,
                         size_t lineno) {
    cJSON *v = cJSON_ParseWithLengthOpts(line, len, NULL, 0);
    if (!cJSON_IsObject(v)) {
        cJSON_Delete(v);
        rv_warn("%s:%zu: dropping a line that is not a JSON object", path, lineno);
        return 0;
    }
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, "step");
    int keep = !cJSON_IsNumber(s) || s->valuedouble <= (double)step;
    cJSON_Delete(v);
    return keep;
}

int job_metrics_truncate(job_run *r, uint64_t step, char *err) {
    char path[JOB_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
    /* The append descriptor would keep writing into the replaced file: reopen after. */
    if (r->metrics_fd >= 0) {
        close(r->metrics_fd);
        r->metrics_fd = -1;
    }
    if (access(path, F_OK) != 0) return 0;
    char *text = NULL, *kept = NULL;
    size_t n = 0, n_kept = 0, lineno = 0, dropped = 0;
    int rc = -1;
    if (rv_read_file(path, RUN_METRICS_MAX, (void **)&text, &n, err) != 0) return -1;
    kept = malloc(n + 1);
    if (!kept) {
        rv_fail(err, "%s: out of memory", path);
        goto cleanup;
    }
    for (size_t at = 0; at < n;) {
        const char *nl = memchr(text + at, '\n', n - at);
        lineno++;
        if (!nl) { /* torn by a kill during the last append */
            rv_warn("%s:%zu: dropping a torn last line (%zu bytes)", path, lineno, n - at);
            break;
        }
        size_t len = (size_t)(nl - (text + at));
        if (len > 0 && run_keep_line(text + at, len, step, path, lineno)) {
            memcpy(kept + n_kept, text + at, len + 1);
            n_kept += len + 1;
        } else {
            dropped++;
        }
        at += len + 1;
    }
    if (rv_write_file_atomic(path, kept, n_kept, err) != 0) goto cleanup;
    if (dropped)
        rv_info("%s: resumed at step %llu, %zu lines after it removed", path,
                (unsigned long long)step, dropped);
    rc = 0;
cleanup:
    free(kept);
    free(text);
    return rc;
}
