/* proto/proto.c — the checked decoders of proto.h. protobuf-c verifies only the wire format:
 * it accepts any enum number, any byte string as a `string`, and arrays of any length. Every
 * rule a reader relies on beyond that is checked here, once, with a message that names the
 * message, the field and the expected value. */
#include "proto.h"

#include "rv.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const source_type_names[] = {"unspecified", "image_text", "qa", "kg_triple",
                                                "text"};
#define SOURCE_TYPE_LAST REVEAL__SOURCE_TYPE__TEXT

const char *rv_source_type_name(Reveal__SourceType type) {
    if ((int)type < 0 || (int)type > SOURCE_TYPE_LAST) return "unknown";
    return source_type_names[type];
}

Reveal__SourceType rv_source_type_from_name(const char *name) {
    for (int t = 1; t <= SOURCE_TYPE_LAST; t++)
        if (!strcmp(name, source_type_names[t])) return (Reveal__SourceType)t;
    return REVEAL__SOURCE_TYPE__SOURCE_TYPE_UNSPECIFIED;
}

int rv_pack(const ProtobufCMessage *msg, uint8_t **buf, size_t *n, char *err) {
    size_t size = protobuf_c_message_get_packed_size(msg);
    uint8_t *out = malloc(size ? size : 1);
    if (!out)
        return rv_fail(err, "%s: out of memory packing %zu bytes", msg->descriptor->name, size);
    size_t written = protobuf_c_message_pack(msg, out);
    if (written != size) {
        free(out);
        return rv_fail(err, "%s: packed %zu bytes, expected %zu", msg->descriptor->name, written,
                       size);
    }
    *buf = out;
    *n = size;
    return 0;
}

/* ---- field checks shared by every message ---- */

static int check_string(const char *msg, const char *field, const char *s, size_t max, char *err) {
    size_t n = s ? strlen(s) : 0, bad_at = 0;
    if (n > max) return rv_fail(err, "%s: field %s is %zu bytes, limit %zu", msg, field, n, max);
    if (n && !rv_utf8_valid(s, n, &bad_at))
        return rv_fail(err, "%s: field %s is not valid UTF-8 (bad byte at offset %zu)", msg, field,
                       bad_at);
    return 0;
}

static int check_range(const char *msg, const char *field, uint64_t v, uint64_t lo, uint64_t hi,
                       char *err) {
    if (v < lo || v > hi)
        return rv_fail(err, "%s: %s is %llu, expected %llu..%llu", msg, field,
                       (unsigned long long)v, (unsigned long long)lo, (unsigned long long)hi);
    return 0;
}

/* An array's length against the product of its dimensions; `shape` spells the product out. */
static int check_len(const char *msg, const char *field, const char *unit, size_t n,
                     uint64_t expected, char *err, const char *shape, ...)
    __attribute__((format(printf, 7, 8)));
static int check_len(const char *msg, const char *field, const char *unit, size_t n,
                     uint64_t expected, char *err, const char *shape, ...) {
    if ((uint64_t)n == expected) return 0;
    char dims[160];
    va_list ap;
    va_start(ap, shape);
    vsnprintf(dims, sizeof dims, shape, ap);
    va_end(ap);
    return rv_fail(err, "%s: %s has %zu %s, expected %s = %llu", msg, field, n, unit, dims,
                   (unsigned long long)expected);
}

static int check_finite(const char *msg, const char *field, const float *v, size_t n, char *err) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return rv_fail(err, "%s: %s[%zu] is not finite (%g)", msg, field, i, (double)v[i]);
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sorted copy of ids, for duplicate and membership checks (NULL with err set on failure). */
static uint64_t *sorted_copy(const char *msg, const uint64_t *ids, size_t n, char *err) {
    uint64_t *s = malloc((n ? n : 1) * sizeof *s);
    if (!s) {
        rv_fail(err, "%s: out of memory checking %zu ids", msg, n);
        return NULL;
    }
    if (n) memcpy(s, ids, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_u64);
    return s;
}

