/* tests/test_mpi_layout.c — a bad layout stops the whole job before any work. For each fault
 * (a missing store, a store of the wrong type, a source named twice, one store listed twice, a
 * rank count that does not fit, text that is not JSON) the job must end within a bounded time,
 * every rank with a non-zero code (each records it before exiting), and the expected message
 * must be printed exactly once. A good layout is run last, so the faults are known to be the
 * only difference. */
#include "test_mpi_util.h"

static int job(int argc, char **argv) {
    wrk_role_options o = {.send_timeout_s = 30, .idle_timeout_s = 60};
    comm *c = t_job_start(&argc, &argv, argv[1], &o, argv[2]);
    char err[RV_ERR_MAX];
    wrk_client *cl;
    if (wrk_client_open(c, argv[1], 30, &cl, err)) {
        rv_error("%s", err);
        t_job_exit(c, 1, argv[2]);
    }
    int rc = wrk_client_shutdown(cl, err);
    if (rc) rv_error("%s", err);
    wrk_client_free(cl);
    t_job_exit(c, rc ? 1 : 0, argv[2]);
    return 0;
}

typedef struct {
    const char *name;
    const char *layout;
    int np;
    const char *expect; /* printed exactly once; NULL: the job succeeds */
} layout_case;

static void run_case(const char *mpirun, const char *self, const layout_case *lc, int idx) {
    char dir[64], path[128], err[RV_ERR_MAX];
    snprintf(dir, sizeof dir, "layout_work/case-%d", idx);
    REQUIRE(rv_mkdirs(dir, err) == 0);
    snprintf(path, sizeof path, "%s/layout.json", dir);
    t_write_text(path, lc->layout);
    const char *args[] = {path, dir, NULL};
    mpi_run r = mpi_job(mpirun, lc->np, NULL, self, args, 90);
    int want = lc->expect ? 1 : 0;
    CHECKF((r.status != 0) == want, "%s: job ended with %d", lc->name, r.status);
    CHECKF(r.seconds < 60, "%s: took %.1f s", lc->name, r.seconds);
    if (lc->expect)
        CHECKF(count_of(r.out, lc->expect) == 1, "%s: \"%s\" printed %zu times", lc->name,
               lc->expect, count_of(r.out, lc->expect));
    for (int rank = 0; rank < lc->np; rank++) {
        snprintf(path, sizeof path, "%s/exit-%d", dir, rank);
        char *code = mpi_slurp(path);
        CHECKF(code[0] && (atoi(code) != 0) == want, "%s: rank %d exit code \"%s\"", lc->name, rank,
               code);
        free(code);
    }
    if (check_failures) fprintf(stderr, "---- %s output\n%s----\n", lc->name, r.out);
    free(r.out);
}

