/* memstore/memstore.c — the knowledge store of memstore.h over RocksDB's C API.
 *
 * On-disk layout (docs/store.md has the full description):
 *   items    id (8 bytes big-endian) → packed KnowledgeItem
 *   keys     id → vector record: encoder version, rows = 1, cols = dk, then dk float32
 *   values   id → vector record: encoder version, rows = c, cols = d, then c×d float32
 *   logical  logical key (UTF-8 bytes) → id of the item that currently states it
 *   meta     "schema_version" → u32 BE; "config" → packed StoreConfig;
 *            "counters" → items, deleted, with_key, with_value as u64 BE
 * Every change of items, logical keys, vectors and counters goes through one WriteBatch, so the
 * counters in meta are exact after any crash: RocksDB's WAL replays a batch whole or not at all.
 *
 * Single writer: a store is written by one process (RocksDB's LOCK file enforces it) and by one
 * open batch at a time; a batch whose decisions were made before another write committed is
 * refused at commit rather than applied on stale reads.
 */
#include "memstore.h"

#include "proto.h"
#include "rv.h"

#include <rocksdb/c.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vector records store float32 in little-endian order; this host is not little-endian"
#endif

enum { CF_DEFAULT, CF_ITEMS, CF_KEYS, CF_VALUES, CF_LOGICAL, CF_META, CF_COUNT };
static const char *const cf_names[CF_COUNT] = {"default", "items",   "keys",
                                               "values",  "logical", "meta"};
enum { CNT_ITEMS, CNT_DELETED, CNT_WITH_KEY, CNT_WITH_VALUE, CNT_COUNT };

#define META_SCHEMA       "schema_version"
#define META_CONFIG       "config"
#define META_COUNTERS     "counters"
#define VEC_HEADER        12 /* encoder version, rows, cols: u32 big-endian each */
#define BLOCK_CACHE_BYTES (64u << 20)

struct mem_store {
    rocksdb_t *db;
    rocksdb_options_t *db_opts, *text_opts, *vec_opts;
    rocksdb_column_family_handle_t *cf[CF_COUNT];
    rocksdb_column_family_handle_t **all_cf; /* every family of the database, ours included */
    int n_all_cf;
    rocksdb_readoptions_t *ro;
    rocksdb_writeoptions_t *wo_sync, *wo_async;
    mem_config cfg;
    char path[PATH_MAX];
    int read_only;
    uint64_t counters[CNT_COUNT];
    uint64_t generation; /* bumped by every committed write */
};

/* ---- small encodings ---- */

static void put_be64(char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (char)(v & 0xff);
}
static uint64_t get_be64(const char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | (unsigned char)p[i];
    return v;
}
static void put_be32(char *p, uint32_t v) {
    for (int i = 3; i >= 0; i--, v >>= 8) p[i] = (char)(v & 0xff);
}
static uint32_t get_be32(const char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v = (v << 8) | (unsigned char)p[i];
    return v;
}

/* The logical key of an item: its own key, or its content id in 16 hex digits. */
static const char *logical_key(const Reveal__KnowledgeItem *item, uint64_t id, char hex[17]) {
    if (item->key && item->key[0]) return item->key;
    snprintf(hex, 17, "%016" PRIx64, id);
    return hex;
}

/* Passes a RocksDB error on with the store path; frees RocksDB's message. */
static int fail_rocks(char *err, const char *path, const char *what, char *rocks_err) {
    rv_fail(err, "store %s: %s: %s", path, what, rocks_err);
    free(rocks_err);
    return -1;
}

/* 1 found (*out holds the value, destroy it), 0 absent, -1 error. */
static int db_get(mem_store *s, int cf, const char *key, size_t klen, rocksdb_pinnableslice_t **out,
                  char *err) {
    char *e = NULL;
    rocksdb_pinnableslice_t *v = rocksdb_get_pinned_cf(s->db, s->ro, s->cf[cf], key, klen, &e);
    if (e) return fail_rocks(err, s->path, "read failed", e);
    if (!v) return 0;
    *out = v;
    return 1;
}

static int db_exists(mem_store *s, int cf, uint64_t id, char *err) {
    char k[8];
    put_be64(k, id);
    rocksdb_pinnableslice_t *v;
    int rc = db_get(s, cf, k, 8, &v, err);
    if (rc == 1) rocksdb_pinnableslice_destroy(v);
    return rc;
}

/* ---- options ---- */

