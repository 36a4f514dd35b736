/* worker/topk.c — the in-RAM key matrix of one knowledge source and its exact top-K search.
 *
 * Storage: rows are packed in one 64-byte aligned buffer (cap, d) with their ids beside them;
 * an open-addressing table maps id → row. Removing a row moves the last row into its place,
 * so the matrix stays dense and a scan never skips holes.
 *
 * Search: the key matrix is cut into blocks whose size depends only on (B, d), never on the
 * thread count, and each thread scans a contiguous range of blocks. A block is scored either by
 * one sgemm (B, d)·(nb, d)ᵀ — large batches, compute bound — or by a vectorised dot loop that
 * reads each key once for all B queries — small batches, memory bound. Right after a block is
 * scored, while its scores are still in cache, each query's scores pass a filter against the
 * running threshold of that query's bounded min-heap (the K-th best score so far): nearly all
 * scores fail one compare, the few that pass enter the heap. The threads' heaps are merged at
 * the end. Ranking is by score descending then id ascending, a total order on distinct ids, so
 * the merged result is the same whatever the thread count.
 */
#include "worker.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TOPK_X86 1
#endif

#include "rv.h"

/* The largest scores block, in floats: B·nb scores stay within a core's L2 (512 KiB on this
 * machine) beside the keys being scored. */
#define TOPK_GEMM_SCORES_FLOATS (64 * 1024)
/* Key bytes per block on the scan path: small enough that the block stays in L1/L2 while
 * every query of the batch reads it. */
#define TOPK_SCAN_BLOCK_BYTES (64 * 1024)

struct wrk_topk {
    size_t d;      /* floats per key */
    size_t n;      /* rows in use */
    size_t cap;    /* rows allocated */
    float *keys;   /* (cap, d), 64-byte aligned */
    uint64_t *ids; /* (cap) */
    size_t *slots; /* (nslots) row + 1 of the id hashed here, 0 = empty; linear probing */
    size_t nslots; /* power of two, at least twice n */
    wrk_topk_path path;
    int simd;            /* 1: use the AVX2 kernels when the CPU has them */
    uint16_t *keys_bf16; /* (cap, d) bf16 copy of keys for the scan path, or NULL when off */
    double max_norm;     /* ≥ every key's L2 norm (not lowered by removals) */
};

typedef struct {
    float score;
    uint64_t id;
} topk_entry;

/* One query's bounded min-heap: the root is the worst kept entry; thr is its score once the
 * heap is full (until then every score is a candidate). */
typedef struct {
    topk_entry *e; /* (k) */
    size_t count;
    size_t k;
    float thr;
} topk_heap;

/* ---- id table ---------------------------------------------------------------------------- */

static size_t topk_hash(uint64_t id) {
    /* splitmix64 finaliser: ids are content hashes already, but tests and users also use
     * small consecutive integers, which must not pile up in neighbouring slots. */
    id ^= id >> 30;
    id *= 0xbf58476d1ce4e5b9ULL;
    id ^= id >> 27;
    id *= 0x94d049bb133111ebULL;
    id ^= id >> 31;
    return (size_t)id;
}

/* Returns the slot holding id, or the empty slot where it would go. */
static size_t topk_slot_find(const wrk_topk *ix, uint64_t id) {
    size_t mask = ix->nslots - 1;
    size_t i = topk_hash(id) & mask;
    while (ix->slots[i] != 0 && ix->ids[ix->slots[i] - 1] != id) i = (i + 1) & mask;
    return i;
}

/* Returns the row of id, or SIZE_MAX when absent. */
static size_t topk_row_of(const wrk_topk *ix, uint64_t id) {
    if (ix->nslots == 0) return SIZE_MAX;
    size_t s = ix->slots[topk_slot_find(ix, id)];
    return s ? s - 1 : SIZE_MAX;
}

/* Empties slot i and shifts later entries of its probe run back, so lookups need no
 * tombstones. */
static void topk_slot_clear(wrk_topk *ix, size_t i) {
    size_t mask = ix->nslots - 1;
    size_t j = i;
    for (;;) {
        ix->slots[i] = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (ix->slots[j] == 0) return;
            size_t home = topk_hash(ix->ids[ix->slots[j] - 1]) & mask;
            /* the entry at j may move to i when i lies on its probe path home..j */
            if (((j - home) & mask) >= ((j - i) & mask)) break;
        }
        ix->slots[i] = ix->slots[j];
        i = j;
    }
}

/* Makes room for `rows` rows and a table at most half full. Leaves the index unchanged on
 * failure. */
