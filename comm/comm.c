/* comm/comm.c — packed protobuf messages over MPI with per-kind tags and limits, deadlines on
 * both directions, and the set-up agreement (comm.h). Waits poll (MPI_Iprobe / MPI_Testall)
 * with a short sleep rather than blocking in MPI, so a lost peer turns into an error after
 * the deadline instead of a hang, and an oversubscribed rank leaves its core to the others. */
#include "comm.h"

#include "rv.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PEER_NAME_MAX = 96 };

struct comm {
    MPI_Comm mpi;
    int rank, size;
    char role[32];
    char (*names)[PEER_NAME_MAX]; /* (size) peer names, "" when unnamed */
    char peer_buf[PEER_NAME_MAX + 32];
    uint8_t *recv_buf; /* grows to the largest message received */
    size_t recv_cap;
    uint8_t *send_buf; /* packed message being sent; kept by a broken communicator */
    size_t send_cap;
    MPI_Request *reqs; /* (size) one send request per destination */
    int broken;        /* a send timed out: its requests may still read send_buf */
    char broken_why[RV_ERR_MAX];
};

static const struct {
    const char *name;
    size_t limit;
    const ProtobufCMessageDescriptor *desc;
} kinds[COMM_KIND_LAST + 1] = {
    [COMM_QUERY_BATCH] = {"QueryBatch", COMM_LIMIT_QUERY_BATCH, &reveal__query_batch__descriptor},
    [COMM_TOPK_REPLY] = {"TopKReply", COMM_LIMIT_TOPK_REPLY, &reveal__top_kreply__descriptor},
    [COMM_ITEM_GRADS] = {"ItemGrads", COMM_LIMIT_ITEM_GRADS, &reveal__item_grads__descriptor},
    [COMM_CONTROL] = {"Control", COMM_LIMIT_CONTROL, &reveal__control__descriptor},
    [COMM_STATUS] = {"Status", COMM_LIMIT_STATUS, &reveal__status__descriptor},
};

static int kind_known(int k) {
    return k >= 1 && k <= COMM_KIND_LAST;
}

const char *comm_kind_name(comm_kind kind) {
    return kind_known((int)kind) ? kinds[kind].name : "unknown kind";
}

size_t comm_kind_limit(int kind) {
    return kind_known(kind) ? kinds[kind].limit : 0;
}

/* MPI's own text for an error code. */
static const char *mpi_text(int code, char *buf) {
    int len = 0;
    if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) snprintf(buf, 64, "MPI error %d", code);
    return buf;
}

int comm_create(const char *role, comm **out, char *err) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) return rv_fail(err, "comm: MPI is not initialised");
    comm *c = calloc(1, sizeof *c);
    if (!c) return rv_fail(err, "comm: out of memory");
    char text[MPI_MAX_ERROR_STRING];
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &c->mpi);
    if (rc != MPI_SUCCESS) {
        free(c);
        return rv_fail(err, "comm: duplicating MPI_COMM_WORLD: %s", mpi_text(rc, text));
    }
    MPI_Comm_set_errhandler(c->mpi, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->mpi, &c->rank);
    MPI_Comm_size(c->mpi, &c->size);
    snprintf(c->role, sizeof c->role, "%s", role);
    c->names = calloc((size_t)c->size, sizeof *c->names);
    c->reqs = malloc((size_t)c->size * sizeof *c->reqs);
    if (!c->names || !c->reqs) {
        comm_free(c);
        return rv_fail(err, "comm: out of memory for %d peers", c->size);
    }
    *out = c;
    return 0;
}

void comm_free(comm *c) {
    if (!c) return;
    /* A broken communicator's sends may still read send_buf: it is left to the exiting
     * process, as are the requests and the duplicate (freeing it would wait for them). */
    if (!c->broken) {
        free(c->send_buf);
        free(c->reqs);
        MPI_Comm_free(&c->mpi);
    }
    free(c->recv_buf);
    free(c->names);
    free(c);
}

int comm_rank(const comm *c) {
    return c->rank;
}

int comm_size(const comm *c) {
    return c->size;
}

MPI_Comm comm_mpi(const comm *c) {
    return c->mpi;
}

void comm_set_peer_name(comm *c, int rank, const char *name) {
    if (rank >= 0 && rank < c->size) snprintf(c->names[rank], PEER_NAME_MAX, "%s", name);
}

