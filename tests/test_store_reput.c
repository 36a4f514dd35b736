/* tests/test_store_reput.c — putting what a store already holds writes nothing: every
 * outcome is MEM_PUT_UNCHANGED and RocksDB's sequence number does not move, in the same
 * process, after a reopen, and when the items come back in another order. */
#include "test_store_util.h"

enum { N = 500 };

static char subj[N][24];

static void make_items(Reveal__KnowledgeItem *items, uint8_t (*px)[16 * 16 * 3],
                       Reveal__Image *im) {
    for (int i = 0; i < N; i++) {
        snprintf(subj[i], sizeof subj[i], "entity %d", i);
        im[i] = image_of(16, px[i], (unsigned)i);
        Reveal__KnowledgeItem it = REVEAL__KNOWLEDGE_ITEM__INIT;
        it.type = REVEAL__SOURCE_TYPE__IMAGE_TEXT;
        it.text = subj[i];
        it.image = &im[i];
        if (i % 2) it.key = subj[i]; /* half with an explicit key, half with the default */
        items[i] = it;
    }
}

static uint64_t sequence(mem_store *s) {
    char err[RV_ERR_MAX];
    mem_stats st;
    REQUIRE(mem_get_stats(s, &st, err) == 0);
    return st.sequence;
}

int main(void) {
    char err[RV_ERR_MAX], dir[64];
    tmp_dir_make(dir, sizeof dir, "store_reput");
    static Reveal__KnowledgeItem items[N], reversed[N];
    static uint8_t px[N][16 * 16 * 3];
    static Reveal__Image im[N];
    make_items(items, px, im);
    for (int i = 0; i < N; i++) reversed[i] = items[N - 1 - i];

    mem_config cfg = config_of(REVEAL__SOURCE_TYPE__IMAGE_TEXT, "wit", 16);
    mem_store *s;
    REQUIRE(mem_open_or_create(dir, &cfg, &s, err) == 0);
    uint64_t seq0 = sequence(s);
    put_all(s, items, N, MEM_PUT_ADDED, NULL);
    uint64_t seq1 = sequence(s);
    CHECKF(seq1 > seq0, "sequence %llu after adding, %llu before", (unsigned long long)seq1,
           (unsigned long long)seq0);

    /* the same items again, in the same process */
    mem_batch *b = mem_batch_new(s);
    for (int i = 0; i < N; i++) {
        uint64_t id;
        int out = -1;
        CHECK(mem_batch_put_item(b, &items[i], &id, &out, err) == 0);
        CHECKF(out == MEM_PUT_UNCHANGED, "item %d: outcome %d", i, out);
    }
    CHECK(mem_batch_count(b) == 0);
    CHECK(mem_batch_commit(b, 1, err) == 0);
    mem_batch_free(b);
    CHECKF(sequence(s) == seq1, "sequence moved from %llu to %llu on a re-put",
           (unsigned long long)seq1, (unsigned long long)sequence(s));
    mem_close(s);

    /* after a reopen, in reverse order, through mem_open_or_create as an ingest would */
    REQUIRE(mem_open_or_create(dir, &cfg, &s, err) == 0);
    CHECK(sequence(s) == seq1);
    put_all(s, reversed, N, MEM_PUT_UNCHANGED, NULL);
    CHECK(sequence(s) == seq1);
    mem_stats st;
    CHECK(mem_get_stats(s, &st, err) == 0 && st.items == N && st.deleted == 0);

    /* provenance is not content: the same item read from another line is unchanged too */
    Reveal__Provenance prov = REVEAL__PROVENANCE__INIT;
    prov.file = "again.jsonl";
    prov.line = 7;
    Reveal__KnowledgeItem moved = items[3];
    moved.provenance = &prov;
    put_all(s, &moved, 1, MEM_PUT_UNCHANGED, NULL);
    CHECK(sequence(s) == seq1);
    mem_close(s);
    tmp_dir_remove(dir);
    return check_report("store_reput");
}
