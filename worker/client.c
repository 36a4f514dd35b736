/* worker/client.c — the coordinator's side of serving (worker.h, wrk_client_*): rank 0's part
 * of the set-up, one QueryBatch to every worker, their replies checked against the layout and
 * the shards of each source merged into one top-K, and the control commands. Every wait is
 * bounded by the reply timeout, so a lost worker is named instead of waited for. */
#include "comm.h"
#include "rv.h"
#include "worker.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wrk_client {
    comm *c;
    wrk_layout *l;
    double timeout_s;
    int *workers; /* (n_stores) ranks 1..W */
};

int wrk_client_open(comm *c, const char *layout_path, double reply_timeout_s, wrk_client **out,
                    char *err) {
    *out = NULL;
    if (comm_rank(c) != COMM_ROOT) return rv_fail(err, "the client runs on rank 0 only");
    rv_log_set_prefix("[rank 0 coordinator]");
    wrk_layout *l = NULL;
    int rc = wrk_layout_share(c, layout_path, &l, err);
    if (rc) return rc;
    /* The workers' verdicts on their stores; rank 0 has nothing to add. */
    rc = comm_agree(c, NULL, err);
    if (rc) {
        wrk_layout_free(l);
        return rc;
    }
    wrk_client *cl = calloc(1, sizeof *cl);
    int *workers = malloc(l->n_stores * sizeof *workers);
    if (!cl || !workers) {
        free(cl);
        free(workers);
        wrk_layout_free(l);
        return rv_fail(err, "client: out of memory");
    }
    for (size_t i = 0; i < l->n_stores; i++) {
        workers[i] = l->stores[i].rank;
        /* The map from rank to store, so any later report of a rank can be traced. */
        rv_info("%s serves store %s", comm_peer(c, workers[i]), l->stores[i].path);
    }
    cl->c = c;
    cl->l = l;
    cl->timeout_s = reply_timeout_s;
    cl->workers = workers;
    *out = cl;
    return 0;
}

void wrk_client_free(wrk_client *cl) {
    if (!cl) return;
    wrk_layout_free(cl->l);
    free(cl->workers);
    free(cl);
}

const wrk_layout *wrk_client_layout(const wrk_client *cl) {
    return cl->l;
}

void wrk_hits_free(wrk_hits *h) {
    for (size_t j = 0; h->sources && j < h->n_sources; j++) {
        free(h->sources[j].ids);
        free(h->sources[j].scores);
        free(h->sources[j].values);
    }
    free(h->sources);
    memset(h, 0, sizeof *h);
}

/* Names the workers that have not answered yet (got[i] == 0) in an error. */
static int fail_missing(wrk_client *cl, const unsigned char *got, const char *what, char *err) {
    char list[RV_ERR_MAX] = "";
    size_t used = 0, missing = 0;
    for (size_t i = 0; i < cl->l->n_stores; i++) {
        if (got[i]) continue;
        missing++;
        int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "",
                         comm_peer(cl->c, cl->workers[i]));
        if (w > 0 && used + (size_t)w < sizeof list) used += (size_t)w;
    }
    return rv_fail(err, "no %s from %s within %.1f s (lost or hung; %zu of %zu workers missing)",
                   what, list, cl->timeout_s, missing, cl->l->n_stores);
}

/* Receives one answer from every worker: TopKReply (or Status when want_status), each checked
 * for its sender; replies (W) are filled in layout order. A worker's failure (a Status
 * failure, a message that does not decode) is the error returned, but the wait goes on for the
 * other workers' answers, so none is left in flight to be mistaken for the answer to the next
 * request: after a refusal the client stays usable. Only a deadline ends the wait early. */
