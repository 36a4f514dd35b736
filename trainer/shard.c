/* trainer/shard.c — one store of the layout in RAM on the rank that owns it: items (tokens,
 * pictures), the memory (stored keys, values, encoder versions, top-K index), and what a
 * training step asks of it: serve a QueryBatch (top-K, then the best fresh[j] and the asked
 * gold items re-encoded with gradient through an item-encoder view of the rank's model), and
 * apply the ItemGrads (backward, then the used fresh keys and values become the stored ones). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memstore.h"
#include "rv.h"
#include "trainer.h"

#define TEXT_CAP 70000 /* mem_item_text buffer: the longest text field plus the others */

struct tr_shard {
    uint32_t source, index;
    char name[96];
    mem_store *s;
    int writable;
    uint32_t image_size;
    size_t n;           /* items */
    uint64_t *ids;      /* (n) ascending, as the store iterates */
    char **texts;       /* (n) encoder texts as stored */
    char **edit;        /* (n) the text of the current edit round, NULL: as stored */
    uint8_t *pixels;    /* (n, S, S, 3) */
    uint8_t *has_image; /* (n) */
    /* bound to a model */
    const rvm_config *cfg;
    const trn_tokenizer *tok_model;
    rvm_model view;
    int bound, cap; /* cap: ids per item, text_max − 1 */
    int32_t *tok;   /* (n, cap) */
    rvm_input *in;  /* (n) */
    /* memory */
    int dk, cd;
    float *keys;       /* (n, dk) */
    float *values;     /* (n, c, d) */
    uint32_t *version; /* (n) */
    wrk_topk *ix;
    /* the last reply and its buffers */
    Reveal__TopKReply rep;
    uint64_t *r_ids;
    float *r_scores, *r_keys, *r_values;
    uint64_t *f_ids;
    float *f_keys, *f_values;
    int32_t *gold_fresh;
    uint64_t *gold_ids;
    size_t *f_pos;      /* (nf) item positions encoded with gradient */
    rvm_input *f_in;    /* (nf) */
    float *f_dk, *f_dv; /* (nf, dk), (nf, c, d) gradients of ItemGrads */
    size_t nf;
    int pending; /* 1 between a training serve and its apply */
    uint64_t pending_step;
};

static int grow(void **p, size_t n, size_t elem, char *err) {
    void *q = realloc(*p, (n ? n : 1) * elem);
    if (!q) return rv_fail(err, "out of memory (%zu entries of %zu bytes)", n, elem);
    *p = q;
    return 0;
}

static int item_pos(const tr_shard *s, uint64_t id, size_t *pos) {
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->n && s->ids[lo] == id) {
        *pos = lo;
        return 1;
    }
    return 0;
}

int tr_shard_open(const wrk_layout *l, uint32_t index, const char *path, int writable,
                  uint32_t image_size, tr_shard **out, char *err) {
    *out = NULL;
    if (index >= l->n_stores) return rv_fail(err, "layout has no store %u", index);
    const wrk_layout_store *ls = &l->stores[index];
    tr_shard *s = calloc(1, sizeof *s);
    char *buf = malloc(TEXT_CAP);
    mem_iter *it = NULL;
    size_t cap = 0, S3 = (size_t)image_size * image_size * 3;
    int rc = -1, more;
    if (!s || !buf) {
        rv_fail(err, "out of memory opening store %s", ls->path);
        goto cleanup;
    }
    s->source = ls->source;
    s->index = index;
    s->writable = writable;
    s->image_size = image_size;
    wrk_layout_role_name(l, 1 + (int)index, s->name, sizeof s->name);
    const char *dir = path ? path : ls->path;
    if (mem_open(dir, !writable, &s->s, err)) goto cleanup;
    const mem_config *mc = mem_get_config(s->s);
    if ((int)mc->type != l->sources[ls->source].type) {
        rv_fail(err, "store %s holds %s items, the layout's source %s is %s", ls->path,
                mem_type_name(mc->type), l->sources[ls->source].name,
                mem_type_name((Reveal__SourceType)l->sources[ls->source].type));
        goto cleanup;
    }
    if (mc->image_size != image_size) {
        rv_fail(err, "store %s holds %u×%u images, the model reads %u×%u (model.image_size)",
                ls->path, mc->image_size, mc->image_size, image_size, image_size);
        goto cleanup;
    }
    if (mem_iter_new(s->s, 0, &it, err)) goto cleanup;
    uint64_t id;
    Reveal__KnowledgeItem *item;
    while ((more = mem_iter_next(it, &id, &item, err)) == 1) {
        if (s->n == cap) {
            cap = cap ? 2 * cap : 256;
            if (grow((void **)&s->ids, cap, sizeof *s->ids, err) ||
                grow((void **)&s->texts, cap, sizeof *s->texts, err) ||
                grow((void **)&s->has_image, cap, 1, err) ||
                grow((void **)&s->pixels, cap, S3, err)) {
                reveal__knowledge_item__free_unpacked(item, NULL);
                goto cleanup;
            }
        }
        mem_item_text(item, buf, TEXT_CAP);
        s->ids[s->n] = id;
        s->texts[s->n] = strdup(buf);
        s->has_image[s->n] = item->image && item->image->pixels.len == S3;
        if (s->has_image[s->n]) memcpy(s->pixels + s->n * S3, item->image->pixels.data, S3);
        reveal__knowledge_item__free_unpacked(item, NULL);
        if (!s->texts[s->n++]) {
            rv_fail(err, "out of memory reading store %s", dir);
            goto cleanup;
        }
    }
    if (more < 0) goto cleanup;
    if (!s->n) {
        rv_fail(err, "store %s holds no items", dir);
        goto cleanup;
    }
    *out = s;
    s = NULL;
    rc = 0;
cleanup:
    mem_iter_free(it);
    free(buf);
    tr_shard_free(s);
    return rc;
}

