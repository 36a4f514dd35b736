/* tests/test_mpi_comm.c — the transport on its own, three ranks and no stores. Messages of
 * growing size (past the eager limit) round-trip through the receive buffer and decode equal;
 * the sender refuses a kind mismatch, a message over its kind's limit and a peer that is not
 * one; a receive with a deadline names who it waited for and how long; a send to a rank that
 * never receives fails at its deadline naming that rank and leaves the communicator unusable;
 * comm_agree gives rank 0 one line naming each failing rank and the others a quiet failure,
 * and passes when every rank is fine. */
#include "test_mpi_util.h"

static comm *C;

static Reveal__TopKReply reply_of(uint32_t k, uint64_t *ids, float *scores) {
    Reveal__TopKReply r = REVEAL__TOP_KREPLY__INIT;
    r.batch = 1;
    r.k = k;
    r.n_ids = r.n_scores = k;
    for (uint32_t i = 0; i < k; i++) {
        ids[i] = 1000 + i;
        scores[i] = 1.0f - (float)i / (float)k;
    }
    r.ids = ids;
    r.scores = scores;
    return r;
}

static void rank0(void) {
    char err[RV_ERR_MAX];
    comm_msg m;
    /* 1. replies of 3, 4000 and 2 results from rank 1: the buffer grows, then is reused */
    const uint32_t sizes[] = {3, 4000, 2};
    for (int i = 0; i < 3; i++) {
        int rc = comm_recv(C, 1, COMM_KIND_BIT(COMM_TOPK_REPLY), 30, &m, err);
        CHECKF(rc == 0, "round trip %d: %s", i, err);
        if (rc) continue;
        const Reveal__TopKReply *r = (const Reveal__TopKReply *)m.msg;
        CHECK(m.from == 1 && m.kind == COMM_TOPK_REPLY && r->k == sizes[i]);
        CHECK(r->ids[r->k - 1] == 1000 + r->k - 1);
        comm_msg_free(&m);
    }
    /* 2. sender-side refusals */
    Reveal__Control ctl = REVEAL__CONTROL__INIT;
    ctl.command = REVEAL__CONTROL_COMMAND__REFRESH;
    int one = 1, self = 0, far = 9;
    CHECK(comm_send(C, &one, 1, COMM_STATUS, &ctl.base, 5, err) == -1 &&
          strstr(err, "sending Status: the message is a Control"));
    CHECK(comm_send(C, &self, 1, COMM_CONTROL, &ctl.base, 5, err) == -1 &&
          strstr(err, "rank 0 is not a peer (world of 3)"));
    CHECK(comm_send(C, &far, 1, COMM_CONTROL, &ctl.base, 5, err) == -1 &&
          strstr(err, "rank 9 is not a peer"));
    static uint8_t big[(64u << 10) + 1];
    CHECK(comm_send_bytes(C, 1, COMM_CONTROL, big, sizeof big, 5, err) == -1 &&
          strstr(err, "sending Control: 65537 bytes, limit 65536"));
    CHECK(comm_kind_limit(COMM_QUERY_BATCH) == COMM_LIMIT_QUERY_BATCH && comm_kind_limit(9) == 0);
    CHECK(!strcmp(comm_kind_name(COMM_ITEM_GRADS), "ItemGrads"));
    /* 3. a receive deadline: nobody sends */
    comm_set_peer_name(C, 2, "worker idle");
    double t0 = rv_now();
    CHECK(comm_recv(C, 2, COMM_KIND_BIT(COMM_STATUS), 0.5, &m, err) == -1 && m.from == -1);
    CHECKF(strstr(err, "no message from rank 2 (worker idle) within 0.5 s") != NULL, "%s", err);
    CHECK(rv_now() - t0 >= 0.5);
    /* 4. agreement: rank 1 fails, rank 2 is fine */
    int rc = comm_agree(C, NULL, err);
    CHECKF(rc == -1 && !strcmp(err, "rank 1: disk on fire"), "agree: %d \"%s\"", rc, err);
    CHECK(comm_agree(C, "", err) == 0);
    /* 5. a send rank 2 never takes (1 MiB: past the eager limit) */
    static uint8_t mib[1u << 20];
    t0 = rv_now();
    rc = comm_send_bytes(C, 2, COMM_QUERY_BATCH, mib, sizeof mib, 1.0, err);
    CHECKF(rc == -1 && strstr(err, "rank 2 (worker idle) did not take a QueryBatch of 1048576 "
                                   "bytes within 1.0 s"),
           "send deadline: %s", err);
    CHECK(comm_recv(C, 1, COMM_KIND_BIT(COMM_STATUS), 1, &m, err) == -1 &&
          strstr(err, "unusable after an earlier failure"));
}

static void rank1(void) {
    char err[RV_ERR_MAX];
    int to = 0;
    uint64_t ids[4000];
    float scores[4000];
    const uint32_t sizes[] = {3, 4000, 2};
    for (int i = 0; i < 3; i++) {
        Reveal__TopKReply r = reply_of(sizes[i], ids, scores);
        CHECKF(comm_send(C, &to, 1, COMM_TOPK_REPLY, &r.base, 30, err) == 0, "%s", err);
    }
    CHECK(comm_agree(C, "disk on fire", err) == 1 && !strcmp(err, "rank 1: disk on fire"));
    CHECK(comm_agree(C, NULL, err) == 0);
}

static void rank2(void) {
    char err[RV_ERR_MAX];
    CHECK(comm_agree(C, NULL, err) == 1);
    CHECK(comm_agree(C, NULL, err) == 0);
    /* Takes rank 0's message only after rank 0 gave up on it, so the job can end cleanly. */
    sleep(3);
    static uint8_t mib[1u << 20];
    CHECK(MPI_Recv(mib, sizeof mib, MPI_BYTE, 0, COMM_QUERY_BATCH, comm_mpi(C),
                   MPI_STATUS_IGNORE) == MPI_SUCCESS);
}

int main(int argc, char **argv) {
    if (mpi_in_job()) {
        MPI_Init(&argc, &argv);
        char err[RV_ERR_MAX];
        REQUIRE(comm_create("test", &C, err) == 0);
        REQUIRE(comm_size(C) == 3);
        int rank = comm_rank(C);
        if (rank == 0) rank0();
        if (rank == 1) rank1();
        if (rank == 2) rank2();
        char name[32];
        snprintf(name, sizeof name, "mpi_comm rank %d", rank);
        int code = check_report(name);
        comm_free(C); /* rank 0's is broken by design: its duplicate is left to MPI_Finalize */
        MPI_Finalize();
        return code;
    }
    REQUIRE(argc == 2);
    const char *args[] = {NULL};
    mpi_run r = mpi_job(argv[1], 3, NULL, argv[0], args, 120);
    CHECKF(r.status == 0, "job ended with %d after %.1f s", r.status, r.seconds);
    CHECK(count_of(r.out, ", 0 failed") == 3);
    if (check_failures || getenv("REVEAL_TEST_VERBOSE"))
        fprintf(stderr, "---- job output\n%s----\n", r.out);
    free(r.out);
    return check_report("mpi_comm");
}
