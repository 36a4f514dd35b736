/* worker/layout.c — the world layout: which rank serves which store (worker.h). Parsed from
 * JSON with cJSON, checked before any work: the global rules on rank 0 (names, types, paths,
 * world size), each store by the worker that opens it. The file is read once, on rank 0, and
 * broadcast, so every rank works from the same bytes. */
#include "comm.h"
#include "memstore.h"
#include "rv.h"
#include "worker.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LAYOUT_MAX_BYTES  (1u << 20)
#define LAYOUT_MAX_STORES 4096u

void wrk_layout_free(wrk_layout *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n_sources; i++) free(l->sources[i].name);
    for (size_t i = 0; i < l->n_stores; i++) free(l->stores[i].path);
    free(l->sources);
    free(l->stores);
    free(l);
}

/* Only the fields this build reads, so a misspelt one is an error, not a silent default. */
static int check_fields(const cJSON *obj, const char *const *known, const char *where, char *err) {
    for (const cJSON *f = obj->child; f; f = f->next) {
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++) ok = !strcmp(f->string, *k);
        if (!ok) return rv_fail(err, "%s: unknown field \"%s\"", where, f->string);
    }
    return 0;
}

/* Resolved path for duplicate checks: the same store reached by two spellings is one store. */
static void canonical(const char *path, char *buf) {
    if (!realpath(path, buf)) snprintf(buf, PATH_MAX, "%s", path);
}

static int check_unique_paths(const wrk_layout *l, const char *origin, char *err) {
    char(*canon)[PATH_MAX] = malloc(l->n_stores * sizeof *canon);
    if (!canon) return rv_fail(err, "%s: out of memory checking store paths", origin);
    int rc = 0;
    for (size_t i = 0; i < l->n_stores && !rc; i++) {
        canonical(l->stores[i].path, canon[i]);
        for (size_t j = 0; j < i && !rc; j++)
            if (!strcmp(canon[i], canon[j]))
                rc = rv_fail(err,
                             "%s: store \"%s\" (source %s) and store \"%s\" (source %s) are "
                             "the same store",
                             origin, l->stores[j].path, l->sources[l->stores[j].source].name,
                             l->stores[i].path, l->sources[l->stores[i].source].name);
    }
    free(canon);
    return rc;
}

static int parse_source(const cJSON *src, size_t j, wrk_layout *l, const char *origin, char *err) {
    char where[96];
    snprintf(where, sizeof where, "%s: sources[%zu]", origin, j);
    static const char *const fields[] = {"name", "type", "stores", NULL};
    if (!cJSON_IsObject(src)) return rv_fail(err, "%s: not an object", where);
    if (check_fields(src, fields, where, err)) return -1;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(src, "name");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(src, "type");
    const cJSON *stores = cJSON_GetObjectItemCaseSensitive(src, "stores");
    if (!cJSON_IsString(name) || !name->valuestring[0])
        return rv_fail(err, "%s: \"name\" must be a non-empty string", where);
    if (strlen(name->valuestring) >= MEM_NAME_MAX)
        return rv_fail(err, "%s: name \"%.20s...\" is longer than %d bytes", where,
                       name->valuestring, MEM_NAME_MAX - 1);
    for (size_t i = 0; i < j; i++)
        if (!strcmp(l->sources[i].name, name->valuestring))
            return rv_fail(err, "%s: source name \"%s\" is used twice (sources[%zu] and [%zu])",
                           origin, name->valuestring, i, j);
    Reveal__SourceType t;
    if (!cJSON_IsString(type) || mem_type_from_name(type->valuestring, &t))
        return rv_fail(err, "%s (%s): \"type\" must be one of image-text, qa, kg, text", where,
                       name->valuestring);
    int n = cJSON_IsArray(stores) ? cJSON_GetArraySize(stores) : 0;
    if (n < 1)
        return rv_fail(err, "%s (%s): \"stores\" must list at least one store", where,
                       name->valuestring);
    if (l->n_stores + (size_t)n > LAYOUT_MAX_STORES)
        return rv_fail(err, "%s: more than %u stores", origin, LAYOUT_MAX_STORES);
    wrk_layout_source *s = &l->sources[j];
    s->name = strdup(name->valuestring);
    s->type = (int)t;
    s->first = (uint32_t)l->n_stores;
    s->n_shards = (uint32_t)n;
    if (!s->name) return rv_fail(err, "%s: out of memory", origin);
    wrk_layout_store *grown = realloc(l->stores, (l->n_stores + (size_t)n) * sizeof *grown);
    if (!grown) return rv_fail(err, "%s: out of memory", origin);
    l->stores = grown;
    for (int i = 0; i < n; i++) {
        const cJSON *p = cJSON_GetArrayItem(stores, i);
        if (!cJSON_IsString(p) || !p->valuestring[0])
            return rv_fail(err, "%s (%s): stores[%d] must be a non-empty path", where, s->name, i);
        wrk_layout_store *st = &l->stores[l->n_stores];
        st->path = strdup(p->valuestring);
        st->source = (uint32_t)j;
        st->shard = (uint32_t)i;
        st->rank = (int)l->n_stores + 1;
        if (!st->path) return rv_fail(err, "%s: out of memory", origin);
        l->n_stores++;
    }
    return 0;
}

