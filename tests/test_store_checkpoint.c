/* tests/test_store_checkpoint.c — a checkpoint is a consistent copy: it reopens with exactly the
 * items, vectors and counters of the moment it was taken, writes after it do not reach it, an
 * existing destination is refused, and no temporary directory is left behind. */
#include "test_store_util.h"

#include <dirent.h>
#include <sys/stat.h>

enum { N = 300 };
static char err[RV_ERR_MAX], subj[2 * N][24];

static uint64_t count_items(mem_store *s) {
    mem_iter *it;
    REQUIRE(mem_iter_new(s, 0, &it, err) == 0);
    uint64_t n = 0, id;
    Reveal__KnowledgeItem *item;
    int rc;
    while ((rc = mem_iter_next(it, &id, &item, err)) == 1) {
        n++;
        reveal__knowledge_item__free_unpacked(item, NULL);
    }
    CHECKF(rc == 0, "iterate: %s", err);
    mem_iter_free(it);
    return n;
}

int main(void) {
    char root[64], dir[256], dest[256], nested[256];
    tmp_dir_make(root, sizeof root, "store_ckpt");
    snprintf(dir, sizeof dir, "%s/live", root);
    snprintf(dest, sizeof dest, "%s/ckpt", root);
    snprintf(nested, sizeof nested, "%s/runs/step_10/kg", root);
    mem_config cfg = config_of(REVEAL__SOURCE_TYPE__KG_TRIPLE, "kg", 32);
    mem_store *s;
    REQUIRE(mem_open_or_create(dir, &cfg, &s, err) == 0);
    static Reveal__KnowledgeItem items[2 * N];
    uint64_t ids[2 * N];
    for (int i = 0; i < 2 * N; i++) {
        snprintf(subj[i], sizeof subj[i], "entity %d", i);
        items[i] = kg_item(subj[i], "part of", "world");
    }
    put_all(s, items, N, MEM_PUT_ADDED, ids);
    float key[16];
    for (int i = 0; i < 16; i++) key[i] = (float)i;
    CHECK(mem_put_vectors(s, ids[0], 7, key, 16, NULL, 0, 0, err) == 0);
    mem_stats at;
    REQUIRE(mem_get_stats(s, &at, err) == 0);

    /* unflushed writes (the memtable) are part of the copy: it is flushed first */
    CHECKF(mem_checkpoint(s, dest, err) == 0, "checkpoint: %s", err);
    CHECKF(mem_checkpoint(s, nested, err) == 0, "checkpoint into new parents: %s", err);
    CHECK(mem_checkpoint(s, dest, err) == -1);
    CHECKF(strstr(err, "already exists") != NULL, "got '%s'", err);

    /* the live store moves on; the copy does not */
    put_all(s, items + N, N, MEM_PUT_ADDED, NULL);
    mem_batch *b = mem_batch_new(s);
    CHECK(mem_batch_delete(b, ids[1], err) == 0);
    CHECK(mem_batch_commit(b, 1, err) == 0);
    mem_batch_free(b);
    mem_close(s);

    const char *copies[2] = {dest, nested};
    for (int c = 0; c < 2; c++) {
        mem_store *cp = NULL;
        REQUIRE(mem_open(copies[c], 1, &cp, err) == 0);
        mem_stats st;
        CHECK(mem_get_stats(cp, &st, err) == 0);
        CHECK(st.items == N && st.deleted == 0 && st.with_key == 1 && st.items == at.items);
        CHECK(count_items(cp) == N);
        Reveal__KnowledgeItem *item = NULL;
        CHECK(mem_get_item(cp, ids[1], &item, err) == 1);
        reveal__knowledge_item__free_unpacked(item, NULL);
        float got[16];
        uint32_t ver = 0;
        CHECK(mem_get_vectors(cp, ids[0], got, 16, &ver, NULL, 0, 0, NULL, err) == 1);
        CHECK(ver == 7 && !memcmp(got, key, sizeof key));
        mem_close(cp);
    }
    /* the copy is a store of its own: writable, independent of the original */
    mem_store *cp = NULL;
    REQUIRE(mem_open_or_create(dest, &cfg, &cp, err) == 0);
    put_all(cp, items + N, 1, MEM_PUT_ADDED, NULL);
    mem_close(cp);
    REQUIRE(mem_open(dir, 1, &s, err) == 0);
    mem_stats st;
    CHECK(mem_get_stats(s, &st, err) == 0 && st.items == 2 * N - 1 && st.deleted == 1);
    CHECK(count_items(s) == 2 * N - 1);
    mem_close(s);

    /* nothing but the three stores and the parents made for the nested one */
    DIR *d = opendir(root);
    REQUIRE(d != NULL);
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            entries++;
            CHECKF(strstr(e->d_name, ".tmp-") == NULL, "left behind: %s", e->d_name);
        }
    closedir(d);
    CHECK(entries == 3);
    tmp_dir_remove(root);
    return check_report("store_checkpoint");
}
