/* worker/worker.h — the worker library: what a worker rank needs to serve its knowledge source.
 *
 * Top-K index (wrk_topk_*): the in-RAM key matrix of one source (or shard) and its exact
 * maximum-inner-product search. A worker keeps it in step with memory refreshes and deletions
 * (add / replace / remove rows by id) and answers query batches with the exact top-K by inner
 * product; the single-process model uses the same index in-process.
 *
 * Dimensions: N rows (keys) in the index, d floats per key and per query, B queries per
 * batch, K results asked for per query.
 *
 * Exactness: scores are float inner products computed by sgemm (large batches) or by a
 * vectorised dot loop (small batches); the ranking is by score descending, ties broken by id
 * ascending. The answer is bit-identical for any OpenMP thread count; with more than one
 * OpenBLAS thread, OpenBLAS splits each sgemm its own way and a score may differ in its last
 * bit. Two keys whose true scores differ by less
 * than float rounding (about 1e-7 · ‖q‖‖k‖ · sqrt(d)) may come out in either order.
 *
 * Threads: the index never sets thread counts. The small-batch scan runs on the OpenMP team
 * (omp_get_max_threads()); the sgemm path runs on OpenBLAS's threads when OpenBLAS has more
 * than one, otherwise on the OpenMP team with one single-threaded sgemm per thread. An index
 * may be searched by several threads at once; add / replace / remove need exclusive access.
 */
#ifndef WORKER_H
#define WORKER_H

#include <stddef.h>
#include <stdint.h>

typedef struct wrk_topk wrk_topk;

/* Which scoring path search uses. AUTO picks by batch size (WRK_TOPK_GEMM_MIN_BATCH);
 * the others exist so tests and benchmarks can run one path on any batch. */
typedef enum { WRK_TOPK_AUTO = 0, WRK_TOPK_SCAN = 1, WRK_TOPK_GEMM = 2 } wrk_topk_path;

/* Batches at least this large are scored by blocked sgemm; smaller ones by the fused scan,
 * which measured faster up to 12 queries (docs/topk.md). */
#define WRK_TOPK_GEMM_MIN_BATCH 16

/* Keys and queries must have an L2 norm of at most this, so that no inner product can
 * overflow a float (FLT_MAX ≈ 3.4e38 > 1e36). Worker keys are L2-normalised (norm 1). */
#define WRK_TOPK_MAX_NORM 1e18

/* Creates an empty index for keys of d floats (1 ≤ d ≤ INT_MAX). */
int wrk_topk_create(size_t d, wrk_topk **out, char *err);
void wrk_topk_free(wrk_topk *ix);

size_t wrk_topk_dim(const wrk_topk *ix);
size_t wrk_topk_count(const wrk_topk *ix);
/* Bytes held by the index (keys, ids, id table). */
size_t wrk_topk_bytes(const wrk_topk *ix);
/* Returns 1 and copies the key of `id` into key (d floats) when present, else 0. */
int wrk_topk_get(const wrk_topk *ix, uint64_t id, float *key);

/* Adds n rows: ids (n), keys (n, d). Every id must be new and distinct; keys must be finite
 * with norm ≤ WRK_TOPK_MAX_NORM. All or nothing: on error the index is unchanged. */
int wrk_topk_add(wrk_topk *ix, const uint64_t *ids, const float *keys, size_t n, char *err);
/* Replaces the keys of n existing rows (a memory refresh). All or nothing. */
int wrk_topk_replace(wrk_topk *ix, const uint64_t *ids, const float *keys, size_t n, char *err);
/* Adds the new ids and replaces the present ones (ids distinct). All or nothing. */
int wrk_topk_upsert(wrk_topk *ix, const uint64_t *ids, const float *keys, size_t n, char *err);
/* Removes n existing rows (a deletion). Every id must be present and distinct. All or nothing. */
int wrk_topk_remove(wrk_topk *ix, const uint64_t *ids, size_t n, char *err);

/* Chooses the scoring path (default WRK_TOPK_AUTO) and whether the AVX2 kernels may be used
 * when the CPU has them (default 1; 0 runs the portable C loops). Returns -1 on an unknown
 * path. */
int wrk_topk_set_kernel(wrk_topk *ix, wrk_topk_path path, int simd, char *err);

/* Keeps a bf16 copy of the keys (on = 1; 0 drops it) that the scan path (batches below
 * WRK_TOPK_GEMM_MIN_BATCH) reads instead of the floats: half the bytes of a memory-bound scan,
 * 2 more bytes per key element held. Not an approximation: the keys whose bf16 score is within
 * twice a proven error bound of the K-th best bf16 score are re-scored in float by the scan
 * path's own kernel, so the answer is bit-identical to the float scan (docs/topk.md). */
int wrk_topk_set_bf16(wrk_topk *ix, int on, char *err);

/* Exact top-K by inner product for B queries q (B, d), K ≥ 1.
 * The index returns k = min(K, N) results per query and stores k in *k_out: out_ids (B, k) and
 * out_scores (B, k), packed row after row (query b's results start at b·k), each row sorted by
 * score descending, equal scores by id ascending. The caller sizes both buffers for B·K entries.
 * N = 0 gives k = 0 and writes nothing. Queries must be finite with norm ≤ WRK_TOPK_MAX_NORM. */
int wrk_topk_search(const wrk_topk *ix, const float *q, size_t B, size_t K, uint64_t *out_ids,
                    float *out_scores, size_t *k_out, char *err);

/* Rows of keys per sgemm block for a batch of B queries (the benchmark scores the same blocks
 * without selection to measure the bound). */
size_t wrk_topk_gemm_block_rows(size_t B);

#endif
