/* tests/test_store_api.c — the memstore API end to end: every item type round-trips through a
 * store, iteration follows id order, deletes, logical keys, vectors with encoder versions,
 * exact counters across a reopen, read-only opens, content ids and encoder text. */
#include "test_store_util.h"

#include <inttypes.h>
#include <math.h>

static void check_same_item(const Reveal__KnowledgeItem *a, const Reveal__KnowledgeItem *b) {
    CHECK(a->type == b->type);
    const char *fa[] = {a->text,    a->title,    a->question, a->answer,
                        a->subject, a->relation, a->object,   a->key};
    const char *fb[] = {b->text,    b->title,    b->question, b->answer,
                        b->subject, b->relation, b->object,   b->key};
    for (int i = 0; i < 8; i++)
        CHECKF(!strcmp(fa[i] ? fa[i] : "", fb[i] ? fb[i] : ""), "field %d: '%s' vs '%s'", i, fa[i],
               fb[i]);
    CHECK(!a->image == !b->image);
    if (a->image && b->image)
        CHECK(a->image->pixels.len == b->image->pixels.len &&
              !memcmp(a->image->pixels.data, b->image->pixels.data, a->image->pixels.len));
    CHECK(!a->provenance == !b->provenance);
    if (a->provenance && b->provenance)
        CHECK(!strcmp(a->provenance->file, b->provenance->file) &&
              a->provenance->line == b->provenance->line);
}

/* One store per source type: put, get back, reopen, get again. */
static void test_types(const char *root) {
    char err[RV_ERR_MAX], dir[512];
    static uint8_t px[4][8 * 8 * 3];
    Reveal__Image im[4];
    Reveal__Provenance prov = REVEAL__PROVENANCE__INIT;
    prov.file = "facts.jsonl";
    prov.line = 42;
    Reveal__KnowledgeItem items[4];
    for (int i = 0; i < 4; i++) {
        im[i] = image_of(8, px[i], (unsigned)i);
        Reveal__KnowledgeItem it = REVEAL__KNOWLEDGE_ITEM__INIT;
        items[i] = it;
    }
    items[0].type = REVEAL__SOURCE_TYPE__IMAGE_TEXT;
    items[0].text = "flag of Nepal — नेपाल";
    items[0].image = &im[0];
    items[0].key = "img/np.png";
    items[1].type = REVEAL__SOURCE_TYPE__QA;
    items[1].question = "What is the capital of Nepal?";
    items[1].answer = "Kathmandu";
    items[1].provenance = &prov;
    items[2] = kg_item("Nepal", "capital", "Kathmandu");
    items[2].image = &im[2];
    items[3].type = REVEAL__SOURCE_TYPE__TEXT;
    items[3].title = "Nepal — Climate";
    items[3].text = "Five climatic zones, broadly corresponding to altitude.";

    for (int i = 0; i < 4; i++) {
        snprintf(dir, sizeof dir, "%s/type%d", root, i);
        mem_config cfg = config_of(items[i].type, rv_source_type_name(items[i].type), 8);
        mem_store *s = NULL;
        REQUIRE(mem_open_or_create(dir, &cfg, &s, err) == 0);
        CHECK(!strcmp(mem_path(s), dir));
        CHECK(mem_get_config(s)->type == items[i].type);
        uint64_t id;
        put_all(s, &items[i], 1, MEM_PUT_ADDED, &id);
        CHECK(id == mem_item_id(&items[i]));
        for (int round = 0; round < 2; round++) {
            Reveal__KnowledgeItem *got = NULL;
            CHECKF(mem_get_item(s, id, &got, err) == 1, "type %d: %s", i, err);
            if (got) check_same_item(&items[i], got);
            reveal__knowledge_item__free_unpacked(got, NULL);
            mem_close(s);
            s = NULL;
            /* the second round reads through a read-only open */
            REQUIRE(mem_open(dir, 1, &s, err) == 0);
        }
        CHECK(mem_get_config(s)->image_size == 8);
        mem_close(s);
    }
}

