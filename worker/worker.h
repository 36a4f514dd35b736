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

/* ---- Serving over MPI (layout.c, role.c, client.c; docs/distributed.md) ----
 *
 * Layout: a JSON file mapping ranks to stores,
 *   {"sources": [{"name": "kg", "type": "kg", "stores": ["runs/x/kg-0", "runs/x/kg-1"]}, ...]}
 * Ranks 1..W take the stores in order of (source, shard); rank 0 is the coordinator, so a
 * job needs -np 1 + W. Types are the names `reveal ingest` uses (image-text, qa, kg, text).
 *
 * Set-up is collective: rank 0 reads and checks the layout (wrk_client_open), every worker
 * opens its own store and loads its keys (wrk_role_run); one failure anywhere ends every rank
 * with one message printed by rank 0.
 */

struct comm;
struct mem_store;

typedef struct {
    char *name;        /* unique among sources */
    int type;          /* Reveal__SourceType of every store of the source */
    uint32_t first;    /* index of its first store in wrk_layout.stores */
    uint32_t n_shards; /* its stores, consecutive */
} wrk_layout_source;

typedef struct {
    char *path;
    uint32_t source, shard;
    int rank; /* 1 + index in wrk_layout.stores */
} wrk_layout_store;

typedef struct {
    wrk_layout_source *sources;
    size_t n_sources;
    wrk_layout_store *stores;
    size_t n_stores;
} wrk_layout;

/* Parses and checks a layout (`origin` names it in errors): known fields only, at least one
 * source, names unique and at most 63 bytes, types known, at least one store per source,
 * store paths unique (compared after resolving them when they exist). */
int wrk_layout_parse(const char *text, size_t n, const char *origin, wrk_layout **out, char *err);
void wrk_layout_free(wrk_layout *l);
/* The world fits the layout: world_size == 1 + number of stores. */
int wrk_layout_check_world(const wrk_layout *l, int world_size, char *err);
/* The store of a worker rank (NULL for rank 0 or a rank past the layout). */
const wrk_layout_store *wrk_layout_store_of(const wrk_layout *l, int rank);
/* Opens the store of a worker rank and checks it against the layout: it exists, and holds
 * items of the source's type. */
int wrk_layout_open_store(const wrk_layout *l, int rank, int read_only, struct mem_store **out,
                          char *err);
/* "worker kg" for a whole source, "worker kg shard 1" for one of several. */
void wrk_layout_role_name(const wrk_layout *l, int rank, char *buf, size_t cap);

/* Reads the layout file on rank 0, broadcasts it, and every rank parses it; rank 0 also checks
 * the world size. Collective; the result as comm_agree's (0, -1 on rank 0 with the message,
 * 1 elsewhere). On success every peer of `c` is named after its store. */
int wrk_layout_share(struct comm *c, const char *path, wrk_layout **out, char *err);

/* A worker rank (role.c). NULL options: read-only, no deadlines. */
typedef struct {
    int writable;          /* open the store read-write (default 0: read-only) */
    double idle_timeout_s; /* > 0: give up when rank 0 sends nothing for this long */
    double send_timeout_s; /* > 0: bound on rank 0 taking a reply */
} wrk_role_options;

/* Runs worker rank comm_rank(c) ≥ 1: takes part in the set-up (layout, its store, its keys),
 * then serves rank 0 until a SHUTDOWN: QueryBatch → TopKReply (ids, scores and stored
 * values), REFRESH → reload keys from the store, CHECKPOINT → copy of the store; a message it
 * cannot serve → a Status failure to rank 0, and serving goes on. Returns 0 after SHUTDOWN,
 * -1 with err (to print), or 1 when the set-up failed elsewhere or here (rank 0 prints it). */
int wrk_role_run(struct comm *c, const char *layout_path, const wrk_role_options *o, char *err);

/* The coordinator's side (client.c): one QueryBatch to every worker, their replies gathered
 * and the shards of each source merged, so a sharded source answers like one store. */
typedef struct wrk_client wrk_client;

/* One source's results for a batch of B queries. */
typedef struct {
    uint32_t k;    /* results per query: min(K asked, keys of the source) */
    uint64_t *ids; /* (B, k), best first; ties by id ascending, like wrk_topk_search */
    float *scores; /* (B, k) */
    uint32_t c, d; /* value shape, 0 when the source stores no values */
    float *values; /* (B, k, c, d) stored values, NULL when c = d = 0 */
} wrk_source_hits;

typedef struct {
    uint32_t batch; /* B */
    size_t n_sources;
    wrk_source_hits *sources; /* (n_sources), layout order */
} wrk_hits;
void wrk_hits_free(wrk_hits *h);

/* Rank 0's part of the set-up (the workers run wrk_role_run). reply_timeout_s > 0 bounds
 * every wait on a worker. Returns as wrk_layout_share. */
int wrk_client_open(struct comm *c, const char *layout_path, double reply_timeout_s,
                    wrk_client **out, char *err);
const wrk_layout *wrk_client_layout(const wrk_client *cl);
/* Top-K of every source for B queries q (B, dk); k (n_sources) results asked per source.
 * A worker's refusal fails the call with its reason after every other answer was collected
 * (the client stays usable); a worker missing at the deadline fails it naming that worker (the
 * job should end: its late reply would be refused as stale). */
int wrk_client_search(wrk_client *cl, uint64_t step, const float *q, uint32_t B, uint32_t dk,
                      const uint32_t *k, wrk_hits *out, char *err);
/* REFRESH (reload keys from the stores; path NULL) or CHECKPOINT (each worker copies its store
 * to path/<rank's source>-<shard>) on every worker; waits for every acknowledgement and
 * returns the keys served in total after the command (keys may be NULL). */
int wrk_client_control(wrk_client *cl, int command, uint64_t step, const char *path, uint64_t *keys,
                       char *err);
/* SHUTDOWN to every worker; frees nothing (wrk_client_free does). */
int wrk_client_shutdown(wrk_client *cl, char *err);
void wrk_client_free(wrk_client *cl);

#endif