const char *comm_peer(const comm *c, int rank) {
    comm *m = (comm *)c; /* the text buffer is scratch, not state */
    if (rank >= 0 && rank < c->size && c->names[rank][0])
        snprintf(m->peer_buf, sizeof m->peer_buf, "rank %d (%s)", rank, c->names[rank]);
    else
        snprintf(m->peer_buf, sizeof m->peer_buf, "rank %d", rank);
    return m->peer_buf;
}

/* Sleeps between polls: short at first (replies are usually quick), then up to 1 ms. */
static void poll_pause(long *ns) {
    struct timespec ts = {0, *ns};
    nanosleep(&ts, NULL);
    if (*ns < 1000000) *ns *= 2;
}

/* After a failure that leaves MPI holding a request or a message: every later call fails. */
static void mark_broken(comm *c, const char *why) {
    c->broken = 1;
    snprintf(c->broken_why, sizeof c->broken_why, "%s", why);
}

static int check_usable(const comm *c, char *err) {
    if (c->broken)
        return rv_fail(err, "comm: unusable after an earlier failure: %s", c->broken_why);
    return 0;
}

/* Sends send_buf[0..n) to each destination and waits for all to take it. */
static int send_packed(comm *c, const int *dests, size_t n_dests, comm_kind kind, size_t n,
                       double timeout_s, char *err) {
    const char *kname = kinds[kind].name;
    char text[MPI_MAX_ERROR_STRING];
    if (n > kinds[kind].limit || n > INT_MAX)
        return rv_fail(err, "sending %s: %zu bytes, limit %zu", kname, n, kinds[kind].limit);
    for (size_t i = 0; i < n_dests; i++) {
        if (dests[i] < 0 || dests[i] >= c->size || dests[i] == c->rank)
            return rv_fail(err, "sending %s: rank %d is not a peer (world of %d)", kname, dests[i],
                           c->size);
    }
    size_t posted = 0;
    for (; posted < n_dests; posted++) {
        int rc = MPI_Isend(c->send_buf, (int)n, MPI_BYTE, dests[posted], (int)kind, c->mpi,
                           &c->reqs[posted]);
        if (rc != MPI_SUCCESS) {
            rv_fail(err, "sending %s to %s: %s", kname, comm_peer(c, dests[posted]),
                    mpi_text(rc, text));
            break;
        }
    }
    double start = rv_now();
    long pause = 20000;
    int rc = posted == n_dests ? 0 : -1;
    for (;;) {
        int done = 0;
        int mrc = MPI_Testall((int)posted, c->reqs, &done, MPI_STATUSES_IGNORE);
        if (mrc != MPI_SUCCESS) {
            rc = rv_fail(err, "sending %s: %s", kname, mpi_text(mrc, text));
            break;
        }
        if (done) return rc;
        if (timeout_s > 0 && rv_now() - start > timeout_s) {
            /* Name the first peer that has not taken the message. */
            int who = -1;
            for (size_t i = 0; i < posted && who < 0; i++) {
                int flag = 1;
                if (c->reqs[i] != MPI_REQUEST_NULL) MPI_Test(&c->reqs[i], &flag, MPI_STATUS_IGNORE);
                if (!flag) who = dests[i];
            }
            rc = rv_fail(err, "%s did not take a %s of %zu bytes within %.1f s (lost or hung)",
                         comm_peer(c, who), kname, n, timeout_s);
            break;
        }
        poll_pause(&pause);
    }
    mark_broken(c, err ? err : "a send failed");
    return -1;
}

static int reserve(uint8_t **buf, size_t *cap, size_t n, char *err) {
    if (n <= *cap && *buf) return 0;
    size_t want = *cap ? *cap : 4096;
    while (want < n) want *= 2;
    uint8_t *p = realloc(*buf, want);
    if (!p) return rv_fail(err, "comm: out of memory for a %zu-byte buffer", want);
    *buf = p;
    *cap = want;
    return 0;
}

int comm_send(comm *c, const int *dests, size_t n_dests, comm_kind kind,
              const ProtobufCMessage *msg, double timeout_s, char *err) {
    if (check_usable(c, err)) return -1;
    if (!kind_known((int)kind) || msg->descriptor != kinds[kind].desc)
        return rv_fail(err, "sending %s: the message is a %s", comm_kind_name(kind),
                       msg->descriptor->short_name);
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > kinds[kind].limit)
        return rv_fail(err, "sending %s: %zu bytes, limit %zu", kinds[kind].name, n,
                       kinds[kind].limit);
    if (reserve(&c->send_buf, &c->send_cap, n ? n : 1, err)) return -1;
    size_t written = protobuf_c_message_pack(msg, c->send_buf);
    if (written != n)
        return rv_fail(err, "sending %s: packed %zu bytes, expected %zu", kinds[kind].name, written,
                       n);
    return send_packed(c, dests, n_dests, kind, n, timeout_s, err);
}