static void options_create(mem_store *s, int create) {
    s->db_opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(s->db_opts, (unsigned char)create);
    rocksdb_options_set_create_missing_column_families(s->db_opts, (unsigned char)create);
    rocksdb_options_set_max_background_jobs(s->db_opts, 2);
    rocksdb_options_set_keep_log_file_num(s->db_opts, 4);
    /* Only fatal messages go to RocksDB's LOG file. On a full disk the LOG fails along with the
     * WAL, and Debian's librocksdb (built with assertions) aborts the process when its error
     * handler then writes to the failed LOG; our own error message says what went wrong. */
    rocksdb_options_set_info_log_level(s->db_opts, 4 /* FATAL_LEVEL */);

    rocksdb_block_based_table_options_t *table = rocksdb_block_based_options_create();
    rocksdb_cache_t *cache = rocksdb_cache_create_lru(BLOCK_CACHE_BYTES);
    rocksdb_block_based_options_set_block_cache(table, cache);
    /* A put looks its id and logical key up first; the bloom filter answers "absent" for new
     * items without reading a block. The table options take ownership of the filter. */
    rocksdb_block_based_options_set_filter_policy(table,
                                                  rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_options_t *family[2];
    for (int i = 0; i < 2; i++) {
        family[i] = rocksdb_options_create();
        rocksdb_options_set_block_based_table_factory(family[i], table);
        rocksdb_options_set_level_compaction_dynamic_level_bytes(family[i], 1);
        /* The same for the memtable: a put of a new item looks up two keys that are not
         * there, and without a filter each miss walks the skiplist. */
        rocksdb_options_set_memtable_prefix_bloom_size_ratio(family[i], 0.05);
        rocksdb_options_set_memtable_whole_key_filtering(family[i], 1);
    }
    /* Text compresses well with LZ4 (cheap on ingest); float vectors do not compress. */
    rocksdb_options_set_compression(family[0], rocksdb_lz4_compression);
    rocksdb_options_set_bottommost_compression(family[0], rocksdb_zstd_compression);
    rocksdb_options_set_compression(family[1], rocksdb_no_compression);
    s->text_opts = family[0];
    s->vec_opts = family[1];
    rocksdb_block_based_options_destroy(table);
    rocksdb_cache_destroy(cache);
}

static const rocksdb_options_t *family_options(const mem_store *s, const char *name) {
    if (!strcmp(name, "keys") || !strcmp(name, "values")) return s->vec_opts;
    return s->text_opts;
}

/* ---- meta ---- */

static int write_counters(rocksdb_writebatch_t *wb, mem_store *s, const uint64_t *counters) {
    char buf[8 * CNT_COUNT];
    for (int i = 0; i < CNT_COUNT; i++) put_be64(buf + 8 * i, counters[i]);
    rocksdb_writebatch_put_cf(wb, s->cf[CF_META], META_COUNTERS, strlen(META_COUNTERS), buf,
                              sizeof buf);
    return 0;
}

static int write_meta_new(mem_store *s, char *err) {
    Reveal__StoreConfig pc = REVEAL__STORE_CONFIG__INIT;
    pc.type = s->cfg.type;
    pc.name = s->cfg.name;
    pc.image_size = s->cfg.image_size;
    uint8_t *cfg_buf = NULL;
    size_t cfg_n = 0;
    if (rv_pack(&pc.base, &cfg_buf, &cfg_n, err)) return -1;
    char ver[4];
    put_be32(ver, MEM_SCHEMA_VERSION);
    uint64_t zero[CNT_COUNT] = {0};
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_put_cf(wb, s->cf[CF_META], META_SCHEMA, strlen(META_SCHEMA), ver, 4);
    rocksdb_writebatch_put_cf(wb, s->cf[CF_META], META_CONFIG, strlen(META_CONFIG),
                              (const char *)cfg_buf, cfg_n);
    write_counters(wb, s, zero);
    char *e = NULL;
    rocksdb_write(s->db, s->wo_sync, wb, &e);
    rocksdb_writebatch_destroy(wb);
    free(cfg_buf);
    if (e) return fail_rocks(err, s->path, "writing meta", e);
    memset(s->counters, 0, sizeof s->counters);
    return 0;
}

/* Reads schema version, config and counters. Returns 1 when meta holds no schema version. */
static int read_meta(mem_store *s, char *err) {
    rocksdb_pinnableslice_t *v = NULL;
    int rc = db_get(s, CF_META, META_SCHEMA, strlen(META_SCHEMA), &v, err);
    if (rc <= 0) return rc < 0 ? -1 : 1;
    size_t n;
    const char *p = rocksdb_pinnableslice_value(v, &n);
    uint32_t version = n == 4 ? get_be32(p) : 0;
    rocksdb_pinnableslice_destroy(v);
    if (n != 4)
        return rv_fail(err, "store %s: meta schema_version is %zu bytes, not 4", s->path, n);
    if (version != MEM_SCHEMA_VERSION)
        return rv_fail(err, "store %s: schema version %u, this build reads %d", s->path, version,
                       MEM_SCHEMA_VERSION);

    rc = db_get(s, CF_META, META_CONFIG, strlen(META_CONFIG), &v, err);
    if (rc <= 0) return rc < 0 ? -1 : rv_fail(err, "store %s: meta holds no config", s->path);
    p = rocksdb_pinnableslice_value(v, &n);
    Reveal__StoreConfig *pc = NULL;
    rc = rv_store_config_decode((const uint8_t *)p, n, &pc, err);
    rocksdb_pinnableslice_destroy(v);
    if (rc) return rv_fail_wrap(err, "store %s: meta config", s->path);
    s->cfg.type = pc->type;
    snprintf(s->cfg.name, sizeof s->cfg.name, "%s", pc->name);
    s->cfg.image_size = pc->image_size;
    reveal__store_config__free_unpacked(pc, NULL);

    rc = db_get(s, CF_META, META_COUNTERS, strlen(META_COUNTERS), &v, err);
    if (rc <= 0) return rc < 0 ? -1 : rv_fail(err, "store %s: meta holds no counters", s->path);
    p = rocksdb_pinnableslice_value(v, &n);
    if (n == 8 * CNT_COUNT)
        for (int i = 0; i < CNT_COUNT; i++) s->counters[i] = get_be64(p + 8 * i);
    rocksdb_pinnableslice_destroy(v);
    if (n != 8 * CNT_COUNT)
        return rv_fail(err, "store %s: meta counters are %zu bytes, not %d", s->path, n,
                       8 * CNT_COUNT);
    return 0;
}

static int config_check(const mem_config *cfg, const char *dir, char *err) {
    Reveal__StoreConfig pc = REVEAL__STORE_CONFIG__INIT;
    pc.type = cfg->type;
    pc.name = (char *)cfg->name;
    pc.image_size = cfg->image_size;
    if (memchr(cfg->name, 0, sizeof cfg->name) == NULL)
        return rv_fail(err, "store %s: name is not NUL-terminated", dir);
    if (rv_store_config_check(&pc, err)) return rv_fail_wrap(err, "store %s", dir);
    return 0;
}

static int config_compare(const mem_store *s, const mem_config *want, char *err) {
    const mem_config *have = &s->cfg;
    if (have->type != want->type)
        return rv_fail(err, "store %s holds %s items, not %s", s->path,
                       rv_source_type_name(have->type), rv_source_type_name(want->type));
    if (have->image_size != want->image_size)
        return rv_fail(err, "store %s: image size is %u, not %u", s->path, have->image_size,
                       want->image_size);
    if (strcmp(have->name, want->name))
        return rv_fail(err, "store %s is named \"%s\", not \"%s\"", s->path, have->name,
                       want->name);
    return 0;
}

/* ---- open / close ---- */

static int dir_is_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(d);
    return empty;
}

static int family_empty(mem_store *s, int cf) {
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[cf]);
    rocksdb_iter_seek_to_first(it);
    int empty = !rocksdb_iter_valid(it);
    rocksdb_iter_destroy(it);
    return empty;
}

