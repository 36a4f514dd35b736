/* tests/test_store_edit.c — edits by logical key (the new item replaces the old one, its key
 * and value), the same id or logical key twice inside one batch, and a batch staged on reads
 * that another write made stale. */
#include "test_store_util.h"

static char err[RV_ERR_MAX];

static int put_one(mem_batch *b, const Reveal__KnowledgeItem *item, uint64_t *id) {
    int out = -1;
    if (mem_batch_put_item(b, item, id, &out, err)) {
        fprintf(stderr, "put: %s\n", err);
        return -1;
    }
    return out;
}

static mem_stats stats(mem_store *s) {
    mem_stats st;
    REQUIRE(mem_get_stats(s, &st, err) == 0);
    return st;
}

/* Edits across commits: a changed fact replaces the old item, key and value included. */
static void test_edit(mem_store *s) {
    Reveal__KnowledgeItem old = kg_item("Nepal", "capital", "Pokhara");
    Reveal__KnowledgeItem fixed = kg_item("Nepal", "capital", "Kathmandu");
    old.key = fixed.key = "Nepal|capital";
    uint64_t old_id, new_id, id;
    put_all(s, &old, 1, MEM_PUT_ADDED, &old_id);
    float key[4] = {1, 0, 0, 0}, value[4] = {1, 2, 3, 4};
    CHECK(mem_put_vectors(s, old_id, 1, key, 4, value, 2, 2, err) == 0);
    mem_stats before = stats(s);

    put_all(s, &fixed, 1, MEM_PUT_REPLACED, &new_id);
    CHECK(new_id != old_id);
    CHECK(mem_lookup_key(s, "Nepal|capital", &id, err) == 1 && id == new_id);
    Reveal__KnowledgeItem *got = NULL;
    CHECK(mem_get_item(s, old_id, &got, err) == 0);
    CHECK(mem_get_item(s, new_id, &got, err) == 1 && !strcmp(got->object, "Kathmandu"));
    reveal__knowledge_item__free_unpacked(got, NULL);
    CHECK(mem_get_vectors(s, old_id, key, 4, NULL, NULL, 0, 0, NULL, err) == 0);
    CHECK(mem_get_vectors(s, old_id, NULL, 0, NULL, value, 2, 2, NULL, err) == 0);
    mem_stats after = stats(s);
    CHECK(after.items == before.items && after.deleted == before.deleted + 1);
    CHECK(after.with_key == before.with_key - 1 && after.with_value == before.with_value - 1);

    /* putting the edited item again is unchanged; the old one comes back as an edit */
    put_all(s, &fixed, 1, MEM_PUT_UNCHANGED, NULL);
    put_all(s, &old, 1, MEM_PUT_REPLACED, &id);
    CHECK(id == old_id && mem_lookup_key(s, "Nepal|capital", &id, err) == 1 && id == old_id);
    put_all(s, &fixed, 1, MEM_PUT_REPLACED, NULL);

    /* An edit whose new content is already stored under another key retires the old item;
     * the content keeps the key it was stored under. */
    Reveal__KnowledgeItem a = kg_item("Peru", "capital", "Lima");
    Reveal__KnowledgeItem b = kg_item("Chile", "capital", "Santiago");
    a.key = "fact A";
    b.key = "fact B";
    uint64_t ida, idb;
    put_all(s, &a, 1, MEM_PUT_ADDED, &ida);
    put_all(s, &b, 1, MEM_PUT_ADDED, &idb);
    Reveal__KnowledgeItem a_as_b = a;
    a_as_b.key = "fact B";
    before = stats(s);
    put_all(s, &a_as_b, 1, MEM_PUT_REPLACED, &id);
    CHECK(id == ida);
    CHECK(mem_get_item(s, idb, &got, err) == 0);
    CHECK(mem_lookup_key(s, "fact B", &id, err) == 0);
    CHECK(mem_lookup_key(s, "fact A", &id, err) == 1 && id == ida);
    after = stats(s);
    CHECK(after.items == before.items - 1 && after.deleted == before.deleted + 1);
    put_all(s, &a_as_b, 1, MEM_PUT_UNCHANGED, NULL); /* and a re-run changes nothing */
}

