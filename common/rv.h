/* common/rv.h — what every reveal library shares.
 *
 * Errors: library functions return 0 on success and -1 on failure, after writing one
 * human-readable line into a caller-owned buffer `char err[RV_ERR_MAX]` (which may be NULL).
 * Only `main`s and role loops turn a failure into an exit code or MPI_Abort.
 *
 * Logging: one leveled logger; the prefix names the process ("[rank 3 worker kg]").
 *
 * Durable files: write to a temporary file, fsync, rename, fsync the directory, so a reader
 * sees the old file or the new one, never a torn one.
 */
#ifndef RV_H
#define RV_H

#include <stddef.h>
#include <stdint.h>

#define RV_ERR_MAX 512

/* Exit codes shared by every subcommand (STYLE.md, Operations). */
enum { RV_EXIT_OK = 0, RV_EXIT_FAIL = 1, RV_EXIT_USAGE = 2, RV_EXIT_REQUEUE = 75 };

/* Formats the message into err (if err is non-NULL) and returns -1. */
int rv_fail(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "what: " to an existing message, keeping the original reason. Returns -1. */
int rv_fail_wrap(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum { RV_LOG_ERROR = 0, RV_LOG_WARN = 1, RV_LOG_INFO = 2, RV_LOG_DEBUG = 3 };
void rv_log_set_prefix(const char *prefix);
void rv_log_set_level(int level); /* default INFO; env REVEAL_LOG=debug|info|warn|error */
void rv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define rv_error(...) rv_log(RV_LOG_ERROR, __VA_ARGS__)
#define rv_warn(...)  rv_log(RV_LOG_WARN, __VA_ARGS__)
#define rv_info(...)  rv_log(RV_LOG_INFO, __VA_ARGS__)
#define rv_debug(...) rv_log(RV_LOG_DEBUG, __VA_ARGS__)

/* Wall-clock seconds from a monotonic clock. */
double rv_now(void);

/* Creates a directory and its parents (like mkdir -p). */
int rv_mkdirs(const char *path, char *err);
/* fsyncs a directory so a rename inside it is durable. */
int rv_fsync_dir(const char *dir, char *err);
/* Atomically replaces `path` with `n` bytes: temp file in the same directory, fsync, rename,
 * fsync the directory. */
int rv_write_file_atomic(const char *path, const void *data, size_t n, char *err);
/* Reads a whole file, refusing files larger than max_bytes. *data is malloc'ed and gets a
 * terminating NUL byte past *n so text can be parsed in place. */
int rv_read_file(const char *path, size_t max_bytes, void **data, size_t *n, char *err);
/* Removes a directory tree (used for temporary checkpoint directories). */
int rv_remove_tree(const char *path, char *err);

/* Returns 1 when the n bytes are well-formed UTF-8 (no overlong forms, no surrogates, no
 * code points past U+10FFFF), else 0 and the offset of the first bad byte in *bad_at. */
int rv_utf8_valid(const char *s, size_t n, size_t *bad_at);

/* 64-bit content hash (XXH3) — stable across machines and releases of the library. */
uint64_t rv_hash64(const void *data, size_t n, uint64_t seed);

#endif