static int topk_reserve(wrk_topk *ix, size_t rows, char *err) {
    if (rows > SIZE_MAX / 4 / ix->d / sizeof(float))
        return rv_fail(err, "top-k index: %zu rows of %zu floats do not fit in memory", rows,
                       ix->d);
    if (rows > ix->cap) {
        size_t cap = ix->cap ? ix->cap : 64;
        while (cap < rows) cap *= 2;
        size_t bytes = cap * ix->d * sizeof(float);
        bytes = (bytes + 63) / 64 * 64;
        float *keys = aligned_alloc(64, bytes);
        uint64_t *ids = malloc(cap * sizeof(uint64_t));
        uint16_t *keys_bf16 = ix->keys_bf16 ? aligned_alloc(64, bytes / 2) : NULL;
        if (!keys || !ids || (ix->keys_bf16 && !keys_bf16)) {
            free(keys);
            free(ids);
            free(keys_bf16);
            return rv_fail(err, "top-k index: out of memory for %zu rows of %zu floats", cap,
                           ix->d);
        }
        if (ix->n) {
            memcpy(keys, ix->keys, ix->n * ix->d * sizeof(float));
            memcpy(ids, ix->ids, ix->n * sizeof(uint64_t));
            if (keys_bf16) memcpy(keys_bf16, ix->keys_bf16, ix->n * ix->d * sizeof(uint16_t));
        }
        free(ix->keys);
        free(ix->ids);
        free(ix->keys_bf16);
        ix->keys = keys;
        ix->ids = ids;
        ix->keys_bf16 = keys_bf16;
        ix->cap = cap;
    }
    if (rows * 2 > ix->nslots) {
        size_t nslots = ix->nslots ? ix->nslots : 128;
        while (nslots < rows * 2) nslots *= 2;
        size_t *slots = calloc(nslots, sizeof(size_t));
        if (!slots) return rv_fail(err, "top-k index: out of memory for %zu id slots", nslots);
        free(ix->slots);
        ix->slots = slots;
        ix->nslots = nslots;
        for (size_t r = 0; r < ix->n; r++) ix->slots[topk_slot_find(ix, ix->ids[r])] = r + 1;
    }
    return 0;
}

/* ---- index maintenance ------------------------------------------------------------------- */

int wrk_topk_create(size_t d, wrk_topk **out, char *err) {
    *out = NULL;
    if (d == 0 || d > INT_MAX)
        return rv_fail(err, "top-k index: key dimension d = %zu is outside 1..%d", d, INT_MAX);
    wrk_topk *ix = calloc(1, sizeof(*ix));
    if (!ix) return rv_fail(err, "top-k index: out of memory");
    ix->d = d;
    ix->path = WRK_TOPK_AUTO;
    ix->simd = 1;
    *out = ix;
    return 0;
}

void wrk_topk_free(wrk_topk *ix) {
    if (!ix) return;
    free(ix->keys);
    free(ix->ids);
    free(ix->slots);
    free(ix->keys_bf16);
    free(ix);
}

size_t wrk_topk_dim(const wrk_topk *ix) {
    return ix->d;
}

size_t wrk_topk_count(const wrk_topk *ix) {
    return ix->n;
}

size_t wrk_topk_bytes(const wrk_topk *ix) {
    size_t key_bytes = ix->d * (sizeof(float) + (ix->keys_bf16 ? sizeof(uint16_t) : 0));
    return sizeof(*ix) + ix->cap * (key_bytes + sizeof(uint64_t)) + ix->nslots * sizeof(size_t);
}

int wrk_topk_get(const wrk_topk *ix, uint64_t id, float *key) {
    size_t r = topk_row_of(ix, id);
    if (r == SIZE_MAX) return 0;
    memcpy(key, ix->keys + r * ix->d, ix->d * sizeof(float));
    return 1;
}

int wrk_topk_set_kernel(wrk_topk *ix, wrk_topk_path path, int simd, char *err) {
    if (path != WRK_TOPK_AUTO && path != WRK_TOPK_SCAN && path != WRK_TOPK_GEMM)
        return rv_fail(err, "top-k index: unknown scoring path %d", (int)path);
    ix->path = path;
    ix->simd = simd ? 1 : 0;
    return 0;
}

/* bf16 of each float of x (n), rounded to nearest even: the top 16 bits of the float after
 * adding half an ulp of the 8-bit significand. Inputs are finite (checked on the way in). */
static void topk_to_bf16(uint16_t *out, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof(u));
        u += 0x7fffu + ((u >> 16) & 1u);
        out[i] = (uint16_t)(u >> 16);
    }
}

int wrk_topk_set_bf16(wrk_topk *ix, int on, char *err) {
    if (!on) {
        free(ix->keys_bf16);
        ix->keys_bf16 = NULL;
        return 0;
    }
    if (ix->keys_bf16) return 0;
    size_t bytes = (ix->cap * ix->d * sizeof(uint16_t) + 63) / 64 * 64;
    ix->keys_bf16 = aligned_alloc(64, bytes ? bytes : 64);
    if (!ix->keys_bf16)
        return rv_fail(err, "top-k index: out of memory for the bf16 copy of %zu keys", ix->n);
    topk_to_bf16(ix->keys_bf16, ix->keys, ix->n * ix->d);
    return 0;
}

