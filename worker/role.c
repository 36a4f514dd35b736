/* worker/role.c — a worker rank: the set-up it takes part in (layout, its store, its keys),
 * then the serving loop (worker.h, wrk_role_run). A message it cannot serve is answered with
 * a Status failure naming the sender and the field, and the loop goes on: rank 0 decides
 * whether the job stops. */
#include "comm.h"
#include "memstore.h"
#include "rv.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    comm *c;
    const wrk_layout *l;
    const wrk_layout_store *st;
    const wrk_role_options *o;
    char name[96]; /* "worker kg shard 1" */
    mem_store *s;
    wrk_topk *ix;    /* NULL while the store has no keys */
    uint32_t dk;     /* key width, 0 without keys */
    uint32_t vc, vd; /* value shape (c, d), 0 when the store holds no values */
    /* scratch of the last batch, grown as needed */
    uint64_t *ids; /* (B, K) */
    float *scores; /* (B, K) */
    float *values; /* (B, K, c, d) */
    size_t cap_ids, cap_scores, cap_values;
} role;

/* What a store holds, found by one pass over its items. */
typedef struct {
    uint64_t items, without_key, without_value;
    uint32_t dk, vc, vd;
} key_census;

static int fail_item(char *err, const char *path, uint64_t id, const char *what, uint32_t r,
                     uint32_t cols, uint32_t want_r, uint32_t want_cols) {
    return rv_fail(err, "store %s: item 0x%016llx has a %s of %u×%u, earlier items %u×%u", path,
                   (unsigned long long)id, what, r, cols, want_r, want_cols);
}

/* Loads the keys of every item that can be served into a new index: an item needs a key, and
 * a value too when the store holds values (a reply carries the values of what it returns). */
static int load_keys(mem_store *s, wrk_topk **out, key_census *kc, char *err) {
    *out = NULL;
    memset(kc, 0, sizeof *kc);
    const char *path = mem_path(s);
    mem_iter *it = NULL;
    uint64_t *ids = NULL, id;
    unsigned char *has_value = NULL;
    float *keys = NULL;
    size_t n = 0, cap = 0;
    wrk_topk *ix = NULL;
    int rc = -1, more;
    Reveal__KnowledgeItem *item;
    if (mem_iter_new(s, 0, &it, err)) goto cleanup;
    while ((more = mem_iter_next(it, &id, &item, err)) == 1) {
        reveal__knowledge_item__free_unpacked(item, NULL);
        kc->items++;
        mem_vector_info ki, vi;
        if (mem_get_vector_info(s, id, &ki, &vi, err)) goto cleanup;
        if (vi.present) {
            if (!kc->vc) {
                kc->vc = vi.rows;
                kc->vd = vi.cols;
            } else if (vi.rows != kc->vc || vi.cols != kc->vd) {
                fail_item(err, path, id, "value", vi.rows, vi.cols, kc->vc, kc->vd);
                goto cleanup;
            }
        }
        if (!ki.present) {
            kc->without_key++;
            continue;
        }
        if (!kc->dk) kc->dk = ki.cols;
        if (ki.rows != 1 || ki.cols != kc->dk) {
            fail_item(err, path, id, "key", ki.rows, ki.cols, 1, kc->dk);
            goto cleanup;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            uint64_t *gi = realloc(ids, cap * sizeof *gi);
            if (gi) ids = gi;
            unsigned char *gv = realloc(has_value, cap);
            if (gv) has_value = gv;
            if (!gi || !gv) {
                rv_fail(err, "store %s: out of memory listing %zu keys", path, cap);
                goto cleanup;
            }
        }
        ids[n] = id;
        has_value[n++] = (unsigned char)vi.present;
    }
    if (more < 0) goto cleanup;
    /* Keys without a value are left out once any item has one. */
    size_t served = 0;
    for (size_t i = 0; i < n; i++) {
        if (kc->vc && !has_value[i])
            kc->without_value++;
        else
            ids[served++] = ids[i];
    }
    if (served) {
        keys = malloc(served * kc->dk * sizeof *keys); /* (served, dk) */
        if (!keys) {
            rv_fail(err, "store %s: out of memory for %zu keys of %u floats", path, served, kc->dk);
            goto cleanup;
        }
        for (size_t i = 0; i < served; i++) {
            int got =
                mem_get_vectors(s, ids[i], keys + i * kc->dk, kc->dk, NULL, NULL, 0, 0, NULL, err);
            if (got < 0) goto cleanup;
            if (got == 0) {
                rv_fail(err, "store %s: the key of item 0x%016llx vanished while loading", path,
                        (unsigned long long)ids[i]);
                goto cleanup;
            }
        }
        if (wrk_topk_create(kc->dk, &ix, err) || wrk_topk_add(ix, ids, keys, served, err)) {
            rv_fail_wrap(err, "store %s: loading keys", path);
            goto cleanup;
        }
    }
    *out = ix;
    ix = NULL;
    rc = 0;
cleanup:
    wrk_topk_free(ix);
    mem_iter_free(it);
    free(ids);
    free(has_value);
    free(keys);
    return rc;
}

