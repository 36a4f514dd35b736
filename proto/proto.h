/* proto/proto.h — checked encoding and decoding of reveal's protobuf messages.
 *
 * Every byte string that comes from outside the process (a store on disk, another rank) is
 * decoded through one of the rv_*_decode functions: they bound the size before unpacking, then
 * check what protobuf-c does not — enums in range, the fields a message requires present,
 * string lengths bounded and valid UTF-8, every array length equal to the product of its
 * declared dimensions, every float finite. The matching rv_*_check functions run the same
 * checks on a message built in memory (senders call them before packing).
 *
 * Errors name the message, the field, and the expected against the actual value, e.g.
 * "TopKReply: scores has 5 floats, expected batch*k = 2*3 = 6".
 *
 * Ownership: a decoded message is freed with its protobuf-c free_unpacked function
 * (reveal__knowledge_item__free_unpacked, ...). Buffers from rv_pack are freed with free().
 */
#ifndef PROTO_H
#define PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "reveal.pb-c.h"

/* Limits on what a decoder accepts. */
#define RV_PROTO_ITEM_MAX_BYTES (8u << 20) /* one packed KnowledgeItem */
#define RV_PROTO_WIRE_MAX_BYTES (1u << 30) /* one wire message */
#define RV_PROTO_STRING_MAX     65536u     /* any text field, in bytes */
#define RV_PROTO_PATH_MAX       4096u      /* provenance file, control path */
#define RV_PROTO_NAME_MAX       63u        /* store name */
#define RV_PROTO_IMAGE_DIM_MAX  1024u      /* image width and height */
#define RV_PROTO_BATCH_MAX      65536u     /* B */
#define RV_PROTO_K_MAX          4096u      /* K per source */
#define RV_PROTO_SOURCES_MAX    1024u      /* sources in a QueryBatch */
#define RV_PROTO_DIM_MAX        65536u     /* dk, d */
#define RV_PROTO_TOKENS_MAX     4096u      /* c, value tokens per item */

/* "image_text", "qa", "kg_triple", "text", or "unspecified" / "unknown". */
const char *rv_source_type_name(Reveal__SourceType type);
/* The inverse of rv_source_type_name; returns REVEAL__SOURCE_TYPE__SOURCE_TYPE_UNSPECIFIED
 * for an unknown name. */
Reveal__SourceType rv_source_type_from_name(const char *name);

/* Packs any message into a malloc'ed buffer. */
int rv_pack(const ProtobufCMessage *msg, uint8_t **buf, size_t *n, char *err);

/* KnowledgeItem: type set and known; the fields of its type present and non-empty, the fields
 * of other types empty (IMAGE_TEXT: image, text; QA: question, answer; KG_TRIPLE: subject,
 * relation, object; TEXT: text, optional title; any type: optional image, key, provenance);
 * strings bounded and UTF-8; image 3 channels, 1..RV_PROTO_IMAGE_DIM_MAX wide and high, with
 * width*height*3 pixel bytes. */
int rv_item_check(const Reveal__KnowledgeItem *item, char *err);
int rv_item_decode(const uint8_t *buf, size_t n, Reveal__KnowledgeItem **out, char *err);

/* StoreConfig: type known, name 1..RV_PROTO_NAME_MAX bytes of UTF-8, image size in
 * 1..RV_PROTO_IMAGE_DIM_MAX. */
int rv_store_config_check(const Reveal__StoreConfig *cfg, char *err);
int rv_store_config_decode(const uint8_t *buf, size_t n, Reveal__StoreConfig **out, char *err);

/* QueryBatch: batch, dk and every k within limits, at least one source, queries (B, dk). */
int rv_query_batch_check(const Reveal__QueryBatch *m, char *err);
int rv_query_batch_decode(const uint8_t *buf, size_t n, Reveal__QueryBatch **out, char *err);

/* TopKReply: ids and scores (B, K), values (B, K, c, d) or none (c = d = 0), fresh keys
 * (R, dk) and fresh values (R, c, d) for R fresh ids, each of which is one of ids. */
int rv_topk_reply_check(const Reveal__TopKReply *m, char *err);
int rv_topk_reply_decode(const uint8_t *buf, size_t n, Reveal__TopKReply **out, char *err);

/* ItemGrads: key grads (N, dk), value grads (N, c, d) for N ids. */
int rv_item_grads_check(const Reveal__ItemGrads *m, char *err);
int rv_item_grads_decode(const uint8_t *buf, size_t n, Reveal__ItemGrads **out, char *err);

/* Control: command known; CHECKPOINT carries a path (bounded, UTF-8). */
int rv_control_check(const Reveal__Control *m, char *err);
int rv_control_decode(const uint8_t *buf, size_t n, Reveal__Control **out, char *err);

/* Status: a failure carries a message; the message is bounded and UTF-8. */
int rv_status_check(const Reveal__Status *m, char *err);
int rv_status_decode(const uint8_t *buf, size_t n, Reveal__Status **out, char *err);

#endif