void tr_shard_free(tr_shard *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) free(s->texts[i]);
    for (size_t i = 0; s->edit && i < s->n; i++) free(s->edit[i]);
    free(s->edit);
    if (s->bound) rvm_model_free(&s->view);
    mem_close(s->s);
    wrk_topk_free(s->ix);
    void *bufs[] = {s->ids,        s->texts,  s->pixels,  s->has_image, s->tok,      s->in,
                    s->keys,       s->values, s->version, s->r_ids,     s->r_scores, s->r_keys,
                    s->r_values,   s->f_ids,  s->f_keys,  s->f_values,  s->gold_ids, s->f_pos,
                    s->gold_fresh, s->f_in,   s->f_dk,    s->f_dv};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(s);
}

size_t tr_shard_count(const tr_shard *s) {
    return s->n;
}
uint32_t tr_shard_source(const tr_shard *s) {
    return s->source;
}
uint32_t tr_shard_index(const tr_shard *s) {
    return s->index;
}
const char *tr_shard_name(const tr_shard *s) {
    return s->name;
}
struct mem_store *tr_shard_store(tr_shard *s) {
    return s->s;
}
const char *tr_shard_text(const tr_shard *s, size_t i) {
    return s->texts[i];
}

const char *tr_shard_text_of(const tr_shard *s, uint64_t id) {
    size_t p;
    return item_pos(s, id, &p) ? s->texts[p] : NULL;
}

/* Token ids of item i from its current text (the edit round's, else the stored one). */
static int tokenize(tr_shard *s, size_t i, char *err) {
    const char *text = s->edit && s->edit[i] ? s->edit[i] : s->texts[i];
    int n_ids = 0;
    int32_t *ids = s->tok + i * (size_t)s->cap;
    if (trn_tok_encode(s->tok_model, text, strlen(text), 0, s->cap, ids, &n_ids, NULL, err))
        return rv_fail_wrap(err, "%s: item 0x%016llx", s->name, (unsigned long long)s->ids[i]);
    s->in[i].text.ids = ids;
    s->in[i].text.n = n_ids;
    return 0;
}