/* 1 when every family of the database in dir is empty (read through a read-only open). */
static int database_empty(const rocksdb_options_t *opts, const char *dir, char **names, size_t n) {
    const rocksdb_options_t **o = calloc(n, sizeof *o);
    rocksdb_column_family_handle_t **cf = calloc(n, sizeof *cf);
    char *e = NULL;
    int empty = 0;
    if (!o || !cf) goto cleanup;
    for (size_t i = 0; i < n; i++) o[i] = opts;
    rocksdb_t *db = rocksdb_open_for_read_only_column_families(
        opts, dir, (int)n, (const char *const *)names, o, cf, 0, &e);
    if (e) goto cleanup;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    empty = 1;
    for (size_t i = 0; i < n; i++) {
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, cf[i]);
        rocksdb_iter_seek_to_first(it);
        if (rocksdb_iter_valid(it)) empty = 0;
        rocksdb_iter_destroy(it);
        rocksdb_column_family_handle_destroy(cf[i]);
    }
    rocksdb_readoptions_destroy(ro);
    rocksdb_close(db);
cleanup:
    free(e);
    free(o);
    free(cf);
    return empty;
}

/* Opens (create != NULL: creates or finishes creating) the store in dir. */
static int store_open(const char *dir, int read_only, const mem_config *create, mem_store **out,
                      char *err) {
    char current[PATH_MAX + 16], *e = NULL;
    char **names = NULL;
    size_t n_names = 0;
    int fresh = 0, rc = -1;
    const char **open_names = NULL;
    const rocksdb_options_t **open_opts = NULL;
    struct stat st;
    mem_store *s = calloc(1, sizeof *s);
    if (!s) return rv_fail(err, "store %s: out of memory", dir);
    if (strlen(dir) >= sizeof s->path) {
        rv_fail(err, "store path is longer than %zu bytes", sizeof s->path - 1);
        goto cleanup;
    }
    snprintf(s->path, sizeof s->path, "%s", dir);
    s->read_only = read_only;

    snprintf(current, sizeof current, "%s/CURRENT", dir);
    if (stat(dir, &st) != 0) {
        if (!create) {
            rv_fail(err, "no store at %s: %s", dir, strerror(errno));
            goto cleanup;
        }
        if (rv_mkdirs(dir, err)) goto cleanup;
        fresh = 1;
    } else if (!S_ISDIR(st.st_mode)) {
        rv_fail(err, "%s is not a directory, so not a store", dir);
        goto cleanup;
    } else if (access(current, F_OK) != 0) {
        if (!create || !dir_is_empty(dir)) {
            rv_fail(err, "%s is not a reveal store (no RocksDB database in it)", dir);
            goto cleanup;
        }
        fresh = 1;
    }
    if (create) s->cfg = *create;
    options_create(s, create != NULL);

    if (fresh) {
        n_names = CF_COUNT;
    } else {
        names = rocksdb_list_column_families(s->db_opts, dir, &n_names, &e);
        if (e) {
            fail_rocks(err, dir, "listing column families", e);
            goto cleanup;
        }
        /* Ours must all be there, except while finishing a creation that was cut short
         * (RocksDB adds the families one by one): then every family present is empty. */
        for (int c = 0; c < CF_COUNT; c++) {
            size_t i = 0;
            while (i < n_names && strcmp(names[i], cf_names[c])) i++;
            if (i == n_names && (!create || !database_empty(s->db_opts, dir, names, n_names))) {
                rv_fail(err,
                        "%s is a RocksDB database but not a reveal store (no column family %s)",
                        dir, cf_names[c]);
                goto cleanup;
            }
        }
    }
    /* Open every family the database has, plus ours (created if missing and allowed). */
    open_names = calloc(n_names + CF_COUNT, sizeof *open_names);
    open_opts = calloc(n_names + CF_COUNT, sizeof *open_opts);
    s->all_cf = calloc(n_names + CF_COUNT, sizeof *s->all_cf);
    if (!open_names || !open_opts || !s->all_cf) {
        rv_fail(err, "store %s: out of memory", dir);
        goto cleanup;
    }
    int n_open = 0;
    for (int c = 0; c < CF_COUNT; c++) open_names[n_open++] = cf_names[c];
    for (size_t i = 0; names && i < n_names; i++) {
        int ours = 0;
        for (int c = 0; c < CF_COUNT; c++) ours |= !strcmp(names[i], cf_names[c]);
        if (!ours) open_names[n_open++] = names[i];
    }
    for (int i = 0; i < n_open; i++) open_opts[i] = family_options(s, open_names[i]);
    if (read_only)
        s->db = rocksdb_open_for_read_only_column_families(s->db_opts, dir, n_open, open_names,
                                                           open_opts, s->all_cf, 0, &e);
    else
        s->db = rocksdb_open_column_families(s->db_opts, dir, n_open, open_names, open_opts,
                                             s->all_cf, &e);
    if (e) {
        fail_rocks(err, dir, read_only ? "opening read-only" : "opening", e);
        goto cleanup;
    }
    s->n_all_cf = n_open;
    for (int c = 0; c < CF_COUNT; c++) s->cf[c] = s->all_cf[c];
    s->ro = rocksdb_readoptions_create();
    s->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wo_sync, 1);
    s->wo_async = rocksdb_writeoptions_create();

    int meta = read_meta(s, err);
    if (meta < 0) goto cleanup;
    if (meta == 1) {
        /* No schema version: a new database, or one whose creation was cut short before its
         * meta batch; a database holding data or families of its own is someone else's. */
        if (!create || s->n_all_cf != CF_COUNT || !family_empty(s, CF_ITEMS) ||
            !family_empty(s, CF_DEFAULT)) {
            rv_fail(err, "%s is not a reveal store (meta holds no schema version)", dir);
            goto cleanup;
        }
        if (write_meta_new(s, err)) goto cleanup;
        rv_debug("created store %s (%s, \"%s\", images %u)", dir, rv_source_type_name(s->cfg.type),
                 s->cfg.name, s->cfg.image_size);
    } else if (create && config_compare(s, create, err)) {
        goto cleanup;
    }
    *out = s;
    s = NULL;
    rc = 0;
