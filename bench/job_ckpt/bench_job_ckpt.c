/* bench/job_ckpt — what sealing and checking a checkpoint costs: job_ckpt_commit (hash + fsync of
 * every file, manifest, DONE, rename) and job_ckpt_verify (hash of every file) on a checkpoint of
 * a given size, against the time to write those bytes in the first place.
 *
 *   bench_job_ckpt [--mb 256] [--files 8] [--reps 3] [--dir /tmp]
 *
 * The files are just written, so hashing reads them from the page cache: the figures are the
 * library's own cost plus the disk's fsync, not a cold read from disk.
 */
#include "job.h"
#include "rv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double median3(double *v, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

int main(int argc, char **argv) {
    long mb = 256, n_files = 8, reps = 3;
    const char *base = "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--mb"))
            mb = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--files"))
            n_files = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            base = argv[i + 1];
        else {
            fprintf(stderr, "usage: %s [--mb N] [--files F] [--reps R] [--dir D]\n", argv[0]);
            return RV_EXIT_USAGE;
        }
    }
    if (mb < 1 || n_files < 1 || reps < 1 || reps > 64) {
        fprintf(stderr, "--mb, --files and --reps must be positive (reps at most 64)\n");
        return RV_EXIT_USAGE;
    }
    char err[RV_ERR_MAX], run[512], tmp[4096], final[4096];
    snprintf(run, sizeof run, "%s/bench_job_ckpt.%d", base, (int)getpid());
    job_run *r;
    if (job_run_open(run, &r, err) != 0) {
        fprintf(stderr, "%s\n", err);
        return RV_EXIT_FAIL;
    }
    size_t per_file = (size_t)mb * (1u << 20) / (size_t)n_files;
    unsigned char *data = malloc(per_file); // (per_file) bytes, incompressible
    if (!data) return RV_EXIT_FAIL;
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < per_file; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        data[i] = (unsigned char)x;
    }
    double t_write[64], t_commit[64], t_verify[64];
    for (long rep = 0; rep < reps; rep++) {
        if (job_ckpt_begin(r, (uint64_t)rep + 1, tmp, sizeof tmp, err) != 0) goto fail;
        double t0 = rv_now();
        for (long f = 0; f < n_files; f++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/part-%03ld.bin", tmp, f);
            FILE *fp = fopen(path, "wb");
            if (!fp || fwrite(data, 1, per_file, fp) != per_file || fclose(fp) != 0) {
                fprintf(stderr, "%s: write failed\n", path);
                return RV_EXIT_FAIL;
            }
        }
        double t1 = rv_now();
        if (job_ckpt_commit(r, (uint64_t)rep + 1, 1, final, sizeof final, err) != 0) goto fail;
        double t2 = rv_now();
        if (job_ckpt_verify(final, err) != 0) goto fail;
        double t3 = rv_now();
        t_write[rep] = t1 - t0, t_commit[rep] = t2 - t1, t_verify[rep] = t3 - t2;
        printf("rep %ld: write %.3f s, commit %.3f s (%.0f MB/s), verify %.3f s (%.0f MB/s)\n", rep,
               t_write[rep], t_commit[rep], (double)mb / t_commit[rep], t_verify[rep],
               (double)mb / t_verify[rep]);
    }
    printf("median of %ld, %ld MB in %ld files: write %.3f s, commit %.3f s, verify %.3f s\n", reps,
           mb, n_files, median3(t_write, (int)reps), median3(t_commit, (int)reps),
           median3(t_verify, (int)reps));
    free(data);
    job_run_close(r);
    return rv_remove_tree(run, err) == 0 ? RV_EXIT_OK : RV_EXIT_FAIL;
fail:
    fprintf(stderr, "%s\n", err);
    return RV_EXIT_FAIL;
}
