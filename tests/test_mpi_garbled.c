/* tests/test_mpi_garbled.c — a worker fed truncated, wrong-length or hostile bytes answers each
 * with a Status failure that names the sender and what was wrong, and serves on: after every
 * bad message a good query batch must still get the right answer, and the job must end
 * cleanly (exit 0 on both ranks) on SHUTDOWN. Covers: a cut QueryBatch, an array of the wrong
 * length, a NaN query, dk and source count that do not fit the worker, random bytes, an unknown
 * command, an oversized message (2 MiB under a 64 KiB limit, past MPI's eager size), a tag
 * that is no message kind, a kind the worker never receives, and ItemGrads (not built yet).
 * The worker holds its store read-write, and a REFRESH at the end must reload all its keys. */
#include "test_mpi_util.h"

enum { N_ITEMS = 40 };

static comm *C;
static wrk_client *CL;

static uint8_t *pack_query(uint32_t B, uint32_t dk, size_t n_floats, uint32_t n_k, float poison,
                           size_t *n) {
    char err[RV_ERR_MAX];
    float q[64] = {0};
    uint64_t seed = 5;
    t_unit(q, T_DK, &seed);
    q[3] = poison ? poison : q[3];
    uint32_t k[2] = {5, 5};
    Reveal__QueryBatch qb = REVEAL__QUERY_BATCH__INIT;
    qb.step = 7;
    qb.batch = B;
    qb.dk = dk;
    qb.n_queries = n_floats;
    qb.queries = q;
    qb.n_k = n_k;
    qb.k = k;
    uint8_t *buf;
    REQUIRE(rv_pack(&qb.base, &buf, n, err) == 0);
    return buf;
}

/* The worker's Status after a bad message must name the problem; then a good batch works. */
static void expect_refusal(const char *what, const char *expect) {
    char err[RV_ERR_MAX];
    comm_msg m;
    int rc = comm_recv(C, 1, COMM_KIND_BIT(COMM_STATUS), 30, &m, err);
    CHECKF(rc == 0, "%s: no Status: %s", what, err);
    if (rc) return;
    const Reveal__Status *st = (const Reveal__Status *)m.msg;
    CHECKF(!st->ok && st->rank == 1, "%s: status ok=%d rank=%u", what, st->ok, st->rank);
    CHECKF(strstr(st->message, expect) != NULL, "%s: \"%s\" lacks \"%s\"", what, st->message,
           expect);
    comm_msg_free(&m);
    float q[T_DK];
    uint64_t seed = 9;
    t_unit(q, T_DK, &seed);
    uint32_t k = 3;
    wrk_hits h;
    rc = wrk_client_search(CL, 100, q, 1, T_DK, &k, &h, err);
    CHECKF(rc == 0 && h.sources[0].k == 3, "%s: the worker no longer serves: %s", what, err);
    if (rc == 0) wrk_hits_free(&h);
}

static void send_raw(comm_kind kind, const void *buf, size_t n) {
    char err[RV_ERR_MAX];
    CHECKF(comm_send_bytes(C, 1, kind, buf, n, 30, err) == 0, "send: %s", err);
}

