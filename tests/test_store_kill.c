/* tests/test_store_kill.c — the counters in meta are exact after a crash at any moment. A child
 * process writes to a store without pause (puts of new items, edits by logical key, deletes,
 * vectors; commits without fsync) and is killed with SIGKILL after a random, seeded delay;
 * then the store must open, its counters must equal what iteration finds, and every item's
 * logical key must map to it. Three kills on the same store, each resuming where the last
 * stopped. */
#include "test_store_util.h"

#include <inttypes.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { DK = 8, C = 2, D = 4, KEYS = 5000 };

/* The writer: tells the parent on `ready` once the store is open, then writes until killed. */
static void writer(const char *dir, unsigned seed, int ready) {
    char err[RV_ERR_MAX], subj[32], key[32], obj[32];
    mem_config cfg = config_of(REVEAL__SOURCE_TYPE__KG_TRIPLE, "kg", 32);
    mem_store *s;
    if (mem_open_or_create(dir, &cfg, &s, err)) {
        fprintf(stderr, "writer: %s\n", err);
        _exit(3);
    }
    if (write(ready, "r", 1) != 1) _exit(7);
    mem_batch *b = mem_batch_new(s);
    float kv[DK], vv[C * D];
    for (int i = 0; i < DK; i++) kv[i] = (float)i;
    for (int i = 0; i < C * D; i++) vv[i] = (float)i;
    srand(seed);
    for (unsigned long n = 0;; n++) {
        /* logical keys from a small space, so edits (replacements) are frequent */
        int k = rand() % KEYS;
        snprintf(subj, sizeof subj, "entity %d", k);
        snprintf(key, sizeof key, "entity %d|value", k);
        snprintf(obj, sizeof obj, "%d", rand());
        Reveal__KnowledgeItem it = kg_item(subj, "value", obj);
        it.key = key;
        uint64_t id;
        int out;
        if (mem_batch_put_item(b, &it, &id, &out, err)) _exit(4);
        if (n % 7 == 0) {
            uint64_t victim;
            snprintf(key, sizeof key, "entity %d|value", rand() % KEYS);
            if (mem_lookup_key(s, key, &victim, err) == 1 && victim != id)
                (void)mem_batch_delete(b, victim, err); /* may be gone in this batch already */
        }
        if (n % 50 == 49) {
            if (mem_batch_commit(b, 0, err)) _exit(5);
            /* vectors for the last item put, outside the batch */
            Reveal__KnowledgeItem *cur = NULL;
            if (mem_get_item(s, id, &cur, err) == 1) {
                reveal__knowledge_item__free_unpacked(cur, NULL);
                if (mem_put_vectors(s, id, (uint32_t)n, kv, DK, n % 2 ? vv : NULL, C, D, err))
                    _exit(6);
            }
        }
    }
}

static void verify(const char *dir, int round) {
    char err[RV_ERR_MAX], hex[17];
    mem_store *s;
    REQUIRE(mem_open(dir, 1, &s, err) == 0);
    mem_stats st;
    REQUIRE(mem_get_stats(s, &st, err) == 0);
    mem_iter *it;
    REQUIRE(mem_iter_new(s, 0, &it, err) == 0);
    uint64_t id, items = 0, keys = 0, values = 0, mapped_ok = 0;
    Reveal__KnowledgeItem *item;
    float kv[DK], vv[C * D];
    int rc;
    while ((rc = mem_iter_next(it, &id, &item, err)) == 1) {
        items++;
        keys += mem_get_vectors(s, id, kv, DK, NULL, NULL, 0, 0, NULL, err) == 1;
        values += mem_get_vectors(s, id, NULL, 0, NULL, vv, C, D, NULL, err) == 1;
        uint64_t mapped = 0;
        const char *lkey = item->key[0] ? item->key : hex;
        snprintf(hex, sizeof hex, "%016" PRIx64, id);
        mapped_ok += mem_lookup_key(s, lkey, &mapped, err) == 1 && mapped == id;
        reveal__knowledge_item__free_unpacked(item, NULL);
    }
    CHECKF(rc == 0, "round %d: iteration: %s", round, err);
    mem_iter_free(it);
    printf("round %d: %" PRIu64 " items, %" PRIu64 " deleted, %" PRIu64 " keys, %" PRIu64
           " values\n",
           round, st.items, st.deleted, keys, values);
    CHECKF(st.items == items, "round %d: counter says %" PRIu64 " items, iteration %" PRIu64, round,
           st.items, items);
    CHECKF(st.with_key == keys, "round %d: with_key %" PRIu64 ", found %" PRIu64, round,
           st.with_key, keys);
    CHECKF(st.with_value == values, "round %d: with_value %" PRIu64 ", found %" PRIu64, round,
           st.with_value, values);
    CHECKF(mapped_ok == items, "round %d: %" PRIu64 " of %" PRIu64 " logical keys map back", round,
           mapped_ok, items);
    mem_close(s);
}

int main(int argc, char **argv) {
    char dir[64];
    tmp_dir_make(dir, sizeof dir, "store_kill");
    unsigned seed = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : (unsigned)time(NULL);
    printf("seed %u (rerun: %s %u)\n", seed, argv[0], seed);
    srand(seed);
    for (int round = 0; round < 3; round++) {
        /* counted from the moment the writer has the store open (recovery after the last
         * kill can take a while on a loaded machine) */
        int delay_ms = 50 + rand() % 400, ready[2];
        unsigned child_seed = (unsigned)rand();
        REQUIRE(pipe(ready) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) writer(dir, child_seed, ready[1]);
        char byte;
        CHECKF(read(ready[0], &byte, 1) == 1, "round %d: writer did not open the store", round);
        close(ready[0]);
        close(ready[1]);
        usleep((useconds_t)delay_ms * 1000);
        int status = 0;
        REQUIRE(kill(pid, SIGKILL) == 0 && waitpid(pid, &status, 0) == pid);
        CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
               "round %d: writer ended by itself (status %d)", round, status);
        printf("round %d: killed after %d ms\n", round, delay_ms);
        verify(dir, round);
    }
    tmp_dir_remove(dir);
    return check_report("store_kill");
}