static int check_distinct(const char *msg, const char *field, const uint64_t *ids, size_t n,
                          char *err) {
    uint64_t *s = sorted_copy(msg, ids, n, err);
    if (!s) return -1;
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (s[i] == s[i - 1])
            rc = rv_fail(err, "%s: %s holds id 0x%016llx twice", msg, field,
                         (unsigned long long)s[i]);
    free(s);
    return rc;
}

/* Fields this build does not know, at any depth. protobuf-c keeps them as "unknown fields"
 * and even accepts malformed ones (field number 0 in a multi-byte tag) that its own packer
 * then writes in a form it refuses. All ranks run one build and stores carry a schema
 * version, so an unknown field means a foreign or damaged message: refused, by number. */
static int check_known_fields(const ProtobufCMessage *m, const char *msg, char *err) {
    if (m->n_unknown_fields)
        return rv_fail(err, "%s: unknown field %u (wire type %d) in %s", msg,
                       m->unknown_fields[0].tag, (int)m->unknown_fields[0].wire_type,
                       m->descriptor->short_name);
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned f = 0; f < d->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[f];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        const char *at = (const char *)m + fd->offset;
        size_t n = 1;
        ProtobufCMessage *const *subs = (ProtobufCMessage *const *)at;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)((const char *)m + fd->quantifier_offset);
            subs = *(ProtobufCMessage *const *const *)at;
        }
        for (size_t i = 0; i < n; i++)
            if (subs[i] && check_known_fields(subs[i], msg, err)) return -1;
    }
    return 0;
}

/* Size bound, then protobuf-c's parse. NULL with err set when either fails. */
static ProtobufCMessage *unpack_bounded(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                                        size_t n, size_t max, char *err) {
    const char *msg = desc->short_name;
    if (n > max) {
        rv_fail(err, "%s: %zu bytes, limit %zu", msg, n, max);
        return NULL;
    }
    if (!buf && n) {
        rv_fail(err, "%s: no buffer for %zu bytes", msg, n);
        return NULL;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, n, buf);
    if (!m) {
        rv_fail(err, "%s: not a valid protobuf message (%zu bytes)", msg, n);
    } else if (check_known_fields(m, msg, err)) {
        protobuf_c_message_free_unpacked(m, NULL);
        m = NULL;
    }
    return m;
}

/* ---- KnowledgeItem ---- */

#define TYPE_BIT(t) (1u << REVEAL__SOURCE_TYPE__##t)
static const struct {
    const char *name;
    size_t offset;
    unsigned required; /* types that need the field non-empty */
    unsigned allowed;  /* types that may set it */
} item_text_fields[] = {
    {"text", offsetof(Reveal__KnowledgeItem, text), TYPE_BIT(IMAGE_TEXT) | TYPE_BIT(TEXT),
     TYPE_BIT(IMAGE_TEXT) | TYPE_BIT(TEXT)},
    {"title", offsetof(Reveal__KnowledgeItem, title), 0, TYPE_BIT(TEXT)},
    {"question", offsetof(Reveal__KnowledgeItem, question), TYPE_BIT(QA), TYPE_BIT(QA)},
    {"answer", offsetof(Reveal__KnowledgeItem, answer), TYPE_BIT(QA), TYPE_BIT(QA)},
    {"subject", offsetof(Reveal__KnowledgeItem, subject), TYPE_BIT(KG_TRIPLE), TYPE_BIT(KG_TRIPLE)},
    {"relation", offsetof(Reveal__KnowledgeItem, relation), TYPE_BIT(KG_TRIPLE),
     TYPE_BIT(KG_TRIPLE)},
    {"object", offsetof(Reveal__KnowledgeItem, object), TYPE_BIT(KG_TRIPLE), TYPE_BIT(KG_TRIPLE)},
};

static int check_image(const Reveal__Image *im, char *err) {
    const char *msg = "KnowledgeItem";
    if (im->channels != 3)
        return rv_fail(err, "%s: image channels is %u, expected 3 (RGB)", msg, im->channels);
    if (check_range(msg, "image width", im->width, 1, RV_PROTO_IMAGE_DIM_MAX, err) ||
        check_range(msg, "image height", im->height, 1, RV_PROTO_IMAGE_DIM_MAX, err))
        return -1;
    uint64_t want = (uint64_t)im->width * im->height * im->channels;
    return check_len(msg, "image pixels", "bytes", im->pixels.len, want, err,
                     "width*height*channels = %u*%u*%u", im->width, im->height, im->channels);
}

