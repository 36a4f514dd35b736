/* tests/test_job_signals.c — SIGTERM and SIGUSR1 become a pending flag instead of ending the
 * process, and a job that polls it checkpoints and exits 75 when signalled from outside. */
#include "check.h"
#include "job.h"
#include "rv.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    job_signals_install();
    CHECK(job_signal_pending() == 0);
    raise(SIGTERM);
    CHECK(job_signal_pending() == SIGTERM);
    raise(SIGUSR1);
    CHECK(job_signal_pending() == SIGUSR1);

    /* another process sends SIGTERM; the child's step loop sees it and exits 75 */
    int ready[2];
    REQUIRE(pipe(ready) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        job_signals_install();
        if (write(ready[1], "r", 1) != 1) _exit(1);
        for (long step = 0; step < 1000000; step++) { /* about 100 s at most */
            if (job_signal_pending() == SIGTERM) _exit(RV_EXIT_REQUEUE);
            usleep(100);
        }
        _exit(1);
    }
    close(ready[1]);
    char c;
    REQUIRE(read(ready[0], &c, 1) == 1);
    close(ready[0]);
    kill(pid, SIGTERM);
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == RV_EXIT_REQUEUE, "status 0x%x", status);

    const char *rev = job_git_revision();
    CHECK(rev && rev[0] && strchr(rev, ' ') == NULL);
    return check_report("job_signals");
}
