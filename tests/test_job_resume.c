/* tests/test_job_resume.c — the library as a trainer uses it, end to end, across three runs of
 * one job in one run directory: stopped by SIGUSR1 (checkpoint at the step boundary, exit 75),
 * then killed with SIGKILL between checkpoints, then run to the end. The metrics curve must hold
 * every step exactly once, in order, and the state carried through checkpoints must be the one an
 * uninterrupted run computes. */
#include "check.h"
#include "job.h"
#include "rv.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOTAL_STEPS 40
#define CKPT_EVERY  5

static char dir[] = "/tmp/rv_job_resume_XXXXXX";
static char run[256];

/* A toy trainer: its "model" is the running sum of the steps, saved in model.txt. */
static int trainer(void) {
    char err[RV_ERR_MAX], found[1024], tmp[1024], path[1100];
    job_signals_install();
    job_run *r;
    uint64_t start;
    if (job_run_open(run, &r, err) != 0 ||
        job_ckpt_find(r, JOB_RESUME_AUTO, NULL, found, sizeof found, &start, err) != 0)
        goto fail;
    long sum = 0;
    if (found[0]) {
        snprintf(path, sizeof path, "%s/model.txt", found);
        FILE *f = fopen(path, "r");
        long saved_step;
        if (!f || fscanf(f, "%ld %ld", &saved_step, &sum) != 2 || saved_step != (long)start) {
            fprintf(stderr, "%s: unreadable\n", path);
            return RV_EXIT_FAIL;
        }
        fclose(f);
    }
    if (job_metrics_truncate(r, start, err) != 0) goto fail;
    for (long step = (long)start + 1; step <= TOTAL_STEPS; step++) {
        sum += step;
        usleep(3000);
        char line[96];
        snprintf(line, sizeof line, "{\"step\": %ld, \"sum\": %ld}", step, sum);
        if (job_metrics_append(r, line, err) != 0) goto fail;
        int sig = job_signal_pending();
        if (step % CKPT_EVERY == 0 || sig || step == TOTAL_STEPS) {
            if (job_ckpt_begin(r, (uint64_t)step, tmp, sizeof tmp, err) != 0) goto fail;
            snprintf(path, sizeof path, "%s/model.txt", tmp);
            FILE *f = fopen(path, "w");
            if (!f) return RV_EXIT_FAIL;
            fprintf(f, "%ld %ld\n", step, sum);
            fclose(f);
            if (job_ckpt_commit(r, (uint64_t)step, 2, NULL, 0, err) != 0) goto fail;
        }
        if (sig) {
            job_run_close(r);
            return RV_EXIT_REQUEUE;
        }
    }
    job_run_close(r);
    return RV_EXIT_OK;
fail:
    fprintf(stderr, "trainer: %s\n", err);
    return RV_EXIT_FAIL;
}

/* The highest step in metrics.jsonl so far. */
static long last_step(void) {
    char path[300], err[RV_ERR_MAX];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    void *data;
    size_t n;
    if (rv_read_file(path, 1 << 20, &data, &n, err) != 0) return 0;
    long best = 0;
    for (const char *p = data; (p = strstr(p, "\"step\": ")); p++) {
        long s = atol(p + 8);
        if (s > best) best = s;
    }
    free(data);
    return best;
}

/* Runs the trainer in a child; once it has logged step `at`, sends `sig` (0: none). Returns the
 * wait status. */
static int run_trainer(long at, int sig) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) _exit(trainer());
    if (sig) {
        for (int i = 0; i < 3000 && last_step() < at; i++) usleep(2000);
        kill(pid, sig);
    }
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    return status;
}

int main(void) {
    REQUIRE(mkdtemp(dir));
    snprintf(run, sizeof run, "%s/run", dir);

    int status = run_trainer(12, SIGUSR1);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == RV_EXIT_REQUEUE, "status 0x%x", status);
    long stopped = last_step();
    CHECKF(stopped >= 12 && stopped < TOTAL_STEPS, "stopped at %ld", stopped);

    char path[300], err[RV_ERR_MAX];
    snprintf(path, sizeof path, "%s/checkpoints/step-%08ld", run, stopped);
    CHECKF(job_ckpt_verify(path, err) == 0, "no checkpoint at the signalled step: %s", err);

    /* killed two steps past a periodic checkpoint: those two lines must go on resume */
    status = run_trainer((stopped / CKPT_EVERY + 2) * CKPT_EVERY + 2, SIGKILL);
    CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status 0x%x", status);

    status = run_trainer(0, 0);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == RV_EXIT_OK, "status 0x%x", status);

    /* every step once, in order, each with the sum an uninterrupted run has */
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    void *data;
    size_t n;
    REQUIRE(rv_read_file(path, 1 << 20, &data, &n, err) == 0);
    long want = 1;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        long step, sum;
        CHECKF(sscanf(line, "{\"step\": %ld, \"sum\": %ld}", &step, &sum) == 2, "line '%s'", line);
        CHECKF(step == want && sum == step * (step + 1) / 2, "line '%s', expected step %ld", line,
               want);
        want = step + 1;
    }
    CHECKF(want == TOTAL_STEPS + 1, "the curve ends before step %ld", want);
    free(data);

    /* --keep-last 2 leaves the last two checkpoints, the last one sound */
    job_run *r;
    REQUIRE(job_run_open(run, &r, err) == 0);
    char found[1024];
    uint64_t step;
    CHECK(job_ckpt_find(r, JOB_RESUME_AUTO, NULL, found, sizeof found, &step, err) == 0);
    CHECK(step == TOTAL_STEPS);
    snprintf(path, sizeof path, "%s/checkpoints/step-%08d", run, TOTAL_STEPS - CKPT_EVERY);
    CHECK(access(path, F_OK) == 0);
    snprintf(path, sizeof path, "%s/checkpoints/step-%08d", run, TOTAL_STEPS - 2 * CKPT_EVERY);
    CHECK(access(path, F_OK) != 0);
    job_run_close(r);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return check_report("job_resume");
}