int tr_shard_bind(tr_shard *s, const trn_tokenizer *tok, rvm_model *m, char *err) {
    if (s->bound) return rv_fail(err, "%s is already bound to a model", s->name);
    const rvm_config *c = &m->cfg;
    size_t S3 = (size_t)s->image_size * s->image_size * 3;
    s->cap = c->text_max - 1;
    s->dk = c->key_dim;
    s->cd = c->latents * c->width;
    if (grow((void **)&s->tok, s->n * (size_t)s->cap, sizeof *s->tok, err) ||
        grow((void **)&s->in, s->n, sizeof *s->in, err) ||
        grow((void **)&s->keys, s->n * (size_t)s->dk, sizeof *s->keys, err) ||
        grow((void **)&s->values, s->n * (size_t)s->cd, sizeof *s->values, err) ||
        grow((void **)&s->version, s->n, sizeof *s->version, err))
        return rv_fail_wrap(err, "%s", s->name);
    s->tok_model = tok;
    for (size_t i = 0; i < s->n; i++) {
        s->in[i].image = s->has_image[i] ? s->pixels + i * S3 : NULL;
        if (tokenize(s, i, err)) return -1;
    }
    if (rvm_model_view(&s->view, m, err)) return rv_fail_wrap(err, "%s: item encoder", s->name);
    s->cfg = &s->view.cfg;
    s->bound = 1;
    return 0;
}

/* Encodes items pos[0..n) without gradient into RAM, the index and (writable) the store. */
static int encode_into(tr_shard *s, const size_t *pos, size_t n, uint32_t version, char *err) {
    enum { CHUNK = 64 };
    rvm_input in[CHUNK];
    float *k = malloc((size_t)CHUNK * s->dk * sizeof *k);
    float *v = malloc((size_t)CHUNK * s->cd * sizeof *v);
    uint64_t ids[CHUNK];
    int rc = -1;
    if (!k || !v) {
        rv_fail(err, "%s: out of memory encoding", s->name);
        goto cleanup;
    }
    double t0 = rv_now(), shown = t0;
    for (size_t i0 = 0; i0 < n; i0 += CHUNK) {
        int m = (int)(n - i0 < CHUNK ? n - i0 : CHUNK);
        double now = rv_now();
        if (now - shown >= 5.0 && i0) {
            double rate = (double)i0 / (now - t0);
            rv_info("%s: %zu of %zu items encoded, %.1f items/s, ETA %.0f s", s->name, i0, n, rate,
                    (double)(n - i0) / rate);
            shown = now;
        }
        for (int i = 0; i < m; i++) in[i] = s->in[pos[i0 + i]];
        if (rvm_encode_items(&s->view, in, m, k, v, err)) goto cleanup;
        for (int i = 0; i < m; i++) {
            size_t p = pos[i0 + i];
            memcpy(s->keys + p * s->dk, k + (size_t)i * s->dk, (size_t)s->dk * sizeof *k);
            memcpy(s->values + p * s->cd, v + (size_t)i * s->cd, (size_t)s->cd * sizeof *v);
            s->version[p] = version;
            ids[i] = s->ids[p];
            if (s->writable &&
                mem_put_vectors(s->s, s->ids[p], version, k + (size_t)i * s->dk, (uint32_t)s->dk,
                                v + (size_t)i * s->cd, (uint32_t)s->cfg->latents,
                                (uint32_t)s->cfg->width, err))
                goto cleanup;
        }
        if (s->ix && wrk_topk_upsert(s->ix, ids, k, (size_t)m, err)) goto cleanup;
    }
    rc = 0;
cleanup:
    free(k);
    free(v);
    return rc ? rv_fail_wrap(err, "%s: encoding the memory", s->name) : 0;
}

static int build_index(tr_shard *s, char *err) {
    wrk_topk_free(s->ix);
    s->ix = NULL;
    if (wrk_topk_create((size_t)s->dk, &s->ix, err) ||
        wrk_topk_add(s->ix, s->ids, s->keys, s->n, err))
        return rv_fail_wrap(err, "%s: top-K index", s->name);
    return 0;
}

int tr_shard_load_memory(tr_shard *s, uint32_t version, size_t *encoded, size_t *stale, char *err) {
    size_t *need = malloc(s->n * sizeof *need), nn = 0, ns = 0, warned = 0;
    if (!need) return rv_fail(err, "%s: out of memory", s->name);
    for (size_t i = 0; i < s->n; i++) {
        int got = mem_get_vectors(s->s, s->ids[i], s->keys + i * s->dk, (uint32_t)s->dk,
                                  &s->version[i], s->values + i * s->cd, (uint32_t)s->cfg->latents,
                                  (uint32_t)s->cfg->width, NULL, err);
        if (got < 0) {
            /* another shape (another model) or a damaged vector counts as absent: it is
             * re-encoded; said once per shard, and the message must not fail the caller */
            if (!warned++) rv_warn("%s (such items are re-encoded)", err);
            err[0] = '\0';
            got = 0;
        }
        if (got == 0) {
            memset(s->keys + i * s->dk, 0, (size_t)s->dk * sizeof *s->keys);
            need[nn++] = i;
        } else
            ns += s->version[i] != version;
    }
    int rc = build_index(s, err) || encode_into(s, need, nn, version, err) ? -1 : 0;
    if (encoded) *encoded = nn;
    if (stale) *stale = ns;
    free(need);
    return rc;
}