/* Installs a loaded index and its shapes, and says what is served. */
static void install(role *r, wrk_topk *ix, const key_census *kc) {
    wrk_topk_free(r->ix);
    r->ix = ix;
    r->dk = kc->dk;
    r->vc = kc->vc;
    r->vd = kc->vd;
    size_t keys = ix ? wrk_topk_count(ix) : 0;
    rv_info("loaded %zu keys (dk %u, values %u×%u) of %llu items from %s; %llu without a key, "
            "%llu with a key but no value (not served)",
            keys, kc->dk, kc->vc, kc->vd, (unsigned long long)kc->items, r->st->path,
            (unsigned long long)kc->without_key, (unsigned long long)kc->without_value);
    if (!keys) rv_warn("store %s has no keys to serve: queries will be refused", r->st->path);
}

static int send_status(role *r, int ok, uint64_t step, const char *message, char *err) {
    Reveal__Status st = REVEAL__STATUS__INIT;
    st.rank = (uint32_t)comm_rank(r->c);
    st.ok = ok;
    st.step = step;
    st.message = (char *)(message ? message : "");
    st.keys = r->ix ? wrk_topk_count(r->ix) : 0;
    int to = COMM_ROOT;
    return comm_send(r->c, &to, 1, COMM_STATUS, &st.base, r->o->send_timeout_s, err);
}

static int grow(void **p, size_t *cap, size_t n, size_t elem, char *err) {
    if (n <= *cap && *p) return 0;
    void *q = realloc(*p, (n ? n : 1) * elem);
    if (!q) return rv_fail(err, "out of memory for %zu scratch entries", n);
    *p = q;
    *cap = n;
    return 0;
}

/* QueryBatch → TopKReply. A request this worker cannot serve fills err (sent back as a
 * Status); a failure to send the reply sets *fatal. */
static int answer(role *r, const Reveal__QueryBatch *q, int *fatal, char *err) {
    const wrk_layout_source *src = &r->l->sources[r->st->source];
    if (!r->ix)
        return rv_fail(err, "QueryBatch step %llu: %s has no keys to search",
                       (unsigned long long)q->step, r->name);
    if (q->dk != r->dk)
        return rv_fail(err, "QueryBatch from rank 0: dk is %u, the keys of %s have %u", q->dk,
                       r->st->path, r->dk);
    if (q->n_k != r->l->n_sources)
        return rv_fail(err, "QueryBatch from rank 0: k lists %zu sources, the layout has %zu",
                       q->n_k, r->l->n_sources);
    size_t B = q->batch, K = q->k[r->st->source], k = 0;
    size_t cd = (size_t)r->vc * r->vd;
    if (grow((void **)&r->ids, &r->cap_ids, B * K, sizeof *r->ids, err) ||
        grow((void **)&r->scores, &r->cap_scores, B * K, sizeof *r->scores, err))
        return -1;
    double t0 = rv_now();
    if (wrk_topk_search(r->ix, q->queries, B, K, r->ids, r->scores, &k, err))
        return rv_fail_wrap(err, "QueryBatch step %llu", (unsigned long long)q->step);
    if (cd) {
        if (grow((void **)&r->values, &r->cap_values, B * k * cd, sizeof *r->values, err))
            return -1;
        for (size_t i = 0; i < B * k; i++) {
            int got = mem_get_vectors(r->s, r->ids[i], NULL, 0, NULL, r->values + i * cd, r->vc,
                                      r->vd, NULL, err);
            if (got < 0)
                return rv_fail_wrap(err, "reading values for step %llu",
                                    (unsigned long long)q->step);
            if (got == 0)
                return rv_fail(err,
                               "store %s: item 0x%016llx lost its value since the keys were "
                               "loaded (REFRESH reloads them)",
                               r->st->path, (unsigned long long)r->ids[i]);
        }
    }
    double t1 = rv_now();
    Reveal__TopKReply rep = REVEAL__TOP_KREPLY__INIT;
    rep.source = r->st->source;
    rep.shard = r->st->shard;
    rep.step = q->step;
    rep.batch = (uint32_t)B;
    rep.k = (uint32_t)k;
    rep.n_ids = rep.n_scores = B * k;
    rep.ids = r->ids;
    rep.scores = r->scores;
    rep.c = cd ? r->vc : 0;
    rep.d = cd ? r->vd : 0;
    rep.n_values = B * k * cd;
    rep.values = cd ? r->values : NULL;
    rep.dk = r->dk;
    if (rv_topk_reply_check(&rep, err))
        return rv_fail_wrap(err, "reply of %s (source %s)", r->name, src->name);
    int to = COMM_ROOT;
    double t2 = rv_now();
    if (comm_send(r->c, &to, 1, COMM_TOPK_REPLY, &rep.base, r->o->send_timeout_s, err)) {
        *fatal = 1;
        return -1;
    }
    rv_debug("step %llu: B %zu k %zu: top-K and values %.2f ms, check %.2f ms, send %.2f ms",
             (unsigned long long)q->step, B, k, 1e3 * (t1 - t0), 1e3 * (t2 - t1),
             1e3 * (rv_now() - t2));
    return 0;
}