cleanup:
    if (names) rocksdb_list_column_families_destroy(names, n_names);
    free(open_names);
    free(open_opts);
    mem_close(s);
    return rc;
}

int mem_open_or_create(const char *dir, const mem_config *cfg, mem_store **out, char *err) {
    if (config_check(cfg, dir, err)) return -1;
    return store_open(dir, 0, cfg, out, err);
}

int mem_open(const char *dir, int read_only, mem_store **out, char *err) {
    return store_open(dir, read_only, NULL, out, err);
}

void mem_close(mem_store *s) {
    if (!s) return;
    for (int i = 0; i < s->n_all_cf; i++) rocksdb_column_family_handle_destroy(s->all_cf[i]);
    free(s->all_cf);
    if (s->db) rocksdb_close(s->db);
    if (s->ro) rocksdb_readoptions_destroy(s->ro);
    if (s->wo_sync) rocksdb_writeoptions_destroy(s->wo_sync);
    if (s->wo_async) rocksdb_writeoptions_destroy(s->wo_async);
    if (s->text_opts) rocksdb_options_destroy(s->text_opts);
    if (s->vec_opts) rocksdb_options_destroy(s->vec_opts);
    if (s->db_opts) rocksdb_options_destroy(s->db_opts);
    free(s);
}

const mem_config *mem_get_config(const mem_store *s) {
    return &s->cfg;
}

const char *mem_path(const mem_store *s) {
    return s->path;
}

/* ---- items ---- */

uint64_t mem_item_id(const Reveal__KnowledgeItem *item) {
    /* Each field is hashed with a seed that mixes the running hash, the field's number and its
     * length, so moving bytes from one field to the next changes the id. */
    const char *fields[] = {item->text,    item->title,    item->question, item->answer,
                            item->subject, item->relation, item->object};
    uint64_t h = rv_hash64("reveal-item", 11, (uint64_t)item->type);
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        size_t n = fields[f] ? strlen(fields[f]) : 0;
        h = rv_hash64(fields[f] ? fields[f] : "", n, h ^ (n * 0x9E3779B97F4A7C15ull + f + 1));
    }
    if (item->image) {
        char dims[12];
        put_be32(dims, item->image->width);
        put_be32(dims + 4, item->image->height);
        put_be32(dims + 8, item->image->channels);
        h = rv_hash64(dims, sizeof dims, h ^ 0x1AA6E);
        h = rv_hash64(item->image->pixels.data, item->image->pixels.len, h);
    }
    return h;
}

int mem_validate_item(const mem_store *s, const Reveal__KnowledgeItem *item, char *err) {
    if (rv_item_check(item, err)) return -1;
    if (item->type != s->cfg.type)
        return rv_fail(err, "item is %s, store %s holds %s items", rv_source_type_name(item->type),
                       s->path, rv_source_type_name(s->cfg.type));
    const Reveal__Image *im = item->image;
    if (im && (im->width != s->cfg.image_size || im->height != s->cfg.image_size))
        return rv_fail(err, "image is %ux%u, store %s holds %ux%u images", im->width, im->height,
                       s->path, s->cfg.image_size, s->cfg.image_size);
    return 0;
}

static void text_append(char *buf, size_t cap, size_t *pos, const char *s, int *cut) {
    size_t n = s ? strlen(s) : 0, room = cap - 1 - *pos;
    if (n > room) {
        n = room;
        *cut = 1;
    }
    memcpy(buf + *pos, s ? s : "", n);
    *pos += n;
}

size_t mem_item_text(const Reveal__KnowledgeItem *item, char *buf, size_t cap) {
    if (cap == 0) return 0;
    size_t pos = 0;
    int cut = 0;
    switch (item->type) {
    case REVEAL__SOURCE_TYPE__KG_TRIPLE:
        text_append(buf, cap, &pos, item->subject, &cut);
        text_append(buf, cap, &pos, " ", &cut);
        text_append(buf, cap, &pos, item->relation, &cut);
        text_append(buf, cap, &pos, " ", &cut);
        text_append(buf, cap, &pos, item->object, &cut);
        break;
    case REVEAL__SOURCE_TYPE__QA:
        text_append(buf, cap, &pos, item->question, &cut);
        text_append(buf, cap, &pos, " ", &cut);
        text_append(buf, cap, &pos, item->answer, &cut);
        break;
    case REVEAL__SOURCE_TYPE__TEXT:
        if (item->title && item->title[0]) {
            text_append(buf, cap, &pos, item->title, &cut);
            text_append(buf, cap, &pos, ": ", &cut);
        }
        text_append(buf, cap, &pos, item->text, &cut);
        break;
    default:
        text_append(buf, cap, &pos, item->text, &cut);
        break;
    }
    /* A cut must not split a UTF-8 sequence: drop a trailing incomplete character. */
    if (cut && pos > 0) {
        size_t lead = pos;
        while (lead > 0 && pos - lead < 4 && ((unsigned char)buf[lead - 1] & 0xC0) == 0x80) lead--;
        if (lead > 0) {
            unsigned c = (unsigned char)buf[lead - 1];
            size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            if (lead - 1 + len > pos) pos = lead - 1;
        }
    }
    buf[pos] = 0;
    return pos;
}

/* ---- batches ---- */

/* What a batch has staged, keyed by id (8 bytes big-endian) or by logical key: later puts and
 * deletes in the same batch see it before the database. Open addressing, power-of-two size. */
enum { STAGE_LIVE = 1, STAGE_DEAD = 2 };
typedef struct {
    uint64_t hash;
    char *key; /* owned copy */
    size_t len;
    int state;   /* 0 = empty slot, else STAGE_* */
    uint64_t id; /* logical map: the id the key maps to */
    char *lkey;  /* id map: the logical key of a staged live item (owned) */
} stage_entry;

typedef struct {
    stage_entry *slot;
    size_t cap, used;
} stage_map;

struct mem_batch {
    mem_store *s;
    rocksdb_writebatch_t *wb;
    stage_map ids, keys;
    uint64_t counters[CNT_COUNT];
    uint64_t generation; /* the store's generation when staging began */
    size_t count;        /* items added, replaced or deleted */
    int broken;          /* out of memory halfway through staging: commit refused */
};