int tr_shard_load_versions(tr_shard *s, char *err) {
    for (size_t i = 0; i < s->n; i++) {
        mem_vector_info k, v;
        if (mem_get_vector_info(s->s, s->ids[i], &k, &v, err))
            return rv_fail_wrap(err, "%s: item 0x%016llx", s->name, (unsigned long long)s->ids[i]);
        int fits = k.present && v.present && k.cols == (uint32_t)s->dk &&
                   (size_t)v.rows * v.cols == (size_t)s->cd && k.version == v.version;
        s->version[i] = fits ? k.version : 0;
    }
    return 0;
}

int tr_shard_refresh(tr_shard *s, int all, uint32_t version, size_t *encoded, char *err) {
    size_t *pos = malloc(s->n * sizeof *pos), np = 0;
    if (!pos) return rv_fail(err, "%s: out of memory", s->name);
    for (size_t i = 0; i < s->n; i++)
        if (all || s->version[i] != version) pos[np++] = i;
    int rc = encode_into(s, pos, np, version, err);
    if (encoded) *encoded = np;
    free(pos);
    return rc;
}

/* Adds position p to the fresh set (once) and returns its index there. */
static size_t fresh_add(tr_shard *s, size_t p) {
    for (size_t i = 0; i < s->nf; i++)
        if (s->f_pos[i] == p) return i;
    s->f_pos[s->nf] = p;
    return s->nf++;
}