int comm_send_bytes(comm *c, int dest, comm_kind kind, const void *buf, size_t n, double timeout_s,
                    char *err) {
    if (check_usable(c, err)) return -1;
    if (!kind_known((int)kind)) return rv_fail(err, "sending: %d is not a message kind", (int)kind);
    if (n > kinds[kind].limit)
        return rv_fail(err, "sending %s: %zu bytes, limit %zu", kinds[kind].name, n,
                       kinds[kind].limit);
    if (reserve(&c->send_buf, &c->send_cap, n ? n : 1, err)) return -1;
    if (n) memcpy(c->send_buf, buf, n);
    return send_packed(c, &dest, 1, kind, n, timeout_s, err);
}

/* The checked decoder of each kind. */
static int decode(comm_kind kind, const uint8_t *buf, size_t n, ProtobufCMessage **out, char *err) {
    switch (kind) {
    case COMM_QUERY_BATCH:
        return rv_query_batch_decode(buf, n, (Reveal__QueryBatch **)out, err);
    case COMM_TOPK_REPLY:
        return rv_topk_reply_decode(buf, n, (Reveal__TopKReply **)out, err);
    case COMM_ITEM_GRADS:
        return rv_item_grads_decode(buf, n, (Reveal__ItemGrads **)out, err);
    case COMM_CONTROL:
        return rv_control_decode(buf, n, (Reveal__Control **)out, err);
    case COMM_STATUS:
        return rv_status_decode(buf, n, (Reveal__Status **)out, err);
    }
    return rv_fail(err, "no decoder for kind %d", (int)kind);
}

/* Consumes a message that will not be decoded, so the channel stays usable. It is received
 * whole into a transient buffer: a truncating receive (into fewer bytes than were sent) makes
 * Open MPI 4.1's shared-memory single-copy path read past the buffer and crash. A message too
 * large to hold even briefly leaves the communicator broken. */
static void discard(comm *c, const MPI_Status *st, int count) {
    uint8_t *tmp = malloc(count > 0 ? (size_t)count : 1);
    if (!tmp) {
        char why[96];
        snprintf(why, sizeof why, "out of memory discarding a %d-byte message from rank %d", count,
                 st->MPI_SOURCE);
        mark_broken(c, why);
        return;
    }
    MPI_Recv(tmp, count, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, c->mpi, MPI_STATUS_IGNORE);
    free(tmp);
}

int comm_recv(comm *c, int source, unsigned kinds_mask, double timeout_s, comm_msg *out,
              char *err) {
    out->from = -1;
    out->kind = 0;
    out->msg = NULL;
    if (check_usable(c, err)) return -1;
    char text[MPI_MAX_ERROR_STRING];
    MPI_Status st;
    double start = rv_now();
    long pause = 20000;
    for (;;) {
        int flag = 0;
        int rc = MPI_Iprobe(source, MPI_ANY_TAG, c->mpi, &flag, &st);
        if (rc != MPI_SUCCESS)
            return rv_fail(err, "waiting for a message from %s: %s",
                           source == MPI_ANY_SOURCE ? "any rank" : comm_peer(c, source),
                           mpi_text(rc, text));
        if (flag) break;
        if (timeout_s > 0 && rv_now() - start > timeout_s)
            return rv_fail(err, "no message from %s within %.1f s (lost or hung)",
                           source == MPI_ANY_SOURCE ? "any rank" : comm_peer(c, source), timeout_s);
        poll_pause(&pause);
    }
    out->from = st.MPI_SOURCE;
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    const char *peer = comm_peer(c, st.MPI_SOURCE);
    if (!kind_known(st.MPI_TAG)) {
        discard(c, &st, count);
        return rv_fail(err, "message from %s: tag %d is not a message kind (%d bytes)", peer,
                       st.MPI_TAG, count);
    }
    comm_kind kind = (comm_kind)st.MPI_TAG;
    out->kind = kind;
    const char *kname = kinds[kind].name;
    if (!(kinds_mask & COMM_KIND_BIT(kind))) {
        discard(c, &st, count);
        return rv_fail(err, "%s from %s: not expected here (%d bytes)", kname, peer, count);
    }
    if (count < 0 || (size_t)count > kinds[kind].limit) {
        discard(c, &st, count);
        return rv_fail(err, "%s from %s: %d bytes, limit %zu", kname, peer, count,
                       kinds[kind].limit);
    }
    if (reserve(&c->recv_buf, &c->recv_cap, (size_t)count ? (size_t)count : 1, err)) {
        discard(c, &st, count);
        return rv_fail_wrap(err, "%s from %s", kname, peer);
    }
    int rc = MPI_Recv(c->recv_buf, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, c->mpi,
                      MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS)
        return rv_fail(err, "%s from %s: receiving %d bytes: %s", kname, peer, count,
                       mpi_text(rc, text));
    if (decode(kind, c->recv_buf, (size_t)count, &out->msg, err)) {
        out->msg = NULL;
        return rv_fail_wrap(err, "%s from %s", kname, peer);
    }
    return 0;
}

