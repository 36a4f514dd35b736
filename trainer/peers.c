/* trainer/peers.c — the ranks of a job and what passes between them: the layout and which rank
 * owns which store, the stores' texts gathered for the tokenizer, query batches out and top-K
 * replies back (in-process for the shards rank 0 owns), item gradients, control commands, the
 * gradient all-reduce and the parameter checksum, and the worker ranks' serving loop. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "memstore.h"
#include "rv.h"
#include "tr_impl.h"

#define LAYOUT_MAX (16u << 20)

int tr_job_layout(tr_job *j, const char *path, char *err) {
    char mine[RV_ERR_MAX] = "";
    void *text = NULL;
    size_t n = 0;
    unsigned long long len = 0;
    if (j->rank == 0) {
        if (rv_read_file(path, LAYOUT_MAX, &text, &n, mine) == 0) len = n;
    }
    int rc = comm_agree(j->c, mine, err);
    if (rc) return rc;
    MPI_Bcast(&len, 1, MPI_UNSIGNED_LONG_LONG, 0, comm_mpi(j->c));
    if (j->rank) text = malloc(len + 1);
    if (!text) return rv_fail(err, "out of memory for the layout");
    MPI_Bcast(text, (int)len, MPI_BYTE, 0, comm_mpi(j->c));
    if (wrk_layout_parse(text, len, path, &j->l, mine) == 0) {
        size_t S = j->l->n_stores;
        if (j->W > (int)S)
            rv_fail(mine,
                    "%d worker ranks but the layout %s has only %zu stores: run -np %zu or "
                    "fewer",
                    j->W, path, S, S + 1);
        else if (j->l->n_sources > 16)
            rv_fail(mine, "the layout %s has %zu sources, at most 16 are supported", path,
                    j->l->n_sources);
    }
    free(text);
    /* every rank parsed the same bytes: rank 0 alone reports what is wrong with them */
    rc = comm_agree(j->c, j->rank == 0 ? mine : "", err);
    if (rc) return rc;
    j->owner = calloc(j->l->n_stores, sizeof *j->owner);
    j->shards = calloc(j->l->n_stores, sizeof *j->shards);
    j->replies = calloc(j->l->n_stores, sizeof *j->replies);
    j->reply_msgs = calloc(j->l->n_stores, sizeof *j->reply_msgs);
    if (!j->owner || !j->shards || !j->replies || !j->reply_msgs)
        return rv_fail(err, "out of memory");
    for (size_t i = 0; i < j->l->n_stores; i++) {
        j->owner[i] = j->W ? 1 + (int)(i % (size_t)j->W) : 0;
        char name[96];
        wrk_layout_role_name(j->l, 1 + (int)i, name, sizeof name);
        if (j->owner[i]) comm_set_peer_name(j->c, j->owner[i], name);
    }
    return 0;
}

/* The working copy of store i in the run directory: "<dir>/<source>-<shard>". */
static void work_path(const tr_job *j, size_t i, const char *dir, char *buf, size_t cap) {
    const wrk_layout_store *st = &j->l->stores[i];
    snprintf(buf, cap, "%s/%s-%u", dir, j->l->sources[st->source].name, st->shard);
}

int tr_job_open_shards(tr_job *j, const char *work_dir, int writable, char *err) {
    char mine[RV_ERR_MAX] = "";
    for (size_t i = 0; i < j->l->n_stores && !mine[0]; i++) {
        if (j->owner[i] != j->rank) continue;
        char path[2 * TR_PATH_MAX];
        if (work_dir) {
            work_path(j, i, work_dir, path, sizeof path);
            if (access(path, F_OK) != 0) {
                /* first run: a consistent copy of the user's store, which training never writes */
                mem_store *orig = NULL;
                if (rv_mkdirs(work_dir, mine) || mem_open(j->l->stores[i].path, 1, &orig, mine) ||
                    mem_checkpoint(orig, path, mine)) {
                    mem_close(orig);
                    rv_fail_wrap(mine, "working copy of store %s", j->l->stores[i].path);
                    break;
                }
                mem_close(orig);
            }
        }
        tr_shard_open(j->l, (uint32_t)i, work_dir ? path : NULL, writable,
                      (uint32_t)j->cfg.image_size, &j->shards[i], mine);
    }
    return comm_agree(j->c, mine, err);
}

