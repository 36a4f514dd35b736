/* job/process.c — what the job knows about its own process: the signals asking it to checkpoint
 * and stop, and the revision it was built from. */
#define _GNU_SOURCE
#include "job.h"

#include <signal.h>
#include <string.h>

#ifndef REVEAL_GIT_REV
#define REVEAL_GIT_REV "unknown"
#endif

static volatile sig_atomic_t job_pending = 0;

/* Only stores: the trainer acts at the next step boundary, outside the handler. */
static void job_on_signal(int sig) {
    job_pending = sig;
}

void job_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = job_on_signal;
    sigemptyset(&sa.sa_mask);
    /* Restarted system calls: a signal must not turn a pending write or MPI wait into EINTR. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int job_signal_pending(void) {
    return job_pending;
}

const char *job_git_revision(void) {
    return REVEAL_GIT_REV;
}