/* Iteration in id order from a start id, deletes, counters and logical keys. */
static void test_iterate_delete(const char *root) {
    char err[RV_ERR_MAX], dir[512], subj[64][16];
    snprintf(dir, sizeof dir, "%s/iter", root);
    mem_config cfg = config_of(REVEAL__SOURCE_TYPE__KG_TRIPLE, "kg", 32);
    mem_store *s;
    REQUIRE(mem_open_or_create(dir, &cfg, &s, err) == 0);
    enum { N = 64 };
    Reveal__KnowledgeItem items[N];
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        snprintf(subj[i], sizeof subj[i], "entity %d", i);
        items[i] = kg_item(subj[i], "instance of", "thing");
    }
    items[5].key = "entity five";
    put_all(s, items, N, MEM_PUT_ADDED, ids);

    mem_iter *it;
    REQUIRE(mem_iter_new(s, 0, &it, err) == 0);
    uint64_t id, prev = 0, min_id = UINT64_MAX, second = 0;
    Reveal__KnowledgeItem *item;
    int n = 0, rc;
    while ((rc = mem_iter_next(it, &id, &item, err)) == 1) {
        CHECKF(n == 0 || id > prev, "ids out of order at %d", n);
        CHECK(id == mem_item_id(item));
        if (n == 1) second = id;
        if (id < min_id) min_id = id;
        prev = id;
        n++;
        reveal__knowledge_item__free_unpacked(item, NULL);
    }
    CHECKF(rc == 0, "iteration: %s", err);
    CHECK(n == N);
    mem_iter_free(it);
    /* starting at an id skips the smaller ones */
    REQUIRE(mem_iter_new(s, min_id + 1, &it, err) == 0);
    CHECK(mem_iter_next(it, &id, &item, err) == 1 && id == second);
    reveal__knowledge_item__free_unpacked(item, NULL);
    mem_iter_free(it);

    /* logical keys: an explicit one, and the content id in hex by default */
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, ids[7]);
    CHECK(mem_lookup_key(s, "entity five", &id, err) == 1 && id == ids[5]);
    CHECK(mem_lookup_key(s, hex, &id, err) == 1 && id == ids[7]);
    CHECK(mem_lookup_key(s, "no such fact", &id, err) == 0);

    /* vectors on an item that is then deleted: the counters follow */
    float key[4] = {1, 2, 3, 4}, value[6] = {1, 2, 3, 4, 5, 6};
    CHECK(mem_put_vectors(s, ids[5], 1, key, 4, value, 2, 3, err) == 0);
    CHECK(mem_put_vectors(s, ids[6], 1, key, 4, NULL, 0, 0, err) == 0);
    mem_stats st;
    CHECK(mem_get_stats(s, &st, err) == 0);
    CHECK(st.items == N && st.deleted == 0 && st.with_key == 2 && st.with_value == 1);

    mem_batch *b = mem_batch_new(s);
    CHECK(mem_batch_delete(b, ids[5], err) == 0);
    CHECK(mem_batch_delete(b, ids[7], err) == 0);
    CHECK(mem_batch_count(b) == 2);
    /* deleting what is gone, in the batch or in the store, is an error naming the id */
    CHECK(mem_batch_delete(b, ids[5], err) == -1);
    CHECKF(strstr(err, "no item") != NULL, "got '%s'", err);
    CHECK(mem_batch_delete(b, 12345, err) == -1);
    CHECKF(strstr(err, "0x0000000000003039") != NULL, "got '%s'", err);
    CHECK(mem_batch_commit(b, 1, err) == 0);
    mem_batch_free(b);

    CHECK(mem_get_item(s, ids[5], &item, err) == 0);
    CHECK(mem_lookup_key(s, "entity five", &id, err) == 0);
    CHECK(mem_lookup_key(s, hex, &id, err) == 0);
    CHECK(mem_get_vectors(s, ids[5], key, 4, NULL, NULL, 0, 0, NULL, err) == 0);
    CHECK(mem_get_stats(s, &st, err) == 0);
    CHECK(st.items == N - 2 && st.deleted == 2 && st.with_key == 1 && st.with_value == 0);
    CHECK(st.bytes_on_disk > 0);
    mem_close(s);

    /* counters survive a reopen, and match what iteration finds */
    REQUIRE(mem_open(dir, 0, &s, err) == 0);
    CHECK(mem_get_stats(s, &st, err) == 0);
    CHECK(st.items == N - 2 && st.deleted == 2 && st.with_key == 1);
    REQUIRE(mem_iter_new(s, 0, &it, err) == 0);
    n = 0;
    while (mem_iter_next(it, &id, &item, err) == 1) {
        n++;
        reveal__knowledge_item__free_unpacked(item, NULL);
    }
    mem_iter_free(it);
    CHECK(n == N - 2);
    mem_close(s);

    /* a read-only store refuses writes with a clear error */
    REQUIRE(mem_open(dir, 1, &s, err) == 0);
    b = mem_batch_new(s);
    uint64_t nid;
    int out;
    Reveal__KnowledgeItem extra = kg_item("a", "b", "c");
    CHECK(mem_batch_put_item(b, &extra, &nid, &out, err) == -1);
    CHECKF(strstr(err, "read-only") != NULL, "got '%s'", err);
    mem_batch_free(b);
    CHECK(mem_put_vectors(s, ids[6], 2, key, 4, NULL, 0, 0, err) == -1);
    CHECKF(strstr(err, "read-only") != NULL, "got '%s'", err);
    mem_close(s);
}