/* Checks that every row of v (n, d) is finite with norm ≤ WRK_TOPK_MAX_NORM and raises
 * *max_norm (when not NULL) to the largest norm; `what` names the rows in the message ("key",
 * "query"). */
static int topk_check_rows(const float *v, size_t n, size_t d, const uint64_t *ids,
                           const char *what, double *max_norm, char *err) {
    for (size_t i = 0; i < n; i++) {
        double ss = 0;
        for (size_t x = 0; x < d; x++) ss += (double)v[i * d + x] * v[i * d + x];
        if (max_norm && sqrt(ss) > *max_norm) *max_norm = sqrt(ss);
        /* NaN and infinities make ss NaN or infinite, which fails this test too */
        if (!(ss <= WRK_TOPK_MAX_NORM * WRK_TOPK_MAX_NORM)) {
            for (size_t x = 0; x < d; x++)
                if (!isfinite(v[i * d + x])) {
                    if (ids)
                        return rv_fail(err,
                                       "top-k index: %s %zu (id %llu) has a non-finite "
                                       "value at position %zu",
                                       what, i, (unsigned long long)ids[i], x);
                    return rv_fail(err,
                                   "top-k index: %s %zu has a non-finite value at "
                                   "position %zu",
                                   what, i, x);
                }
            return rv_fail(err,
                           "top-k index: %s %zu has norm %.3g, above the limit %.0e that "
                           "keeps inner products finite",
                           what, i, sqrt(ss), WRK_TOPK_MAX_NORM);
        }
    }
    return 0;
}

static int topk_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Fails when ids (n) holds a duplicate. */
static int topk_check_distinct(const uint64_t *ids, size_t n, const char *op, char *err) {
    if (n < 2) return 0;
    uint64_t *sorted = malloc(n * sizeof(uint64_t));
    if (!sorted) return rv_fail(err, "top-k index: out of memory checking %zu ids", n);
    memcpy(sorted, ids, n * sizeof(uint64_t));
    qsort(sorted, n, sizeof(uint64_t), topk_cmp_u64);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (sorted[i] == sorted[i - 1])
            rc = rv_fail(err, "top-k index: %s: id %llu appears twice in one call", op,
                         (unsigned long long)sorted[i]);
    free(sorted);
    return rc;
}

enum { TOPK_ADD, TOPK_REPLACE, TOPK_UPSERT };

/* add, replace and upsert: validate everything first, then apply, so a failure changes
 * nothing. */
static int topk_put(wrk_topk *ix, const uint64_t *ids, const float *keys, size_t n, int mode,
                    char *err) {
    static const char *op_names[] = {"add", "replace", "upsert"};
    const char *op = op_names[mode];
    if (n == 0) return 0;
    if (!ids || !keys) return rv_fail(err, "top-k index: %s: ids or keys is NULL", op);
    size_t fresh = 0;
    for (size_t i = 0; i < n; i++) {
        int present = topk_row_of(ix, ids[i]) != SIZE_MAX;
        if (mode == TOPK_ADD && present)
            return rv_fail(err, "top-k index: add: id %llu is already in the index",
                           (unsigned long long)ids[i]);
        if (mode == TOPK_REPLACE && !present)
            return rv_fail(err, "top-k index: replace: id %llu is not in the index",
                           (unsigned long long)ids[i]);
        fresh += !present;
    }
    if (topk_check_distinct(ids, n, op, err) != 0) return -1;
    double max_norm = ix->max_norm;
    if (topk_check_rows(keys, n, ix->d, ids, "key", &max_norm, err) != 0)
        return rv_fail_wrap(err, "%s", op);
    if (fresh && topk_reserve(ix, ix->n + fresh, err) != 0) return rv_fail_wrap(err, "%s", op);
    for (size_t i = 0; i < n; i++) {
        size_t slot = topk_slot_find(ix, ids[i]);
        size_t r;
        if (ix->slots[slot]) {
            r = ix->slots[slot] - 1;
        } else {
            r = ix->n++;
            ix->ids[r] = ids[i];
            ix->slots[slot] = r + 1;
        }
        memcpy(ix->keys + r * ix->d, keys + i * ix->d, ix->d * sizeof(float));
        if (ix->keys_bf16) topk_to_bf16(ix->keys_bf16 + r * ix->d, keys + i * ix->d, ix->d);
    }
    ix->max_norm = max_norm;
    return 0;
}

int wrk_topk_add(wrk_topk *ix, const uint64_t *ids, const float *keys, size_t n, char *err) {
    return topk_put(ix, ids, keys, n, TOPK_ADD, err);
}

int wrk_topk_replace(wrk_topk *ix, const uint64_t *ids, const float *keys, size_t n, char *err) {
    return topk_put(ix, ids, keys, n, TOPK_REPLACE, err);
}