/* A shard's item texts as one blob of NUL-terminated strings (malloc'ed), *bytes long. */
static char *texts_blob(const tr_shard *s, size_t *bytes) {
    *bytes = 0;
    for (size_t k = 0; k < tr_shard_count(s); k++) *bytes += strlen(tr_shard_text(s, k)) + 1;
    char *blob = malloc(*bytes ? *bytes : 1), *p = blob;
    for (size_t k = 0; blob && k < tr_shard_count(s); k++) {
        size_t l = strlen(tr_shard_text(s, k)) + 1;
        memcpy(p, tr_shard_text(s, k), l);
        p += l;
    }
    return blob;
}

/* Texts of every store's items in layout order: workers send theirs as one blob of
 * NUL-terminated strings per store. */
int tr_job_gather_texts(tr_job *j, char ***texts, size_t *n, char *err) {
    *texts = NULL;
    *n = 0;
    MPI_Comm mc = comm_mpi(j->c);
    if (j->rank) {
        for (size_t i = 0; i < j->l->n_stores; i++) {
            if (j->owner[i] != j->rank) continue;
            tr_shard *s = j->shards[i];
            size_t bytes;
            char *blob = texts_blob(s, &bytes);
            if (!blob) return rv_fail(err, "out of memory");
            if (bytes > (size_t)INT32_MAX) {
                free(blob);
                return rv_fail(err, "store %s: %zu bytes of text, more than one message holds",
                               tr_shard_name(s), bytes);
            }
            int rc = MPI_Send(blob, (int)bytes, MPI_BYTE, 0, TR_TAG_TEXTS, mc);
            free(blob);
            if (rc != MPI_SUCCESS) return rv_fail(err, "sending the texts of %s", tr_shard_name(s));
        }
        return 0;
    }
    size_t cap = 0;
    char **out = NULL;
    for (size_t i = 0; i < j->l->n_stores; i++) {
        char *blob = NULL;
        size_t bytes = 0;
        if (j->owner[i] == 0) {
            if (!(blob = texts_blob(j->shards[i], &bytes))) return rv_fail(err, "out of memory");
        } else {
            MPI_Status st;
            int count = 0;
            if (MPI_Probe(j->owner[i], TR_TAG_TEXTS, mc, &st) != MPI_SUCCESS ||
                MPI_Get_count(&st, MPI_BYTE, &count) != MPI_SUCCESS)
                return rv_fail(err, "texts of store %zu from %s", i, comm_peer(j->c, j->owner[i]));
            bytes = (size_t)count;
            blob = malloc(bytes ? bytes : 1);
            if (!blob) return rv_fail(err, "out of memory");
            if (MPI_Recv(blob, count, MPI_BYTE, j->owner[i], TR_TAG_TEXTS, mc, MPI_STATUS_IGNORE) !=
                MPI_SUCCESS) {
                free(blob);
                return rv_fail(err, "texts of store %zu from %s", i, comm_peer(j->c, j->owner[i]));
            }
        }
        for (char *p = blob; p < blob + bytes; p += strlen(p) + 1) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 1024;
                char **g = realloc(out, cap * sizeof *g);
                if (!g) {
                    free(blob);
                    return rv_fail(err, "out of memory");
                }
                out = g;
            }
            out[(*n)++] = strdup(p);
        }
        free(blob);
        *texts = out;
    }
    *texts = out;
    return 0;
}

int tr_job_bcast_bytes(tr_job *j, void **buf, size_t *n, char *err) {
    unsigned long long len = j->rank == 0 ? *n : 0;
    MPI_Comm mc = comm_mpi(j->c);
    if (MPI_Bcast(&len, 1, MPI_UNSIGNED_LONG_LONG, 0, mc) != MPI_SUCCESS)
        return rv_fail(err, "broadcast of a length failed");
    if (j->rank) {
        *buf = malloc(len ? len : 1);
        *n = len;
        if (!*buf) return rv_fail(err, "out of memory for %llu bytes", len);
    }
    for (unsigned long long off = 0; off < len; off += 1u << 30) {
        unsigned long long part = len - off < (1u << 30) ? len - off : (1u << 30);
        if (MPI_Bcast((char *)*buf + off, (int)part, MPI_BYTE, 0, mc) != MPI_SUCCESS)
            return rv_fail(err, "broadcast of %llu bytes failed", len);
    }
    return 0;
}