int rv_item_check(const Reveal__KnowledgeItem *item, char *err) {
    const char *msg = "KnowledgeItem";
    int t = (int)item->type;
    if (t == REVEAL__SOURCE_TYPE__SOURCE_TYPE_UNSPECIFIED)
        return rv_fail(err, "%s: type is not set", msg);
    if (t < 0 || t > SOURCE_TYPE_LAST)
        return rv_fail(err, "%s: type %d is not a SourceType (1..%d)", msg, t, SOURCE_TYPE_LAST);
    const char *tname = source_type_names[t];
    for (size_t f = 0; f < sizeof item_text_fields / sizeof item_text_fields[0]; f++) {
        const char *s = *(char *const *)((const char *)item + item_text_fields[f].offset);
        int set = s && s[0];
        if (!set && (item_text_fields[f].required & (1u << t)))
            return rv_fail(err, "%s: %s item has no %s", msg, tname, item_text_fields[f].name);
        if (set && !(item_text_fields[f].allowed & (1u << t)))
            return rv_fail(err, "%s: field %s is set but %s items do not use it", msg,
                           item_text_fields[f].name, tname);
        if (check_string(msg, item_text_fields[f].name, s, RV_PROTO_STRING_MAX, err)) return -1;
    }
    if (check_string(msg, "key", item->key, RV_PROTO_STRING_MAX, err)) return -1;
    if (item->provenance &&
        check_string(msg, "provenance file", item->provenance->file, RV_PROTO_PATH_MAX, err))
        return -1;
    if (!item->image && t == REVEAL__SOURCE_TYPE__IMAGE_TEXT)
        return rv_fail(err, "%s: image_text item has no image", msg);
    if (item->image && check_image(item->image, err)) return -1;
    return 0;
}

int rv_item_decode(const uint8_t *buf, size_t n, Reveal__KnowledgeItem **out, char *err) {
    ProtobufCMessage *m =
        unpack_bounded(&reveal__knowledge_item__descriptor, buf, n, RV_PROTO_ITEM_MAX_BYTES, err);
    if (!m) return -1;
    Reveal__KnowledgeItem *item = (Reveal__KnowledgeItem *)m;
    if (rv_item_check(item, err)) {
        reveal__knowledge_item__free_unpacked(item, NULL);
        return -1;
    }
    *out = item;
    return 0;
}

/* ---- StoreConfig ---- */

int rv_store_config_check(const Reveal__StoreConfig *cfg, char *err) {
    const char *msg = "StoreConfig";
    int t = (int)cfg->type;
    if (t <= 0 || t > SOURCE_TYPE_LAST)
        return rv_fail(err, "%s: type %d is not a SourceType (1..%d)", msg, t, SOURCE_TYPE_LAST);
    if (!cfg->name || !cfg->name[0]) return rv_fail(err, "%s: name is empty", msg);
    if (check_string(msg, "name", cfg->name, RV_PROTO_NAME_MAX, err)) return -1;
    return check_range(msg, "image_size", cfg->image_size, 1, RV_PROTO_IMAGE_DIM_MAX, err);
}

int rv_store_config_decode(const uint8_t *buf, size_t n, Reveal__StoreConfig **out, char *err) {
    ProtobufCMessage *m =
        unpack_bounded(&reveal__store_config__descriptor, buf, n, RV_PROTO_ITEM_MAX_BYTES, err);
    if (!m) return -1;
    if (rv_store_config_check((Reveal__StoreConfig *)m, err)) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    *out = (Reveal__StoreConfig *)m;
    return 0;
}

/* ---- QueryBatch ---- */