/* Keys and values with encoder versions, shapes checked. */
static void test_vectors(const char *root) {
    char err[RV_ERR_MAX], dir[512];
    snprintf(dir, sizeof dir, "%s/vec", root);
    mem_config cfg = config_of(REVEAL__SOURCE_TYPE__KG_TRIPLE, "kg", 32);
    mem_store *s;
    REQUIRE(mem_open_or_create(dir, &cfg, &s, err) == 0);
    Reveal__KnowledgeItem item = kg_item("Nepal", "capital", "Kathmandu");
    uint64_t id;
    put_all(s, &item, 1, MEM_PUT_ADDED, &id);

    enum { DK = 8, C = 3, D = 5 };
    float key[DK], value[C * D], kout[DK], vout[C * D];
    for (int i = 0; i < DK; i++) key[i] = 0.5f * (float)i - 1.0f;
    for (int i = 0; i < C * D; i++) value[i] = 0.25f * (float)i;
    uint32_t kv = 0, vv = 0;
    CHECK(mem_get_vectors(s, id, kout, DK, &kv, vout, C, D, &vv, err) == 0);
    CHECK(mem_put_vectors(s, id, 3, key, DK, NULL, 0, 0, err) == 0);
    /* only the key exists: asking for both says absent, asking for the key finds it */
    CHECK(mem_get_vectors(s, id, kout, DK, &kv, vout, C, D, &vv, err) == 0);
    CHECK(mem_get_vectors(s, id, kout, DK, &kv, NULL, 0, 0, NULL, err) == 1);
    CHECK(kv == 3 && !memcmp(kout, key, sizeof key));
    CHECK(mem_put_vectors(s, id, 4, NULL, 0, value, C, D, err) == 0);
    CHECK(mem_get_vectors(s, id, kout, DK, &kv, vout, C, D, &vv, err) == 1);
    CHECK(kv == 3 && vv == 4 && !memcmp(vout, value, sizeof value));
    /* a refresh overwrites with a newer version; the counters do not double count */
    key[0] = 9;
    CHECK(mem_put_vectors(s, id, 5, key, DK, value, C, D, err) == 0);
    CHECK(mem_get_vectors(s, id, kout, DK, &kv, vout, C, D, &vv, err) == 1);
    CHECK(kv == 5 && vv == 5 && kout[0] == 9);
    mem_stats st;
    CHECK(mem_get_stats(s, &st, err) == 0 && st.with_key == 1 && st.with_value == 1);

    /* the wrong shape is an error naming both shapes */
    CHECK(mem_get_vectors(s, id, kout, DK - 1, NULL, NULL, 0, 0, NULL, err) == -1);
    CHECKF(strstr(err, "is 1x8, not 1x7") != NULL, "got '%s'", err);
    CHECK(mem_get_vectors(s, id, NULL, 0, NULL, vout, D, C, NULL, err) == -1);
    CHECKF(strstr(err, "is 3x5, not 5x3") != NULL, "got '%s'", err);
    /* vectors need a live item, finite values and sane sizes */
    CHECK(mem_put_vectors(s, id + 1, 1, key, DK, NULL, 0, 0, err) == -1);
    CHECKF(strstr(err, "no item") != NULL, "got '%s'", err);
    key[2] = NAN;
    CHECK(mem_put_vectors(s, id, 1, key, DK, NULL, 0, 0, err) == -1);
    CHECKF(strstr(err, "non-finite value at 2") != NULL, "got '%s'", err);
    CHECK(mem_put_vectors(s, id, 1, NULL, 0, value, 0, D, err) == -1);
    CHECKF(strstr(err, "value of item") != NULL, "got '%s'", err);
    CHECK(mem_put_vectors(s, id, 1, NULL, 0, NULL, 0, 0, err) == -1);
    mem_close(s);
}