static int status_error(const comm_msg *m, tr_job *j, char *err) {
    const Reveal__Status *st = (const Reveal__Status *)m->msg;
    return rv_fail(err, "%s failed: %s", comm_peer(j->c, m->from), st->message);
}

void tr_exchange_release(tr_job *j) {
    for (size_t i = 0; i < j->l->n_stores; i++) {
        if (j->reply_msgs[i].msg) comm_msg_free(&j->reply_msgs[i]);
        memset(&j->reply_msgs[i], 0, sizeof j->reply_msgs[i]);
        j->replies[i] = NULL;
    }
}

int tr_exchange(tr_job *j, const Reveal__QueryBatch *q, char *err) {
    tr_exchange_release(j);
    size_t S = j->l->n_stores, remote = 0;
    if (j->W) {
        int *dests = malloc((size_t)j->W * sizeof *dests);
        if (!dests) return rv_fail(err, "out of memory");
        for (int r = 0; r < j->W; r++) dests[r] = 1 + r;
        int rc =
            comm_send(j->c, dests, (size_t)j->W, COMM_QUERY_BATCH, &q->base, j->timeout_s, err);
        free(dests);
        if (rc) return rc;
    }
    for (size_t i = 0; i < S; i++) {
        if (j->owner[i]) {
            remote++;
            continue;
        }
        if (tr_shard_serve(j->shards[i], q, &j->replies[i], err)) return -1;
    }
    for (size_t got = 0; got < remote; got++) {
        comm_msg m;
        if (comm_recv(j->c, MPI_ANY_SOURCE,
                      COMM_KIND_BIT(COMM_TOPK_REPLY) | COMM_KIND_BIT(COMM_STATUS), j->timeout_s, &m,
                      err))
            return rv_fail_wrap(err, "waiting for the top-K replies of step %llu",
                                (unsigned long long)q->step);
        if (m.kind == COMM_STATUS) {
            status_error(&m, j, err);
            comm_msg_free(&m);
            return -1;
        }
        const Reveal__TopKReply *r = (const Reveal__TopKReply *)m.msg;
        const char *why = NULL;
        if (r->shard >= S || j->owner[r->shard] != m.from)
            why = "a store it does not own";
        else if (j->replies[r->shard])
            why = "a store that already replied";
        else if (r->step != q->step || r->batch != q->batch)
            why = "another step or batch";
        else if (r->source != j->l->stores[r->shard].source)
            why = "the wrong source";
        if (why) {
            rv_fail(err, "%s sent a TopKReply for %s (store %u, step %llu)",
                    comm_peer(j->c, m.from), why, r->shard, (unsigned long long)r->step);
            comm_msg_free(&m);
            return -1;
        }
        j->reply_msgs[r->shard] = m;
        j->replies[r->shard] = (Reveal__TopKReply *)m.msg;
    }
    return 0;
}

int tr_send_grads(tr_job *j, Reveal__ItemGrads *const *g, char *err) {
    for (size_t i = 0; i < j->l->n_stores; i++) {
        if (j->owner[i] == 0) {
            if (tr_shard_apply(j->shards[i], g[i], (uint32_t)j->step, err)) return -1;
        } else if (comm_send(j->c, &j->owner[i], 1, COMM_ITEM_GRADS, &g[i]->base, j->timeout_s,
                             err))
            return -1;
    }
    return 0;
}

