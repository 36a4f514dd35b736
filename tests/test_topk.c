/* tests/test_topk.c — the workers' exact top-K index against a double-precision brute force.
 *
 * Parts (the first argument picks one, each a ctest of its own):
 *   random   random keys and queries: several N (0, below K, not a multiple of a block, many
 *            blocks), odd and even d, batches 1, 3 and 64, both scoring paths, AVX2 and portable
 *   ties     equal scores are ranked by id, also where K cuts through a group of equal scores
 *   update   add / replace / upsert / remove keep the index equal to a plain list of rows;
 *            rejected calls leave it unchanged
 *   threads  1 and 2 OpenMP threads give bit-identical answers; 2 OpenBLAS threads the
 *            reference's answer
 *   bf16     bf16 keys with the exact re-rank answer bit-identically to float keys
 *   errors   bad arguments get a clear error naming what is wrong
 *
 * Matching the reference: scores computed in float may differ from the double ones by
 * rounding, so two keys whose true scores differ by less than the tolerance may swap places.
 * Everything else must match exactly: the k, every id's position unless it is in such a
 * near-tie, every score within the tolerance, and the order of the returned list.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#include <cblas.h>

#include "check.h"
#include "rv.h"
#include "worker.h"

/* float rounding of a d ≤ 256 dot product of unit vectors stays far below this */
#define TOL 2e-5

static uint64_t rng_state;