int rv_query_batch_check(const Reveal__QueryBatch *m, char *err) {
    const char *msg = "QueryBatch";
    if (check_range(msg, "batch", m->batch, 1, RV_PROTO_BATCH_MAX, err) ||
        check_range(msg, "dk", m->dk, 1, RV_PROTO_DIM_MAX, err) ||
        check_len(msg, "queries", "floats", m->n_queries, (uint64_t)m->batch * m->dk, err,
                  "batch*dk = %u*%u", m->batch, m->dk) ||
        check_finite(msg, "queries", m->queries, m->n_queries, err) ||
        check_range(msg, "number of sources in k", m->n_k, 1, RV_PROTO_SOURCES_MAX, err))
        return -1;
    for (size_t j = 0; j < m->n_k; j++) {
        char field[32];
        snprintf(field, sizeof field, "k[%zu]", j);
        if (check_range(msg, field, m->k[j], 0, RV_PROTO_K_MAX, err)) return -1;
    }
    if (m->n_fresh) {
        if (check_len(msg, "fresh", "entries", m->n_fresh, m->n_k, err, "sources = %zu", m->n_k))
            return -1;
        for (size_t j = 0; j < m->n_fresh; j++)
            if (m->fresh[j] > m->k[j])
                return rv_fail(err, "%s: fresh[%zu] = %u is more than k[%zu] = %u", msg, j,
                               m->fresh[j], j, m->k[j]);
    }
    if (m->n_gold_keys || m->n_gold_sources) {
        if (check_len(msg, "gold_keys", "strings", m->n_gold_keys, m->batch, err, "batch = %u",
                      m->batch) ||
            check_len(msg, "gold_sources", "entries", m->n_gold_sources, m->batch, err,
                      "batch = %u", m->batch))
            return -1;
        for (size_t b = 0; b < m->n_gold_keys; b++) {
            if (check_string(msg, "gold_keys", m->gold_keys[b], RV_PROTO_STRING_MAX, err))
                return -1;
            if (m->gold_sources[b] >= m->n_k)
                return rv_fail(err, "%s: gold_sources[%zu] = %u, the batch has %zu sources", msg, b,
                               m->gold_sources[b], m->n_k);
        }
    }
    if (!m->train && m->n_fresh) return rv_fail(err, "%s: fresh given without train", msg);
    return 0;
}

int rv_query_batch_decode(const uint8_t *buf, size_t n, Reveal__QueryBatch **out, char *err) {
    ProtobufCMessage *m =
        unpack_bounded(&reveal__query_batch__descriptor, buf, n, RV_PROTO_WIRE_MAX_BYTES, err);
    if (!m) return -1;
    if (rv_query_batch_check((Reveal__QueryBatch *)m, err)) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    *out = (Reveal__QueryBatch *)m;
    return 0;
}

/* ---- TopKReply ---- */

/* Each query's ids are distinct and its scores descending (best first). */
static int check_topk_rows(const Reveal__TopKReply *m, char *err) {
    const char *msg = "TopKReply";
    for (uint32_t b = 0; b < m->batch; b++) {
        const float *s = m->scores + (size_t)b * m->k;
        for (uint32_t i = 1; i < m->k; i++)
            if (s[i] > s[i - 1])
                return rv_fail(err, "%s: scores of query %u are not best first: [%u] %g > [%u] %g",
                               msg, b, i, (double)s[i], i - 1, (double)s[i - 1]);
        char field[48];
        snprintf(field, sizeof field, "ids of query %u", b);
        if (check_distinct(msg, field, m->ids + (size_t)b * m->k, m->k, err)) return -1;
    }
    return 0;
}

/* Fresh ids are distinct and each one of the retrieved ids or a gold item. */
static int check_fresh_ids(const Reveal__TopKReply *m, char *err) {
    const char *msg = "TopKReply";
    if (check_distinct(msg, "fresh_ids", m->fresh_ids, m->n_fresh_ids, err)) return -1;
    uint64_t *sorted = sorted_copy(msg, m->ids, m->n_ids, err);
    unsigned char *gold = calloc(m->n_fresh_ids ? m->n_fresh_ids : 1, 1); /* (R) */
    int rc = 0;
    if (!sorted || !gold) {
        rc = sorted ? rv_fail(err, "%s: out of memory checking fresh_ids", msg) : -1;
        goto cleanup;
    }
    for (size_t b = 0; b < m->n_gold_fresh; b++)
        if (m->gold_fresh[b] >= 0) gold[m->gold_fresh[b]] = 1;
    for (size_t r = 0; r < m->n_fresh_ids && rc == 0; r++)
        if (!gold[r] && !bsearch(&m->fresh_ids[r], sorted, m->n_ids, sizeof *sorted, cmp_u64))
            rc = rv_fail(err,
                         "%s: fresh_ids[%zu] = 0x%016llx is neither a retrieved id nor a gold "
                         "item",
                         msg, r, (unsigned long long)m->fresh_ids[r]);
cleanup:
    free(sorted);
    free(gold);
    return rc;
}

