/* common/files.c — directories and durable file replacement. */
#define _GNU_SOURCE
#include "rv.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

int rv_mkdirs(const char *path, char *err) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return rv_fail(err, "%s: path too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return rv_fail(err, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return rv_fail(err, "%s: cannot create directory: %s", buf, strerror(errno));
    return 0;
}

int rv_fsync_dir(const char *dir, char *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return rv_fail(err, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0) return rv_fail(err, "%s: fsync failed: %s", dir, strerror(e));
    return 0;
}

int rv_write_file_atomic(const char *path, const void *data, size_t n, char *err) {
    char tmp[4096], dir[4096];
    int fd = -1;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return rv_fail(err, "%s: path too long", path);
    snprintf(dir, sizeof dir, "%s", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return rv_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            rv_fail(err, "%s: write failed: %s", tmp, strerror(errno));
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        rv_fail(err, "%s: fsync failed: %s", tmp, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        rv_fail(err, "%s: rename failed: %s", path, strerror(errno));
        goto fail;
    }
    return rv_fsync_dir(dirname(dir), err);
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    return -1;
}

int rv_read_file(const char *path, size_t max_bytes, void **data, size_t *n, char *err) {
    *data = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return rv_fail(err, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        rv_fail(err, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if ((size_t)st.st_size > max_bytes) {
        rv_fail(err, "%s: file is %lld bytes, more than the %zu allowed", path,
                (long long)st.st_size, max_bytes);
        goto fail;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rv_fail(err, "%s: out of memory reading %lld bytes", path, (long long)st.st_size);
        goto fail;
    }
    size_t got = fread(buf, 1, (size_t)st.st_size, f);
    if (got != (size_t)st.st_size) {
        rv_fail(err, "%s: short read (%zu of %lld bytes)", path, got, (long long)st.st_size);
        goto fail;
    }
    buf[got] = 0;
    fclose(f);
    *data = buf;
    *n = got;
    return 0;
fail:
    free(buf);
    fclose(f);
    return -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    return remove(path);
}

int rv_remove_tree(const char *path, char *err) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : rv_fail(err, "%s: %s", path, strerror(errno));
    if (nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS) != 0)
        return rv_fail(err, "%s: cannot remove: %s", path, strerror(errno));
    return 0;
}

uint64_t rv_hash64(const void *data, size_t n, uint64_t seed) {
    return (uint64_t)XXH3_64bits_withSeed(data, n, (XXH64_hash_t)seed);
}
