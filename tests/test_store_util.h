/* tests/test_store_util.h — items, temporary stores and raw RocksDB access shared by the
 * store_ tests. */
#ifndef TEST_STORE_UTIL_H
#define TEST_STORE_UTIL_H

#include "check.h"
#include "memstore.h"
#include "proto.h"
#include "rv.h"

#include <rocksdb/c.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fresh empty directory under /tmp; removed by tmp_dir_remove. */
static inline void tmp_dir_make(char *dir, size_t cap, const char *tag) {
    snprintf(dir, cap, "/tmp/rv_%s_XXXXXX", tag);
    REQUIRE(mkdtemp(dir) != NULL);
}

static inline void tmp_dir_remove(const char *dir) {
    char err[RV_ERR_MAX];
    if (rv_remove_tree(dir, err)) fprintf(stderr, "cleanup: %s\n", err);
}

static inline mem_config config_of(Reveal__SourceType type, const char *name, uint32_t image) {
    mem_config c;
    memset(&c, 0, sizeof c);
    c.type = type;
    snprintf(c.name, sizeof c.name, "%s", name);
    c.image_size = image;
    return c;
}

static inline Reveal__KnowledgeItem kg_item(const char *s, const char *r, const char *o) {
    Reveal__KnowledgeItem it = REVEAL__KNOWLEDGE_ITEM__INIT;
    it.type = REVEAL__SOURCE_TYPE__KG_TRIPLE;
    it.subject = (char *)s;
    it.relation = (char *)r;
    it.object = (char *)o;
    return it;
}

/* An image of side n whose pixels follow a seed, owned by the caller's buffer. */
static inline Reveal__Image image_of(uint32_t n, uint8_t *pixels, unsigned seed) {
    Reveal__Image im = REVEAL__IMAGE__INIT;
    im.width = im.height = n;
    im.channels = 3;
    for (size_t i = 0; i < (size_t)n * n * 3; i++) pixels[i] = (uint8_t)(i * 31u + seed * 7u);
    im.pixels.data = pixels;
    im.pixels.len = (size_t)n * n * 3;
    return im;
}

/* Puts items one batch, checks each outcome, commits with sync. */
static inline void put_all(mem_store *s, Reveal__KnowledgeItem *items, size_t n, int outcome,
                           uint64_t *ids) {
    char err[RV_ERR_MAX];
    mem_batch *b = mem_batch_new(s);
    REQUIRE(b != NULL);
    for (size_t i = 0; i < n; i++) {
        uint64_t id;
        int out = -1;
        int rc = mem_batch_put_item(b, &items[i], &id, &out, err);
        CHECKF(rc == 0, "put %zu: %s", i, err);
        CHECKF(out == outcome, "put %zu: outcome %d, expected %d", i, out, outcome);
        if (ids) ids[i] = id;
    }
    CHECKF(mem_batch_commit(b, 1, err) == 0, "commit: %s", err);
    mem_batch_free(b);
}

/* Raw RocksDB access to a store's families, for writing what the API never would. */
typedef struct {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_column_family_handle_t *cf[6]; /* default items keys values logical meta */
} raw_db;

static inline void raw_open(raw_db *r, const char *dir) {
    static const char *names[6] = {"default", "items", "keys", "values", "logical", "meta"};
    const rocksdb_options_t *o[6];
    char *e = NULL;
    r->opts = rocksdb_options_create();
    for (int i = 0; i < 6; i++) o[i] = r->opts;
    r->db = rocksdb_open_column_families(r->opts, dir, 6, names, o, r->cf, &e);
    if (e) fprintf(stderr, "raw open %s: %s\n", dir, e);
    REQUIRE(e == NULL);
}

static inline void raw_put(raw_db *r, int cf, const void *k, size_t kn, const void *v, size_t vn) {
    char *e = NULL;
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put_cf(r->db, wo, r->cf[cf], k, kn, v, vn, &e);
    rocksdb_writeoptions_destroy(wo);
    REQUIRE(e == NULL);
}

static inline void raw_close(raw_db *r) {
    for (int i = 0; i < 6; i++) rocksdb_column_family_handle_destroy(r->cf[i]);
    rocksdb_close(r->db);
    rocksdb_options_destroy(r->opts);
}

static inline void be64(char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (char)(v & 0xff);
}

#endif