int rv_topk_reply_check(const Reveal__TopKReply *m, char *err) {
    const char *msg = "TopKReply";
    uint64_t bk = (uint64_t)m->batch * m->k, r = m->n_fresh_ids;
    if (check_range(msg, "batch", m->batch, 1, RV_PROTO_BATCH_MAX, err) ||
        check_range(msg, "k", m->k, 0, RV_PROTO_K_MAX, err) ||
        check_len(msg, "ids", "ids", m->n_ids, bk, err, "batch*k = %u*%u", m->batch, m->k) ||
        check_len(msg, "scores", "floats", m->n_scores, bk, err, "batch*k = %u*%u", m->batch,
                  m->k) ||
        check_finite(msg, "scores", m->scores, m->n_scores, err))
        return -1;
    /* c = d = 0: a reply without values (keys-only retrieval). */
    if (m->c || m->d || m->n_values) {
        if (check_range(msg, "c", m->c, 1, RV_PROTO_TOKENS_MAX, err) ||
            check_range(msg, "d", m->d, 1, RV_PROTO_DIM_MAX, err))
            return -1;
    }
    uint64_t cd = (uint64_t)m->c * m->d;
    if (check_len(msg, "values", "floats", m->n_values, bk * cd, err, "batch*k*c*d = %u*%u*%u*%u",
                  m->batch, m->k, m->c, m->d) ||
        check_finite(msg, "values", m->values, m->n_values, err))
        return -1;
    if (r > bk + m->batch)
        return rv_fail(err, "%s: %llu fresh_ids, more than batch*(k+1) = %llu", msg,
                       (unsigned long long)r, (unsigned long long)(bk + m->batch));
    if ((r || m->n_keys) && check_range(msg, "dk", m->dk, 1, RV_PROTO_DIM_MAX, err)) return -1;
    if (m->n_keys && (check_len(msg, "keys", "floats", m->n_keys, bk * m->dk, err,
                                "batch*k*dk = %u*%u*%u", m->batch, m->k, m->dk) ||
                      check_finite(msg, "keys", m->keys, m->n_keys, err)))
        return -1;
    if (m->n_gold_fresh) {
        if (check_len(msg, "gold_fresh", "entries", m->n_gold_fresh, m->batch, err, "batch = %u",
                      m->batch))
            return -1;
        for (size_t b = 0; b < m->n_gold_fresh; b++)
            if (m->gold_fresh[b] < -1 || m->gold_fresh[b] >= (int64_t)r)
                return rv_fail(err, "%s: gold_fresh[%zu] = %d, must be -1 or below %llu fresh ids",
                               msg, b, (int)m->gold_fresh[b], (unsigned long long)r);
    }
    if (m->n_gold_ids &&
        check_len(msg, "gold_ids", "ids", m->n_gold_ids, m->batch, err, "batch = %u", m->batch))
        return -1;
    if (check_len(msg, "fresh_keys", "floats", m->n_fresh_keys, r * m->dk, err,
                  "fresh_ids*dk = %llu*%u", (unsigned long long)r, m->dk) ||
        check_finite(msg, "fresh_keys", m->fresh_keys, m->n_fresh_keys, err) ||
        check_len(msg, "fresh_values", "floats", m->n_fresh_values, r * cd, err,
                  "fresh_ids*c*d = %llu*%u*%u", (unsigned long long)r, m->c, m->d) ||
        check_finite(msg, "fresh_values", m->fresh_values, m->n_fresh_values, err))
        return -1;
    return check_topk_rows(m, err) || check_fresh_ids(m, err) ? -1 : 0;
}

