/* coordinator/memory.c — the in-process memory: per knowledge source the world items of that
 * type, their stored keys and values with the encoder version that computed them, a stale flag
 * set by edits, and the exact top-K index (worker/worker.h) over the stored keys. A refresh
 * re-encodes all entries or only the stale ones and replaces their rows in the index, the same
 * work a worker rank does for its source. */
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"
#include "rv.h"

/* Items encoded per model call during a refresh: bounds the model's workspace. */
#define COORD_REFRESH_CHUNK 128

int coord_memory_init(coord_memory *mem, const world *w, const world_source *types, int n_sources,
                      int key_dim, int value_floats, char *err) {
    memset(mem, 0, sizeof *mem);
    mem->n_sources = n_sources;
    mem->key_dim = key_dim;
    mem->value_floats = value_floats;
    for (int j = 0; j < n_sources; j++) {
        coord_source *s = &mem->src[j];
        s->type = types[j];
        for (size_t i = 0; i < w->n_items; i++) s->n += w->items[i].type == types[j];
        if (s->n == 0) {
            rv_fail(err, "memory source %d (type %d) has no items in the world", j, (int)types[j]);
            goto fail;
        }
        s->item = malloc(s->n * sizeof *s->item);
        s->keys = calloc(s->n * (size_t)key_dim, sizeof *s->keys);
        s->values = calloc(s->n * (size_t)value_floats, sizeof *s->values);
        s->version = calloc(s->n, sizeof *s->version);
        s->stale = malloc(s->n);
        if (!s->item || !s->keys || !s->values || !s->version || !s->stale) {
            rv_fail(err, "out of memory for memory source %d (%zu items)", j, s->n);
            goto fail;
        }
        memset(s->stale, 1, s->n);
        size_t k = 0;
        for (size_t i = 0; i < w->n_items; i++)
            if (w->items[i].type == types[j]) s->item[k++] = i;
        if (wrk_topk_create((size_t)key_dim, &s->index, err)) goto fail;
    }
    return 0;
fail:
    coord_memory_free(mem);
    return -1;
}

void coord_memory_free(coord_memory *mem) {
    for (int j = 0; j < mem->n_sources; j++) {
        coord_source *s = &mem->src[j];
        free(s->item);
        free(s->keys);
        free(s->values);
        free(s->version);
        free(s->stale);
        wrk_topk_free(s->index);
    }
    memset(mem, 0, sizeof *mem);
}

int coord_memory_find(const coord_memory *mem, size_t item, size_t *pos) {
    for (int j = 0; j < mem->n_sources; j++) {
        const coord_source *s = &mem->src[j];
        /* items of one type are consecutive and in world order */
        if (item < s->item[0] || item > s->item[s->n - 1]) continue;
        size_t p = item - s->item[0];
        if (p < s->n && s->item[p] == item) {
            *pos = p;
            return j;
        }
    }
    return -1;
}

void coord_memory_mark(coord_memory *mem, const world_edit *edit) {
    for (size_t i = 0; i < edit->n_items; i++) {
        size_t pos;
        int j = coord_memory_find(mem, edit->items[i].item, &pos);
        if (j >= 0) mem->src[j].stale[pos] = 1;
    }
}

int coord_memory_refresh(coord_memory *mem, rvm_model *m, const coord_texts *t, int all,
                         uint32_t version, size_t *encoded, char *err) {
    size_t dk = (size_t)mem->key_dim, cd = (size_t)mem->value_floats;
    rvm_input *batch = malloc(COORD_REFRESH_CHUNK * sizeof *batch);  // (chunk)
    uint64_t *ids = malloc(COORD_REFRESH_CHUNK * sizeof *ids);       // (chunk)
    float *keys = malloc(COORD_REFRESH_CHUNK * dk * sizeof *keys);   // (chunk, dk)
    float *values = malloc(COORD_REFRESH_CHUNK * cd * sizeof *keys); // (chunk, c, d)
    size_t total = 0;
    int rc = -1;
    if (!batch || !ids || !keys || !values) {
        rv_fail(err, "out of memory for a memory refresh");
        goto cleanup;
    }
    for (int j = 0; j < mem->n_sources; j++) {
        coord_source *s = &mem->src[j];
        int fresh = wrk_topk_count(s->index) == 0; /* the first refresh adds every row */
        size_t i = 0;
        while (i < s->n) {
            int n = 0; /* the next chunk of entries to encode */
            for (; i < s->n && n < COORD_REFRESH_CHUNK; i++) {
                if (!all && !fresh && !s->stale[i]) continue;
                batch[n] = t->items[s->item[i]];
                ids[n++] = i;
            }
            if (n == 0) continue;
            if (rvm_encode_items(m, batch, n, keys, values, err)) {
                rv_fail_wrap(err, "memory refresh of source %d", j);
                goto cleanup;
            }
            for (int k = 0; k < n; k++) {
                size_t p = (size_t)ids[k];
                memcpy(s->keys + p * dk, keys + (size_t)k * dk, dk * sizeof *keys);
                memcpy(s->values + p * cd, values + (size_t)k * cd, cd * sizeof *values);
                s->version[p] = version;
                s->stale[p] = 0;
            }
            int r = fresh ? wrk_topk_add(s->index, ids, keys, (size_t)n, err)
                          : wrk_topk_replace(s->index, ids, keys, (size_t)n, err);
            if (r) {
                rv_fail_wrap(err, "memory index of source %d", j);
                goto cleanup;
            }
            total += (size_t)n;
        }
    }
    if (encoded) *encoded = total;
    rc = 0;
cleanup:
    free(batch);
    free(ids);
    free(keys);
    free(values);
    return rc;
}