static stage_entry *stage_find(const stage_map *m, const char *key, size_t len, uint64_t hash) {
    if (!m->cap) return NULL;
    for (size_t i = hash & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        stage_entry *e = &m->slot[i];
        if (!e->state) return e;
        if (e->hash == hash && e->len == len && !memcmp(e->key, key, len)) return e;
    }
}

static stage_entry *stage_get(const stage_map *m, const char *key, size_t len) {
    stage_entry *e = stage_find(m, key, len, rv_hash64(key, len, 0));
    return e && e->state ? e : NULL;
}

/* Finds or inserts key; NULL when out of memory. */
static stage_entry *stage_set(stage_map *m, const char *key, size_t len) {
    if ((m->used + 1) * 10 > m->cap * 7) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        stage_entry *slot = calloc(cap, sizeof *slot);
        if (!slot) return NULL;
        stage_map grown = {slot, cap, m->used};
        for (size_t i = 0; i < m->cap; i++)
            if (m->slot[i].state)
                *stage_find(&grown, m->slot[i].key, m->slot[i].len, m->slot[i].hash) = m->slot[i];
        free(m->slot);
        *m = grown;
    }
    uint64_t hash = rv_hash64(key, len, 0);
    stage_entry *e = stage_find(m, key, len, hash);
    if (e->state) return e;
    char *copy = malloc(len ? len : 1);
    if (!copy) return NULL;
    memcpy(copy, key, len);
    *e = (stage_entry){hash, copy, len, STAGE_DEAD, 0, NULL};
    m->used++;
    return e;
}

static void stage_clear(stage_map *m) {
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slot[i].key);
        free(m->slot[i].lkey);
    }
    if (m->cap) memset(m->slot, 0, m->cap * sizeof *m->slot);
    m->used = 0;
}

mem_batch *mem_batch_new(mem_store *s) {
    mem_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->s = s;
    b->wb = rocksdb_writebatch_create();
    memcpy(b->counters, s->counters, sizeof b->counters);
    b->generation = s->generation;
    return b;
}

