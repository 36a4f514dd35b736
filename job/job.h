/* job/job.h — the operational plumbing of a training job: the config file with --set overrides,
 * the run directory (lock, resolved config, metrics), checkpoint directories sealed by a manifest
 * and a DONE marker, resume, and the signals that ask for a checkpoint and a requeue.
 *
 * Layout and formats are described in docs/run.md. Every function returning int returns 0 on
 * success and -1 on failure with one line in err (RV_ERR_MAX bytes, may be NULL).
 */
#ifndef JOB_H
#define JOB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- Config: a JSON object file, known keys only ---- */
typedef enum { JOB_INT, JOB_FLOAT, JOB_BOOL, JOB_STRING } job_kind;
typedef struct {
    const char *key; /* dotted path: "train.batch" is {"train": {"batch": 32}} in the file */
    job_kind kind;
    size_t offset;    /* offsetof in the caller's struct: long (INT), double (FLOAT), int (BOOL),
                         char[cap] (STRING) */
    double min, max;  /* inclusive range for INT and FLOAT */
    size_t cap;       /* STRING: buffer size including the NUL */
    const char *help; /* one line, for `reveal train --help-config` */
} job_field;
/* The struct holds the defaults on entry. Applies the file (path may be NULL) then the overrides
 * sets[0..n_sets) ("train.batch=16"; the value is JSON when it parses as JSON, else a string),
 * refusing: a file that is not a JSON object, unknown keys (naming the full dotted path and, when
 * close, the known key meant), a wrong type ("train.batch must be an integer, not a string"), out
 * of range (naming range), a string longer than cap, a key given twice in --set, a --set without
 * '='. Every message names where the value came from: the file path or "--set train.batch=…".
 * On error the struct may be partly written (callers exit). */
int job_config_load(const job_field *fields, size_t n, void *cfg, const char *path,
                    char *const *sets, int n_sets, char *err);
/* The same from config text already in memory (a checkpoint's), `origin` naming it in messages. */
int job_config_load_text(const job_field *fields, size_t n, void *cfg, const char *text,
                         const char *origin, char *const *sets, int n_sets, char *err);
/* The resolved config: every field with its value, as a nested JSON object (malloc'ed text). */
char *job_config_json(const job_field *fields, size_t n, const void *cfg);
/* Prints the keys, kinds, ranges, defaults (from cfg) and help lines to f. */
void job_config_help(const job_field *fields, size_t n, const void *cfg, FILE *f);

/* ---- Run directory ---- */
typedef struct job_run job_run;
/* Creates DIR (and parents) if needed and takes an exclusive lock (flock on DIR/lock, holding
 * the pid): a second job on the same directory is refused naming the pid holding it. */
int job_run_open(const char *dir, job_run **out, char *err);
void job_run_close(job_run *r);
const char *job_run_dir(const job_run *r);
/* DIR/config.json, written atomically (temp, fsync, rename, fsync dir). */
int job_run_write_config(job_run *r, const char *json, char *err);
/* Appends one line (a JSON object, no newline in it) to DIR/metrics.jsonl; written with one
 * write(2) so a kill never leaves half a line. */
int job_metrics_append(job_run *r, const char *json, char *err);
/* On resume from step S: rewrites metrics.jsonl atomically keeping only the lines whose "step"
 * is <= S (and dropping a torn last line), so the curve has no duplicates. */
int job_metrics_truncate(job_run *r, uint64_t step, char *err);

/* ---- Checkpoints: DIR/checkpoints/step-%08llu/ ---- */
/* Makes an empty DIR/checkpoints/step-%08llu.tmp (removing a leftover one) and returns its path:
 * the caller's ranks write into it (model file, store copies). */
int job_ckpt_begin(job_run *r, uint64_t step, char *path, size_t cap, char *err);
/* Seals it: manifest.json (every file under it, recursively: relative path, size, XXH3-64 hex),
 * fsync of every file and directory, a DONE file, rename to step-%08llu, fsync of checkpoints/;
 * then removes complete checkpoints beyond the newest keep_last (keep_last 0: keep all) and any
 * *.tmp left by a killed run. path_out receives the final path. */
int job_ckpt_commit(job_run *r, uint64_t step, int keep_last, char *path_out, size_t cap,
                    char *err);
/* Checks a checkpoint directory: DONE present, manifest parses, every listed file present with
 * its size and hash, no file missing from the manifest. The message names the first problem. */
int job_ckpt_verify(const char *dir, char *err);
typedef enum { JOB_RESUME_AUTO, JOB_RESUME_NEVER, JOB_RESUME_PATH } job_resume_mode;
/* Parses "auto", "never" or a path. */
int job_resume_parse(const char *arg, job_resume_mode *mode, char *err);
/* AUTO: the newest checkpoint of the run that verifies (a damaged newer one is reported on stderr
 * with rv_warn and skipped); none → found[0] = '\0', returns 0. NEVER: found[0] = '\0'.
 * PATH: that directory, which must verify (error otherwise). *step gets its step. */
int job_ckpt_find(job_run *r, job_resume_mode mode, const char *path, char *found, size_t cap,
                  uint64_t *step, char *err);

/* ---- Signals ---- */
/* SIGTERM and SIGUSR1 set a flag (async-signal-safe); the trainer checkpoints at the next step
 * boundary and exits 75 (EX_TEMPFAIL). */
void job_signals_install(void);
int job_signal_pending(void); /* the signal number received, or 0 */
/* Git revision the binary was built from (REVEAL_GIT_REV from CMake). */
const char *job_git_revision(void);

#endif