static int job(int argc, char **argv) {
    /* Read-write, as a re-encoding worker will be: REFRESH then reloads without reopening. */
    wrk_role_options o = {.writable = 1, .send_timeout_s = 30, .idle_timeout_s = 120};
    C = t_job_start(&argc, &argv, argv[1], &o, NULL);
    char err[RV_ERR_MAX];
    if (wrk_client_open(C, argv[1], 30, &CL, err)) {
        rv_error("%s", err);
        t_job_exit(C, 1, NULL);
    }
    size_t n;
    uint8_t *buf = pack_query(1, T_DK, T_DK, 1, 0, &n);
    send_raw(COMM_QUERY_BATCH, buf, n / 2);
    expect_refusal("truncated", "QueryBatch from rank 0 (coordinator): QueryBatch: not a valid");
    free(buf);

    buf = pack_query(2, T_DK, 2 * T_DK - 1, 1, 0, &n);
    send_raw(COMM_QUERY_BATCH, buf, n);
    expect_refusal("wrong length", "queries has 31 floats, expected batch*dk = 2*16 = 32");
    free(buf);

    buf = pack_query(1, T_DK, T_DK, 1, NAN, &n);
    send_raw(COMM_QUERY_BATCH, buf, n);
    expect_refusal("NaN", "queries[3] is not finite");
    free(buf);

    buf = pack_query(1, 8, 8, 1, 0, &n);
    send_raw(COMM_QUERY_BATCH, buf, n);
    expect_refusal("dk", "dk is 8, the keys of garbled_work/kg have 16");
    free(buf);

    buf = pack_query(1, T_DK, T_DK, 2, 0, &n);
    send_raw(COMM_QUERY_BATCH, buf, n);
    expect_refusal("sources", "k lists 2 sources, the layout has 1");
    free(buf);

    uint8_t noise[300];
    uint64_t seed = 3;
    for (size_t i = 0; i < sizeof noise; i++) noise[i] = (uint8_t)t_rng(&seed);
    send_raw(COMM_CONTROL, noise, sizeof noise);
    expect_refusal("random bytes", "Control from rank 0 (coordinator): Control: ");

    Reveal__Control ctl = REVEAL__CONTROL__INIT;
    ctl.command = 99;
    REQUIRE(rv_pack(&ctl.base, &buf, &n, err) == 0);
    send_raw(COMM_CONTROL, buf, n);
    expect_refusal("command", "command 99 is not a ControlCommand");
    free(buf);

    /* Past the receiver's limit, so sent around comm's own limit check. */
    size_t big = 2u << 20;
    buf = calloc(big, 1);
    REQUIRE(MPI_Send(buf, (int)big, MPI_BYTE, 1, COMM_CONTROL, comm_mpi(C)) == MPI_SUCCESS);
    expect_refusal("oversized", "Control from rank 0 (coordinator): 2097152 bytes, limit 65536");
    REQUIRE(MPI_Send(buf, 64, MPI_BYTE, 1, 77, comm_mpi(C)) == MPI_SUCCESS);
    expect_refusal("unknown tag", "tag 77 is not a message kind (64 bytes)");
    free(buf);

    Reveal__Status st = REVEAL__STATUS__INIT;
    st.ok = 1;
    REQUIRE(rv_pack(&st.base, &buf, &n, err) == 0);
    send_raw(COMM_STATUS, buf, n);
    expect_refusal("wrong kind", "Status from rank 0 (coordinator): not expected here");
    free(buf);

    Reveal__ItemGrads g = REVEAL__ITEM_GRADS__INIT;
    g.step = 8;
    g.dk = T_DK;
    g.c = T_C;
    g.d = T_D;
    CHECKF(comm_send(C, (int[]){1}, 1, COMM_ITEM_GRADS, &g.base, 30, err) == 0, "%s", err);
    expect_refusal("item grads", "ItemGrads step 8: re-encoding with a backward on workers is not");

    uint64_t keys = 0;
    CHECKF(wrk_client_control(CL, REVEAL__CONTROL_COMMAND__REFRESH, 9, NULL, &keys, err) == 0 &&
               keys == N_ITEMS,
           "refresh: %s (%llu keys)", err, (unsigned long long)keys);
    CHECKF(wrk_client_shutdown(CL, err) == 0, "shutdown: %s", err);
    wrk_client_free(CL);
    int code = check_report("mpi_garbled rank 0");
    t_job_exit(C, code, NULL);
    return code;
}

int main(int argc, char **argv) {
    if (mpi_in_job()) return job(argc, argv);
    REQUIRE(argc == 2);
    char err[RV_ERR_MAX];
    rv_remove_tree("garbled_work", err);
    REQUIRE(rv_mkdirs("garbled_work", err) == 0);
    t_build_store("garbled_work/kg", REVEAL__SOURCE_TYPE__KG_TRIPLE, "kg", N_ITEMS, 0, 1);
    t_write_text("garbled_work/layout.json", "{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", "
                                             "\"stores\": [\"garbled_work/kg\"]}]}");
    const char *args[] = {"garbled_work/layout.json", NULL};
    mpi_run r = mpi_job(argv[1], 2, NULL, argv[0], args, 120);
    CHECKF(r.status == 0, "job ended with %d after %.1f s", r.status, r.seconds);
    CHECK(strstr(r.out, "mpi_garbled rank 0:") && strstr(r.out, ", 0 failed"));
    CHECK(count_of(r.out, "[rank 1 worker kg] warn:") == 11);
    if (check_failures || getenv("REVEAL_TEST_VERBOSE"))
        fprintf(stderr, "---- job output\n%s----\n", r.out);
    free(r.out);
    return check_report("mpi_garbled");
}