static int gather(wrk_client *cl, uint64_t step, int want_status, ProtobufCMessage **replies,
                  char *err) {
    size_t W = cl->l->n_stores;
    unsigned char *got = calloc(W, 1);
    if (!got) return rv_fail(err, "client: out of memory");
    unsigned kinds =
        COMM_KIND_BIT(COMM_STATUS) | (want_status ? 0 : COMM_KIND_BIT(COMM_TOPK_REPLY));
    const char *what = want_status ? "Status" : "TopKReply";
    char first[RV_ERR_MAX] = "", why[RV_ERR_MAX];
    double start = rv_now();
    for (size_t done = 0; done < W;) {
        double left = 0;
        if (cl->timeout_s > 0) left = cl->timeout_s - (rv_now() - start);
        comm_msg m;
        if ((cl->timeout_s > 0 && left <= 0) ||
            comm_recv(cl->c, MPI_ANY_SOURCE, kinds, left, &m, why)) {
            if (cl->timeout_s > 0 && left <= 0) m.from = -1;
            if (m.from < 0) { /* the deadline: name who is missing */
                fail_missing(cl, got, what, why);
                if (!first[0]) snprintf(first, sizeof first, "%s", why);
                break;
            }
        } else {
            why[0] = '\0';
        }
        const char *peer = comm_peer(cl->c, m.from);
        size_t i = (size_t)(m.from - 1);
        int counts = m.from >= 1 && i < W && !got[i]; /* a worker's first answer */
        if (why[0]) {
            /* a bad message: why names it */
        } else if (!counts) {
            rv_fail(why, "%s from %s: %s", comm_kind_name(m.kind), peer,
                    m.from < 1 || i >= W ? "not a worker" : "a second answer to one request");
        } else if (m.kind == COMM_STATUS) {
            const Reveal__Status *st = (const Reveal__Status *)m.msg;
            if (!st->ok)
                rv_fail(why, "%s could not serve step %llu: %s", peer, (unsigned long long)st->step,
                        st->message);
            else if (!want_status)
                rv_fail(why, "Status from %s: an acknowledgement where a TopKReply was due", peer);
            else if (st->step != step)
                rv_fail(why, "Status from %s: step %llu, expected %llu", peer,
                        (unsigned long long)st->step, (unsigned long long)step);
        }
        if (why[0] && !first[0]) snprintf(first, sizeof first, "%s", why);
        if (counts) {
            got[i] = 1;
            done++;
            if (!why[0]) {
                replies[i] = m.msg;
                m.msg = NULL;
            }
        }
        comm_msg_free(&m);
    }
    free(got);
    if (first[0]) return rv_fail(err, "%s", first);
    return 0;
}

/* A reply fits the request and its sender's place in the layout. */
static int check_reply(const wrk_client *cl, size_t i, const Reveal__TopKReply *r, uint64_t step,
                       uint32_t B, const uint32_t *k, char *err) {
    const wrk_layout_store *st = &cl->l->stores[i];
    const char *peer = comm_peer(cl->c, st->rank);
    if (r->source != st->source || r->shard != st->shard)
        return rv_fail(err, "TopKReply from %s: source %u shard %u, the layout gives it %u/%u",
                       peer, r->source, r->shard, st->source, st->shard);
    if (r->step != step || r->batch != B)
        return rv_fail(err, "TopKReply from %s: step %llu batch %u, expected step %llu batch %u",
                       peer, (unsigned long long)r->step, r->batch, (unsigned long long)step, B);
    if (r->k > k[st->source])
        return rv_fail(err, "TopKReply from %s: k is %u, %u were asked", peer, r->k, k[st->source]);
    return 0;
}

/* a ranks before b: score descending, then id ascending (wrk_topk_search's order). */
static int better(float sa, uint64_t ia, float sb, uint64_t ib) {
    return sa > sb || (sa == sb && ia < ib);
}

/* Merges the replies of the shards of source j into out (B, k). */
static int merge_source(wrk_client *cl, size_t j, Reveal__TopKReply **rep, uint32_t B, uint32_t K,
                        wrk_source_hits *out, char *err) {
    const wrk_layout_source *src = &cl->l->sources[j];
    Reveal__TopKReply **sh = rep + src->first; /* (n_shards) */
    size_t total = 0;
    for (uint32_t s = 0; s < src->n_shards; s++) {
        total += sh[s]->k;
        if (sh[s]->c != sh[0]->c || sh[s]->d != sh[0]->d)
            return rv_fail(err, "source %s: shard %u sends values of %u×%u, shard 0 of %u×%u",
                           src->name, s, sh[s]->c, sh[s]->d, sh[0]->c, sh[0]->d);
    }
    size_t k = total < K ? total : K, cd = (size_t)sh[0]->c * sh[0]->d;
    out->k = (uint32_t)k;
    out->c = sh[0]->c;
    out->d = sh[0]->d;
    size_t n = (size_t)B * k + 1; /* +1: never a zero-byte allocation */
    out->ids = malloc(n * sizeof *out->ids);
    out->scores = malloc(n * sizeof *out->scores);
    out->values = cd ? malloc(n * cd * sizeof *out->values) : NULL;
    size_t *at = calloc(src->n_shards, sizeof *at); /* (n_shards) next candidate per shard */
    if (!out->ids || !out->scores || (cd && !out->values) || !at) {
        free(at);
        return rv_fail(err, "source %s: out of memory merging %u×%zu results", src->name, B, k);
    }
    for (uint32_t b = 0; b < B; b++) {
        memset(at, 0, src->n_shards * sizeof *at);
        for (size_t r = 0; r < k; r++) {
            int best = -1;
            for (uint32_t s = 0; s < src->n_shards; s++) {
                if (at[s] >= sh[s]->k) continue;
                size_t x = (size_t)b * sh[s]->k + at[s];
                if (best < 0) {
                    best = (int)s;
                    continue;
                }
                size_t y = (size_t)b * sh[best]->k + at[best];
                if (better(sh[s]->scores[x], sh[s]->ids[x], sh[best]->scores[y], sh[best]->ids[y]))
                    best = (int)s;
            }
            const Reveal__TopKReply *w = sh[best];
            size_t x = (size_t)b * w->k + at[best]++, o = (size_t)b * k + r;
            out->ids[o] = w->ids[x];
            out->scores[o] = w->scores[x];
            if (cd) memcpy(out->values + o * cd, w->values + x * cd, cd * sizeof *out->values);
        }
    }
    free(at);
    return 0;
}

