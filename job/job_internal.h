/* job/job_internal.h — the run handle, shared by the run-directory and checkpoint code. */
#ifndef JOB_INTERNAL_H
#define JOB_INTERNAL_H

#include "job.h"

#define JOB_PATH_MAX 4096

struct job_run {
    char dir[JOB_PATH_MAX];
    int lock_fd;    /* DIR/lock, flock'ed for the life of the handle */
    int metrics_fd; /* DIR/metrics.jsonl opened for appending on first use, else -1 */
};

/* fsyncs metrics.jsonl if it is open, so the lines of the steps a checkpoint covers are durable
 * before the checkpoint is. */
int job_metrics_sync(job_run *r, char *err);

#endif