int rv_topk_reply_decode(const uint8_t *buf, size_t n, Reveal__TopKReply **out, char *err) {
    ProtobufCMessage *m =
        unpack_bounded(&reveal__top_kreply__descriptor, buf, n, RV_PROTO_WIRE_MAX_BYTES, err);
    if (!m) return -1;
    if (rv_topk_reply_check((Reveal__TopKReply *)m, err)) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    *out = (Reveal__TopKReply *)m;
    return 0;
}

/* ---- ItemGrads ---- */

int rv_item_grads_check(const Reveal__ItemGrads *m, char *err) {
    const char *msg = "ItemGrads";
    uint64_t n = m->n_ids;
    if (check_range(msg, "dk", m->dk, 1, RV_PROTO_DIM_MAX, err) ||
        check_range(msg, "c", m->c, 1, RV_PROTO_TOKENS_MAX, err) ||
        check_range(msg, "d", m->d, 1, RV_PROTO_DIM_MAX, err) ||
        check_len(msg, "key_grads", "floats", m->n_key_grads, n * m->dk, err, "ids*dk = %llu*%u",
                  (unsigned long long)n, m->dk) ||
        check_finite(msg, "key_grads", m->key_grads, m->n_key_grads, err) ||
        check_len(msg, "value_grads", "floats", m->n_value_grads, n * m->c * m->d, err,
                  "ids*c*d = %llu*%u*%u", (unsigned long long)n, m->c, m->d) ||
        check_finite(msg, "value_grads", m->value_grads, m->n_value_grads, err))
        return -1;
    return check_distinct(msg, "ids", m->ids, m->n_ids, err);
}

int rv_item_grads_decode(const uint8_t *buf, size_t n, Reveal__ItemGrads **out, char *err) {
    ProtobufCMessage *m =
        unpack_bounded(&reveal__item_grads__descriptor, buf, n, RV_PROTO_WIRE_MAX_BYTES, err);
    if (!m) return -1;
    if (rv_item_grads_check((Reveal__ItemGrads *)m, err)) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    *out = (Reveal__ItemGrads *)m;
    return 0;
}

/* ---- Control ---- */

int rv_control_check(const Reveal__Control *m, char *err) {
    const char *msg = "Control";
    int c = (int)m->command;
    if (c == REVEAL__CONTROL_COMMAND__CONTROL_UNSPECIFIED)
        return rv_fail(err, "%s: command is not set", msg);
    if (c < 0 || c > REVEAL__CONTROL_COMMAND__EDIT)
        return rv_fail(err, "%s: command %d is not a ControlCommand (1..%d)", msg, c,
                       REVEAL__CONTROL_COMMAND__EDIT);
    if (check_string(msg, "path", m->path, RV_PROTO_PATH_MAX, err)) return -1;
    if (c == REVEAL__CONTROL_COMMAND__CHECKPOINT && (!m->path || !m->path[0]))
        return rv_fail(err, "%s: CHECKPOINT has no path", msg);
    return 0;
}

int rv_control_decode(const uint8_t *buf, size_t n, Reveal__Control **out, char *err) {
    ProtobufCMessage *m =
        unpack_bounded(&reveal__control__descriptor, buf, n, RV_PROTO_WIRE_MAX_BYTES, err);
    if (!m) return -1;
    if (rv_control_check((Reveal__Control *)m, err)) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    *out = (Reveal__Control *)m;
    return 0;
}

/* ---- Status ---- */

int rv_status_check(const Reveal__Status *m, char *err) {
    const char *msg = "Status";
    if (check_string(msg, "message", m->message, RV_PROTO_STRING_MAX, err)) return -1;
    if (!m->ok && (!m->message || !m->message[0]))
        return rv_fail(err, "%s: a failure without a message", msg);
    return 0;
}

int rv_status_decode(const uint8_t *buf, size_t n, Reveal__Status **out, char *err) {
    ProtobufCMessage *m =
        unpack_bounded(&reveal__status__descriptor, buf, n, RV_PROTO_WIRE_MAX_BYTES, err);
    if (!m) return -1;
    if (rv_status_check((Reveal__Status *)m, err)) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    *out = (Reveal__Status *)m;
    return 0;
}