int wrk_topk_upsert(wrk_topk *ix, const uint64_t *ids, const float *keys, size_t n, char *err) {
    return topk_put(ix, ids, keys, n, TOPK_UPSERT, err);
}

int wrk_topk_remove(wrk_topk *ix, const uint64_t *ids, size_t n, char *err) {
    if (n == 0) return 0;
    if (!ids) return rv_fail(err, "top-k index: remove: ids is NULL");
    for (size_t i = 0; i < n; i++)
        if (topk_row_of(ix, ids[i]) == SIZE_MAX)
            return rv_fail(err, "top-k index: remove: id %llu is not in the index",
                           (unsigned long long)ids[i]);
    if (topk_check_distinct(ids, n, "remove", err) != 0) return -1;
    for (size_t i = 0; i < n; i++) {
        size_t slot = topk_slot_find(ix, ids[i]);
        size_t r = ix->slots[slot] - 1;
        size_t last = ix->n - 1;
        topk_slot_clear(ix, slot);
        if (r != last) {
            memcpy(ix->keys + r * ix->d, ix->keys + last * ix->d, ix->d * sizeof(float));
            if (ix->keys_bf16)
                memcpy(ix->keys_bf16 + r * ix->d, ix->keys_bf16 + last * ix->d,
                       ix->d * sizeof(uint16_t));
            ix->ids[r] = ix->ids[last];
            ix->slots[topk_slot_find(ix, ix->ids[r])] = r + 1;
        }
        ix->n--;
    }
    return 0;
}

/* ---- selection --------------------------------------------------------------------------- */

/* a ranks below b: lower score, or the same score and a larger id */
static inline int topk_worse(topk_entry a, topk_entry b) {
    return a.score < b.score || (a.score == b.score && a.id > b.id);
}

static void topk_heap_sift_down(topk_entry *e, size_t count, size_t i) {
    topk_entry x = e[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= count) break;
        if (c + 1 < count && topk_worse(e[c + 1], e[c])) c++;
        if (!topk_worse(e[c], x)) break;
        e[i] = e[c];
        i = c;
    }
    e[i] = x;
}

/* Offers one candidate whose score passed the threshold filter (score ≥ h->thr). */
static void topk_heap_offer(topk_heap *h, float score, uint64_t id) {
    topk_entry x = {score, id};
    if (h->count < h->k) {
        size_t i = h->count++;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!topk_worse(x, h->e[p])) break;
            h->e[i] = h->e[p];
            i = p;
        }
        h->e[i] = x;
        if (h->count == h->k) h->thr = h->e[0].score;
        return;
    }
    if (!topk_worse(h->e[0], x)) return; /* an equal score with a larger id */
    h->e[0] = x;
    topk_heap_sift_down(h->e, h->count, 0);
    h->thr = h->e[0].score;
}

/* Filters the n scores s of one query for one block (rows with ids) into its heap. */
static void topk_select_generic(topk_heap *h, const float *s, const uint64_t *ids, size_t n) {
    for (size_t j = 0; j < n; j++)
        if (s[j] >= h->thr) topk_heap_offer(h, s[j], ids[j]);
}

/* ---- scoring ------------------------------------------------------------------------------ */

/* scores (B, nb) = q (B, d) · keys (nb, d)ᵀ, portable loop: eight partial sums per dot product
 * so the compiler can vectorise without reassociating. */
static void topk_scan_generic(float *scores, const float *q, const float *keys, size_t B, size_t nb,
                              size_t d) {
    size_t d8 = d & ~(size_t)7;
    for (size_t j = 0; j < nb; j++) {
        const float *k = keys + j * d;
        for (size_t b = 0; b < B; b++) {
            const float *qb = q + b * d;
            float acc[8] = {0};
            for (size_t x = 0; x < d8; x += 8)
                for (size_t l = 0; l < 8; l++) acc[l] += qb[x + l] * k[x + l];
            float sum =
                ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            for (size_t x = d8; x < d; x++) sum += qb[x] * k[x];
            scores[b * nb + j] = sum;
        }
    }
}

#ifdef TOPK_X86
/* The dot product's tail past the last multiple of 8, added after the vector sums so a key's
 * score does not depend on where it falls in a block. */
static inline float topk_dot_tail(const float *q, const float *k, size_t from, size_t d,
                                  float sum) {
    for (size_t x = from; x < d; x++) sum += q[x] * k[x];
    return sum;
}

/* scores (B, nb) = q (B, d) · keys (nb, d)ᵀ with AVX2: four keys at a time, every query of the
 * batch against them while they sit in L1, so each key is read from memory once. */
