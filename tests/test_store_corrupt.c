/* tests/test_store_corrupt.c — reading a store while damaged records sit in it (written with
 * RocksDB directly, as a bad disk or another program would): every read names the store and
 * the id and fails cleanly, iteration reports the bad item and goes on past it, and the rest
 * of the store stays readable. */
#include "test_store_util.h"

#include <inttypes.h>

static char err[RV_ERR_MAX];

int main(void) {
    char dir[64];
    tmp_dir_make(dir, sizeof dir, "store_corrupt");
    mem_config cfg = config_of(REVEAL__SOURCE_TYPE__KG_TRIPLE, "kg", 32);
    mem_store *s;
    REQUIRE(mem_open_or_create(dir, &cfg, &s, err) == 0);
    Reveal__KnowledgeItem items[3] = {kg_item("a", "r", "x"), kg_item("b", "r", "y"),
                                      kg_item("c", "r", "z")};
    uint64_t ids[3];
    put_all(s, items, 3, MEM_PUT_ADDED, ids);
    float key[4] = {1, 2, 3, 4};
    CHECK(mem_put_vectors(s, ids[0], 1, key, 4, NULL, 0, 0, err) == 0);
    mem_close(s);

    /* damage: a truncated item, an item of a bad type, a torn key record, a logical key
     * pointing at 3 bytes, an items key that is not 8 bytes */
    uint64_t bad_id = 0x0123456789abcdefull, typed_id = 0x0123456789abcdf0ull;
    char k[8], want[64];
    raw_db r;
    raw_open(&r, dir);
    be64(k, bad_id);
    raw_put(&r, 1, k, 8, "\x0a\xff\xff\x7f", 4); /* field 1 declares 2 MiB, 2 bytes follow */
    be64(k, typed_id);
    raw_put(&r, 1, k, 8, "\x08\x07\x3a\x01x", 5); /* type 7, subject "x" */
    be64(k, ids[0]);
    raw_put(&r, 2, k, 8, "\0\0\0\1\0\0\0\1\0\0\0\4\0\0", 14);
    raw_put(&r, 4, "broken", 6, "abc", 3);
    raw_put(&r, 1, "short", 5, "", 0);
    raw_close(&r);

    REQUIRE(mem_open(dir, 1, &s, err) == 0);
    Reveal__KnowledgeItem *item = NULL;
    CHECK(mem_get_item(s, bad_id, &item, err) == -1 && item == NULL);
    snprintf(want, sizeof want, "item 0x%016" PRIx64 ": KnowledgeItem: not a valid", bad_id);
    CHECKF(strstr(err, want) && strstr(err, dir), "got '%s'", err);
    CHECK(mem_get_item(s, typed_id, &item, err) == -1);
    CHECKF(strstr(err, "0123456789abcdf0: KnowledgeItem: type 7 is not a SourceType"), "got '%s'",
           err);
    float got[4];
    CHECK(mem_get_vectors(s, ids[0], got, 4, NULL, NULL, 0, 0, NULL, err) == -1);
    snprintf(want, sizeof want, "key of item 0x%016" PRIx64 " is corrupt (14 bytes", ids[0]);
    CHECKF(strstr(err, want) != NULL, "got '%s'", err);
    uint64_t id;
    CHECK(mem_lookup_key(s, "broken", &id, err) == -1);
    CHECKF(strstr(err, "maps to 3 bytes") != NULL, "got '%s'", err);

    /* iteration reports each bad record and carries on to the good ones */
    mem_iter *it;
    REQUIRE(mem_iter_new(s, 0, &it, err) == 0);
    int good = 0, bad = 0, rc;
    while ((rc = mem_iter_next(it, &id, &item, err)) != 0) {
        if (rc == 1) {
            good++;
            reveal__knowledge_item__free_unpacked(item, NULL);
        } else {
            bad++;
            CHECKF(strstr(err, "KnowledgeItem") || strstr(err, "key of 5 bytes"), "got '%s'", err);
        }
    }
    mem_iter_free(it);
    CHECK(good == 3 && bad == 3);
    /* the good items stay readable */
    for (int i = 0; i < 3; i++) {
        CHECK(mem_get_item(s, ids[i], &item, err) == 1);
        reveal__knowledge_item__free_unpacked(item, NULL);
    }
    mem_close(s);

    /* a damaged item cannot be replaced or deleted blindly: the error names it */
    REQUIRE(mem_open(dir, 0, &s, err) == 0);
    mem_batch *b = mem_batch_new(s);
    CHECK(mem_batch_delete(b, bad_id, err) == -1);
    CHECKF(strstr(err, "0123456789abcdef") != NULL, "got '%s'", err);
    CHECK(mem_batch_count(b) == 0);
    mem_batch_free(b);

    /* damaged meta counters: the store does not open, and says why */
    mem_close(s);
    raw_open(&r, dir);
    raw_put(&r, 5, "counters", 8, "12345678", 8);
    raw_close(&r);
    CHECK(mem_open(dir, 1, &s, err) == -1);
    CHECKF(strstr(err, "meta counters are 8 bytes, not 32") != NULL, "got '%s'", err);
    tmp_dir_remove(dir);
    return check_report("store_corrupt");
}