static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_uniform(void) {
    return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

/* rows (n, d) of unit vectors with Gaussian directions */
static void random_unit_rows(float *v, size_t n, size_t d) {
    for (size_t i = 0; i < n; i++) {
        double ss = 0;
        for (size_t x = 0; x < d; x++) {
            double g = sqrt(-2 * log(rng_uniform())) * cos(6.283185307179586 * rng_uniform());
            v[i * d + x] = (float)g;
            ss += g * g;
        }
        for (size_t x = 0; x < d; x++) v[i * d + x] = (float)(v[i * d + x] / sqrt(ss));
    }
}

/* A plain list of rows, the model the index must agree with. */
typedef struct {
    size_t n, d;
    uint64_t ids[4096]; /* (n) */
    float *keys;        /* (4096, d) */
} model_rows;

typedef struct {
    double score;
    uint64_t id;
} ref_entry;

static int ref_cmp(const void *a, const void *b) {
    const ref_entry *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static double dot_double(const float *a, const float *b, size_t d) {
    double s = 0;
    for (size_t x = 0; x < d; x++) s += (double)a[x] * b[x];
    return s;
}

typedef struct {
    uint64_t id;
    size_t row;
} id_row;

static int id_row_cmp(const void *a, const void *b) {
    uint64_t x = ((const id_row *)a)->id, y = ((const id_row *)b)->id;
    return x < y ? -1 : x > y;
}

/* The brute force in double precision: the top k of each query, (B, k), ties by id. */
static ref_entry *reference_topk(const float *keys, const uint64_t *ids, size_t n, size_t d,
                                 const float *q, size_t B, size_t k) {
    ref_entry *all = malloc((n + 1) * sizeof(ref_entry));
    ref_entry *top = malloc((B * k + 1) * sizeof(ref_entry));
    REQUIRE(all && top);
    for (size_t b = 0; b < B; b++) {
        for (size_t i = 0; i < n; i++)
            all[i] = (ref_entry){dot_double(q + b * d, keys + i * d, d), ids[i]};
        qsort(all, n, sizeof(ref_entry), ref_cmp);
        memcpy(top + b * k, all, k * sizeof(ref_entry));
    }
    free(all);
    return top;
}

/* Checks one search result (B, k) against the brute force over keys (n, d) with ids (n);
 * ref is reference_topk's answer for k = min(K, n).
 * tol = 0 asks for exact scores and the reference's ids in its order, ties by id included. */
static void check_against_reference(const char *what, const float *keys, const uint64_t *ids,
                                    size_t n, size_t d, const float *q, size_t B, size_t K,
                                    const ref_entry *ref_top, const uint64_t *got_ids,
                                    const float *got_scores, size_t got_k, double tol) {
    size_t k = K < n ? K : n;
    CHECKF(got_k == k, "%s: k = %zu, expected %zu", what, got_k, k);
    if (got_k != k || n == 0) return;
    id_row *rows = malloc(n * sizeof(id_row));
    REQUIRE(rows != NULL);
    for (size_t i = 0; i < n; i++) rows[i] = (id_row){ids[i], i};
    qsort(rows, n, sizeof(id_row), id_row_cmp);
    size_t bad = 0;
    for (size_t b = 0; b < B && bad < 5; b++) {
        const ref_entry *ref = ref_top + b * k;
        const uint64_t *gi = got_ids + b * k;
        const float *gs = got_scores + b * k;
        for (size_t i = 0; i < k; i++) {
            /* the true score of the id returned at position i */
            id_row key = {gi[i], 0};
            const id_row *hit = bsearch(&key, rows, n, sizeof(id_row), id_row_cmp);
            double truth = hit ? dot_double(q + b * d, keys + hit->row * d, d) : NAN;
            int ok = !isnan(truth) && fabs(gs[i] - truth) <= tol &&
                     fabs(gs[i] - ref[i].score) <= tol &&
                     (gi[i] == ref[i].id || (tol > 0 && fabs(truth - ref[i].score) <= tol));
            if (i > 0) ok = ok && (gs[i - 1] > gs[i] || (gs[i - 1] == gs[i] && gi[i - 1] < gi[i]));
            for (size_t j = 0; j < i; j++) ok = ok && gi[j] != gi[i];
            if (!ok) {
                CHECKF(ok,
                       "%s: query %zu position %zu: got id %llu score %.8f (true %.8f), "
                       "reference id %llu score %.8f",
                       what, b, i, (unsigned long long)gi[i], gs[i], truth,
                       (unsigned long long)ref[i].id, ref[i].score);
                if (++bad >= 5) break;
            }
        }
    }
    free(rows);
}

/* Searches and checks; the index holds keys (n, d) with ids (n). ref may be NULL (computed
 * here) or reference_topk's answer for these queries and k = min(K, n). */
static void search_and_check(const char *what, wrk_topk *ix, const float *keys, const uint64_t *ids,
                             size_t n, size_t d, const float *q, size_t B, size_t K,
                             const ref_entry *ref, double tol) {
    char err[RV_ERR_MAX];
    uint64_t *got_ids = malloc(B * K * sizeof(uint64_t));
    float *got_scores = malloc(B * K * sizeof(float));
    REQUIRE(got_ids && got_scores);
    ref_entry *own = ref ? NULL : reference_topk(keys, ids, n, d, q, B, K < n ? K : n);
    size_t k = 99999;
    int rc = wrk_topk_search(ix, q, B, K, got_ids, got_scores, &k, err);
    CHECKF(rc == 0, "%s: %s", what, err);
    if (rc == 0)
        check_against_reference(what, keys, ids, n, d, q, B, K, ref ? ref : own, got_ids,
                                got_scores, k, tol);
    free(own);
    free(got_ids);
    free(got_scores);
}

static void part_random(void) {
    static const size_t Ns[] = {0, 1, 50, 1000, 4099, 20000};
    static const size_t ds[] = {1, 7, 33, 256};
    static const size_t Bs[] = {1, 3, 64};
    static const wrk_topk_path paths[] = {WRK_TOPK_AUTO, WRK_TOPK_SCAN, WRK_TOPK_GEMM};
    const size_t K = 100;
    char err[RV_ERR_MAX], what[160];
    rng_state = 1;
    for (size_t in = 0; in < sizeof(Ns) / sizeof(Ns[0]); in++)
        for (size_t id = 0; id < sizeof(ds) / sizeof(ds[0]); id++) {
            size_t N = Ns[in], d = ds[id];
            if (N == 20000 && d != 256) continue; /* the large case once, at the bench shape */
            float *keys = malloc((N + 1) * d * sizeof(float));
            uint64_t *ids = malloc((N + 1) * sizeof(uint64_t));
            float *q = malloc(64 * d * sizeof(float));
            REQUIRE(keys && ids && q);
            random_unit_rows(keys, N, d);
            random_unit_rows(q, 64, d);
            /* ids unrelated to row order, so a mix-up of rows and ids shows */
            for (size_t i = 0; i < N; i++) ids[i] = rng_next() >> 1;
            wrk_topk *ix = NULL;
            REQUIRE(wrk_topk_create(d, &ix, err) == 0);
            CHECKF(wrk_topk_add(ix, ids, keys, N, err) == 0, "add: %s", err);
            CHECK(wrk_topk_count(ix) == N);
            for (size_t ib = 0; ib < sizeof(Bs) / sizeof(Bs[0]); ib++) {
                ref_entry *ref = reference_topk(keys, ids, N, d, q, Bs[ib], K < N ? K : N);
                for (size_t ip = 0; ip < sizeof(paths) / sizeof(paths[0]); ip++)
                    for (int simd = 1; simd >= 0; simd--) {
                        /* the portable loop is slow: run it on the smaller cases */
                        if (!simd && N * Bs[ib] > 1000 * 64) continue;
                        REQUIRE(wrk_topk_set_kernel(ix, paths[ip], simd, err) == 0);
                        snprintf(what, sizeof(what), "N=%zu d=%zu B=%zu path=%d simd=%d", N, d,
                                 Bs[ib], (int)paths[ip], simd);
                        /* d = 1: every score is ±‖q‖·|k|, many near-equal: one exact bound */
                        search_and_check(what, ix, keys, ids, N, d, q, Bs[ib], K, ref, TOL);
                    }
                free(ref);
            }
            wrk_topk_free(ix);
            free(keys);
            free(ids);
            free(q);
        }
}

/* Keys and queries with entries in {-2..2}/4: every product and sum is exact in float, so
 * scores tie exactly and the order among equal scores is the id order alone. */
static void part_ties(void) {
    const size_t d = 12, N = 600, B = 5;
    float keys[600 * 12], q[5 * 12];
    uint64_t ids[600];
    char err[RV_ERR_MAX];
    rng_state = 7;
    /* only 6 distinct key rows, each repeated 100 times under shuffled ids */
    float base[6 * 12];
    for (size_t i = 0; i < 6 * d; i++) base[i] = (float)((int)(rng_next() % 5) - 2) / 4;
    for (size_t i = 0; i < N; i++) {
        memcpy(keys + i * d, base + (i % 6) * d, d * sizeof(float));
        ids[i] = i * 7919 % 1009 + 1000; /* distinct, not in row order */
    }
    for (size_t i = 0; i < B * d; i++) q[i] = (float)((int)(rng_next() % 5) - 2) / 4;
    static const wrk_topk_path paths[] = {WRK_TOPK_SCAN, WRK_TOPK_GEMM};
    static const size_t Ks[] = {1, 50, 150, 700};
    char what[96];
    for (size_t ip = 0; ip < 2; ip++)
        for (int simd = 0; simd <= 1; simd++)
            for (size_t ik = 0; ik < 4; ik++) {
                wrk_topk *ix = NULL;
                REQUIRE(wrk_topk_create(d, &ix, err) == 0);
                REQUIRE(wrk_topk_add(ix, ids, keys, N, err) == 0);
                REQUIRE(wrk_topk_set_kernel(ix, paths[ip], simd, err) == 0);
                snprintf(what, sizeof(what), "ties path=%d simd=%d K=%zu", (int)paths[ip], simd,
                         Ks[ik]);
                /* tolerance 0: exact scores, exact ids, ties by id */
                search_and_check(what, ix, keys, ids, N, d, q, B, Ks[ik], NULL, 0);
                wrk_topk_free(ix);
            }
}

/* Applies the same changes to the index and to a plain list, then compares searches. */
static void part_update(void) {
    const size_t d = 37, K = 20, B = 3;
    char err[RV_ERR_MAX];
    model_rows m = {.n = 0, .d = d};
    m.keys = malloc(4096 * d * sizeof(float));
    float *fresh = malloc(600 * d * sizeof(float));
    float q[3 * 37];
    REQUIRE(m.keys && fresh);
    rng_state = 3;
    random_unit_rows(q, B, d);
    wrk_topk *ix = NULL;
    REQUIRE(wrk_topk_create(d, &ix, err) == 0);
    uint64_t next_id = 5;
    for (int round = 0; round < 12; round++) {
        /* add 300 new rows */
        uint64_t add_ids[300];
        random_unit_rows(fresh, 300, d);
        for (size_t i = 0; i < 300; i++) add_ids[i] = next_id += 1 + rng_next() % 3;
        CHECKF(wrk_topk_add(ix, add_ids, fresh, 300, err) == 0, "add: %s", err);
        memcpy(m.ids + m.n, add_ids, sizeof(add_ids));
        memcpy(m.keys + m.n * d, fresh, 300 * d * sizeof(float));
        m.n += 300;
        /* replace 40 random rows (a refresh) */
        uint64_t rep_ids[40];
        size_t rep_rows[40] = {0};
        random_unit_rows(fresh, 40, d);
        for (size_t i = 0; i < 40; i++) {
            size_t r;
            int dup;
            do { /* distinct rows */
                r = rng_next() % m.n;
                dup = 0;
                for (size_t j = 0; j < i; j++) dup |= rep_rows[j] == r;
            } while (dup);
            rep_rows[i] = r;
            rep_ids[i] = m.ids[r];
            memcpy(m.keys + r * d, fresh + i * d, d * sizeof(float));
        }
        CHECKF(wrk_topk_replace(ix, rep_ids, fresh, 40, err) == 0, "replace: %s", err);
        /* remove 150 random rows (deletions), the model by swapping with its last row too */
        uint64_t rm_ids[150];
        for (size_t i = 0; i < 150; i++) {
            size_t r = rng_next() % m.n;
            rm_ids[i] = m.ids[r];
            m.ids[r] = m.ids[m.n - 1];
            memmove(m.keys + r * d, m.keys + (m.n - 1) * d, d * sizeof(float));
            m.n--;
        }
        CHECKF(wrk_topk_remove(ix, rm_ids, 150, err) == 0, "remove: %s", err);
        /* upsert: 10 present rows and 10 new ones */
        uint64_t up_ids[20];
        random_unit_rows(fresh, 20, d);
        for (size_t i = 0; i < 20; i++) {
            if (i < 10) {
                size_t r = (size_t)(rng_next() % (m.n / 10)) * 10 + i; /* distinct rows */
                up_ids[i] = m.ids[r];
                memcpy(m.keys + r * d, fresh + i * d, d * sizeof(float));
            } else {
                up_ids[i] = next_id += 2;
                m.ids[m.n] = up_ids[i];
                memcpy(m.keys + m.n * d, fresh + i * d, d * sizeof(float));
                m.n++;
            }
        }
        CHECKF(wrk_topk_upsert(ix, up_ids, fresh, 20, err) == 0, "upsert: %s", err);
        CHECKF(wrk_topk_count(ix) == m.n, "count %zu, expected %zu", wrk_topk_count(ix), m.n);
        if (m.n > 1000) { /* a deletion of most of the source: drain to 100 rows */
            size_t drop = m.n - 100;
            CHECKF(wrk_topk_remove(ix, m.ids + 100, drop, err) == 0, "drain: %s", err);
            m.n = 100;
        }
        char what[64];
        for (int path = WRK_TOPK_SCAN; path <= WRK_TOPK_GEMM; path++) {
            REQUIRE(wrk_topk_set_kernel(ix, (wrk_topk_path)path, 1, err) == 0);
            snprintf(what, sizeof(what), "update round %d path %d", round, path);
            search_and_check(what, ix, m.keys, m.ids, m.n, d, q, B, K, NULL, TOL);
        }
        /* every key reads back as the model holds it */
        float got[37];
        size_t wrong = 0;
        for (size_t i = 0; i < m.n; i++)
            wrong +=
                !wrk_topk_get(ix, m.ids[i], got) || memcmp(got, m.keys + i * d, sizeof(got)) != 0;
        CHECKF(wrong == 0, "round %d: %zu keys read back wrong", round, wrong);
        CHECK(!wrk_topk_get(ix, rm_ids[0], got));
    }

    /* rejected calls change nothing */
    size_t n_before = wrk_topk_count(ix);
    uint64_t dup_ids[2] = {m.ids[0], m.ids[0]};
    uint64_t new_dup[2] = {1ULL << 62, 1ULL << 62};
    uint64_t missing[2] = {m.ids[1], 3};
    random_unit_rows(fresh, 2, d);
    CHECK(wrk_topk_add(ix, dup_ids, fresh, 1, err) == -1 && strstr(err, "already"));
    CHECK(wrk_topk_add(ix, new_dup, fresh, 2, err) == -1 && strstr(err, "twice"));
    CHECK(wrk_topk_replace(ix, missing, fresh, 2, err) == -1 && strstr(err, "not in the index"));
    CHECK(wrk_topk_remove(ix, missing, 2, err) == -1 && strstr(err, "not in the index"));
    CHECK(wrk_topk_remove(ix, dup_ids, 2, err) == -1 && strstr(err, "twice"));
    fresh[d + 5] = NAN;
    uint64_t two_new[2] = {1ULL << 61, (1ULL << 61) + 1};
    CHECK(wrk_topk_add(ix, two_new, fresh, 2, err) == -1 && strstr(err, "non-finite"));
    CHECKF(strstr(err, "key 1") && strstr(err, "position 5"), "error names the row: %s", err);
    fresh[d + 5] = 3e18f;
    CHECK(wrk_topk_upsert(ix, two_new, fresh, 2, err) == -1 && strstr(err, "norm"));
    CHECK(wrk_topk_count(ix) == n_before);
    search_and_check("after rejected calls", ix, m.keys, m.ids, m.n, d, q, B, K, NULL, TOL);

    /* remove everything: N = 0 answers with k = 0 */
    CHECKF(wrk_topk_remove(ix, m.ids, m.n, err) == 0, "remove all: %s", err);
    search_and_check("empty", ix, m.keys, m.ids, 0, d, q, B, K, NULL, TOL);
    wrk_topk_free(ix);
    free(m.keys);
    free(fresh);
}

static void set_threads(int omp, int blas) {
#ifdef _OPENMP
    omp_set_num_threads(omp);
#endif
    openblas_set_num_threads(blas);
}

/* The same search with 1 and 2 OpenMP threads: bit-identical ids and scores. */
static void part_threads(void) {
    const size_t N = 10007, d = 96, K = 100;
    static const size_t Bs[] = {1, 5, 64};
    char err[RV_ERR_MAX];
    float *keys = malloc(N * d * sizeof(float));
    uint64_t *ids = malloc(N * sizeof(uint64_t));
    float *q = malloc(64 * d * sizeof(float));
    uint64_t *ids1 = malloc(64 * K * sizeof(uint64_t)), *ids2 = malloc(64 * K * sizeof(uint64_t));
    float *s1 = malloc(64 * K * sizeof(float)), *s2 = malloc(64 * K * sizeof(float));
    REQUIRE(keys && ids && q && ids1 && ids2 && s1 && s2);
    rng_state = 11;
    random_unit_rows(keys, N, d);
    random_unit_rows(q, 64, d);
    for (size_t i = 0; i < N; i++) ids[i] = rng_next();
    wrk_topk *ix = NULL;
    REQUIRE(wrk_topk_create(d, &ix, err) == 0);
    REQUIRE(wrk_topk_add(ix, ids, keys, N, err) == 0);
    for (size_t ib = 0; ib < 3; ib++) {
        size_t B = Bs[ib], k1 = 0, k2 = 0;
        ref_entry *ref = reference_topk(keys, ids, N, d, q, B, K);
        set_threads(1, 1);
        CHECKF(wrk_topk_search(ix, q, B, K, ids1, s1, &k1, err) == 0, "%s", err);
        /* 2 OpenMP threads, one single-threaded sgemm each: bit-identical */
        set_threads(2, 1);
        CHECKF(wrk_topk_search(ix, q, B, K, ids2, s2, &k2, err) == 0, "%s", err);
        CHECK(k1 == K && k2 == K);
        CHECKF(memcmp(ids1, ids2, B * K * sizeof(uint64_t)) == 0,
               "B=%zu: ids differ between 1 and 2 threads", B);
        CHECKF(memcmp(s1, s2, B * K * sizeof(float)) == 0,
               "B=%zu: scores differ between 1 and 2 threads", B);
        check_against_reference("2 threads", keys, ids, N, d, q, B, K, ref, ids2, s2, k2, TOL);
        /* OpenBLAS's own 2 threads split each sgemm its own way, which may change the last bit
         * of a score (worker.h says so): the answer still matches the reference */
        set_threads(2, 2);
        CHECKF(wrk_topk_search(ix, q, B, K, ids2, s2, &k2, err) == 0, "%s", err);
        check_against_reference("2 OpenBLAS threads", keys, ids, N, d, q, B, K, ref, ids2, s2, k2,
                                TOL);
        free(ref);
    }
    set_threads(1, 1);
    wrk_topk_free(ix);
    free(keys);
    free(ids);
    free(q);
    free(ids1);
    free(ids2);
    free(s1);
    free(s2);
}

/* Runs the same search with bf16 keys on and off (scan path) and asks for bit-identical
 * answers. The bf16 search comes first, on the copy the index has kept up to date so far;
 * turning bf16 off and on again rebuilds the copy. */
static void check_bf16_same(const char *what, wrk_topk *ix, const float *q, size_t B, size_t K,
                            int simd) {
    char err[RV_ERR_MAX];
    uint64_t *ids_f = malloc(B * K * sizeof(uint64_t)), *ids_h = malloc(B * K * sizeof(uint64_t));
    float *s_f = malloc(B * K * sizeof(float)), *s_h = malloc(B * K * sizeof(float));
    REQUIRE(ids_f && ids_h && s_f && s_h);
    size_t k_f = 0, k_h = 1;
    REQUIRE(wrk_topk_set_kernel(ix, WRK_TOPK_SCAN, simd, err) == 0);
    REQUIRE(wrk_topk_set_bf16(ix, 1, err) == 0);
    CHECKF(wrk_topk_search(ix, q, B, K, ids_h, s_h, &k_h, err) == 0, "%s: %s", what, err);
    REQUIRE(wrk_topk_set_bf16(ix, 0, err) == 0);
    CHECKF(wrk_topk_search(ix, q, B, K, ids_f, s_f, &k_f, err) == 0, "%s: %s", what, err);
    REQUIRE(wrk_topk_set_bf16(ix, 1, err) == 0);
    CHECKF(k_f == k_h, "%s: k %zu vs %zu", what, k_f, k_h);
    size_t diff = 0;
    for (size_t i = 0; i < B * k_f && k_f == k_h; i++)
        diff += ids_f[i] != ids_h[i] || s_f[i] != s_h[i];
    CHECKF(diff == 0, "%s: %zu of %zu results differ between float and bf16 keys", what, diff,
           B * k_f);
    free(ids_f);
    free(ids_h);
    free(s_f);
    free(s_h);
}

/* bf16 keys with the exact re-rank give the float scan's answer bit for bit: on random keys,
 * on keys so close together that bf16 cannot order them, and after updates. */
static void part_bf16(void) {
    static const size_t Ns[] = {1, 50, 1000, 4099, 20000};
    static const size_t ds[] = {7, 33, 256};
    static const size_t Bs[] = {1, 3};
    static const size_t Ks[] = {1, 10, 100};
    char err[RV_ERR_MAX], what[128];
    rng_state = 21;
    for (size_t in = 0; in < 5; in++)
        for (size_t id = 0; id < 3; id++) {
            size_t N = Ns[in], d = ds[id];
            float *keys = malloc(N * d * sizeof(float)), *q = malloc(3 * d * sizeof(float));
            uint64_t *ids = malloc(N * sizeof(uint64_t));
            REQUIRE(keys && q && ids);
            random_unit_rows(keys, N, d);
            random_unit_rows(q, 3, d);
            for (size_t i = 0; i < N; i++) ids[i] = rng_next();
            wrk_topk *ix = NULL;
            REQUIRE(wrk_topk_create(d, &ix, err) == 0);
            /* half added before the bf16 copy exists, half after */
            REQUIRE(wrk_topk_add(ix, ids, keys, N / 2, err) == 0);
            REQUIRE(wrk_topk_set_bf16(ix, 1, err) == 0);
            REQUIRE(wrk_topk_add(ix, ids + N / 2, keys + N / 2 * d, N - N / 2, err) == 0);
            for (size_t ib = 0; ib < 2; ib++)
                for (size_t ik = 0; ik < 3; ik++)
                    for (int simd = 1; simd >= 0; simd--) {
                        if (!simd && N > 4099) continue;
                        snprintf(what, sizeof(what), "bf16 N=%zu d=%zu B=%zu K=%zu simd=%d", N, d,
                                 Bs[ib], Ks[ik], simd);
                        check_bf16_same(what, ix, q, Bs[ib], Ks[ik], simd);
                    }
            REQUIRE(wrk_topk_set_bf16(ix, 1, err) == 0);
            search_and_check("bf16 vs reference", ix, keys, ids, N, d, q, 3, 100, NULL, TOL);
            wrk_topk_free(ix);
            free(keys);
            free(q);
            free(ids);
        }

    /* 4000 keys in 8 clusters of near-copies (relative spread 3e-4, about the bf16 step):
     * bf16 scores of a cluster mostly tie or come out in the wrong order; the float ones do
     * not. A query near a cluster centre makes the top K one cluster's fine order. */
    const size_t N = 4000, d = 64;
    float *keys = malloc(N * d * sizeof(float)), centres[8 * 64], q[3 * 64];
    uint64_t *ids = malloc(N * sizeof(uint64_t));
    REQUIRE(keys && ids);
    random_unit_rows(centres, 8, d);
    for (size_t i = 0; i < N; i++) {
        for (size_t x = 0; x < d; x++)
            keys[i * d + x] =
                centres[(i % 8) * d + x] * (float)(1 + 3e-4 * (2 * rng_uniform() - 1));
        ids[i] = i;
    }
    for (size_t b = 0; b < 3; b++) memcpy(q + b * d, centres + b * d, d * sizeof(float));
    wrk_topk *ix = NULL;
    REQUIRE(wrk_topk_create(d, &ix, err) == 0);
    REQUIRE(wrk_topk_add(ix, ids, keys, N, err) == 0);
    for (int simd = 1; simd >= 0; simd--) {
        snprintf(what, sizeof(what), "bf16 near-copies simd=%d", simd);
        check_bf16_same(what, ix, q, 3, 100, simd);
    }
    /* the bf16 copy follows replace and remove */
    REQUIRE(wrk_topk_set_bf16(ix, 1, err) == 0);
    uint64_t some[300];
    for (size_t i = 0; i < 300; i++) some[i] = i * 13;
    random_unit_rows(keys, 300, d);
    CHECKF(wrk_topk_replace(ix, some, keys, 300, err) == 0, "replace: %s", err);
    for (size_t i = 0; i < 300; i++) some[i] = i * 13 + 1;
    CHECKF(wrk_topk_remove(ix, some, 300, err) == 0, "remove: %s", err);
    check_bf16_same("bf16 after replace and remove", ix, q, 3, 100, 1);
    wrk_topk_free(ix);
    free(keys);
    free(ids);
}

static void part_errors(void) {
    char err[RV_ERR_MAX];
    wrk_topk *ix = NULL;
    CHECK(wrk_topk_create(0, &ix, err) == -1 && strstr(err, "dimension") && ix == NULL);
    REQUIRE(wrk_topk_create(4, &ix, err) == 0);
    float key[4] = {1, 0, 0, 0}, q[8] = {1, 0, 0, 0, 0, INFINITY, 0, 0};
    uint64_t id = 9, out_ids[4];
    float out_scores[4];
    size_t k = 7;
    REQUIRE(wrk_topk_add(ix, &id, key, 1, err) == 0);
    CHECK(wrk_topk_search(ix, q, 1, 0, out_ids, out_scores, &k, err) == -1 &&
          strstr(err, "K must be"));
    CHECK(wrk_topk_search(ix, q, 2, 2, out_ids, out_scores, &k, err) == -1 &&
          strstr(err, "query 1") && strstr(err, "non-finite"));
    CHECK(wrk_topk_set_kernel(ix, (wrk_topk_path)7, 1, err) == -1 && strstr(err, "path"));
    /* K > N: k = N */
    CHECK(wrk_topk_search(ix, q, 1, 4, out_ids, out_scores, &k, err) == 0 && k == 1 &&
          out_ids[0] == 9 && out_scores[0] == 1.0f);
    wrk_topk_free(ix);
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        void (*run)(void);
    } parts[] = {{"random", part_random},   {"ties", part_ties}, {"update", part_update},
                 {"threads", part_threads}, {"bf16", part_bf16}, {"errors", part_errors}};
    for (size_t i = 0; argc == 2 && i < sizeof(parts) / sizeof(parts[0]); i++)
        if (strcmp(argv[1], parts[i].name) == 0) {
            parts[i].run();
            return check_report(parts[i].name);
        }
    fprintf(stderr, "usage: %s random|ties|update|threads|bf16|errors\n", argv[0]);
    return 2;
}