int wrk_layout_parse(const char *text, size_t n, const char *origin, wrk_layout **out, char *err) {
    *out = NULL;
    if (n > LAYOUT_MAX_BYTES)
        return rv_fail(err, "%s: %zu bytes, limit %u", origin, n, LAYOUT_MAX_BYTES);
    cJSON *root = cJSON_ParseWithLength(text, n);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= text && at <= text + n ? (size_t)(at - text) : 0;
        return rv_fail(err, "%s: not valid JSON (near byte %zu)", origin, off);
    }
    wrk_layout *l = calloc(1, sizeof *l);
    int rc = -1;
    static const char *const fields[] = {"sources", NULL};
    if (!l) {
        rv_fail(err, "%s: out of memory", origin);
        goto cleanup;
    }
    if (!cJSON_IsObject(root)) {
        rv_fail(err, "%s: expected a JSON object with \"sources\"", origin);
        goto cleanup;
    }
    if (check_fields(root, fields, origin, err)) goto cleanup;
    const cJSON *sources = cJSON_GetObjectItemCaseSensitive(root, "sources");
    int ns = cJSON_IsArray(sources) ? cJSON_GetArraySize(sources) : 0;
    if (ns < 1) {
        rv_fail(err, "%s: \"sources\" must be an array of at least one source", origin);
        goto cleanup;
    }
    l->sources = calloc((size_t)ns, sizeof *l->sources);
    if (!l->sources) {
        rv_fail(err, "%s: out of memory", origin);
        goto cleanup;
    }
    for (int j = 0; j < ns; j++) {
        /* Counted before parsing, so a partly parsed source is freed too. */
        l->n_sources = (size_t)j + 1;
        if (parse_source(cJSON_GetArrayItem(sources, j), (size_t)j, l, origin, err)) goto cleanup;
    }
    if (check_unique_paths(l, origin, err)) goto cleanup;
    *out = l;
    l = NULL;
    rc = 0;
cleanup:
    wrk_layout_free(l);
    cJSON_Delete(root);
    return rc;
}

int wrk_layout_check_world(const wrk_layout *l, int world_size, char *err) {
    if ((size_t)world_size == l->n_stores + 1) return 0;
    return rv_fail(err,
                   "the layout has %zu store%s, so the job needs -np %zu (1 coordinator + %zu "
                   "worker%s); it was started with -np %d",
                   l->n_stores, l->n_stores == 1 ? "" : "s", l->n_stores + 1, l->n_stores,
                   l->n_stores == 1 ? "" : "s", world_size);
}

const wrk_layout_store *wrk_layout_store_of(const wrk_layout *l, int rank) {
    if (rank < 1 || (size_t)rank > l->n_stores) return NULL;
    return &l->stores[rank - 1];
}

