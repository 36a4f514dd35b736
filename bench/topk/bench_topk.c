/* bench/topk/bench_topk.c — the workers' top-K kernel on a fixed key set, and this machine's
 * bounds for it. run.sh drives it beside FAISS; by hand:
 *
 *   bench_topk gen     --out FILE [--n 1000000] [--d 256] [--queries 256] [--seed 1]
 *   bench_topk bounds  --data FILE [--batch 64] [--repeat 5]
 *   bench_topk search  --data FILE --batch B --queries Q [--k 100] [--repeat 5] [--bf16 0|1]
 *                      [--out RES]
 *   bench_topk compare --a RES --b RES [--tol 1e-5]
 *
 * Data file: "RVTK" u32 version=1, u64 N, u64 d, u64 Q, then keys f32 (N, d) and queries
 * f32 (Q, d), all little-endian; keys and queries are Gaussian directions, L2-normalised; key
 * ids are row numbers (as FAISS numbers them). Result file: u64 Q, u64 k, ids i64 (Q, k),
 * scores f32 (Q, k).
 *
 * Output lines are "key=value" pairs so run.sh can read them; times are wall-clock best and
 * median over --repeat passes (the machine is shared: look at the spread).
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "rv.h"
#include "worker.h"

typedef struct {
    uint64_t n, d, nq;
    float *keys;    /* (n, d) */
    float *queries; /* (nq, d) */
} bench_data;