/* REFRESH: the keys as the store holds them now. A read-only handle sees the store as it
 * was opened, so it is reopened; the old index and handle serve on if the reload fails. */
static int refresh(role *r, char *err) {
    mem_store *s = r->s;
    if (!r->o->writable && wrk_layout_open_store(r->l, comm_rank(r->c), 1, &s, err)) return -1;
    wrk_topk *ix;
    key_census kc;
    if (load_keys(s, &ix, &kc, err)) {
        if (s != r->s) mem_close(s);
        return -1;
    }
    if (s != r->s) {
        mem_close(r->s);
        r->s = s;
    }
    install(r, ix, &kc);
    return 0;
}

static int checkpoint(role *r, const char *dir, char *err) {
    char dest[RV_PROTO_PATH_MAX + 96];
    snprintf(dest, sizeof dest, "%s/%s-%u", dir, r->l->sources[r->st->source].name, r->st->shard);
    if (rv_mkdirs(dir, err) || mem_checkpoint(r->s, dest, err))
        return rv_fail_wrap(err, "CHECKPOINT to %s", dest);
    rv_info("checkpoint of %s written to %s", r->st->path, dest);
    return 0;
}

/* The serving loop; returns 0 after SHUTDOWN. */
static int serve(role *r, char *err) {
    unsigned wanted = COMM_KIND_BIT(COMM_QUERY_BATCH) | COMM_KIND_BIT(COMM_CONTROL) |
                      COMM_KIND_BIT(COMM_ITEM_GRADS);
    for (;;) {
        comm_msg m;
        char why[RV_ERR_MAX] = "";
        uint64_t step = 0;
        int fatal = 0, rc = 0;
        if (comm_recv(r->c, COMM_ROOT, wanted, r->o->idle_timeout_s, &m, why)) {
            if (m.from < 0) return rv_fail(err, "%s", why); /* nothing came: rank 0 is lost */
            rc = -1;
        } else if (m.kind == COMM_QUERY_BATCH) {
            const Reveal__QueryBatch *q = (const Reveal__QueryBatch *)m.msg;
            step = q->step;
            rc = answer(r, q, &fatal, why);
        } else if (m.kind == COMM_CONTROL) {
            const Reveal__Control *ctl = (const Reveal__Control *)m.msg;
            step = ctl->step;
            if (ctl->command == REVEAL__CONTROL_COMMAND__SHUTDOWN) {
                rv_info("shutdown at step %llu", (unsigned long long)step);
                comm_msg_free(&m);
                return 0;
            }
            rc = ctl->command == REVEAL__CONTROL_COMMAND__REFRESH ? refresh(r, why)
                 : ctl->command == REVEAL__CONTROL_COMMAND__CHECKPOINT
                     ? checkpoint(r, ctl->path, why)
                     : rv_fail(why, "Control EDIT is served by training workers, not here");
            if (rc == 0 && send_status(r, 1, step, NULL, why)) fatal = 1;
        } else {
            const Reveal__ItemGrads *g = (const Reveal__ItemGrads *)m.msg;
            step = g->step;
            rc = rv_fail(why,
                         "ItemGrads step %llu: re-encoding with a backward on workers is "
                         "not built yet",
                         (unsigned long long)step);
        }
        comm_msg_free(&m);
        if (fatal) return rv_fail(err, "%s", why);
        if (rc) {
            rv_warn("%s", why);
            if (send_status(r, 0, step, why, err)) return -1;
        }
    }
}

int wrk_role_run(comm *c, const char *layout_path, const wrk_role_options *o, char *err) {
    int rank = comm_rank(c);
    if (rank == COMM_ROOT) return rv_fail(err, "rank 0 is the coordinator, not a worker");
    static const wrk_role_options defaults = {0};
    if (!o) o = &defaults;
    char prefix[128];
    snprintf(prefix, sizeof prefix, "[rank %d worker]", rank);
    rv_log_set_prefix(prefix);
    wrk_layout *l = NULL;
    role r = {.c = c, .o = o};
    int rc = wrk_layout_share(c, layout_path, &l, err);
    if (rc) return rc;
    r.l = l;
    r.st = wrk_layout_store_of(l, rank);
    wrk_layout_role_name(l, rank, r.name, sizeof r.name);
    snprintf(prefix, sizeof prefix, "[rank %d %s]", rank, r.name);
    rv_log_set_prefix(prefix);
    /* Its own store, then everyone's verdict: nobody serves unless every store is good. */
    char mine[RV_ERR_MAX] = "";
    wrk_topk *ix = NULL;
    key_census kc;
    if (wrk_layout_open_store(l, rank, !o->writable, &r.s, mine) == 0 &&
        load_keys(r.s, &ix, &kc, mine) == 0)
        install(&r, ix, &kc);
    rc = comm_agree(c, mine, err);
    if (rc == 0) rc = serve(&r, err);
    wrk_topk_free(r.ix);
    mem_close(r.s);
    free(r.ids);
    free(r.scores);
    free(r.values);
    wrk_layout_free(l);
    return rc;
}