/* Faults the parser refuses on its own, checked without a job. */
static void parse_errors(void) {
    static const struct {
        const char *text, *expect;
    } bad[] = {
        {"[]", "expected a JSON object with \"sources\""},
        {"{\"sources\": []}", "\"sources\" must be an array of at least one source"},
        {"{\"sources\": [], \"extra\": 1}", "unknown field \"extra\""},
        {"{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", \"store\": [\"a\"]}]}",
         "sources[0]: unknown field \"store\""},
        {"{\"sources\": [{\"name\": \"kg\", \"type\": \"graph\", \"stores\": [\"a\"]}]}",
         "(kg): \"type\" must be one of image-text, qa, kg, text"},
        {"{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", \"stores\": []}]}",
         "(kg): \"stores\" must list at least one store"},
        {"{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", \"stores\": [7]}]}",
         "(kg): stores[0] must be a non-empty path"},
        {"{\"sources\": [{\"name\": \"\", \"type\": \"kg\", \"stores\": [\"a\"]}]}",
         "\"name\" must be a non-empty string"},
        {"{\"sources\": [{\"name\": \"a123456789a123456789a123456789a123456789a123456789a12345678"
         "9abcd\", \"type\": \"kg\", \"stores\": [\"a\"]}]}",
         "is longer than 63 bytes"},
        {"{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", \"stores\": [\"a\"]},"
         " {\"name\": \"qa\", \"type\": \"qa\", \"stores\": [\"a\"]}]}",
         "store \"a\" (source kg) and store \"a\" (source qa) are the same store"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[RV_ERR_MAX] = "";
        wrk_layout *l = NULL;
        int rc = wrk_layout_parse(bad[i].text, strlen(bad[i].text), "t.json", &l, err);
        CHECKF(rc == -1 && l == NULL && strstr(err, bad[i].expect) && !strncmp(err, "t.json", 6),
               "case %zu: rc %d, \"%s\"", i, rc, err);
        wrk_layout_free(l);
    }
    /* A good one: ranks in order of (source, shard), role names, world size. */
    const char *good =
        "{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", \"stores\": [\"a\", \"b\"]},"
        " {\"name\": \"qa\", \"type\": \"qa\", \"stores\": [\"c\"]}]}";
    char err[RV_ERR_MAX], name[96];
    wrk_layout *l = NULL;
    REQUIRE(wrk_layout_parse(good, strlen(good), "t.json", &l, err) == 0);
    const wrk_layout_store *st = wrk_layout_store_of(l, 3);
    CHECK(l->n_sources == 2 && l->n_stores == 3 && st && !strcmp(st->path, "c") &&
          st->source == 1 && st->shard == 0);
    CHECK(wrk_layout_store_of(l, 0) == NULL && wrk_layout_store_of(l, 4) == NULL);
    wrk_layout_role_name(l, 2, name, sizeof name);
    CHECK(!strcmp(name, "worker kg shard 1"));
    wrk_layout_role_name(l, 3, name, sizeof name);
    CHECK(!strcmp(name, "worker qa"));
    CHECK(wrk_layout_check_world(l, 4, err) == 0 && wrk_layout_check_world(l, 5, err) == -1);
    wrk_layout_free(l);
}

int main(int argc, char **argv) {
    if (mpi_in_job()) return job(argc, argv);
    REQUIRE(argc == 2);
    parse_errors();
    char err[RV_ERR_MAX];
    rv_remove_tree("layout_work", err);
    REQUIRE(rv_mkdirs("layout_work", err) == 0);
    t_build_store("layout_work/kg-0", REVEAL__SOURCE_TYPE__KG_TRIPLE, "kg", 20, 0, 1);
    t_build_store("layout_work/qa", REVEAL__SOURCE_TYPE__QA, "qa", 20, 0, 2);
    const layout_case cases[] = {
        {"missing store",
         "{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", \"stores\": "
         "[\"layout_work/kg-0\", \"layout_work/nope\"]}]}",
         3, "store layout_work/nope (source kg shard 1) does not exist"},
        {"wrong type",
         "{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", \"stores\": [\"layout_work/qa\"]}]}",
         2,
         "store layout_work/qa holds qa items (store \"qa\"), but the layout gives it to source "
         "kg of type kg"},
        {"duplicated source",
         "{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", \"stores\": [\"layout_work/kg-0\"]},"
         " {\"name\": \"kg\", \"type\": \"qa\", \"stores\": [\"layout_work/qa\"]}]}",
         3, "source name \"kg\" is used twice"},
        {"duplicated store",
         "{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", \"stores\": [\"layout_work/kg-0\","
         " \"layout_work/../layout_work/kg-0\"]}]}",
         3, "are the same store"},
        {"wrong -np",
         "{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", \"stores\": [\"layout_work/kg-0\"]},"
         " {\"name\": \"qa\", \"type\": \"qa\", \"stores\": [\"layout_work/qa\"]}]}",
         2,
         "the layout has 2 stores, so the job needs -np 3 (1 coordinator + 2 workers); it was "
         "started with -np 2"},
        {"not JSON", "{\"sources\": [", 2, "not valid JSON"},
        {"good layout",
         "{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", \"stores\": [\"layout_work/kg-0\"]},"
         " {\"name\": \"qa\", \"type\": \"qa\", \"stores\": [\"layout_work/qa\"]}]}",
         3, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(argv[1], argv[0], &cases[i], (int)i);
    return check_report("mpi_layout");
}