/* Content ids and the text an encoder reads. */
static void test_ids_and_text(void) {
    Reveal__KnowledgeItem a = kg_item("ab", "c", "d"), b = kg_item("a", "bc", "d");
    CHECK(mem_item_id(&a) != mem_item_id(&b));
    Reveal__KnowledgeItem a2 = kg_item("ab", "c", "d");
    Reveal__Provenance prov = REVEAL__PROVENANCE__INIT;
    prov.file = "x.tsv";
    a2.provenance = &prov;
    a2.key = "another key";
    CHECK(mem_item_id(&a) == mem_item_id(&a2)); /* neither provenance nor key counts */
    Reveal__KnowledgeItem t = REVEAL__KNOWLEDGE_ITEM__INIT;
    t.type = REVEAL__SOURCE_TYPE__TEXT;
    t.text = "ab";
    Reveal__KnowledgeItem it = t;
    it.type = REVEAL__SOURCE_TYPE__IMAGE_TEXT;
    CHECK(mem_item_id(&t) != mem_item_id(&it)); /* the type counts */
    uint8_t px1[4 * 4 * 3], px2[4 * 4 * 3];
    Reveal__Image i1 = image_of(4, px1, 1), i2 = image_of(4, px2, 1);
    it.image = &i1;
    uint64_t with1 = mem_item_id(&it);
    it.image = &i2;
    CHECK(mem_item_id(&it) == with1);
    px2[5] ^= 1;
    CHECK(mem_item_id(&it) != with1); /* one pixel counts */

    char buf[64];
    CHECK(mem_item_text(&a, buf, sizeof buf) == 6 && !strcmp(buf, "ab c d"));
    Reveal__KnowledgeItem qa = REVEAL__KNOWLEDGE_ITEM__INIT;
    qa.type = REVEAL__SOURCE_TYPE__QA;
    qa.question = "Capital of Nepal?";
    qa.answer = "Kathmandu";
    mem_item_text(&qa, buf, sizeof buf);
    CHECK(!strcmp(buf, "Capital of Nepal? Kathmandu"));
    t.title = "Nepal";
    t.text = "A country.";
    mem_item_text(&t, buf, sizeof buf);
    CHECK(!strcmp(buf, "Nepal: A country."));
    t.title = "";
    mem_item_text(&t, buf, sizeof buf);
    CHECK(!strcmp(buf, "A country."));
    it.text = "flag";
    mem_item_text(&it, buf, sizeof buf);
    CHECK(!strcmp(buf, "flag"));
    /* truncation keeps whole UTF-8 characters: "aé" cut at 2 bytes is "a" */
    Reveal__KnowledgeItem u = kg_item("a\xc3\xa9", "x", "y");
    CHECK(mem_item_text(&u, buf, 3) == 1 && !strcmp(buf, "a"));
    CHECK(mem_item_text(&u, buf, 4) == 3 && !strcmp(buf, "a\xc3\xa9"));
    CHECK(mem_item_text(&u, buf, 0) == 0);
}

int main(void) {
    char root[64];
    tmp_dir_make(root, sizeof root, "store_api");
    test_types(root);
    test_iterate_delete(root);
    test_vectors(root);
    test_ids_and_text();
    tmp_dir_remove(root);
    return check_report("store_api");
}