int tr_shard_serve(tr_shard *s, const Reveal__QueryBatch *q, Reveal__TopKReply **reply, char *err) {
    *reply = NULL;
    uint32_t j = s->source;
    if (!s->bound || !s->ix) return rv_fail(err, "%s serves no memory yet", s->name);
    if (q->dk != (uint32_t)s->dk)
        return rv_fail(err, "QueryBatch step %llu: dk %u, the keys of %s have %d",
                       (unsigned long long)q->step, q->dk, s->name, s->dk);
    if (j >= q->n_k)
        return rv_fail(err, "QueryBatch step %llu lists %zu sources, %s is source %u",
                       (unsigned long long)q->step, q->n_k, s->name, j);
    size_t B = q->batch, K = q->k[j] < s->n ? q->k[j] : s->n, k = 0;
    size_t R = q->n_fresh ? q->fresh[j] : 0;
    if (R > K) R = K;
    size_t nf_max = B * (R + 1);
    if (grow((void **)&s->r_ids, B * K, sizeof *s->r_ids, err) ||
        grow((void **)&s->r_scores, B * K, sizeof *s->r_scores, err) ||
        grow((void **)&s->r_keys, B * K * s->dk, sizeof *s->r_keys, err) ||
        grow((void **)&s->r_values, B * K * s->cd, sizeof *s->r_values, err) ||
        grow((void **)&s->gold_ids, B, sizeof *s->gold_ids, err) ||
        grow((void **)&s->gold_fresh, B, sizeof *s->gold_fresh, err) ||
        grow((void **)&s->f_pos, nf_max, sizeof *s->f_pos, err))
        return -1;
    if (K && wrk_topk_search(s->ix, q->queries, B, K, s->r_ids, s->r_scores, &k, err))
        return rv_fail_wrap(err, "%s: step %llu", s->name, (unsigned long long)q->step);
    for (size_t i = 0; i < B * k; i++) {
        size_t p = 0;
        item_pos(s, s->r_ids[i], &p);
        memcpy(s->r_keys + i * s->dk, s->keys + p * s->dk, (size_t)s->dk * sizeof *s->keys);
        memcpy(s->r_values + i * s->cd, s->values + p * s->cd, (size_t)s->cd * sizeof *s->values);
    }
    s->nf = 0;
    if (q->train)
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < R; i++) {
                size_t p = 0;
                item_pos(s, s->r_ids[b * k + i], &p);
                fresh_add(s, p);
            }
    int asked = q->n_gold_keys > 0;
    for (size_t b = 0; asked && b < B; b++) {
        s->gold_ids[b] = 0;
        s->gold_fresh[b] = -1;
        if (q->gold_sources[b] != j || !q->gold_keys[b][0]) continue;
        uint64_t id;
        size_t p;
        int got = mem_lookup_key(s->s, q->gold_keys[b], &id, err);
        if (got < 0) return rv_fail_wrap(err, "%s: gold item of row %zu", s->name, b);
        if (got == 0 || !item_pos(s, id, &p)) continue;
        s->gold_ids[b] = id;
        if (q->train) s->gold_fresh[b] = (int32_t)fresh_add(s, p);
    }
    if (grow((void **)&s->f_ids, s->nf, sizeof *s->f_ids, err) ||
        grow((void **)&s->f_in, s->nf, sizeof *s->f_in, err) ||
        grow((void **)&s->f_keys, s->nf * s->dk, sizeof *s->f_keys, err) ||
        grow((void **)&s->f_values, s->nf * s->cd, sizeof *s->f_values, err))
        return -1;
    for (size_t i = 0; i < s->nf; i++) {
        s->f_ids[i] = s->ids[s->f_pos[i]];
        s->f_in[i] = s->in[s->f_pos[i]];
    }
    if (s->nf && rvm_encode_grad(&s->view, s->f_in, (int)s->nf, s->f_keys, s->f_values, err))
        return rv_fail_wrap(err, "%s: re-encoding %zu items", s->name, s->nf);
    s->pending = q->train;
    s->pending_step = q->step;

    Reveal__TopKReply *r = &s->rep;
    reveal__top_kreply__init(r);
    r->source = j;
    r->shard = s->index;
    r->step = q->step;
    r->batch = (uint32_t)B;
    r->k = (uint32_t)k;
    r->n_ids = r->n_scores = B * k;
    r->ids = s->r_ids;
    r->scores = s->r_scores;
    r->dk = (uint32_t)s->dk;
    r->n_keys = B * k * s->dk;
    r->keys = s->r_keys;
    r->c = (uint32_t)s->cfg->latents;
    r->d = (uint32_t)s->cfg->width;
    r->n_values = B * k * s->cd;
    r->values = s->r_values;
    r->n_fresh_ids = s->nf;
    r->fresh_ids = s->f_ids;
    r->n_fresh_keys = s->nf * s->dk;
    r->fresh_keys = s->f_keys;
    r->n_fresh_values = s->nf * s->cd;
    r->fresh_values = s->f_values;
    r->n_gold_ids = asked ? B : 0;
    r->gold_ids = s->gold_ids;
    r->n_gold_fresh = asked && q->train ? B : 0;
    r->gold_fresh = s->gold_fresh;
    *reply = r;
    return 0;
}

int tr_shard_apply(tr_shard *s, const Reveal__ItemGrads *g, uint32_t version, char *err) {
    if (!s->pending || g->step != s->pending_step)
        return rv_fail(err, "%s: ItemGrads for step %llu, no training query of that step pending",
                       s->name, (unsigned long long)g->step);
    s->pending = 0;
    if (g->dk != (uint32_t)s->dk || (size_t)g->c * g->d != (size_t)s->cd)
        return rv_fail(err, "%s: ItemGrads shapes dk %u, c×d %u×%u differ from the model's",
                       s->name, g->dk, g->c, g->d);
    if (!g->n_ids) return 0;
    if (grow((void **)&s->f_dk, s->nf * s->dk, sizeof *s->f_dk, err) ||
        grow((void **)&s->f_dv, s->nf * s->cd, sizeof *s->f_dv, err))
        return -1;
    memset(s->f_dk, 0, s->nf * s->dk * sizeof *s->f_dk);
    memset(s->f_dv, 0, s->nf * s->cd * sizeof *s->f_dv);
    size_t *used = malloc(g->n_ids * sizeof *used);
    if (!used) return rv_fail(err, "%s: out of memory", s->name);
    int rc = -1;
    for (size_t u = 0; u < g->n_ids; u++) {
        size_t i = 0;
        while (i < s->nf && s->f_ids[i] != g->ids[u]) i++;
        if (i == s->nf) {
            rv_fail(err, "%s: ItemGrads step %llu names item 0x%016llx, which it did not re-encode",
                    s->name, (unsigned long long)g->step, (unsigned long long)g->ids[u]);
            goto cleanup;
        }
        used[u] = i;
        memcpy(s->f_dk + i * s->dk, g->key_grads + u * s->dk, (size_t)s->dk * sizeof *s->f_dk);
        memcpy(s->f_dv + i * s->cd, g->value_grads + u * s->cd, (size_t)s->cd * sizeof *s->f_dv);
    }
    if (rvm_encode_backward(&s->view, s->f_dk, s->f_dv, err)) {
        rv_fail_wrap(err, "%s: backward of the re-encoded items", s->name);
        goto cleanup;
    }
    for (size_t u = 0; u < g->n_ids; u++) {
        size_t i = used[u], p = s->f_pos[i];
        const float *k = s->f_keys + i * s->dk, *v = s->f_values + i * s->cd;
        memcpy(s->keys + p * s->dk, k, (size_t)s->dk * sizeof *k);
        memcpy(s->values + p * s->cd, v, (size_t)s->cd * sizeof *v);
        s->version[p] = version;
        if (wrk_topk_replace(s->ix, &s->ids[p], k, 1, err)) goto cleanup;
        if (s->writable && mem_put_vectors(s->s, s->ids[p], version, k, (uint32_t)s->dk, v,
                                           (uint32_t)s->cfg->latents, (uint32_t)s->cfg->width, err))
            goto cleanup;
    }
    rc = 0;
cleanup:
    free(used);
    return rc;
}

