/* tests/test_store_crash.c — store_crash: `kill -9` of `reveal ingest` of 100,000 generated kg
 * triples at random moments. After each kill the store must open with counters equal to the
 * items iterated (or, killed while the store was being created, be absent: creation is
 * atomic); re-running the same command must end with exactly 100,000 items, each readable and
 * equal to its input line, with nothing left of interrupted creations. The moments are drawn from a
 * seed that is printed (set STORE_CRASH_SEED to repeat a run); one moment also kills the re-run
 * itself. */
#include "test_store_cli.h"
#include "test_store_util.h"

#include <dirent.h>
#include <inttypes.h>
#include <time.h>

#define N_TRIPLES 100000
#define N_MOMENTS 3

static char dir[256];

static void write_input(const char *path) {
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    for (int i = 0; i < N_TRIPLES; i++)
        fprintf(f, "entity %d\trelation %d\tobject of entity %d\n", i, i % 13, i);
    REQUIRE(fclose(f) == 0);
}

static pid_t start_ingest(const char *input, const char *store) {
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(127);
        execl(reveal_bin(), "reveal", "ingest", "--type", "kg", "--input", input, "--store", store,
              "--quiet", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Kills the ingest after `seconds`; returns 1 if it was still running then. */
static int kill_after(pid_t pid, double seconds) {
    struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    int alive = kill(pid, SIGKILL) == 0;
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    return alive && WIFSIGNALED(st);
}

/* Every item is one input line: subject "entity i", object "object of entity i"; all i seen. */
static void check_items(const char *store) {
    char err[RV_ERR_MAX];
    mem_store *s;
    REQUIRE(mem_open(store, 1, &s, err) == 0);
    unsigned char *seen = calloc(N_TRIPLES, 1);
    REQUIRE(seen != NULL);
    mem_iter *it;
    REQUIRE(mem_iter_new(s, 0, &it, err) == 0);
    uint64_t id, n = 0, bad = 0;
    Reveal__KnowledgeItem *item;
    while (mem_iter_next(it, &id, &item, err) == 1) {
        int i = -1;
        char want[64];
        if (sscanf(item->subject, "entity %d", &i) == 1 && i >= 0 && i < N_TRIPLES) {
            snprintf(want, sizeof want, "object of entity %d", i);
            if (!strcmp(item->object, want) && !seen[i] && mem_item_id(item) == id)
                seen[i] = 1;
            else
                bad++;
        } else {
            bad++;
        }
        n++;
        reveal__knowledge_item__free_unpacked(item, NULL);
    }
    mem_iter_free(it);
    mem_close(s);
    uint64_t covered = 0;
    for (int i = 0; i < N_TRIPLES; i++) covered += seen[i];
    CHECKF(n == N_TRIPLES && covered == N_TRIPLES && bad == 0,
           "%s: %" PRIu64 " items, %" PRIu64 " lines covered, %" PRIu64 " wrong", store, n, covered,
           bad);
    free(seen);
}

/* After a kill: a store that opens consistent, or none at all when the kill came while it
 * was being created (creation is atomic). Returns the items found. */
static uint64_t after_kill(const char *store, const char **state) {
    struct stat st;
    if (stat(store, &st) != 0) {
        *state = "no store yet (killed while creating it)";
        return 0;
    }
    *state = "the store opens";
    return store_check(store, NULL);
}

/* Nothing is left of interrupted creations once a run has finished. */
static void no_leftovers(void) {
    DIR *d = opendir(dir);
    REQUIRE(d != NULL);
    struct dirent *e;
    while ((e = readdir(d))) CHECKF(!strstr(e->d_name, ".creating."), "left over: %s", e->d_name);
    closedir(d);
}

static void rerun(const char *input, const char *store) {
    cli_result r =
        run_cli("%s ingest --type kg --input %s --store %s --quiet", reveal_bin(), input, store);
    CHECKF(r.status == 0, "re-run after the kill: exit %d: %s", r.status, r.err);
    char want[64];
    snprintf(want, sizeof want, "the store holds %d items", N_TRIPLES);
    CHECKF(strstr(r.out, want), "re-run: %s", r.out);
    cli_free(&r);
}

int main(void) {
    tmp_dir_make(dir, sizeof dir, "crash");
    char input[512], store[512];
    snprintf(input, sizeof input, "%s/kg.tsv", dir);
    write_input(input);

    /* How long a whole run takes here, so the kills land inside one. */
    snprintf(store, sizeof store, "%s/full", dir);
    double t0 = rv_now();
    rerun(input, store);
    double full = rv_now() - t0;
    check_items(store);

    const char *env = getenv("STORE_CRASH_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    printf("store_crash: seed %u (STORE_CRASH_SEED=%u repeats the draws, as fractions of a run); "
           "a full run takes %.2f s\n",
           seed, seed, full);
    srand(seed);
    for (int m = 0; m < N_MOMENTS; m++) {
        snprintf(store, sizeof store, "%s/store%d", dir, m);
        /* A kill after the run ended proves nothing: on a busy machine runs vary in length,
         * so a kill that missed is retried on a fresh store, earlier. */
        double draw = full * (0.02 + 0.93 * rand() / (double)RAND_MAX), at = draw;
        int killed = 0;
        for (int attempt = 0; attempt < 6 && !killed; attempt++) {
            char err[RV_ERR_MAX];
            REQUIRE(rv_remove_tree(store, err) == 0);
            at = draw / (1 << attempt);
            killed = kill_after(start_ingest(input, store), at);
        }
        CHECKF(killed, "moment %d: every kill came after the run had ended", m);
        const char *state;
        uint64_t n = after_kill(store, &state);
        printf("moment %d: kill -9 at %.3f s; %s with %" PRIu64 " items\n", m, at, state, n);
        if (m == N_MOMENTS - 1) { /* kill the re-run too, early in its own run */
            double again = full * (0.02 + 0.3 * rand() / (double)RAND_MAX);
            killed = kill_after(start_ingest(input, store), again);
            n = after_kill(store, &state);
            printf("moment %d: the re-run killed at %.3f s %s; %s with %" PRIu64 " items\n", m,
                   again, killed ? "during the run" : "(it had ended)", state, n);
        }
        rerun(input, store);
        no_leftovers();
        CHECK(store_check(store, NULL) == N_TRIPLES);
        check_items(store);
    }
    tmp_dir_remove(dir);
    return check_report("store_crash");
}