void mem_batch_free(mem_batch *b) {
    if (!b) return;
    stage_clear(&b->ids);
    stage_clear(&b->keys);
    free(b->ids.slot);
    free(b->keys.slot);
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

size_t mem_batch_count(const mem_batch *b) {
    return b->count;
}

/* Checks that the batch may stage; an empty batch first catches up with the store, since
 * nothing it holds rests on older reads. */
static int batch_writable(mem_batch *b, char *err) {
    if (b->s->read_only) return rv_fail(err, "store %s is open read-only", b->s->path);
    if (rocksdb_writebatch_count(b->wb) == 0) {
        memcpy(b->counters, b->s->counters, sizeof b->counters);
        b->generation = b->s->generation;
    }
    if (b->broken)
        return rv_fail(err, "store %s: batch ran out of memory while staging; discard it",
                       b->s->path);
    return 0;
}

/* 1 when the id holds a live item as this batch sees it, 0 when not, -1 on error. */
static int batch_item_live(mem_batch *b, uint64_t id, char *err) {
    char k[8];
    put_be64(k, id);
    const stage_entry *e = stage_get(&b->ids, k, 8);
    if (e) return e->state == STAGE_LIVE;
    return db_exists(b->s, CF_ITEMS, id, err);
}

/* 1 and *id when the logical key maps to an item as this batch sees it, 0 when not. */
static int batch_key_current(mem_batch *b, const char *key, uint64_t *id, char *err) {
    size_t len = strlen(key);
    const stage_entry *e = stage_get(&b->keys, key, len);
    if (e) {
        *id = e->id;
        return e->state == STAGE_LIVE;
    }
    rocksdb_pinnableslice_t *v;
    int rc = db_get(b->s, CF_LOGICAL, key, len, &v, err);
    if (rc <= 0) return rc;
    size_t n;
    const char *p = rocksdb_pinnableslice_value(v, &n);
    if (n == 8) *id = get_be64(p);
    rocksdb_pinnableslice_destroy(v);
    if (n != 8)
        return rv_fail(err, "store %s: logical key \"%.80s\" maps to %zu bytes, not an 8-byte id",
                       b->s->path, key, n);
    return 1;
}

/* What removing one live item takes, read before anything is staged so a failed read leaves
 * the batch as it was. */
typedef struct {
    uint64_t id;
    char *lkey; /* owned */
    int has_key, has_value, unmap;
} removal;

static int removal_plan(mem_batch *b, uint64_t id, removal *r, char *err) {
    mem_store *s = b->s;
    char k[8], hex[17];
    put_be64(k, id);
    *r = (removal){.id = id};
    const stage_entry *e = stage_get(&b->ids, k, 8);
    if (e && e->state != STAGE_LIVE)
        return rv_fail(err, "store %s: item 0x%016" PRIx64 " is already deleted in this batch",
                       s->path, id);
    if (e) {
        /* Staged live in this batch: any vectors it had were deleted when it was removed. */
        r->lkey = strdup(e->lkey);
    } else {
        Reveal__KnowledgeItem *item = NULL;
        int rc = mem_get_item(s, id, &item, err);
        if (rc == 0)
            return rv_fail(err, "store %s: no item 0x%016" PRIx64 " to remove", s->path, id);
        if (rc < 0) return -1;
        r->lkey = strdup(logical_key(item, id, hex));
        reveal__knowledge_item__free_unpacked(item, NULL);
        if ((r->has_key = db_exists(s, CF_KEYS, id, err)) < 0 ||
            (r->has_value = db_exists(s, CF_VALUES, id, err)) < 0)
            goto fail;
    }
    if (!r->lkey) {
        rv_fail(err, "store %s: out of memory", s->path);
        goto fail;
    }
    uint64_t mapped = 0;
    int rc = batch_key_current(b, r->lkey, &mapped, err);
    if (rc < 0) goto fail;
    r->unmap = rc == 1 && mapped == id;
    return 0;
fail:
    free(r->lkey);
    r->lkey = NULL;
    return -1;
}

static void removal_apply(mem_batch *b, removal *r) {
    mem_store *s = b->s;
    char k[8];
    put_be64(k, r->id);
    rocksdb_writebatch_delete_cf(b->wb, s->cf[CF_ITEMS], k, 8);
    rocksdb_writebatch_delete_cf(b->wb, s->cf[CF_KEYS], k, 8);
    rocksdb_writebatch_delete_cf(b->wb, s->cf[CF_VALUES], k, 8);
    if (r->unmap) {
        rocksdb_writebatch_delete_cf(b->wb, s->cf[CF_LOGICAL], r->lkey, strlen(r->lkey));
        stage_entry *e = stage_set(&b->keys, r->lkey, strlen(r->lkey));
        if (e)
            e->state = STAGE_DEAD;
        else
            b->broken = 1;
    }
    stage_entry *e = stage_set(&b->ids, k, 8);
    if (e) {
        e->state = STAGE_DEAD;
        free(e->lkey);
        e->lkey = NULL;
    } else {
        b->broken = 1;
    }
    b->counters[CNT_ITEMS]--;
    b->counters[CNT_DELETED]++;
    b->counters[CNT_WITH_KEY] -= (uint64_t)r->has_key;
    b->counters[CNT_WITH_VALUE] -= (uint64_t)r->has_value;
    b->count++;
    free(r->lkey);
    r->lkey = NULL;
}

int mem_batch_put_item(mem_batch *b, const Reveal__KnowledgeItem *item, uint64_t *id, int *outcome,
                       char *err) {
    mem_store *s = b->s;
    if (batch_writable(b, err) || mem_validate_item(s, item, err)) return -1;
    char hex[17], k[8];
    uint64_t new_id = mem_item_id(item), mapped = 0;
    const char *lkey = logical_key(item, new_id, hex);
    int has_key = batch_key_current(b, lkey, &mapped, err);
    if (has_key < 0) return -1;
    /* A logical key only ever maps to a live item, so a re-put needs one read. */
    int live = has_key && mapped == new_id ? 1 : batch_item_live(b, new_id, err);
    if (live < 0) return -1;
    /* The logical key states another item: this put is an edit and retires it. When the new
     * content is already stored (under another key) the old item goes all the same, and the
     * content keeps the key it was stored under. */
    int replace = has_key && mapped != new_id;
    removal r = {0};
    if (replace && removal_plan(b, mapped, &r, err)) return -1;
    uint8_t *packed = NULL;
    size_t n = 0;
    if (!live && rv_pack(&item->base, &packed, &n, err)) {
        free(r.lkey);
        return -1;
    }
    if (replace) removal_apply(b, &r);
    if (!live) {
        put_be64(k, new_id);
        rocksdb_writebatch_put_cf(b->wb, s->cf[CF_ITEMS], k, 8, (const char *)packed, n);
        rocksdb_writebatch_put_cf(b->wb, s->cf[CF_LOGICAL], lkey, strlen(lkey), k, 8);
        free(packed);
        stage_entry *e = stage_set(&b->ids, k, 8);
        char *lcopy = strdup(lkey);
        if (e && lcopy) {
            e->state = STAGE_LIVE;
            free(e->lkey);
            e->lkey = lcopy;
        } else {
            free(lcopy);
            b->broken = 1;
        }
        e = stage_set(&b->keys, lkey, strlen(lkey));
        if (e) {
            e->state = STAGE_LIVE;
            e->id = new_id;
        } else {
            b->broken = 1;
        }
        b->counters[CNT_ITEMS]++;
        b->count++;
    }
    *id = new_id;
    *outcome = replace ? MEM_PUT_REPLACED : live ? MEM_PUT_UNCHANGED : MEM_PUT_ADDED;
    return batch_writable(b, err);
}

int mem_batch_delete(mem_batch *b, uint64_t id, char *err) {
    if (batch_writable(b, err)) return -1;
    int live = batch_item_live(b, id, err);
    if (live < 0) return -1;
    if (!live) return rv_fail(err, "store %s: no item 0x%016" PRIx64 " to delete", b->s->path, id);
    removal r;
    if (removal_plan(b, id, &r, err)) return -1;
    removal_apply(b, &r);
    return batch_writable(b, err);
}

static void batch_reset(mem_batch *b) {
    rocksdb_writebatch_clear(b->wb);
    stage_clear(&b->ids);
    stage_clear(&b->keys);
    memcpy(b->counters, b->s->counters, sizeof b->counters);
    b->generation = b->s->generation;
    b->count = 0;
}

int mem_batch_commit(mem_batch *b, int sync, char *err) {
    mem_store *s = b->s;
    if (batch_writable(b, err)) return -1;
    if (b->generation != s->generation)
        return rv_fail(err,
                       "store %s: another write committed while this batch was staged; "
                       "stage it again",
                       s->path);
    /* Nothing staged (every put was unchanged): write nothing, so the sequence stays put. */
    if (rocksdb_writebatch_count(b->wb) == 0) return 0;
    rocksdb_writebatch_set_save_point(b->wb);
    write_counters(b->wb, s, b->counters);
    char *e = NULL;
    rocksdb_write(s->db, sync ? s->wo_sync : s->wo_async, b->wb, &e);
    if (e) {
        char *ignored = NULL;
        rocksdb_writebatch_rollback_to_save_point(b->wb, &ignored);
        free(ignored);
        return fail_rocks(err, s->path, "commit failed", e);
    }
    memcpy(s->counters, b->counters, sizeof s->counters);
    s->generation++;
    batch_reset(b);
    return 0;
}

int mem_sync(mem_store *s, char *err) {
    char *e = NULL;
    rocksdb_flush_wal(s->db, 1, &e);
    return e ? fail_rocks(err, s->path, "syncing the write-ahead log", e) : 0;
}

/* ---- reads ---- */

int mem_get_item(mem_store *s, uint64_t id, Reveal__KnowledgeItem **item, char *err) {
    char k[8];
    put_be64(k, id);
    rocksdb_pinnableslice_t *v;
    int rc = db_get(s, CF_ITEMS, k, 8, &v, err);
    if (rc <= 0) return rc;
    size_t n;
    const char *p = rocksdb_pinnableslice_value(v, &n);
    rc = rv_item_decode((const uint8_t *)p, n, item, err);
    rocksdb_pinnableslice_destroy(v);
    if (rc) return rv_fail_wrap(err, "store %s: item 0x%016" PRIx64, s->path, id);
    return 1;
}

int mem_lookup_key(mem_store *s, const char *logical_key, uint64_t *id, char *err) {
    rocksdb_pinnableslice_t *v;
    int rc = db_get(s, CF_LOGICAL, logical_key, strlen(logical_key), &v, err);
    if (rc <= 0) return rc;
    size_t n;
    const char *p = rocksdb_pinnableslice_value(v, &n);
    if (n == 8) *id = get_be64(p);
    rocksdb_pinnableslice_destroy(v);
    if (n != 8)
        return rv_fail(err, "store %s: logical key \"%.80s\" maps to %zu bytes, not an 8-byte id",
                       s->path, logical_key, n);
    return 1;
}

/* ---- vectors ---- */

static char *vec_record(uint32_t version, uint32_t rows, uint32_t cols, const float *v, size_t *n) {
    size_t floats = (size_t)rows * cols;
    char *rec = malloc(VEC_HEADER + 4 * floats);
    if (!rec) return NULL;
    put_be32(rec, version);
    put_be32(rec + 4, rows);
    put_be32(rec + 8, cols);
    memcpy(rec + VEC_HEADER, v, 4 * floats);
    *n = VEC_HEADER + 4 * floats;
    return rec;
}

static int vec_check(const mem_store *s, uint64_t id, const char *what, const float *v,
                     uint32_t rows, uint32_t cols, uint32_t rows_max, uint32_t cols_max,
                     char *err) {
    if (rows < 1 || rows > rows_max || cols < 1 || cols > cols_max)
        return rv_fail(err, "store %s: %s of item 0x%016" PRIx64 " is %ux%u, limit %ux%u", s->path,
                       what, id, rows, cols, rows_max, cols_max);
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        if (!isfinite(v[i]))
            return rv_fail(err,
                           "store %s: %s of item 0x%016" PRIx64 " has a non-finite value "
                           "at %zu",
                           s->path, what, id, i);
    return 0;
}

int mem_put_vectors(mem_store *s, uint64_t id, uint32_t encoder_version, const float *key,
                    uint32_t dk, const float *value, uint32_t c, uint32_t d, char *err) {
    if (s->read_only) return rv_fail(err, "store %s is open read-only", s->path);
    if (!key && !value) return rv_fail(err, "store %s: no key or value to write", s->path);
    if ((key && vec_check(s, id, "key", key, 1, dk, 1, RV_PROTO_DIM_MAX, err)) ||
        (value &&
         vec_check(s, id, "value", value, c, d, RV_PROTO_TOKENS_MAX, RV_PROTO_DIM_MAX, err)))
        return -1;
    int live = db_exists(s, CF_ITEMS, id, err);
    if (live <= 0)
        return live < 0 ? -1
                        : rv_fail(err, "store %s: no item 0x%016" PRIx64 " to attach vectors to",
                                  s->path, id);
    int had_key = key ? db_exists(s, CF_KEYS, id, err) : 0;
    int had_value = value ? db_exists(s, CF_VALUES, id, err) : 0;
    if (had_key < 0 || had_value < 0) return -1;

    char k[8], *krec = NULL, *vrec = NULL;
    size_t kn = 0, vn = 0;
    put_be64(k, id);
    if ((key && !(krec = vec_record(encoder_version, 1, dk, key, &kn))) ||
        (value && !(vrec = vec_record(encoder_version, c, d, value, &vn)))) {
        free(krec);
        return rv_fail(err, "store %s: out of memory", s->path);
    }
    uint64_t counters[CNT_COUNT];
    memcpy(counters, s->counters, sizeof counters);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    if (krec) rocksdb_writebatch_put_cf(wb, s->cf[CF_KEYS], k, 8, krec, kn);
    if (vrec) rocksdb_writebatch_put_cf(wb, s->cf[CF_VALUES], k, 8, vrec, vn);
    counters[CNT_WITH_KEY] += (uint64_t)(key && !had_key);
    counters[CNT_WITH_VALUE] += (uint64_t)(value && !had_value);
    write_counters(wb, s, counters);
    char *e = NULL;
    rocksdb_write(s->db, s->wo_async, wb, &e);
    rocksdb_writebatch_destroy(wb);
    free(krec);
    free(vrec);
    if (e) return fail_rocks(err, s->path, "writing vectors", e);
    memcpy(s->counters, counters, sizeof counters);
    s->generation++;
    return 0;
}

/* Reads one vector record of the requested shape: 1 found, 0 absent, -1 on error. */
static int vec_read(mem_store *s, int cf, uint64_t id, const char *what, float *out, uint32_t rows,
                    uint32_t cols, uint32_t *version, char *err) {
    char k[8];
    put_be64(k, id);
    rocksdb_pinnableslice_t *v;
    int rc = db_get(s, cf, k, 8, &v, err);
    if (rc <= 0) return rc;
    size_t n;
    const char *p = rocksdb_pinnableslice_value(v, &n);
    uint32_t ver = 0, r = 0, c = 0;
    if (n >= VEC_HEADER) {
        ver = get_be32(p);
        r = get_be32(p + 4);
        c = get_be32(p + 8);
    }
    uint64_t want = VEC_HEADER + 4 * (uint64_t)r * c;
    if (n < VEC_HEADER || n != want)
        rc = rv_fail(err,
                     "store %s: %s of item 0x%016" PRIx64 " is corrupt (%zu bytes, header "
                     "says %ux%u)",
                     s->path, what, id, n, r, c);
    else if (r != rows || c != cols)
        rc = rv_fail(err, "store %s: %s of item 0x%016" PRIx64 " is %ux%u, not %ux%u", s->path,
                     what, id, r, c, rows, cols);
    else {
        memcpy(out, p + VEC_HEADER, 4 * (size_t)r * c);
        if (version) *version = ver;
    }
    rocksdb_pinnableslice_destroy(v);
    return rc;
}

int mem_get_vectors(mem_store *s, uint64_t id, float *key, uint32_t dk, uint32_t *key_version,
                    float *value, uint32_t c, uint32_t d, uint32_t *value_version, char *err) {
    int found = 1, rc;
    if (key) {
        if ((rc = vec_read(s, CF_KEYS, id, "key", key, 1, dk, key_version, err)) < 0) return -1;
        found &= rc;
    }
    if (value) {
        if ((rc = vec_read(s, CF_VALUES, id, "value", value, c, d, value_version, err)) < 0)
            return -1;
        found &= rc;
    }
    return found;
}

/* The header of a vector record: presence, version and shape, without the floats. */
static int vec_info(mem_store *s, int cf, uint64_t id, const char *what, mem_vector_info *info,
                    char *err) {
    memset(info, 0, sizeof *info);
    char k[8];
    put_be64(k, id);
    rocksdb_pinnableslice_t *v;
    int rc = db_get(s, cf, k, 8, &v, err);
    if (rc <= 0) return rc;
    size_t n;
    const char *p = rocksdb_pinnableslice_value(v, &n);
    if (n < VEC_HEADER || n != VEC_HEADER + 4 * (uint64_t)get_be32(p + 4) * get_be32(p + 8)) {
        rc = rv_fail(err, "store %s: %s of item 0x%016" PRIx64 " is corrupt (%zu bytes)", s->path,
                     what, id, n);
    } else {
        info->present = 1;
        info->version = get_be32(p);
        info->rows = get_be32(p + 4);
        info->cols = get_be32(p + 8);
        rc = 0;
    }
    rocksdb_pinnableslice_destroy(v);
    return rc;
}

int mem_get_vector_info(mem_store *s, uint64_t id, mem_vector_info *key, mem_vector_info *value,
                        char *err) {
    if (key && vec_info(s, CF_KEYS, id, "key", key, err) < 0) return -1;
    if (value && vec_info(s, CF_VALUES, id, "value", value, err) < 0) return -1;
    return 0;
}

/* ---- iteration ---- */

struct mem_iter {
    mem_store *s;
    rocksdb_iterator_t *it;
};

int mem_iter_new(mem_store *s, uint64_t start_id, mem_iter **out, char *err) {
    mem_iter *it = calloc(1, sizeof *it);
    if (!it) return rv_fail(err, "store %s: out of memory", s->path);
    char k[8];
    put_be64(k, start_id);
    it->s = s;
    it->it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_ITEMS]);
    rocksdb_iter_seek(it->it, k, 8);
    *out = it;
    return 0;
}