__attribute__((target("avx2,fma"))) static void
topk_scan_avx2(float *scores, const float *q, const float *keys, size_t B, size_t nb, size_t d) {
    size_t d8 = d & ~(size_t)7;
    size_t j = 0;
    for (; j + 4 <= nb; j += 4) {
        const float *k0 = keys + j * d, *k1 = k0 + d, *k2 = k1 + d, *k3 = k2 + d;
        for (size_t b = 0; b < B; b++) {
            const float *qb = q + b * d;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
            for (size_t x = 0; x < d8; x += 8) {
                __m256 qv = _mm256_loadu_ps(qb + x);
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(k0 + x), qv, a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(k1 + x), qv, a1);
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(k2 + x), qv, a2);
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(k3 + x), qv, a3);
            }
            /* the eight lanes of a0..a3 summed into one vector of four dot products */
            __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
            __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
            float t[4];
            _mm_storeu_ps(t, s4);
            float *out = scores + b * nb + j;
            out[0] = topk_dot_tail(qb, k0, d8, d, t[0]);
            out[1] = topk_dot_tail(qb, k1, d8, d, t[1]);
            out[2] = topk_dot_tail(qb, k2, d8, d, t[2]);
            out[3] = topk_dot_tail(qb, k3, d8, d, t[3]);
        }
    }
    for (; j < nb; j++) {
        const float *k0 = keys + j * d;
        for (size_t b = 0; b < B; b++) {
            const float *qb = q + b * d;
            __m256 a0 = _mm256_setzero_ps();
            for (size_t x = 0; x < d8; x += 8)
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(k0 + x), _mm256_loadu_ps(qb + x), a0);
            /* the same pairing of lanes as above, so the score is bit-identical */
            __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a0), _mm256_hadd_ps(a0, a0));
            __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
            scores[b * nb + j] = topk_dot_tail(qb, k0, d8, d, _mm_cvtss_f32(s4));
        }
    }
}

/* The filter of topk_select_generic, eight scores per compare: a block of scores that all
 * fall below the threshold costs one compare and one mask test per eight. */
__attribute__((target("avx2,fma"))) static void topk_select_avx2(topk_heap *h, const float *s,
                                                                 const uint64_t *ids, size_t n) {
    size_t j = 0;
    __m256 thr = _mm256_set1_ps(h->thr);
    for (; j + 8 <= n; j += 8) {
        unsigned m =
            (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + j), thr, _CMP_GE_OQ));
        if (!m) continue;
        while (m) {
            size_t i = j + (size_t)__builtin_ctz(m);
            m &= m - 1;
            if (s[i] >= h->thr) topk_heap_offer(h, s[i], ids[i]);
        }
        thr = _mm256_set1_ps(h->thr);
    }
    topk_select_generic(h, s + j, ids + j, n - j);
}

static int topk_cpu_has_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

