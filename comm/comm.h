/* comm/comm.h — the message transport between ranks: packed protobuf messages over MPI.
 *
 * One communicator per role (a duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN, so an MPI
 * failure comes back as an error, not an abort). Every message kind has its own tag and its
 * own size limit; a receive probes first (MPI_Probe semantics through MPI_Iprobe), refuses a
 * message over its kind's limit, receives into a buffer that grows, then runs the checked
 * decoder of proto/proto.h. Both directions take a deadline: a peer that stops reading or
 * writing is reported by rank and name ("rank 2 (worker kg shard 1)") and by how long it
 * was waited for. Errors name the peer, the message kind and what was wrong.
 *
 * Set-up failures: comm_agree is a collective that gathers every rank's outcome to rank 0
 * and broadcasts the verdict, so one rank's failure makes every rank stop, with one message
 * printed by rank 0 and no rank left waiting.
 *
 * A send that timed out leaves the communicator broken: its request and buffer are kept (MPI
 * may still read the buffer) and every later call fails. The process is then expected to
 * exit non-zero (or MPI_Abort). docs/distributed.md describes tags, limits and failures.
 */
#ifndef COMM_H
#define COMM_H

#include <mpi.h>
#include <stddef.h>

#include "proto.h"

/* Message kinds; each is sent with its own tag (the kind's number). */
typedef enum {
    COMM_QUERY_BATCH = 1, /* coordinator → workers */
    COMM_TOPK_REPLY = 2,  /* worker → coordinator */
    COMM_ITEM_GRADS = 3,  /* coordinator → worker */
    COMM_CONTROL = 4,     /* coordinator → workers */
    COMM_STATUS = 5,      /* worker → coordinator */
} comm_kind;
#define COMM_KIND_LAST   5
#define COMM_KIND_BIT(k) (1u << (k))

/* Largest packed size accepted per kind, in bytes (all below INT_MAX, MPI's count type). */
#define COMM_LIMIT_QUERY_BATCH (256u << 20)
#define COMM_LIMIT_TOPK_REPLY  (1u << 30)
#define COMM_LIMIT_ITEM_GRADS  (1u << 30)
#define COMM_LIMIT_CONTROL     (64u << 10)
#define COMM_LIMIT_STATUS      (128u << 10)

/* Rank of the coordinator. */
#define COMM_ROOT 0

typedef struct comm comm;

/* A received message: the sender, its kind and the decoded message. */
typedef struct {
    int from;
    comm_kind kind;
    ProtobufCMessage *msg; /* freed by comm_msg_free */
} comm_msg;

/* Duplicates MPI_COMM_WORLD for one role ("worker", "coordinator"); MPI must be initialised. */
int comm_create(const char *role, comm **out, char *err);
void comm_free(comm *c);
int comm_rank(const comm *c);
int comm_size(const comm *c);
/* The underlying communicator (for collectives of the caller's own, and for tests). */
MPI_Comm comm_mpi(const comm *c);

/* Names a peer in every later error ("worker kg shard 1"); the rank is always given too. */
void comm_set_peer_name(comm *c, int rank, const char *name);
/* "rank 2 (worker kg shard 1)", or "rank 2" for an unnamed peer. */
const char *comm_peer(const comm *c, int rank);

const char *comm_kind_name(comm_kind kind);
/* The size limit of a kind in bytes, 0 for a number that is not a kind. */
size_t comm_kind_limit(int kind);

/* Checks and packs `msg` (whose descriptor must match `kind`) once and sends it to each of
 * the n_dests ranks. timeout_s > 0 bounds the wait for every peer to take it; ≤ 0 waits
 * without bound. */
int comm_send(comm *c, const int *dests, size_t n_dests, comm_kind kind,
              const ProtobufCMessage *msg, double timeout_s, char *err);
/* Sends bytes as they are, under a kind's tag (the size limit still applies): for forwarding
 * packed messages, and for tests of what a receiver does with bad bytes. */
int comm_send_bytes(comm *c, int dest, comm_kind kind, const void *buf, size_t n, double timeout_s,
                    char *err);

/* Receives one message from `source` (a rank or MPI_ANY_SOURCE) of one of the kinds in the
 * mask `kinds` (COMM_KIND_BIT). timeout_s > 0 bounds the wait; ≤ 0 waits without bound.
 * Returns 0 with *out filled; -1 on a timeout (out->from = -1) or on a bad message, which is
 * consumed so the channel stays usable, with out->from and out->kind naming where it came
 * from (kind 0 for a tag that is not a kind) and out->msg NULL. */
int comm_recv(comm *c, int source, unsigned kinds, double timeout_s, comm_msg *out, char *err);
void comm_msg_free(comm_msg *m);

/* Waits for a non-blocking operation on this communicator (a collective the caller started,
 * e.g. MPI_Iallreduce) by polling with short sleeps, as the receives do: a rank that waits
 * gives its core to the ranks still computing, which matters when ranks outnumber cores.
 * `what` names the operation in errors. timeout_s > 0 bounds the wait; on a timeout the
 * request cannot be taken back, so the communicator is left broken. */
int comm_wait(comm *c, MPI_Request *req, double timeout_s, const char *what, char *err);

/* Collective set-up verdict: every rank passes its own failure (NULL or "" when it is fine).
 * Returns 0 when every rank is fine. Otherwise rank 0 returns -1 with err naming each
 * failing rank and its reason (the one message to print), and the other ranks return 1 with
 * the same text in err, for their logs only: rank 0 reports it. */
int comm_agree(comm *c, const char *mine, char *err);

#endif
