/* tests/fuzz/fuzz_proto.c — libFuzzer target for the checked decoders of proto/proto.h.
 * The first input byte picks the decoder, the rest is the message. Beyond "no crash, no
 * sanitizer report", each accepted message must survive the checks a reader relies on: every
 * array is read to its declared end, and an accepted message re-packs into bytes that decode
 * again (the decoders accept exactly what the checks accept). */
#include "proto.h"

#include "rv.h"

#include <stdint.h>
#include <stdlib.h>

enum { DEC_ITEM, DEC_CONFIG, DEC_QUERY, DEC_TOPK, DEC_GRADS, DEC_CONTROL, DEC_COUNT };

/* Reads every float, so a length the checks got wrong shows as an ASan report. */
static float touch(const float *v, size_t n) {
    float sum = 0;
    for (size_t i = 0; i < n; i++) sum += v[i];
    return sum;
}

static uint64_t touch_ids(const uint64_t *v, size_t n) {
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) x ^= v[i];
    return x;
}

static int decode(int which, const uint8_t *buf, size_t n, ProtobufCMessage **out, char *err) {
    switch (which) {
    case DEC_ITEM:
        return rv_item_decode(buf, n, (Reveal__KnowledgeItem **)out, err);
    case DEC_CONFIG:
        return rv_store_config_decode(buf, n, (Reveal__StoreConfig **)out, err);
    case DEC_QUERY:
        return rv_query_batch_decode(buf, n, (Reveal__QueryBatch **)out, err);
    case DEC_TOPK:
        return rv_topk_reply_decode(buf, n, (Reveal__TopKReply **)out, err);
    case DEC_GRADS:
        return rv_item_grads_decode(buf, n, (Reveal__ItemGrads **)out, err);
    default:
        return rv_control_decode(buf, n, (Reveal__Control **)out, err);
    }
}

static volatile float sink_f;
static volatile uint64_t sink_u;

static void exercise(const ProtobufCMessage *m, int which) {
    switch (which) {
    case DEC_ITEM: {
        const Reveal__KnowledgeItem *it = (const Reveal__KnowledgeItem *)m;
        if (it->image) sink_u = it->image->pixels.data[it->image->pixels.len - 1];
        break;
    }
    case DEC_QUERY: {
        const Reveal__QueryBatch *q = (const Reveal__QueryBatch *)m;
        sink_f = q->queries[(size_t)q->batch * q->dk - 1] + (float)q->k[q->n_k - 1];
        break;
    }
    case DEC_TOPK: {
        const Reveal__TopKReply *r = (const Reveal__TopKReply *)m;
        size_t bk = (size_t)r->batch * r->k, fr = r->n_fresh_ids;
        sink_u = touch_ids(r->ids, bk) ^ touch_ids(r->fresh_ids, fr);
        sink_f = touch(r->scores, bk) + touch(r->values, bk * r->c * r->d) +
                 touch(r->fresh_keys, fr * r->dk) + touch(r->fresh_values, fr * r->c * r->d);
        break;
    }
    case DEC_GRADS: {
        const Reveal__ItemGrads *g = (const Reveal__ItemGrads *)m;
        sink_u = touch_ids(g->ids, g->n_ids);
        sink_f =
            touch(g->key_grads, g->n_ids * g->dk) + touch(g->value_grads, g->n_ids * g->c * g->d);
        break;
    }
    default:
        break;
    }
}

/* Packs an accepted message and decodes it again with the same decoder; must succeed. */
static void repack(const ProtobufCMessage *m, int which) {
    char err[RV_ERR_MAX];
    uint8_t *buf = NULL;
    size_t n = 0;
    if (rv_pack(m, &buf, &n, err)) abort();
    ProtobufCMessage *again = NULL;
    if (decode(which, buf, n, &again, err)) abort(); /* accepted once, refused after a repack */
    protobuf_c_message_free_unpacked(again, NULL);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int which = data[0] % DEC_COUNT;
    char err[RV_ERR_MAX];
    ProtobufCMessage *m = NULL;
    if (decode(which, data + 1, size - 1, &m, err) == 0) {
        exercise(m, which);
        repack(m, which);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    return 0;
}