int mem_iter_next(mem_iter *it, uint64_t *id, Reveal__KnowledgeItem **item, char *err) {
    if (!rocksdb_iter_valid(it->it)) {
        char *e = NULL;
        rocksdb_iter_get_error(it->it, &e);
        return e ? fail_rocks(err, it->s->path, "iterating items", e) : 0;
    }
    size_t kn, vn;
    const char *k = rocksdb_iter_key(it->it, &kn);
    const char *v = rocksdb_iter_value(it->it, &vn);
    int rc = 1;
    /* A bad entry is reported and stepped over, so a caller may go on past it. */
    if (kn != 8) {
        rc = rv_fail(err, "store %s: items holds a key of %zu bytes (ids are 8)", it->s->path, kn);
    } else {
        *id = get_be64(k);
        if (rv_item_decode((const uint8_t *)v, vn, item, err))
            rc = rv_fail_wrap(err, "store %s: item 0x%016" PRIx64, it->s->path, *id);
    }
    rocksdb_iter_next(it->it);
    return rc;
}

void mem_iter_free(mem_iter *it) {
    if (!it) return;
    rocksdb_iter_destroy(it->it);
    free(it);
}

/* ---- stats and checkpoints ---- */

static uint64_t wal_bytes(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    uint64_t total = 0;
    struct dirent *e;
    char path[PATH_MAX + 256];
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".log")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) == 0) total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