/* The same id and the same logical key twice inside one batch. */
static void test_batch_duplicates(mem_store *s) {
    mem_stats before = stats(s);
    Reveal__KnowledgeItem x = kg_item("Mali", "capital", "Timbuktu");
    Reveal__KnowledgeItem y = kg_item("Mali", "capital", "Bamako");
    Reveal__KnowledgeItem z = kg_item("Mali", "currency", "CFA franc");
    x.key = y.key = "Mali|capital";
    uint64_t idx, idy, idz, id;
    mem_batch *b = mem_batch_new(s);
    CHECK(put_one(b, &x, &idx) == MEM_PUT_ADDED);
    CHECK(put_one(b, &x, &id) == MEM_PUT_UNCHANGED && id == idx);
    CHECK(put_one(b, &y, &idy) == MEM_PUT_REPLACED);
    CHECK(put_one(b, &y, &id) == MEM_PUT_UNCHANGED);
    CHECK(put_one(b, &z, &idz) == MEM_PUT_ADDED);
    /* deleted and put again inside the batch: added anew */
    CHECK(mem_batch_delete(b, idz, err) == 0);
    CHECK(mem_batch_delete(b, idz, err) == -1);
    CHECK(put_one(b, &z, &id) == MEM_PUT_ADDED && id == idz);
    /* and x again: it replaces y, which was staged in this very batch */
    CHECK(put_one(b, &x, &id) == MEM_PUT_REPLACED && id == idx);
    CHECK(mem_batch_count(b) == 8); /* 5 puts that staged, 1 delete, 2 removals by edits */
    CHECK(mem_batch_commit(b, 1, err) == 0);
    mem_batch_free(b);

    mem_stats after = stats(s);
    CHECKF(after.items == before.items + 2, "items %llu, expected %llu",
           (unsigned long long)after.items, (unsigned long long)before.items + 2);
    CHECK(after.deleted == before.deleted + 3); /* x (by y), z (deleted), y (by x) */
    Reveal__KnowledgeItem *got;
    CHECK(mem_get_item(s, idy, &got, err) == 0);
    CHECK(mem_get_item(s, idx, &got, err) == 1);
    reveal__knowledge_item__free_unpacked(got, NULL);
    CHECK(mem_lookup_key(s, "Mali|capital", &id, err) == 1 && id == idx);

    /* the counters equal what iteration finds */
    mem_iter *it;
    REQUIRE(mem_iter_new(s, 0, &it, err) == 0);
    uint64_t n = 0;
    while (mem_iter_next(it, &id, &got, err) == 1) {
        n++;
        reveal__knowledge_item__free_unpacked(got, NULL);
    }
    mem_iter_free(it);
    CHECK(n == after.items);
}

/* A batch staged before another write committed is refused, then works once restaged. */
static void test_stale_batch(mem_store *s) {
    Reveal__KnowledgeItem p = kg_item("Laos", "capital", "Vientiane");
    Reveal__KnowledgeItem q = kg_item("Laos", "capital", "Luang Prabang");
    p.key = q.key = "Laos|capital";
    uint64_t id;
    mem_batch *first = mem_batch_new(s), *second = mem_batch_new(s);
    CHECK(put_one(first, &p, &id) == MEM_PUT_ADDED);
    CHECK(put_one(second, &q, &id) == MEM_PUT_ADDED); /* did not see p */
    CHECK(mem_batch_commit(first, 0, err) == 0);
    CHECK(mem_batch_commit(second, 0, err) == -1);
    CHECKF(strstr(err, "stage it again") != NULL, "got '%s'", err);
    mem_batch_free(second);
    second = mem_batch_new(s);
    CHECK(put_one(second, &q, &id) == MEM_PUT_REPLACED);
    CHECK(mem_batch_commit(second, 0, err) == 0);
    /* a batch stays usable after its commit */
    CHECK(put_one(first, &p, &id) == MEM_PUT_REPLACED);
    CHECK(mem_batch_commit(first, 0, err) == 0);
    mem_batch_free(first);
    mem_batch_free(second);
}

/* Items that do not fit the store are refused with the reason. */
static void test_refused(mem_store *s) {
    mem_batch *b = mem_batch_new(s);
    uint64_t id;
    int out;
    Reveal__KnowledgeItem qa = REVEAL__KNOWLEDGE_ITEM__INIT;
    qa.type = REVEAL__SOURCE_TYPE__QA;
    qa.question = "q";
    qa.answer = "a";
    CHECK(mem_batch_put_item(b, &qa, &id, &out, err) == -1);
    CHECKF(strstr(err, "item is qa") && strstr(err, "holds kg_triple items"), "got '%s'", err);
    uint8_t px[8 * 8 * 3];
    Reveal__Image im = image_of(8, px, 0);
    Reveal__KnowledgeItem big = kg_item("a", "b", "c");
    big.image = &im;
    CHECK(mem_batch_put_item(b, &big, &id, &out, err) == -1);
    CHECKF(strstr(err, "image is 8x8") && strstr(err, "holds 32x32 images"), "got '%s'", err);
    Reveal__KnowledgeItem empty = kg_item("a", "", "c");
    CHECK(mem_batch_put_item(b, &empty, &id, &out, err) == -1);
    CHECKF(strstr(err, "kg_triple item has no relation") != NULL, "got '%s'", err);
    CHECK(mem_batch_count(b) == 0);
    mem_batch_free(b);
}

int main(void) {
    char dir[64];
    tmp_dir_make(dir, sizeof dir, "store_edit");
    mem_config cfg = config_of(REVEAL__SOURCE_TYPE__KG_TRIPLE, "kg", 32);
    mem_store *s;
    REQUIRE(mem_open_or_create(dir, &cfg, &s, err) == 0);
    test_edit(s);
    test_batch_duplicates(s);
    test_stale_batch(s);
    test_refused(s);
    mem_close(s);
    tmp_dir_remove(dir);
    return check_report("store_edit");
}