void wrk_layout_role_name(const wrk_layout *l, int rank, char *buf, size_t cap) {
    const wrk_layout_store *st = wrk_layout_store_of(l, rank);
    if (!st) {
        snprintf(buf, cap, "%s", rank == COMM_ROOT ? "coordinator" : "unassigned");
        return;
    }
    const wrk_layout_source *src = &l->sources[st->source];
    if (src->n_shards > 1)
        snprintf(buf, cap, "worker %s shard %u", src->name, st->shard);
    else
        snprintf(buf, cap, "worker %s", src->name);
}

int wrk_layout_open_store(const wrk_layout *l, int rank, int read_only, mem_store **out,
                          char *err) {
    const wrk_layout_store *st = wrk_layout_store_of(l, rank);
    if (!st) return rv_fail(err, "rank %d has no store in the layout", rank);
    const wrk_layout_source *src = &l->sources[st->source];
    struct stat sb;
    if (stat(st->path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return rv_fail(err, "store %s (source %s shard %u) does not exist", st->path, src->name,
                       st->shard);
    mem_store *s = NULL;
    if (mem_open(st->path, read_only, &s, err))
        return rv_fail_wrap(err, "store %s (source %s shard %u)", st->path, src->name, st->shard);
    const mem_config *cfg = mem_get_config(s);
    if ((int)cfg->type != src->type) {
        rv_fail(err,
                "store %s holds %s items (store \"%s\"), but the layout gives it to source "
                "%s of type %s",
                st->path, mem_type_name(cfg->type), cfg->name, src->name,
                mem_type_name((Reveal__SourceType)src->type));
        mem_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

int wrk_layout_share(comm *c, const char *path, wrk_layout **out, char *err) {
    *out = NULL;
    char mine[RV_ERR_MAX] = "";
    char *text = NULL;
    size_t n = 0;
    wrk_layout *l = NULL;
    int rank = comm_rank(c), rc;
    if (rank == COMM_ROOT) {
        void *data = NULL;
        if (rv_read_file(path, LAYOUT_MAX_BYTES, &data, &n, mine))
            rv_fail_wrap(mine, "layout %s", path);
        else if (wrk_layout_parse(data, n, path, &l, mine) == 0)
            wrk_layout_check_world(l, comm_size(c), mine);
        text = data;
        if (mine[0]) n = 0;
    }
    /* Length then bytes; a length of 0 means rank 0 refused the layout. */
    unsigned long long len = n;
    rc = MPI_Bcast(&len, 1, MPI_UNSIGNED_LONG_LONG, COMM_ROOT, comm_mpi(c));
    if (rc == MPI_SUCCESS && rank != COMM_ROOT && len) {
        text = malloc(len + 1);
        if (!text) snprintf(mine, sizeof mine, "out of memory for a %llu-byte layout", len);
    }
    /* A worker without the buffer still joins the broadcast, through a scratch buffer. */
    char scratch[4096] = {0};
    for (unsigned long long at = 0; rc == MPI_SUCCESS && at < len; at += sizeof scratch) {
        int part = (int)(len - at < sizeof scratch ? len - at : sizeof scratch);
        rc = MPI_Bcast(text ? text + at : scratch, part, MPI_CHAR, COMM_ROOT, comm_mpi(c));
    }
    if (rc != MPI_SUCCESS)
        snprintf(mine, sizeof mine, "broadcasting the layout failed (MPI error %d)", rc);
    /* Rank 0's verdict first: the workers would only repeat its parse errors. */
    rc = comm_agree(c, mine, err);
    if (rc) goto cleanup;
    if (rank != COMM_ROOT) {
        text[len] = '\0';
        wrk_layout_parse(text, len, path, &l, mine);
    }
    rc = comm_agree(c, mine, err);
    if (rc) goto cleanup;
    for (int r = 1; r < comm_size(c); r++) {
        char name[96];
        wrk_layout_role_name(l, r, name, sizeof name);
        comm_set_peer_name(c, r, name);
    }
    comm_set_peer_name(c, COMM_ROOT, "coordinator");
    *out = l;
    l = NULL;
cleanup:
    wrk_layout_free(l);
    free(text);
    return rc;
}
