/* memstore/memstore.h — the knowledge store: one RocksDB database per source (or shard).
 *
 * Column families: items (id → KnowledgeItem protobuf), keys (id → encoder version + dk
 * floats), values (id → encoder version + c×d floats), logical (logical key → current id),
 * meta (schema version, source config, counters). Ids are 64-bit content hashes, stored
 * big-endian so iteration follows id order. Every write goes through a WriteBatch, so a crash
 * leaves either all of a batch or none of it.
 *
 * Ownership: items returned to the caller are freed with reveal__knowledge_item__free_unpacked.
 */
#ifndef MEMSTORE_H
#define MEMSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "reveal.pb-c.h"

#define MEM_SCHEMA_VERSION 1
#define MEM_NAME_MAX       64

typedef struct mem_store mem_store;
typedef struct mem_batch mem_batch;
typedef struct mem_iter mem_iter;

/* Fixed when the store is created; a store refuses items that do not fit it. */
typedef struct {
    Reveal__SourceType type; /* the one source type this store holds */
    char name[MEM_NAME_MAX]; /* source name, e.g. "kg" or "wit-shard-1" */
    uint32_t image_size;     /* images are stored as image_size × image_size × 3 */
} mem_config;

typedef struct {
    uint64_t items;         /* live items */
    uint64_t deleted;       /* items removed by delete or replaced by an edit */
    uint64_t with_key;      /* live items that have a key vector */
    uint64_t with_value;    /* live items that have a value matrix */
    uint64_t sequence;      /* RocksDB's latest sequence number: grows on every write */
    uint64_t bytes_on_disk; /* live SST + WAL bytes as RocksDB reports them */
} mem_stats;

/* Outcome of one put. */
enum { MEM_PUT_ADDED = 0, MEM_PUT_UNCHANGED = 1, MEM_PUT_REPLACED = 2 };

/* Creates a new store in `dir` (which must not hold one), or opens an existing one whose
 * configuration must equal *cfg (else a clear error naming the difference). */
int mem_open_or_create(const char *dir, const mem_config *cfg, mem_store **out, char *err);
/* Opens an existing store; checks the schema version. */
int mem_open(const char *dir, int read_only, mem_store **out, char *err);
void mem_close(mem_store *s);
const mem_config *mem_get_config(const mem_store *s);
const char *mem_path(const mem_store *s);

/* The content id of an item: a hash of its type, text fields and pixels (not provenance, not
 * the logical key), so the same content always gets the same id. */
uint64_t mem_item_id(const Reveal__KnowledgeItem *item);
/* Checks that an item fits this store (type, required fields, image size, UTF-8). */
int mem_validate_item(const mem_store *s, const Reveal__KnowledgeItem *item, char *err);
/* The text an encoder reads for an item ("subject relation object", "question answer", ...),
 * written into buf (NUL-terminated, truncated to cap). Returns its length. */
size_t mem_item_text(const Reveal__KnowledgeItem *item, char *buf, size_t cap);

/* Staged writes, applied atomically by mem_batch_commit; a committed batch is empty and may
 * be reused. One writer at a time: a batch staged before another write to the store committed
 * is refused at commit ("stage it again"). */
mem_batch *mem_batch_new(mem_store *s);
/* Validates and stages an item. *outcome is MEM_PUT_*; an unchanged item stages nothing.
 * The rules for edits by logical key are in docs/store.md (Puts, edits and deletes). */
int mem_batch_put_item(mem_batch *b, const Reveal__KnowledgeItem *item, uint64_t *id, int *outcome,
                       char *err);
/* Stages the removal of an item (its key and value too). Deleting a missing id is an error. */
int mem_batch_delete(mem_batch *b, uint64_t id, char *err);
size_t mem_batch_count(const mem_batch *b);
/* sync = 1 makes the commit durable (fsync of the WAL) before returning. */
int mem_batch_commit(mem_batch *b, int sync, char *err);
void mem_batch_free(mem_batch *b);
/* Makes every committed batch durable (fsync of the write-ahead log), for a writer whose
 * earlier commits were made without sync and whose last batch staged nothing. */
int mem_sync(mem_store *s, char *err);

/* Returns 1 and fills *item if the id is live, 0 if absent, -1 on error. */
int mem_get_item(mem_store *s, uint64_t id, Reveal__KnowledgeItem **item, char *err);
/* Returns 1 and the current id of a logical key, 0 if absent, -1 on error. */
int mem_lookup_key(mem_store *s, const char *logical_key, uint64_t *id, char *err);

/* Key (dk floats) and value (c×d floats) of an item, with the encoder version that produced
 * them. Either pointer may be NULL to write or read only the other. */
int mem_put_vectors(mem_store *s, uint64_t id, uint32_t encoder_version, const float *key,
                    uint32_t dk, const float *value, uint32_t c, uint32_t d, char *err);
/* Returns 1 when the requested vectors exist (with matching sizes), 0 when absent, -1 on
 * error (including a size mismatch). Versions may be NULL. */
int mem_get_vectors(mem_store *s, uint64_t id, float *key, uint32_t dk, uint32_t *key_version,
                    float *value, uint32_t c, uint32_t d, uint32_t *value_version, char *err);

/* Whether an item has a key vector and a value matrix, with their encoder versions and shapes
 * (key: rows 1, cols dk; value: rows c, cols d), without reading the floats. Either pointer may
 * be NULL. Returns 0, or -1 on a read error or a corrupt record. */
typedef struct {
    int present;
    uint32_t version, rows, cols;
} mem_vector_info;
int mem_get_vector_info(mem_store *s, uint64_t id, mem_vector_info *key, mem_vector_info *value,
                        char *err);

/* Live items in id order, starting at start_id. mem_iter_next returns 1 with the next item
 * (the caller frees it), 0 at the end, -1 on error. */
int mem_iter_new(mem_store *s, uint64_t start_id, mem_iter **out, char *err);
int mem_iter_next(mem_iter *it, uint64_t *id, Reveal__KnowledgeItem **item, char *err);
void mem_iter_free(mem_iter *it);

int mem_get_stats(mem_store *s, mem_stats *st, char *err);

/* A consistent copy of the store in `dest` (which must not exist), written to a temporary
 * directory beside it and renamed into place. */
int mem_checkpoint(mem_store *s, const char *dest, char *err);

/* Filling a store from users' files: the reader, images and the ingest loop. */
#include "ingest.h"

#endif