int tr_shard_edit(tr_shard *s, const char *file, int encode, uint32_t version, size_t *changed,
                  char *err) {
    char **next = calloc(s->n, sizeof *next); /* (n) the round's texts */
    size_t *pos = malloc(s->n * sizeof *pos), np = 0;
    char *buf = malloc(TEXT_CAP), *line, reason[RV_ERR_MAX];
    mem_reader *rd = NULL;
    mem_line_item li;
    mem_line_item_init(&li);
    int rc = -1, more;
    size_t len;
    uint64_t lineno;
    if (!next || !pos || !buf) {
        rv_fail(err, "%s: out of memory", s->name);
        goto cleanup;
    }
    if (file && access(file, F_OK) == 0) {
        if (mem_reader_open(file, 1u << 20, &rd, err)) goto cleanup;
        Reveal__SourceType type = mem_get_config(s->s)->type;
        while ((more = mem_reader_next(rd, &line, &len, &lineno, err)) == 1) {
            int got = mem_parse_line(&li, type, MEM_FORMAT_JSONL, line, len, 1u << 16, reason);
            if (got < 0) {
                rv_fail(err, "%s:%llu: %s", file, (unsigned long long)lineno, reason);
                goto cleanup;
            }
            uint64_t id;
            size_t p;
            if (!got) continue;
            got = mem_lookup_key(s->s, li.item.key, &id, err);
            if (got < 0) goto cleanup;
            if (!got || !item_pos(s, id, &p)) continue; /* another shard's item */
            mem_item_text(&li.item, buf, TEXT_CAP);
            free(next[p]);
            if (!(next[p] = strdup(buf))) {
                rv_fail(err, "%s: out of memory", s->name);
                goto cleanup;
            }
        }
        if (more < 0) goto cleanup;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (next[i] && !strcmp(next[i], s->texts[i])) {
            free(next[i]);
            next[i] = NULL;
        }
        const char *was = s->edit && s->edit[i] ? s->edit[i] : s->texts[i];
        const char *now = next[i] ? next[i] : s->texts[i];
        if (strcmp(was, now)) pos[np++] = i;
    }
    for (size_t i = 0; s->edit && i < s->n; i++) free(s->edit[i]);
    free(s->edit);
    s->edit = next;
    next = NULL;
    for (size_t i = 0; i < np; i++)
        if (tokenize(s, pos[i], err)) goto cleanup;
    if (encode && encode_into(s, pos, np, version, err)) goto cleanup;
    *changed = np;
    rc = 0;
cleanup:
    for (size_t i = 0; next && i < s->n; i++) free(next[i]);
    free(next);
    free(pos);
    free(buf);
    mem_line_item_free(&li);
    mem_reader_close(rd);
    return rc ? rv_fail_wrap(err, "%s: edit round %s", s->name, file ? file : "(restore)") : 0;
}