int wrk_client_search(wrk_client *cl, uint64_t step, const float *q, uint32_t B, uint32_t dk,
                      const uint32_t *k, wrk_hits *out, char *err) {
    memset(out, 0, sizeof *out);
    size_t W = cl->l->n_stores, S = cl->l->n_sources;
    Reveal__QueryBatch qb = REVEAL__QUERY_BATCH__INIT;
    qb.step = step;
    qb.batch = B;
    qb.dk = dk;
    qb.n_queries = (size_t)B * dk;
    qb.queries = (float *)q;
    qb.n_k = S;
    qb.k = (uint32_t *)k;
    if (rv_query_batch_check(&qb, err)) return -1;
    if (comm_send(cl->c, cl->workers, W, COMM_QUERY_BATCH, &qb.base, cl->timeout_s, err)) return -1;
    ProtobufCMessage **rep = calloc(W, sizeof *rep);
    if (!rep) return rv_fail(err, "client: out of memory");
    int rc = gather(cl, step, 0, rep, err);
    for (size_t i = 0; i < W && rc == 0; i++)
        rc = check_reply(cl, i, (Reveal__TopKReply *)rep[i], step, B, k, err);
    if (rc == 0) {
        out->batch = B;
        out->n_sources = S;
        out->sources = calloc(S, sizeof *out->sources);
        if (!out->sources) rc = rv_fail(err, "client: out of memory");
    }
    for (size_t j = 0; j < S && rc == 0; j++)
        rc = merge_source(cl, j, (Reveal__TopKReply **)rep, B, k[j], &out->sources[j], err);
    for (size_t i = 0; i < W; i++)
        if (rep[i]) protobuf_c_message_free_unpacked(rep[i], NULL);
    free(rep);
    if (rc) wrk_hits_free(out);
    return rc;
}

int wrk_client_control(wrk_client *cl, int command, uint64_t step, const char *path, uint64_t *keys,
                       char *err) {
    Reveal__Control ctl = REVEAL__CONTROL__INIT;
    ctl.command = (Reveal__ControlCommand)command;
    ctl.step = step;
    ctl.path = (char *)(path ? path : "");
    if (rv_control_check(&ctl, err)) return -1;
    size_t W = cl->l->n_stores;
    if (comm_send(cl->c, cl->workers, W, COMM_CONTROL, &ctl.base, cl->timeout_s, err)) return -1;
    if (command == REVEAL__CONTROL_COMMAND__SHUTDOWN) return 0;
    ProtobufCMessage **acks = calloc(W, sizeof *acks);
    if (!acks) return rv_fail(err, "client: out of memory");
    int rc = gather(cl, step, 1, acks, err);
    uint64_t total = 0;
    for (size_t i = 0; i < W; i++) {
        if (acks[i]) total += ((Reveal__Status *)acks[i])->keys;
        if (acks[i]) protobuf_c_message_free_unpacked(acks[i], NULL);
    }
    free(acks);
    if (rc == 0 && keys) *keys = total;
    return rc;
}

int wrk_client_shutdown(wrk_client *cl, char *err) {
    return wrk_client_control(cl, REVEAL__CONTROL_COMMAND__SHUTDOWN, 0, NULL, NULL, err);
}