/* A control command on this rank's stores; *done (may be NULL) adds the items it encoded. */
static int run_control(tr_job *j, const Reveal__Control *ctl, uint64_t *done, char *err) {
    uint32_t version = ctl->version ? ctl->version : (uint32_t)ctl->step;
    for (size_t i = 0; i < j->l->n_stores; i++) {
        if (j->owner[i] != j->rank) continue;
        tr_shard *s = j->shards[i];
        size_t n = 0;
        if (ctl->command == REVEAL__CONTROL_COMMAND__EDIT) {
            char file[2 * TR_PATH_MAX];
            snprintf(file, sizeof file, "%s/%s.jsonl", ctl->path,
                     j->l->sources[j->l->stores[i].source].name);
            if (tr_shard_edit(s, ctl->path[0] ? file : NULL, !ctl->no_encode, version, &n, err))
                return -1;
        } else if (ctl->command == REVEAL__CONTROL_COMMAND__REFRESH) {
            double t0 = rv_now();
            if (tr_shard_refresh(s, !ctl->stale_only, version, &n, err)) return -1;
            if (ctl->stale_only || n > 1000)
                rv_info("%s: %zu of %zu items encoded in %.1f s", tr_shard_name(s), n,
                        tr_shard_count(s), rv_now() - t0);
        } else if (ctl->command == REVEAL__CONTROL_COMMAND__CHECKPOINT) {
            char dir[2 * TR_PATH_MAX], dest[3 * TR_PATH_MAX];
            snprintf(dir, sizeof dir, "%s/stores", ctl->path);
            work_path(j, i, dir, dest, sizeof dest);
            if (rv_mkdirs(dir, err) || mem_sync(tr_shard_store(s), err) ||
                mem_checkpoint(tr_shard_store(s), dest, err))
                return rv_fail_wrap(err, "checkpoint of %s", tr_shard_name(s));
        }
        if (done) *done += n;
    }
    if (ctl->command == REVEAL__CONTROL_COMMAND__REFRESH)
        for (size_t i = 0; i < j->l->n_stores; i++)
            if (j->owner[i] == j->rank && mem_sync(tr_shard_store(j->shards[i]), err)) return -1;
    return 0;
}

int tr_control_msg(tr_job *j, const Reveal__Control *ctl, uint64_t *done, char *err) {
    if (done) *done = 0;
    if (ctl->command != REVEAL__CONTROL_COMMAND__SHUTDOWN && run_control(j, ctl, done, err))
        return -1;
    if (!j->W) return 0;
    int *dests = malloc((size_t)j->W * sizeof *dests);
    if (!dests) return rv_fail(err, "out of memory");
    for (int r = 0; r < j->W; r++) dests[r] = 1 + r;
    int rc = comm_send(j->c, dests, (size_t)j->W, COMM_CONTROL, &ctl->base, j->timeout_s, err);
    free(dests);
    if (rc || ctl->command == REVEAL__CONTROL_COMMAND__SHUTDOWN) return rc;
    for (int got = 0; got < j->W; got++) {
        comm_msg m;
        /* a refresh of a large store takes long: wait for it without the reply deadline */
        double limit =
            ctl->command == REVEAL__CONTROL_COMMAND__REFRESH && ctl->version ? 0 : j->timeout_s;
        if (comm_recv(j->c, MPI_ANY_SOURCE, COMM_KIND_BIT(COMM_STATUS), limit, &m, err))
            return rv_fail_wrap(err, "waiting for the workers after control %d", ctl->command);
        const Reveal__Status *st = (const Reveal__Status *)m.msg;
        if (!st->ok || st->step != ctl->step) {
            rv_fail(err, "%s: control %d at step %llu: %s", comm_peer(j->c, m.from), ctl->command,
                    (unsigned long long)ctl->step, st->ok ? "answered another step" : st->message);
            comm_msg_free(&m);
            return -1;
        }
        if (done) *done += st->keys;
        comm_msg_free(&m);
    }
    return 0;
}

int tr_control_ex(tr_job *j, int command, uint64_t step, const char *path, int encode, char *err) {
    Reveal__Control ctl = REVEAL__CONTROL__INIT;
    ctl.command = command;
    ctl.step = step;
    ctl.path = (char *)(path ? path : "");
    ctl.no_encode = !encode;
    return tr_control_msg(j, &ctl, NULL, err);
}

int tr_control(tr_job *j, int command, uint64_t step, const char *path, char *err) {
    return tr_control_ex(j, command, step, path, 1, err);
}

int tr_allreduce_grads(tr_job *j, char *err) {
    if (!j->W) return 0;
    float *g = j->model.params.grads;
    size_t total = j->model.params.total, bucket = (size_t)1 << 22;
    for (size_t off = 0; off < total; off += bucket) {
        int n = (int)(total - off < bucket ? total - off : bucket);
        MPI_Request req;
        char what[64];
        snprintf(what, sizeof what, "the gradient all-reduce of step %ld", j->step);
        if (MPI_Iallreduce(MPI_IN_PLACE, g + off, n, MPI_FLOAT, MPI_SUM, comm_mpi(j->c), &req) !=
            MPI_SUCCESS)
            return rv_fail(err, "%s failed to start", what);
        if (comm_wait(j->c, &req, j->timeout_s, what, err)) return -1;
    }
    return 0;
}