int mem_get_stats(mem_store *s, mem_stats *st, char *err) {
    memset(st, 0, sizeof *st);
    st->items = s->counters[CNT_ITEMS];
    st->deleted = s->counters[CNT_DELETED];
    st->with_key = s->counters[CNT_WITH_KEY];
    st->with_value = s->counters[CNT_WITH_VALUE];
    st->sequence = rocksdb_get_latest_sequence_number(s->db);
    for (int i = 0; i < s->n_all_cf; i++) {
        uint64_t sst = 0;
        if (rocksdb_property_int_cf(s->db, s->all_cf[i], "rocksdb.live-sst-files-size", &sst))
            return rv_fail(err, "store %s: RocksDB did not report the size of family %s", s->path,
                           i < CF_COUNT ? cf_names[i] : "(other)");
        st->bytes_on_disk += sst;
    }
    st->bytes_on_disk += wal_bytes(s->path);
    return 0;
}

int mem_checkpoint(mem_store *s, const char *dest, char *err) {
    char tmp[PATH_MAX], parent[PATH_MAX], *e = NULL;
    struct stat st;
    if (stat(dest, &st) == 0) return rv_fail(err, "checkpoint destination %s already exists", dest);
    if (errno != ENOENT)
        return rv_fail(err, "checkpoint destination %s: %s", dest, strerror(errno));
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld", dest, (long)getpid()) >= (int)sizeof tmp)
        return rv_fail(err, "checkpoint destination %s: path too long", dest);
    snprintf(parent, sizeof parent, "%s", dest);
    char *slash = strrchr(parent, '/');
    if (!slash)
        snprintf(parent, sizeof parent, ".");
    else if (slash == parent)
        parent[1] = 0;
    else
        *slash = 0;
    if (rv_mkdirs(parent, err) || rv_remove_tree(tmp, err))
        return rv_fail_wrap(err, "checkpoint of store %s", s->path);

    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(s->db, &e);
    if (e) return fail_rocks(err, s->path, "checkpoint", e);
    /* log_size_for_flush = 0: flush the memtables first, so the copy needs no WAL replay. */
    rocksdb_checkpoint_create(cp, tmp, 0, &e);
    rocksdb_checkpoint_object_destroy(cp);
    if (e) {
        rv_remove_tree(tmp, NULL);
        return fail_rocks(err, s->path, "checkpoint", e);
    }
    if (rename(tmp, dest) != 0) {
        rv_fail(err, "checkpoint of store %s: rename %s to %s: %s", s->path, tmp, dest,
                strerror(errno));
        rv_remove_tree(tmp, NULL);
        return -1;
    }
    return rv_fsync_dir(parent, err);
}