static int topk_cmp_entry(const void *a, const void *b) {
    const topk_entry *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int topk_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int topk_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Query b's entries from the T threads' heaps (T, B), sorted best first into merged (room for
 * T·k). Their union holds the query's global top k. Returns how many. */
static size_t topk_merge_heaps(topk_entry *merged, const topk_heap *heaps, int T, size_t B,
                               size_t b) {
    size_t m = 0;
    for (int t = 0; t < T; t++) {
        const topk_heap *h = heaps + (size_t)t * B + b;
        memcpy(merged + m, h->e, h->count * sizeof(topk_entry));
        m += h->count;
    }
    qsort(merged, m, sizeof(topk_entry), topk_cmp_entry);
    return m;
}

/* ---- bf16 scan with an exact re-rank ---------------------------------------------------- */

static inline float topk_from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* scores (B, nb) = q (B, d) · keys (nb, d)ᵀ with bf16 keys, portable loop; columns from j0. */
static void topk_scan_bf16_generic_from(float *scores, const float *q, const uint16_t *keys,
                                        size_t B, size_t nb, size_t d, size_t j0) {
    for (size_t j = j0; j < nb; j++)
        for (size_t b = 0; b < B; b++) {
            float sum = 0;
            for (size_t x = 0; x < d; x++) sum += q[b * d + x] * topk_from_bf16(keys[j * d + x]);
            scores[b * nb + j] = sum;
        }
}

static void topk_scan_bf16_generic(float *scores, const float *q, const uint16_t *keys, size_t B,
                                   size_t nb, size_t d) {
    topk_scan_bf16_generic_from(scores, q, keys, B, nb, d, 0);
}

#ifdef TOPK_X86
/* 8 bf16 values widened to floats: a bf16 is the top half of a float */
__attribute__((target("avx2,fma"))) static inline __m256 topk_load_bf16(const uint16_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

/* The bf16 twin of topk_scan_avx2: half the bytes per key, the same loop. */
__attribute__((target("avx2,fma"))) static void topk_scan_bf16_avx2(float *scores, const float *q,
                                                                    const uint16_t *keys, size_t B,
                                                                    size_t nb, size_t d) {
    size_t d8 = d & ~(size_t)7;
    size_t j = 0;
    for (; j + 4 <= nb; j += 4) {
        const uint16_t *k0 = keys + j * d, *k1 = k0 + d, *k2 = k1 + d, *k3 = k2 + d;
        for (size_t b = 0; b < B; b++) {
            const float *qb = q + b * d;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
            for (size_t x = 0; x < d8; x += 8) {
                __m256 qv = _mm256_loadu_ps(qb + x);
                a0 = _mm256_fmadd_ps(topk_load_bf16(k0 + x), qv, a0);
                a1 = _mm256_fmadd_ps(topk_load_bf16(k1 + x), qv, a1);
                a2 = _mm256_fmadd_ps(topk_load_bf16(k2 + x), qv, a2);
                a3 = _mm256_fmadd_ps(topk_load_bf16(k3 + x), qv, a3);
            }
            __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
            __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
            float t[4];
            _mm_storeu_ps(t, s4);
            for (size_t x = d8; x < d; x++) {
                t[0] += qb[x] * topk_from_bf16(k0[x]);
                t[1] += qb[x] * topk_from_bf16(k1[x]);
                t[2] += qb[x] * topk_from_bf16(k2[x]);
                t[3] += qb[x] * topk_from_bf16(k3[x]);
            }
            memcpy(scores + b * nb + j, t, sizeof(t));
        }
    }
    topk_scan_bf16_generic_from(scores, q, keys, B, nb, d, j);
}
#endif

/* How far a bf16 score s' can be from the float score s of the same key, for a query of norm
 * qnorm and keys of norm ≤ knorm (Cauchy–Schwarz bounds Σ|q_x||k_x| by qnorm·knorm):
 *   rounding a key to bf16 (8-bit significand, round to nearest): ≤ 2⁻⁸ · qnorm·knorm
 *   float summation of d products, any order, in s' and in s:    ≤ 2 · γ_d · qnorm·knorm·(1+2⁻⁸)
 * with γ_d = d·2⁻²⁴ / (1 − d·2⁻²⁴). A little slack covers the rounding of this sum itself. */
static double topk_bf16_error(size_t d, double qnorm, double knorm) {
    double du = (double)d * 0x1p-24;
    double gamma = du < 0.5 ? du / (1 - du) : 1; /* d ≥ 2²³ gets a useless but safe bound */
    return (0x1p-8 + 2 * gamma * (1 + 0x1p-8)) * qnorm * knorm * 1.001;
}

/* thr − margin rounded down, so no candidate is lost to rounding */
static float topk_lower(float thr, double margin) {
    if (thr == -INFINITY) return -INFINITY;
    return nextafterf((float)((double)thr - margin), -INFINITY);
}

/* One query's candidates on one thread: every row whose bf16 score came within the margin of
 * that thread's running K-th best bf16 score when it was scanned. */
typedef struct {
    topk_entry *e; /* (cap) score = bf16 score, id = row */
    size_t count, cap;
} topk_cands;

/* Keeps candidates at or above lim; grows the buffer when that frees less than half. */
static int topk_cands_make_room(topk_cands *c, float lim) {
    size_t m = 0;
    for (size_t i = 0; i < c->count; i++)
        if (c->e[i].score >= lim) c->e[m++] = c->e[i];
    c->count = m;
    if (m * 2 <= c->cap) return 0;
    topk_entry *e = realloc(c->e, 2 * c->cap * sizeof(topk_entry));
    if (!e) return -1;
    c->e = e;
    c->cap *= 2;
    return 0;
}

/* Filters one query's bf16 scores s (n) of rows r0.. into its heap (the running K-th best
 * bf16 score) and its candidates (everything within the margin of it). */
static int topk_bf16_select(topk_heap *h, topk_cands *c, const float *s, size_t r0, size_t n,
                            double margin) {
    float lim = topk_lower(h->thr, margin);
    for (size_t j = 0; j < n; j++) {
        if (s[j] < lim) continue;
        if (c->count == c->cap && topk_cands_make_room(c, lim) != 0) return -1;
        c->e[c->count++] = (topk_entry){s[j], r0 + j};
        if (s[j] >= h->thr) {
            topk_heap_offer(h, s[j], r0 + j);
            lim = topk_lower(h->thr, margin);
        }
    }
    return 0;
}

typedef void (*topk_scan_fn)(float *, const float *, const float *, size_t, size_t, size_t);
typedef void (*topk_scan_bf16_fn)(float *, const float *, const uint16_t *, size_t, size_t, size_t);

/* The scan path on bf16 keys. The K-th best bf16 score s'_K bounds the float scores: K keys
 * have s ≥ s'_K − E, so the float K-th best s_K ≥ s'_K − E, and every key of the float top K
 * has s' ≥ s_K − E ≥ s'_K − 2E. Re-scoring the keys with s' ≥ s'_K − 2E by the float kernel
 * of the scan path therefore gives exactly the scan path's answer, scores and ids. */
static int topk_search_bf16(const wrk_topk *ix, const float *q, size_t B, size_t k,
                            topk_scan_fn scan_fn, topk_scan_bf16_fn scan_bf16_fn, uint64_t *out_ids,
                            float *out_scores, char *err) {
    size_t d = ix->d, N = ix->n;
    size_t nb = TOPK_SCAN_BLOCK_BYTES / (d * sizeof(uint16_t));
    nb = nb < 16 ? 16 : nb & ~(size_t)3;
    size_t nblocks = (N + nb - 1) / nb;
    int T = topk_threads();
    if ((size_t)T > nblocks) T = (int)nblocks;
    size_t TB = (size_t)T * B;
    size_t cap0 = 4 * k + 256;
    double *margin = malloc(B * sizeof(double));
    topk_entry *entries = malloc(TB * k * sizeof(topk_entry));
    topk_heap *heaps = malloc(TB * sizeof(topk_heap));
    topk_cands *cands = calloc(TB, sizeof(topk_cands));
    float *scores = malloc((size_t)T * B * nb * sizeof(float));
    topk_entry *merged = NULL;
    int rc = -1, oom = 0;
    if (!margin || !entries || !heaps || !cands || !scores) goto oom;
    for (size_t b = 0; b < B; b++) {
        double qq = 0;
        for (size_t x = 0; x < d; x++) qq += (double)q[b * d + x] * q[b * d + x];
        margin[b] = 2 * topk_bf16_error(d, sqrt(qq), ix->max_norm);
    }
    for (size_t i = 0; i < TB; i++) {
        heaps[i] = (topk_heap){entries + i * k, 0, k, -INFINITY};
        cands[i].e = malloc(cap0 * sizeof(topk_entry));
        cands[i].cap = cap0;
        if (!cands[i].e) goto oom;
    }

#pragma omp parallel num_threads(T) reduction(| : oom)
    {
        size_t t = (size_t)topk_thread_id();
        float *s = scores + t * B * nb; /* (B, nb) */
        for (size_t blk = nblocks * t / T; blk < nblocks * (t + 1) / T && !oom; blk++) {
            size_t r0 = blk * nb, rows = N - r0 < nb ? N - r0 : nb;
            scan_bf16_fn(s, q, ix->keys_bf16 + r0 * d, B, rows, d);
            for (size_t b = 0; b < B && !oom; b++)
                oom |= topk_bf16_select(heaps + t * B + b, cands + t * B + b, s + b * rows, r0,
                                        rows, margin[b]) != 0;
        }
    }
    if (oom) goto oom;

    for (size_t b = 0; b < B; b++) {
        /* the global K-th best bf16 score: the threads' heaps hold their top K each */
        size_t total = 0;
        for (int t = 0; t < T; t++) total += cands[(size_t)t * B + b].count;
        topk_entry *grown =
            realloc(merged, (total > (size_t)T * k ? total : (size_t)T * k) * sizeof(topk_entry));
        if (!grown) goto oom;
        merged = grown;
        size_t m = topk_merge_heaps(merged, heaps, T, B, b);
        float lim = m >= k ? topk_lower(merged[k - 1].score, margin[b]) : -INFINITY;
        /* re-score the candidates with the float kernel, exactly as the scan path does */
        m = 0;
        for (int t = 0; t < T; t++) {
            const topk_cands *c = cands + (size_t)t * B + b;
            for (size_t i = 0; i < c->count; i++) {
                if (c->e[i].score < lim) continue;
                size_t row = (size_t)c->e[i].id;
                float score;
                scan_fn(&score, q + b * d, ix->keys + row * d, 1, 1, d);
                merged[m++] = (topk_entry){score, ix->ids[row]};
            }
        }
        qsort(merged, m, sizeof(topk_entry), topk_cmp_entry);
        for (size_t i = 0; i < k; i++) {
            out_ids[b * k + i] = merged[i].id;
            out_scores[b * k + i] = merged[i].score;
        }
    }
    rc = 0;
    goto cleanup;
oom:
    rv_fail(err, "top-k search: out of memory for %zu queries, K = %zu (bf16 path)", B, k);
cleanup:
    if (cands)
        for (size_t i = 0; i < TB; i++) free(cands[i].e);
    free(cands);
    free(margin);
    free(entries);
    free(heaps);
    free(scores);
    free(merged);
    return rc;
}

/* ---- search ------------------------------------------------------------------------------- */

typedef void (*topk_select_fn)(topk_heap *, const float *, const uint64_t *, size_t);

size_t wrk_topk_gemm_block_rows(size_t B) {
    size_t nb = TOPK_GEMM_SCORES_FLOATS / (B ? B : 1);
    return nb < 64 ? 64 : nb > 2048 ? 2048 : nb & ~(size_t)15;
}

int wrk_topk_search(const wrk_topk *ix, const float *q, size_t B, size_t K, uint64_t *out_ids,
                    float *out_scores, size_t *k_out, char *err) {
    size_t d = ix->d, N = ix->n;
    *k_out = 0;
    if (K == 0) return rv_fail(err, "top-k search: K must be at least 1");
    if (B == 0) return 0;
    if (!q || !out_ids || !out_scores)
        return rv_fail(err, "top-k search: queries or output buffers are NULL");
    if (B > INT_MAX || B > SIZE_MAX / d / sizeof(float))
        return rv_fail(err, "top-k search: %zu queries of %zu floats are too many", B, d);
    if (topk_check_rows(q, B, d, NULL, "query", NULL, err) != 0)
        return rv_fail_wrap(err, "top-k search");
    if (N == 0) return 0;
    size_t k = K < N ? K : N;

    int gemm =
        ix->path == WRK_TOPK_GEMM || (ix->path == WRK_TOPK_AUTO && B >= WRK_TOPK_GEMM_MIN_BATCH);
    topk_scan_fn scan_fn = topk_scan_generic;
    topk_select_fn select_fn = topk_select_generic;
    topk_scan_bf16_fn scan_bf16_fn = topk_scan_bf16_generic;
#ifdef TOPK_X86
    if (ix->simd && topk_cpu_has_avx2()) {
        scan_fn = topk_scan_avx2;
        select_fn = topk_select_avx2;
        scan_bf16_fn = topk_scan_bf16_avx2;
    }
#endif
    if (!gemm && ix->keys_bf16) {
        if (topk_search_bf16(ix, q, B, k, scan_fn, scan_bf16_fn, out_ids, out_scores, err) != 0)
            return -1;
        *k_out = k;
        return 0;
    }
    /* Block rows depend on (B, d) only, so a key's score, and thus the answer, is the same for
     * any thread count. */
    size_t nb;
    if (gemm) {
        nb = wrk_topk_gemm_block_rows(B);
    } else {
        nb = TOPK_SCAN_BLOCK_BYTES / (d * sizeof(float));
        nb = nb < 16 ? 16 : nb & ~(size_t)3;
    }
    size_t nblocks = (N + nb - 1) / nb;
    /* With threaded OpenBLAS each sgemm already uses every core; otherwise each thread runs
     * single-threaded sgemms on its own blocks. */
    int T = gemm && openblas_get_num_threads() > 1 ? 1 : topk_threads();
    if ((size_t)T > nblocks) T = (int)nblocks;

    if (B > SIZE_MAX / sizeof(topk_entry) / k / (size_t)T ||
        B > SIZE_MAX / sizeof(float) / nb / (size_t)T)
        return rv_fail(err, "top-k search: %zu queries × K = %zu is too large", B, K);
    size_t per_thread_scores = (B * nb + 15) / 16 * 16; /* floats, whole cache lines */
    topk_entry *entries = malloc((size_t)T * B * k * sizeof(topk_entry));
    topk_heap *heaps = malloc((size_t)T * B * sizeof(topk_heap));
    float *scores = aligned_alloc(64, (size_t)T * per_thread_scores * sizeof(float));
    topk_entry *merged = malloc((size_t)T * k * sizeof(topk_entry));
    int rc = -1;
    if (!entries || !heaps || !scores || !merged) {
        rv_fail(err, "top-k search: out of memory for %zu queries, K = %zu, %d threads", B, k, T);
        goto cleanup;
    }
    for (size_t i = 0; i < (size_t)T * B; i++)
        heaps[i] = (topk_heap){entries + i * k, 0, k, -INFINITY};

#pragma omp parallel num_threads(T)
    {
        size_t t = (size_t)topk_thread_id();
        topk_heap *h = heaps + t * B;              /* (B) this thread's heaps */
        float *s = scores + t * per_thread_scores; /* (B, nb) */
        for (size_t blk = nblocks * t / T; blk < nblocks * (t + 1) / T; blk++) {
            size_t r0 = blk * nb, rows = N - r0 < nb ? N - r0 : nb;
            const float *kb = ix->keys + r0 * d; /* (rows, d) */
            if (gemm)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)rows, (int)d,
                            1.0f, q, (int)d, kb, (int)d, 0.0f, s, (int)rows);
            else
                scan_fn(s, q, kb, B, rows, d);
            for (size_t b = 0; b < B; b++) select_fn(h + b, s + b * rows, ix->ids + r0, rows);
        }
    }

    for (size_t b = 0; b < B; b++) {
        topk_merge_heaps(merged, heaps, T, B, b);
        for (size_t i = 0; i < k; i++) {
            out_ids[b * k + i] = merged[i].id;
            out_scores[b * k + i] = merged[i].score;
        }
    }
    *k_out = k;
    rc = 0;
cleanup:
    free(entries);
    free(heaps);
    free(scores);
    free(merged);
    return rc;
}
