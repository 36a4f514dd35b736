/* tests/test_job_run.c — the run directory: the lock refuses a second job (another process)
 * naming the holder's pid and is released when the holder dies; config.json is replaced whole;
 * metrics lines are appended whole and cut back to a step on resume, a torn last line dropped. */
#include "check.h"
#include "job.h"
#include "rv.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/rv_job_run_XXXXXX";

static char *slurp(const char *name) {
    char path[300], err[RV_ERR_MAX];
    snprintf(path, sizeof path, "%s/run/%s", dir, name);
    void *data;
    size_t n;
    if (rv_read_file(path, 1 << 20, &data, &n, err) != 0) return NULL;
    return data;
}

/* Tries job_run_open in a child process; returns its message ("" when the open succeeded). */
static void open_in_child(const char *run, char *msg, size_t cap) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char err[RV_ERR_MAX] = "";
        job_run *r;
        if (job_run_open(run, &r, err) == 0) job_run_close(r);
        ssize_t w = write(fds[1], err, strlen(err));
        _exit(w < 0);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], msg, cap - 1);
    msg[got > 0 ? got : 0] = 0;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
}

static void append_raw(const char *text) {
    char path[300];
    snprintf(path, sizeof path, "%s/run/metrics.jsonl", dir);
    FILE *f = fopen(path, "a");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

int main(void) {
    char err[RV_ERR_MAX], run[256], msg[RV_ERR_MAX];
    REQUIRE(mkdtemp(dir));
    snprintf(run, sizeof run, "%s/run", dir);

    /* the directory is created; a second job is refused, naming this process's pid */
    job_run *r;
    REQUIRE(job_run_open(run, &r, err) == 0);
    CHECK(strcmp(job_run_dir(r), run) == 0);
    open_in_child(run, msg, sizeof msg);
    char want[64];
    snprintf(want, sizeof want, "(pid %ld holds", (long)getpid());
    CHECKF(strstr(msg, want) != NULL, "got '%s'", msg);
    CHECKF(strstr(msg, "run directory in use by another job") != NULL, "got '%s'", msg);
    job_run_close(r);
    /* once closed, another process may take it */
    open_in_child(run, msg, sizeof msg);
    CHECKF(msg[0] == 0, "refused after close: %s", msg);

    /* a holder killed with SIGKILL leaves no lock behind */
    int ready[2];
    REQUIRE(pipe(ready) == 0);
    pid_t holder = fork();
    REQUIRE(holder >= 0);
    if (holder == 0) {
        job_run *h;
        if (job_run_open(run, &h, NULL) != 0) _exit(1);
        if (write(ready[1], "r", 1) != 1) _exit(1);
        pause();
        _exit(0);
    }
    close(ready[1]);
    char c;
    REQUIRE(read(ready[0], &c, 1) == 1);
    close(ready[0]);
    open_in_child(run, msg, sizeof msg);
    snprintf(want, sizeof want, "(pid %ld holds", (long)holder);
    CHECKF(strstr(msg, want) != NULL, "got '%s'", msg);
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    REQUIRE(job_run_open(run, &r, err) == 0);

    /* config.json: replaced whole, newline-terminated, no temporary left; not-JSON refused */
    CHECK(job_run_write_config(r, "{\"a\": 1}", err) == 0);
    CHECK(job_run_write_config(r, "{\"a\": 2}", err) == 0);
    char *cfg = slurp("config.json");
    CHECK(cfg && strcmp(cfg, "{\"a\": 2}\n") == 0);
    free(cfg);
    CHECK(job_run_write_config(r, "{\"a\": ", err) == -1);
    CHECKF(strstr(err, "config.json: not a JSON object") != NULL, "got '%s'", err);
    cfg = slurp("config.json");
    CHECK(cfg && strcmp(cfg, "{\"a\": 2}\n") == 0);
    free(cfg);
    DIR *d = opendir(run);
    REQUIRE(d);
    struct dirent *e;
    while ((e = readdir(d)))
        CHECKF(strstr(e->d_name, ".tmp") == NULL, "left behind: %s", e->d_name);
    closedir(d);

    /* metrics: whole lines; a newline inside or a non-object refused */
    for (int s = 1; s <= 5; s++) {
        char line[64];
        snprintf(line, sizeof line, "{\"step\": %d, \"loss\": %g}", s, 1.0 / s);
        CHECK(job_metrics_append(r, line, err) == 0);
    }
    CHECK(job_metrics_append(r, "{\"event\": \"eval\"}", err) == 0);
    CHECK(job_metrics_append(r, "{\"step\": 6}\n{\"step\": 7}", err) == -1);
    CHECKF(strstr(err, "holds a newline") != NULL, "got '%s'", err);
    CHECK(job_metrics_append(r, "[1]", err) == -1);
    CHECKF(strstr(err, "metrics.jsonl: not a JSON object") != NULL, "got '%s'", err);
    char *m = slurp("metrics.jsonl");
    CHECK(m && !strncmp(m, "{\"step\": 1, \"loss\": 1}\n{\"step\": 2, \"loss\": 0.5}\n", 48));
    free(m);

    /* truncate to step 3: later steps go, a line without a step stays, a torn last line goes */
    append_raw("{\"step\": 6, \"lo");
    CHECK(job_metrics_truncate(r, 3, err) == 0);
    m = slurp("metrics.jsonl");
    CHECKF(m && !strcmp(m, "{\"step\": 1, \"loss\": 1}\n{\"step\": 2, \"loss\": 0.5}\n"
                           "{\"step\": 3, \"loss\": 0.333333}\n{\"event\": \"eval\"}\n"),
           "got '%s'", m ? m : "(none)");
    free(m);
    /* appends after a truncate land in the new file, not the replaced one */
    CHECK(job_metrics_append(r, "{\"step\": 4, \"loss\": 9}", err) == 0);
    m = slurp("metrics.jsonl");
    CHECK(m && strstr(m, "{\"event\": \"eval\"}\n{\"step\": 4, \"loss\": 9}\n") != NULL);
    free(m);
    /* a complete but corrupt line is dropped too; truncating to 0 keeps step 0 only */
    append_raw("garbage}\n{\"step\": 0}\n");
    CHECK(job_metrics_truncate(r, 0, err) == 0);
    m = slurp("metrics.jsonl");
    CHECKF(m && !strcmp(m, "{\"event\": \"eval\"}\n{\"step\": 0}\n"), "got '%s'", m ? m : "(none)");
    free(m);
    job_run_close(r);

    /* killed while replacing config.json or appending metrics: config.json is one whole
     * version, every metrics line is whole, and the next open removes the temporaries */
    static char big[1 << 20]; /* a 1 MB config whose write takes a while: {"k":"aaa..."} */
    memset(big, 'a', sizeof big - 1);
    memcpy(big, "{\"k\":\"", 6);
    memcpy(big + sizeof big - 3, "\"}", 3);
    for (int round = 0; round < 6; round++) {
        pid_t writer = fork();
        REQUIRE(writer >= 0);
        if (writer == 0) {
            job_run *w;
            if (job_run_open(run, &w, NULL) != 0) _exit(1);
            for (long i = 0;; i++) {
                if (job_run_write_config(w, i % 2 ? big : "{\"small\": 1}", NULL) != 0) _exit(1);
                char line[96];
                snprintf(line, sizeof line, "{\"step\": %ld, \"loss\": 0.%040ld}", i, i);
                if (job_metrics_append(w, line, NULL) != 0) _exit(1);
            }
        }
        usleep(20000 + 15000 * round);
        kill(writer, SIGKILL);
        waitpid(writer, NULL, 0);
        REQUIRE(job_run_open(run, &r, err) == 0);
        cfg = slurp("config.json");
        REQUIRE(cfg);
        size_t len = strlen(cfg);
        CHECKF(!strcmp(cfg, "{\"a\": 2}\n") || !strcmp(cfg, "{\"small\": 1}\n") ||
                   (len == sizeof big && !memcmp(cfg, big, sizeof big - 1)),
               "config.json torn: %zu bytes", len);
        free(cfg);
        m = slurp("metrics.jsonl");
        REQUIRE(m);
        size_t lines = 0, bad = 0;
        for (char *line = m, *nl; (nl = strchr(line, '\n')); line = nl + 1, lines++)
            bad += line[0] != '{' || nl[-1] != '}';
        CHECKF(bad == 0 && strlen(m) > 0 && m[strlen(m) - 1] == '\n', "%zu of %zu lines torn", bad,
               lines);
        free(m);
        d = opendir(run);
        REQUIRE(d);
        while ((e = readdir(d)))
            CHECKF(strstr(e->d_name, ".tmp.") == NULL, "left behind: %s", e->d_name);
        closedir(d);
        CHECK(job_metrics_truncate(r, 0, err) == 0);
        job_run_close(r);
    }

    /* a run directory that cannot be made is named */
    CHECK(job_run_open("/proc/no/such/run", &r, err) == -1);
    CHECKF(strstr(err, "/proc/no") != NULL, "got '%s'", err);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return check_report("job_run");
}