int tr_checksum(tr_job *j, char *err) {
    if (!j->W) return 0;
    uint64_t mine = XXH3_64bits(j->model.params.params, j->model.params.total * sizeof(float));
    uint64_t *all = malloc((size_t)j->size * sizeof *all);
    if (!all) return rv_fail(err, "out of memory");
    int rc = 0;
    if (MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, comm_mpi(j->c)) != MPI_SUCCESS)
        rc = rv_fail(err, "parameter checksum exchange failed at step %ld", j->step);
    for (int r = 1; r < j->size && rc == 0; r++)
        if (all[r] != all[0])
            rc = rv_fail(err,
                         "parameters diverged at step %ld: %s has checksum %016llx, rank 0 has "
                         "%016llx",
                         j->step, comm_peer(j->c, r), (unsigned long long)all[r],
                         (unsigned long long)all[0]);
    free(all);
    return rc;
}

int tr_apply_update(tr_job *j, trn_adamw_stats *st, char *err) {
    if (tr_allreduce_grads(j, err)) return -1;
    if (trn_adamw_step(&j->model.params, &j->opt, j->step, st, err))
        return rv_fail_wrap(err, "update %ld", j->step);
    memset(j->model.params.grads, 0, j->model.params.total * sizeof(float));
    j->step++;
    if (j->cfg.checksum_every > 0 && j->step % j->cfg.checksum_every == 0)
        return tr_checksum(j, err);
    return 0;
}

static int send_status(tr_job *j, int ok, uint64_t step, uint64_t done, const char *why,
                       char *err) {
    Reveal__Status st = REVEAL__STATUS__INIT;
    st.rank = (uint32_t)j->rank;
    st.ok = ok;
    st.step = step;
    st.keys = done;
    st.message = (char *)(why ? why : "");
    int to = 0;
    return comm_send(j->c, &to, 1, COMM_STATUS, &st.base, j->timeout_s, err);
}

int tr_worker_loop(tr_job *j, char *err) {
    int pending = 0, mine = 0;
    for (size_t i = 0; i < j->l->n_stores; i++) mine += j->owner[i] == j->rank;
    unsigned kinds = COMM_KIND_BIT(COMM_QUERY_BATCH) | COMM_KIND_BIT(COMM_ITEM_GRADS) |
                     COMM_KIND_BIT(COMM_CONTROL);
    for (;;) {
        comm_msg m;
        char why[RV_ERR_MAX] = "";
        if (comm_recv(j->c, 0, kinds, 0, &m, why)) return rv_fail(err, "%s", why);
        int rc = 0;
        if (m.kind == COMM_QUERY_BATCH) {
            const Reveal__QueryBatch *q = (const Reveal__QueryBatch *)m.msg;
            for (size_t i = 0; i < j->l->n_stores && rc == 0; i++) {
                if (j->owner[i] != j->rank) continue;
                Reveal__TopKReply *r;
                int to = 0;
                if (tr_shard_serve(j->shards[i], q, &r, why)) {
                    rc = -1;
                    send_status(j, 0, q->step, 0, why, err);
                } else
                    rc = comm_send(j->c, &to, 1, COMM_TOPK_REPLY, &r->base, j->timeout_s, why);
            }
            if (q->train) pending = mine;
        } else if (m.kind == COMM_ITEM_GRADS) {
            const Reveal__ItemGrads *g = (const Reveal__ItemGrads *)m.msg;
            if (g->source >= j->l->n_stores || j->owner[g->source] != j->rank || !pending)
                rc = rv_fail(why, "ItemGrads for store %u at step %llu: not expected here",
                             g->source, (unsigned long long)g->step);
            else if (tr_shard_apply(j->shards[g->source], g, (uint32_t)j->step, why))
                rc = -1;
            else if (--pending == 0)
                rc = tr_apply_update(j, NULL, why);
        } else {
            const Reveal__Control *ctl = (const Reveal__Control *)m.msg;
            if (ctl->command == REVEAL__CONTROL_COMMAND__SHUTDOWN) {
                comm_msg_free(&m);
                return 0;
            }
            uint64_t done = 0;
            rc = run_control(j, ctl, &done, why);
            if (send_status(j, rc == 0, ctl->step, done, why, err)) rc = -1;
        }
        comm_msg_free(&m);
        if (rc) return rv_fail(err, "%s", why[0] ? why : err);
    }
}
