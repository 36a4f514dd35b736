/* common/error.c — error messages into caller-owned buffers, and the process logger. */
#include "rv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int rv_fail(char *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, RV_ERR_MAX, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int rv_fail_wrap(char *err, const char *fmt, ...) {
    if (!err) return -1;
    char reason[RV_ERR_MAX], what[RV_ERR_MAX];
    snprintf(reason, sizeof reason, "%s", err);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(err, RV_ERR_MAX, "%s: %s", what, reason);
    return -1;
}

static char log_prefix[128] = "[reveal]";
static int log_level = -1;

void rv_log_set_prefix(const char *prefix) {
    snprintf(log_prefix, sizeof log_prefix, "%s", prefix);
}

void rv_log_set_level(int level) {
    log_level = level;
}

static int level_from_env(void) {
    const char *s = getenv("REVEAL_LOG");
    if (!s) return RV_LOG_INFO;
    if (!strcasecmp(s, "debug")) return RV_LOG_DEBUG;
    if (!strcasecmp(s, "warn")) return RV_LOG_WARN;
    if (!strcasecmp(s, "error")) return RV_LOG_ERROR;
    return RV_LOG_INFO;
}

void rv_log(int level, const char *fmt, ...) {
    if (log_level < 0) log_level = level_from_env();
    if (level > log_level) return;
    static const char *names[] = {"error", "warn", "info", "debug"};
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per line so lines from several ranks do not interleave mid-line. */
    FILE *out = level <= RV_LOG_WARN ? stderr : stdout;
    if (level <= RV_LOG_WARN)
        fprintf(out, "%s %s: %s\n", log_prefix, names[level], line);
    else
        fprintf(out, "%s %s\n", log_prefix, line);
    fflush(out);
}

double rv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