static const char *arg_str(int argc, char **argv, const char *name, const char *def) {
    for (int i = 2; i + 1 < argc; i += 2)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

static double arg_num(int argc, char **argv, const char *name, double def) {
    const char *s = arg_str(argc, argv, name, NULL);
    if (!s) return def;
    char *end;
    double v = strtod(s, &end);
    if (*end || end == s) {
        fprintf(stderr, "bench_topk: %s wants a number, got '%s'\n", name, s);
        exit(2);
    }
    return v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* best (smallest) and median of t (n), which it sorts */
static void best_median(double *t, int n, double *best, double *median) {
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    *best = t[0];
    *median = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static int threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ---- gen ---------------------------------------------------------------------------------- */

static uint64_t rng_state;

static double rng_gauss(void) {
    double u[2];
    for (int i = 0; i < 2; i++) {
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        u[i] = ((double)(z >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

static int write_unit_rows(FILE *f, uint64_t n, uint64_t d, char *err) {
    float *row = malloc(d * sizeof(float));
    if (!row) return rv_fail(err, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        double ss = 0;
        for (uint64_t x = 0; x < d; x++) {
            double g = rng_gauss();
            row[x] = (float)g;
            ss += g * g;
        }
        for (uint64_t x = 0; x < d; x++) row[x] = (float)(row[x] / sqrt(ss));
        if (fwrite(row, sizeof(float), d, f) != d) {
            free(row);
            return rv_fail(err, "write failed");
        }
    }
    free(row);
    return 0;
}

static int cmd_gen(int argc, char **argv, char *err) {
    const char *out = arg_str(argc, argv, "--out", NULL);
    uint64_t n = (uint64_t)arg_num(argc, argv, "--n", 1000000);
    uint64_t d = (uint64_t)arg_num(argc, argv, "--d", 256);
    uint64_t nq = (uint64_t)arg_num(argc, argv, "--queries", 256);
    rng_state = (uint64_t)arg_num(argc, argv, "--seed", 1);
    if (!out) return rv_fail(err, "gen: --out FILE is required");
    if (n == 0 || d == 0 || nq == 0) return rv_fail(err, "gen: --n, --d, --queries must be > 0");
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", out);
    FILE *f = fopen(tmp, "wb");
    if (!f) return rv_fail(err, "gen: cannot create %s", tmp);
    uint32_t version = 1;
    uint64_t hdr[3] = {n, d, nq};
    int rc =
        fwrite("RVTK", 1, 4, f) == 4 && fwrite(&version, 4, 1, f) == 1 && fwrite(hdr, 8, 3, f) == 3
            ? 0
            : rv_fail(err, "write failed");
    if (rc == 0) rc = write_unit_rows(f, n, d, err);
    if (rc == 0) rc = write_unit_rows(f, nq, d, err);
    if (fclose(f) != 0 && rc == 0) rc = rv_fail(err, "close failed");
    if (rc == 0 && rename(tmp, out) != 0) rc = rv_fail(err, "cannot rename %s", tmp);
    if (rc != 0) {
        remove(tmp);
        return rv_fail_wrap(err, "gen %s", out);
    }
    printf("gen=ok n=%llu d=%llu queries=%llu file=%s\n", (unsigned long long)n,
           (unsigned long long)d, (unsigned long long)nq, out);
    return 0;
}

static int load_data(const char *path, bench_data *b, char *err) {
    memset(b, 0, sizeof(*b));
    FILE *f = fopen(path, "rb");
    if (!f)
        return rv_fail(err, "cannot open %s (make it with: bench_topk gen --out %s)", path, path);
    char magic[4];
    uint32_t version = 0;
    uint64_t hdr[3];
    int rc = 0;
    if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "RVTK", 4) != 0 ||
        fread(&version, 4, 1, f) != 1 || version != 1 || fread(hdr, 8, 3, f) != 3 || hdr[0] == 0 ||
        hdr[1] == 0 || hdr[2] == 0 || hdr[1] > 1u << 20 || hdr[0] > 1ull << 34) {
        rc = rv_fail(err, "%s: not a bench_topk data file (version 1)", path);
        goto cleanup;
    }
    b->n = hdr[0], b->d = hdr[1], b->nq = hdr[2];
    b->keys = malloc(b->n * b->d * sizeof(float));
    b->queries = malloc(b->nq * b->d * sizeof(float));
    if (!b->keys || !b->queries) {
        rc = rv_fail(err, "%s: out of memory", path);
        goto cleanup;
    }
    if (fread(b->keys, sizeof(float), b->n * b->d, f) != b->n * b->d ||
        fread(b->queries, sizeof(float), b->nq * b->d, f) != b->nq * b->d)
        rc = rv_fail(err, "%s: truncated", path);
cleanup:
    fclose(f);
    if (rc != 0) {
        free(b->keys);
        free(b->queries);
    }
    return rc;
}

/* ---- bounds ------------------------------------------------------------------------------- */

/* Streaming read of the whole key matrix on every thread: the memory bandwidth a batch-1 scan
 * can hope for. The sum is printed so the reads cannot be optimised away. */
static double stream_read_seconds(const float *v, size_t n, double *sum_out) {
    size_t n8 = n / 8;
    double t0 = rv_now();
    double sum = 0;
#pragma omp parallel reduction(+ : sum)
    {
#ifdef _OPENMP
        size_t t = (size_t)omp_get_thread_num(), T = (size_t)omp_get_num_threads();
#else
        size_t t = 0, T = 1;
#endif
        /* eight running sums, so the compiler vectorises without reassociating */
        float acc[8] = {0};
        for (size_t i = n8 * t / T; i < n8 * (t + 1) / T; i++)
            for (size_t l = 0; l < 8; l++) acc[l] += v[i * 8 + l];
        for (size_t l = 0; l < 8; l++) sum += acc[l];
    }
    for (size_t i = n8 * 8; i < n; i++) sum += v[i];
    *sum_out = sum;
    return rv_now() - t0;
}

/* The kernel's scoring alone: the same blocks and thread layouts as wrk_topk_search's sgemm
 * path, with no selection. blas_threads = 1: one single-threaded sgemm per block per OpenMP
 * thread; more: OpenBLAS's threads split each block's sgemm. */
static double sgemm_blocks_seconds(const bench_data *b, size_t B, float *scores, size_t nb,
                                   int blas_threads) {
    size_t nblocks = (b->n + nb - 1) / nb;
    openblas_set_num_threads(blas_threads);
    int T = blas_threads > 1 ? 1 : threads();
    double t0 = rv_now();
#pragma omp parallel num_threads(T)
    {
#ifdef _OPENMP
        size_t t = (size_t)omp_get_thread_num();
#else
        size_t t = 0;
#endif
        float *s = scores + t * B * nb; /* (B, nb) */
        for (size_t blk = nblocks * t / T; blk < nblocks * (t + 1) / T; blk++) {
            size_t r0 = blk * nb, rows = b->n - r0 < nb ? b->n - r0 : nb;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)rows, (int)b->d, 1.0f,
                        b->queries, (int)b->d, b->keys + r0 * b->d, (int)b->d, 0.0f, s, (int)rows);
        }
    }
    return rv_now() - t0;
}

static int cmd_bounds(int argc, char **argv, char *err) {
    bench_data b;
    const char *path = arg_str(argc, argv, "--data", NULL);
    size_t B = (size_t)arg_num(argc, argv, "--batch", 64);
    int repeat = (int)arg_num(argc, argv, "--repeat", 5);
    if (!path) return rv_fail(err, "bounds: --data FILE is required");
    if (repeat < 1 || repeat > 100) return rv_fail(err, "bounds: --repeat must be 1..100");
    if (load_data(path, &b, err) != 0) return -1;
    if (B < 1 || B > b.nq) {
        free(b.keys);
        free(b.queries);
        return rv_fail(err, "bounds: --batch must be 1..%llu", (unsigned long long)b.nq);
    }
    size_t bytes = b.n * b.d * sizeof(float);
    double t[100] = {0}, best, median, sum = 0;
    for (int r = 0; r < repeat; r++) t[r] = stream_read_seconds(b.keys, b.n * b.d, &sum);
    best_median(t, repeat, &best, &median);
    printf("stream_read_gbs_best=%.2f stream_read_gbs_median=%.2f bytes=%zu threads=%d "
           "checksum=%.3f\n",
           bytes / best / 1e9, bytes / median / 1e9, bytes, threads(), sum);

    size_t nb = wrk_topk_gemm_block_rows(B);
    float *scores = malloc((size_t)threads() * B * nb * sizeof(float));
    if (!scores) {
        free(b.keys);
        free(b.queries);
        return rv_fail(err, "bounds: out of memory");
    }
    double flops = 2.0 * (double)B * (double)b.n * (double)b.d;
    int blas_threads[2] = {1, threads()};
    for (int v = 0; v < (blas_threads[1] > 1 ? 2 : 1); v++) {
        for (int r = 0; r < repeat; r++)
            t[r] = sgemm_blocks_seconds(&b, B, scores, nb, blas_threads[v]);
        best_median(t, repeat, &best, &median);
        printf("sgemm_gflops_best=%.1f sgemm_gflops_median=%.1f shape=%zux%llux%zu "
               "omp_threads=%d blas_threads=%d\n",
               flops / best / 1e9, flops / median / 1e9, B, (unsigned long long)b.d, nb,
               blas_threads[v] > 1 ? 1 : threads(), blas_threads[v]);
    }
    free(scores);
    free(b.keys);
    free(b.queries);
    return 0;
}

/* ---- search ------------------------------------------------------------------------------- */

static int write_results(const char *path, uint64_t nq, uint64_t k, const uint64_t *ids,
                         const float *scores, char *err) {
    size_t n = 16 + nq * k * (8 + 4);
    unsigned char *buf = malloc(n);
    if (!buf) return rv_fail(err, "out of memory");
    uint64_t hdr[2] = {nq, k};
    memcpy(buf, hdr, 16);
    memcpy(buf + 16, ids, nq * k * 8);
    memcpy(buf + 16 + nq * k * 8, scores, nq * k * 4);
    int rc = rv_write_file_atomic(path, buf, n, err);
    free(buf);
    return rc;
}

static int cmd_search(int argc, char **argv, char *err) {
    const char *path = arg_str(argc, argv, "--data", NULL);
    const char *out = arg_str(argc, argv, "--out", NULL);
    size_t B = (size_t)arg_num(argc, argv, "--batch", 1);
    size_t nq = (size_t)arg_num(argc, argv, "--queries", 32);
    size_t K = (size_t)arg_num(argc, argv, "--k", 100);
    int repeat = (int)arg_num(argc, argv, "--repeat", 5);
    int bf16 = (int)arg_num(argc, argv, "--bf16", 0);
    if (!path) return rv_fail(err, "search: --data FILE is required");
    if (repeat < 1 || repeat > 100) return rv_fail(err, "search: --repeat must be 1..100");
    if (B < 1 || nq < B || nq % B != 0)
        return rv_fail(err, "search: --queries (%zu) must be a positive multiple of --batch (%zu)",
                       nq, B);
    if (K < 1) return rv_fail(err, "search: --k must be at least 1");
    bench_data b;
    if (load_data(path, &b, err) != 0) return -1;
    int rc = -1;
    wrk_topk *ix = NULL;
    uint64_t *ids = NULL, *row_ids = malloc(b.n * sizeof(uint64_t));
    float *scores = NULL;
    if (nq > b.nq) {
        rv_fail(err, "search: --queries %zu but the file holds %llu", nq, (unsigned long long)b.nq);
        goto cleanup;
    }
    ids = malloc(nq * K * sizeof(uint64_t));
    scores = malloc(nq * K * sizeof(float));
    if (!row_ids || !ids || !scores) {
        rv_fail(err, "search: out of memory");
        goto cleanup;
    }
    for (uint64_t i = 0; i < b.n; i++) row_ids[i] = i;
    double t0 = rv_now();
    if (wrk_topk_create(b.d, &ix, err) != 0 || wrk_topk_add(ix, row_ids, b.keys, b.n, err) != 0 ||
        wrk_topk_set_bf16(ix, bf16, err) != 0)
        goto cleanup;
    double t_build = rv_now() - t0;
    free(b.keys); /* the index holds its own copy */
    b.keys = NULL;

    double t[100] = {0}, best, median;
    size_t k = 0;
    for (int r = 0; r < repeat; r++) {
        t0 = rv_now();
        for (size_t q0 = 0; q0 < nq; q0 += B)
            if (wrk_topk_search(ix, b.queries + q0 * b.d, B, K, ids + q0 * K, scores + q0 * K, &k,
                                err) != 0)
                goto cleanup;
        t[r] = rv_now() - t0;
    }
    best_median(t, repeat, &best, &median);
    printf("impl=reveal%s batch=%zu queries=%zu k=%zu qps_best=%.2f qps_median=%.2f "
           "omp_threads=%d blas_threads=%d build_s=%.2f index_mb=%.0f\n",
           bf16 ? "-bf16" : "", B, nq, k, nq / best, nq / median, threads(),
           openblas_get_num_threads(), t_build, wrk_topk_bytes(ix) / 1e6);
    if (out && write_results(out, nq, k, ids, scores, err) != 0) goto cleanup;
    rc = 0;
cleanup:
    wrk_topk_free(ix);
    free(row_ids);
    free(ids);
    free(scores);
    free(b.keys);
    free(b.queries);
    return rc;
}

/* ---- compare ------------------------------------------------------------------------------ */

typedef struct {
    uint64_t nq, k;
    int64_t *ids;  /* (nq, k) */
    float *scores; /* (nq, k) */
    void *raw;
} bench_results;

static int read_results(const char *path, bench_results *r, char *err) {
    size_t n;
    if (rv_read_file(path, (size_t)1 << 32, &r->raw, &n, err) != 0) return -1;
    uint64_t hdr[2] = {0, 0};
    if (n >= 16) memcpy(hdr, r->raw, 16);
    if (n < 16 || hdr[1] == 0 || hdr[0] > n || hdr[1] > n || n != 16 + hdr[0] * hdr[1] * 12) {
        free(r->raw);
        return rv_fail(err, "%s: not a results file", path);
    }
    r->nq = hdr[0], r->k = hdr[1];
    r->ids = malloc(r->nq * r->k * 8);
    r->scores = malloc(r->nq * r->k * 4);
    if (!r->ids || !r->scores) {
        free(r->ids);
        free(r->scores);
        free(r->raw);
        return rv_fail(err, "out of memory");
    }
    memcpy(r->ids, (char *)r->raw + 16, r->nq * r->k * 8);
    memcpy(r->scores, (char *)r->raw + 16 + r->nq * r->k * 8, r->nq * r->k * 4);
    return 0;
}

/* Same ids at the same positions and scores within tol. A position whose ids differ but whose
 * two scores agree within tol is a tie swap: both lists are right up to float rounding. */
static int cmd_compare(int argc, char **argv, char *err) {
    const char *pa = arg_str(argc, argv, "--a", NULL), *pb = arg_str(argc, argv, "--b", NULL);
    double tol = arg_num(argc, argv, "--tol", 1e-5);
    if (!pa || !pb) return rv_fail(err, "compare: --a RES and --b RES are required");
    bench_results a, b;
    if (read_results(pa, &a, err) != 0) return -1;
    if (read_results(pb, &b, err) != 0) {
        free(a.ids), free(a.scores), free(a.raw);
        return -1;
    }
    int rc = 0;
    if (a.nq != b.nq || a.k != b.k) {
        rc = rv_fail(err, "compare: %s holds %llu×%llu results, %s %llu×%llu", pa,
                     (unsigned long long)a.nq, (unsigned long long)a.k, pb,
                     (unsigned long long)b.nq, (unsigned long long)b.k);
    } else {
        size_t same = 0, swaps = 0, wrong = 0, total = a.nq * a.k;
        double max_diff = 0;
        for (size_t i = 0; i < total; i++) {
            double diff = fabs((double)a.scores[i] - b.scores[i]);
            max_diff = diff > max_diff ? diff : max_diff;
            if (a.ids[i] == b.ids[i] && diff <= tol)
                same++;
            else if (diff <= tol)
                swaps++;
            else
                wrong++;
        }
        printf("compare positions=%zu same_ids=%zu tie_swaps=%zu mismatches=%zu "
               "max_score_diff=%.2e identical=%s\n",
               total, same, swaps, wrong, max_diff, wrong == 0 && swaps == 0 ? "yes" : "no");
    }
    free(a.ids), free(a.scores), free(a.raw);
    free(b.ids), free(b.scores), free(b.raw);
    return rc;
}

int main(int argc, char **argv) {
    char err[RV_ERR_MAX] = "";
    if (argc < 2 || (argc % 2) != 0) {
        fprintf(stderr, "usage: bench_topk gen|bounds|search|compare --option value ...\n");
        return RV_EXIT_USAGE;
    }
    int rc;
    if (strcmp(argv[1], "gen") == 0)
        rc = cmd_gen(argc, argv, err);
    else if (strcmp(argv[1], "bounds") == 0)
        rc = cmd_bounds(argc, argv, err);
    else if (strcmp(argv[1], "search") == 0)
        rc = cmd_search(argc, argv, err);
    else if (strcmp(argv[1], "compare") == 0)
        rc = cmd_compare(argc, argv, err);
    else {
        fprintf(stderr, "bench_topk: unknown command '%s'\n", argv[1]);
        return RV_EXIT_USAGE;
    }
    if (rc != 0) {
        fprintf(stderr, "bench_topk: %s\n", err);
        return RV_EXIT_FAIL;
    }
    return RV_EXIT_OK;
}