void comm_msg_free(comm_msg *m) {
    if (m->msg) protobuf_c_message_free_unpacked(m->msg, NULL);
    m->msg = NULL;
}

int comm_wait(comm *c, MPI_Request *req, double timeout_s, const char *what, char *err) {
    if (check_usable(c, err)) return -1;
    char text[MPI_MAX_ERROR_STRING];
    double start = rv_now();
    long pause = 20000;
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return rv_fail(err, "%s: %s", what, mpi_text(rc, text));
        if (done) return 0;
        if (timeout_s > 0 && rv_now() - start > timeout_s) {
            rv_fail(err, "%s did not complete within %.1f s (a rank lost or hung)", what,
                    timeout_s);
            mark_broken(c, err ? err : what);
            return -1;
        }
        poll_pause(&pause);
    }
}

int comm_agree(comm *c, const char *mine, char *err) {
    char own[RV_ERR_MAX] = "", verdict[RV_ERR_MAX] = "";
    if (mine) snprintf(own, sizeof own, "%s", mine);
    char *all = NULL;
    if (c->rank == COMM_ROOT) {
        all = malloc((size_t)c->size * RV_ERR_MAX);
        /* Without the buffer rank 0 still joins the collectives, and reports that. */
        if (!all) snprintf(verdict, sizeof verdict, "rank 0: out of memory gathering set-up");
    }
    char dummy[RV_ERR_MAX];
    int rc = MPI_Gather(own, RV_ERR_MAX, MPI_CHAR, all ? all : dummy, RV_ERR_MAX, MPI_CHAR,
                        COMM_ROOT, c->mpi);
    if (c->rank == COMM_ROOT && all && rc == MPI_SUCCESS) {
        /* Each failing rank once, rank order, as much as fits in one line. */
        size_t used = 0;
        int failed = 0;
        for (int r = 0; r < c->size; r++) {
            char *m = all + (size_t)r * RV_ERR_MAX;
            m[RV_ERR_MAX - 1] = '\0'; /* a peer's text is bounded whatever it sent */
            if (!m[0]) continue;
            int w = failed ? snprintf(verdict + used, sizeof verdict - used, "; ") : 0;
            if (w > 0 && (size_t)w < sizeof verdict - used) used += (size_t)w;
            w = r == COMM_ROOT
                    ? snprintf(verdict + used, sizeof verdict - used, "%s", m)
                    : snprintf(verdict + used, sizeof verdict - used, "%s: %s", comm_peer(c, r), m);
            if (w > 0)
                used = used + (size_t)w < sizeof verdict ? used + (size_t)w : sizeof verdict - 1;
            failed++;
        }
    }
    free(all);
    char text[MPI_MAX_ERROR_STRING];
    if (rc != MPI_SUCCESS) return rv_fail(err, "set-up agreement (gather): %s", mpi_text(rc, text));
    rc = MPI_Bcast(verdict, RV_ERR_MAX, MPI_CHAR, COMM_ROOT, c->mpi);
    if (rc != MPI_SUCCESS)
        return rv_fail(err, "set-up agreement (broadcast): %s", mpi_text(rc, text));
    verdict[RV_ERR_MAX - 1] = '\0';
    if (!verdict[0]) return 0;
    rv_fail(err, "%s", verdict);
    return c->rank == COMM_ROOT ? -1 : 1;
}
