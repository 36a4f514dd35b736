/* tests/test_store_proto.c — hostile bytes into the checked decoders: truncation, bad enums,
 * pixel counts that disagree with the dimensions, huge declared lengths, invalid UTF-8, arrays
 * of the wire messages that disagree with their declared dims. Each is refused with an error
 * naming the message, the field and the expected value; valid messages round-trip. */
#include "test_store_util.h"

#include <math.h>

static char err[RV_ERR_MAX];

static void expect(int rc, const char *what, const char *want) {
    CHECKF(rc == -1, "%s: accepted", what);
    CHECKF(rc == -1 && strstr(err, want) != NULL, "%s: expected '%s' in '%s'", what, want, err);
}

static size_t pack_to(const ProtobufCMessage *m, uint8_t **buf) {
    size_t n;
    REQUIRE(rv_pack(m, buf, &n, err) == 0);
    return n;
}

static int item_bytes(const Reveal__KnowledgeItem *item) {
    uint8_t *buf;
    size_t n = pack_to(&item->base, &buf);
    Reveal__KnowledgeItem *out = NULL;
    int rc = rv_item_decode(buf, n, &out, err);
    if (out) reveal__knowledge_item__free_unpacked(out, NULL);
    free(buf);
    return rc;
}

static void test_item(void) {
    uint8_t px[4 * 4 * 3];
    Reveal__Image im = image_of(4, px, 3);
    Reveal__Provenance prov = REVEAL__PROVENANCE__INIT;
    prov.file = "in.jsonl";
    prov.line = 9;
    Reveal__KnowledgeItem item = REVEAL__KNOWLEDGE_ITEM__INIT;
    item.type = REVEAL__SOURCE_TYPE__IMAGE_TEXT;
    item.text = "Fahne Nepals — 🇳🇵";
    item.image = &im;
    item.provenance = &prov;
    uint8_t *buf;
    size_t n = pack_to(&item.base, &buf);
    Reveal__KnowledgeItem *out = NULL;
    CHECKF(rv_item_decode(buf, n, &out, err) == 0, "valid item: %s", err);
    CHECK(out && !strcmp(out->text, item.text) && out->image->pixels.len == sizeof px &&
          out->provenance->line == 9);
    reveal__knowledge_item__free_unpacked(out, NULL);

    /* every truncation is refused, but the one that drops the whole provenance (the last
     * field): that is a valid item without provenance */
    int refused = 0;
    for (size_t cut = 0; cut < n; cut++) {
        out = NULL;
        if (rv_item_decode(buf, cut, &out, err) == -1)
            refused++;
        else
            CHECK(out->provenance == NULL);
        if (out) reveal__knowledge_item__free_unpacked(out, NULL);
    }
    CHECKF(refused == (int)n - 1, "%d of %zu truncations refused", refused, n);
    expect(rv_item_decode(buf, n - 1, &out, err), "truncated", "KnowledgeItem: ");
    free(buf);

    /* over the size bound: refused before parsing */
    expect(rv_item_decode(px, RV_PROTO_ITEM_MAX_BYTES + 1, &out, err), "oversize",
           "KnowledgeItem: 8388609 bytes, limit 8388608");
    /* a length prefix declaring 1 GiB with 3 bytes behind it */
    const uint8_t huge[] = {0x08, 0x04, 0x1a, 0x80, 0x80, 0x80, 0x80, 0x04, 'a', 'b', 'c'};
    expect(rv_item_decode(huge, sizeof huge, &out, err), "huge length",
           "KnowledgeItem: not a valid protobuf message (11 bytes)");
    /* the same for the image's pixels, nested one level down */
    const uint8_t huge_px[] = {0x08, 0x01, 0x1a, 0x01, 'a',  0x52, 0x0b, 0x08, 0x04,
                               0x10, 0x04, 0x18, 0x03, 0x22, 0xff, 0xff, 0xff, 0x0f};
    expect(rv_item_decode(huge_px, sizeof huge_px, &out, err), "huge pixels",
           "not a valid protobuf message");
    /* an enum protobuf-c accepts but SourceType does not have */
    const uint8_t bad_enum[] = {0x08, 0x09, 0x1a, 0x01, 'a'};
    expect(rv_item_decode(bad_enum, sizeof bad_enum, &out, err), "type 9",
           "KnowledgeItem: type 9 is not a SourceType (1..4)");
    /* fields this build does not know are refused by number, nested ones too, and so is the
     * malformed field 0 (a two-byte tag) that protobuf-c itself lets through */
    const uint8_t unknown[] = {0x08, 0x03, 0x3a, 0x01, 's',  0x42, 0x01,
                               'r',  0x4a, 0x01, 'o',  0xa0, 0x01, 0x05};
    expect(rv_item_decode(unknown, sizeof unknown, &out, err), "unknown field 20",
           "KnowledgeItem: unknown field 20 (wire type 0) in KnowledgeItem");
    const uint8_t nested[] = {0x08, 0x03, 0x3a, 0x01, 's',  0x42, 0x01, 'r', 0x4a,
                              0x01, 'o',  0x5a, 0x04, 0x10, 0x07, 0x38, 0x01};
    expect(rv_item_decode(nested, sizeof nested, &out, err), "unknown nested field",
           "KnowledgeItem: unknown field 7 (wire type 0) in Provenance");
    const uint8_t field0[] = {0x08, 0x03, 0x3a, 0x01, 's',  0x42, 0x01,
                              'r',  0x4a, 0x01, 'o',  0x80, 0x00, 0x00};
    expect(rv_item_decode(field0, sizeof field0, &out, err), "field 0",
           "KnowledgeItem: unknown field 0");
    const uint8_t no_type[] = {0x1a, 0x01, 'a'};
    expect(rv_item_decode(no_type, sizeof no_type, &out, err), "no type",
           "KnowledgeItem: type is not set");
    expect(rv_item_decode(NULL, 0, &out, err), "empty", "KnowledgeItem: type is not set");

    /* field rules, through the encoder side */
    Reveal__KnowledgeItem kg = kg_item("Nepal", "capital", "Kathmandu");
    CHECK(item_bytes(&kg) == 0);
    kg.object = "";
    expect(item_bytes(&kg), "no object", "KnowledgeItem: kg_triple item has no object");
    kg.object = "Kathmandu";
    kg.question = "why?";
    expect(item_bytes(&kg), "foreign field", "field question is set but kg_triple items do not");
    kg.question = "";
    kg.subject = "Nep\xe0\x80\xafl"; /* overlong encoding of '/' */
    expect(item_bytes(&kg), "overlong UTF-8",
           "field subject is not valid UTF-8 (bad byte at offset 3)");
    kg.subject = "\xed\xa0\x80"; /* a UTF-16 surrogate */
    expect(item_bytes(&kg), "surrogate", "field subject is not valid UTF-8");
    kg.subject = "Nepal";
    kg.key = "\xff";
    expect(item_bytes(&kg), "key UTF-8", "field key is not valid UTF-8");
    kg.key = "";
    static char long_text[RV_PROTO_STRING_MAX + 2];
    memset(long_text, 'x', RV_PROTO_STRING_MAX + 1);
    kg.relation = long_text;
    expect(item_bytes(&kg), "long field", "field relation is 65537 bytes, limit 65536");
    kg.relation = "capital";

    item.provenance = NULL;
    im.pixels.len--;
    expect(item_bytes(&item), "pixel count",
           "image pixels has 47 bytes, expected width*height*channels = 4*4*3 = 48");
    im.pixels.len++;
    im.channels = 4;
    expect(item_bytes(&item), "channels", "image channels is 4, expected 3");
    im.channels = 3;
    im.width = 0;
    expect(item_bytes(&item), "width 0", "image width is 0, expected 1..1024");
    im.width = 5000;
    expect(item_bytes(&item), "width 5000", "image width is 5000, expected 1..1024");
    im.width = 4;
    item.image = NULL;
    expect(item_bytes(&item), "no image", "image_text item has no image");

    Reveal__KnowledgeItem text = REVEAL__KNOWLEDGE_ITEM__INIT;
    text.type = REVEAL__SOURCE_TYPE__TEXT;
    text.title = "only a title";
    expect(item_bytes(&text), "text without text", "text item has no text");
    Reveal__KnowledgeItem qa = REVEAL__KNOWLEDGE_ITEM__INIT;
    qa.type = REVEAL__SOURCE_TYPE__QA;
    qa.question = "q?";
    expect(item_bytes(&qa), "qa without answer", "qa item has no answer");
}

static void test_query_batch(void) {
    float q[2 * 3] = {1, 0, 0, 0, 1, 0};
    uint32_t k[2] = {5, 10};
    Reveal__QueryBatch m = REVEAL__QUERY_BATCH__INIT;
    m.step = 7;
    m.batch = 2;
    m.dk = 3;
    m.n_queries = 6;
    m.queries = q;
    m.n_k = 2;
    m.k = k;
    uint8_t *buf;
    size_t n = pack_to(&m.base, &buf);
    Reveal__QueryBatch *out = NULL;
    CHECKF(rv_query_batch_decode(buf, n, &out, err) == 0, "valid: %s", err);
    CHECK(out && out->step == 7 && out->n_queries == 6 && out->queries[4] == 1 && out->k[1] == 10);
    reveal__query_batch__free_unpacked(out, NULL);
    expect(rv_query_batch_decode(buf, n - 1, &out, err), "truncated", "QueryBatch: not a valid");
    free(buf);

    /* packed queries declaring 1 GiB of floats with 8 bytes behind them */
    const uint8_t huge[] = {0x10, 0x02, 0x18, 0x03, 0x22, 0x80, 0x80, 0x80, 0x80,
                            0x04, 0,    0,    0x80, 0x3f, 0,    0,    0,    0};
    expect(rv_query_batch_decode(huge, sizeof huge, &out, err), "huge queries",
           "QueryBatch: not a valid protobuf message (18 bytes)");
    m.n_queries = 5;
    n = pack_to(&m.base, &buf);
    expect(rv_query_batch_decode(buf, n, &out, err), "short queries",
           "QueryBatch: queries has 5 floats, expected batch*dk = 2*3 = 6");
    free(buf);
    m.n_queries = 6;
    CHECK(rv_query_batch_check(&m, err) == 0);
    q[3] = NAN;
    expect(rv_query_batch_check(&m, err), "nan", "QueryBatch: queries[3] is not finite");
    q[3] = 0;
    k[1] = 5000;
    expect(rv_query_batch_check(&m, err), "k 5000", "QueryBatch: k[1] is 5000, expected 0..4096");
    k[1] = 10;
    /* training fields: fresh counts per source, gold keys per row, only with train */
    uint32_t fresh[2] = {1, 11}, gold_src[2] = {0, 2};
    char *gold_keys[2] = {"kg:a|colour", ""};
    m.n_fresh = 2;
    m.fresh = fresh;
    expect(rv_query_batch_check(&m, err), "fresh > k",
           "QueryBatch: fresh[1] = 11 is more than k[1] = 10");
    fresh[1] = 2;
    expect(rv_query_batch_check(&m, err), "fresh without train",
           "QueryBatch: fresh given without train");
    m.train = 1;
    CHECK(rv_query_batch_check(&m, err) == 0);
    m.n_gold_keys = 1;
    m.gold_keys = gold_keys;
    m.n_gold_sources = 2;
    m.gold_sources = gold_src;
    expect(rv_query_batch_check(&m, err), "gold keys short",
           "QueryBatch: gold_keys has 1 strings, expected batch = 2");
    m.n_gold_keys = 2;
    expect(rv_query_batch_check(&m, err), "gold source",
           "QueryBatch: gold_sources[1] = 2, the batch has 2 sources");
    gold_src[1] = 1;
    CHECK(rv_query_batch_check(&m, err) == 0);
    m.train = 0;
    m.n_fresh = m.n_gold_keys = m.n_gold_sources = 0;
    m.n_k = 0;
    expect(rv_query_batch_check(&m, err), "no sources", "number of sources in k is 0");
    m.n_k = 2;
    m.batch = 0;
    m.n_queries = 0;
    expect(rv_query_batch_check(&m, err), "batch 0", "QueryBatch: batch is 0, expected 1..65536");
    m.batch = 1u << 20;
    expect(rv_query_batch_check(&m, err), "huge batch", "batch is 1048576, expected 1..65536");
    /* a message over the wire bound is refused before parsing */
    expect(
        rv_query_batch_decode((const uint8_t *)q, (size_t)RV_PROTO_WIRE_MAX_BYTES + 1, &out, err),
        "oversize", "QueryBatch: 1073741825 bytes, limit 1073741824");
}

static void test_topk_reply(void) {
    enum { B = 2, K = 3, C = 2, D = 2, DK = 4, R = 2 };
    uint64_t ids[B * K] = {11, 12, 13, 12, 14, 15}, fresh[R] = {11, 12};
    float scores[B * K] = {0.9f, 0.5f, 0.1f, 0.8f, 0.8f, -0.2f};
    float values[B * K * C * D], fkeys[R * DK], fvalues[R * C * D];
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) values[i] = (float)i;
    for (size_t i = 0; i < sizeof fkeys / sizeof *fkeys; i++) fkeys[i] = (float)i;
    for (size_t i = 0; i < sizeof fvalues / sizeof *fvalues; i++) fvalues[i] = (float)i;
    Reveal__TopKReply m = REVEAL__TOP_KREPLY__INIT;
    m.source = 2;
    m.shard = 1;
    m.step = 9;
    m.batch = B;
    m.k = K;
    m.n_ids = B * K;
    m.ids = ids;
    m.n_scores = B * K;
    m.scores = scores;
    m.c = C;
    m.d = D;
    m.n_values = B * K * C * D;
    m.values = values;
    m.dk = DK;
    m.n_fresh_ids = R;
    m.fresh_ids = fresh;
    m.n_fresh_keys = R * DK;
    m.fresh_keys = fkeys;
    m.n_fresh_values = R * C * D;
    m.fresh_values = fvalues;
    uint8_t *buf;
    size_t n = pack_to(&m.base, &buf);
    Reveal__TopKReply *out = NULL;
    CHECKF(rv_topk_reply_decode(buf, n, &out, err) == 0, "valid: %s", err);
    CHECK(out && out->source == 2 && out->ids[4] == 14 && out->values[23] == 23.0f &&
          out->fresh_values[7] == 7.0f);
    reveal__top_kreply__free_unpacked(out, NULL);
    free(buf);

    m.n_values--;
    n = pack_to(&m.base, &buf);
    expect(rv_topk_reply_decode(buf, n, &out, err), "values",
           "TopKReply: values has 23 floats, expected batch*k*c*d = 2*3*2*2 = 24");
    free(buf);
    m.n_values++;
    m.n_ids--;
    expect(rv_topk_reply_check(&m, err), "ids", "ids has 5 ids, expected batch*k = 2*3 = 6");
    m.n_ids++;
    m.n_scores++;
    expect(rv_topk_reply_check(&m, err), "scores", "scores has 7 floats, expected");
    m.n_scores--;
    m.n_fresh_keys--;
    expect(rv_topk_reply_check(&m, err), "fresh keys",
           "fresh_keys has 7 floats, expected fresh_ids*dk = 2*4 = 8");
    m.n_fresh_keys++;
    m.n_fresh_values++;
    expect(rv_topk_reply_check(&m, err), "fresh values",
           "fresh_values has 9 floats, expected fresh_ids*c*d = 2*2*2 = 8");
    m.n_fresh_values--;
    fresh[1] = 99;
    expect(rv_topk_reply_check(&m, err), "fresh id",
           "fresh_ids[1] = 0x0000000000000063 is neither a retrieved id nor a gold item");
    fresh[1] = 11;
    expect(rv_topk_reply_check(&m, err), "fresh twice", "fresh_ids holds id 0x000000000000000b");
    fresh[1] = 12;
    ids[5] = 14;
    expect(rv_topk_reply_check(&m, err), "dup in row",
           "ids of query 1 holds id 0x000000000000000e");
    ids[5] = 15;
    scores[1] = 0.95f;
    expect(rv_topk_reply_check(&m, err), "order", "scores of query 0 are not best first");
    scores[1] = 0.5f;
    values[3] = INFINITY;
    expect(rv_topk_reply_check(&m, err), "inf", "values[3] is not finite");
    values[3] = 3;
    m.dk = 0;
    expect(rv_topk_reply_check(&m, err), "dk 0", "TopKReply: dk is 0, expected 1..65536");
    m.dk = DK;
    m.c = 0;
    expect(rv_topk_reply_check(&m, err), "c 0", "TopKReply: c is 0, expected 1..4096");
    /* a reply without values, and without fresh items, is valid */
    m.c = m.d = 0;
    m.n_values = 0;
    m.n_fresh_ids = m.n_fresh_keys = m.n_fresh_values = 0;
    CHECKF(rv_topk_reply_check(&m, err) == 0, "keys-only reply: %s", err);
    m.k = 5000;
    expect(rv_topk_reply_check(&m, err), "k", "TopKReply: k is 5000, expected 0..4096");
}

static void test_item_grads(void) {
    uint64_t ids[2] = {5, 6};
    float kg[2 * 3] = {0}, vg[2 * 2 * 3] = {0};
    Reveal__ItemGrads m = REVEAL__ITEM_GRADS__INIT;
    m.step = 3;
    m.source = 1;
    m.dk = 3;
    m.c = 2;
    m.d = 3;
    m.n_ids = 2;
    m.ids = ids;
    m.n_key_grads = 6;
    m.key_grads = kg;
    m.n_value_grads = 12;
    m.value_grads = vg;
    uint8_t *buf;
    size_t n = pack_to(&m.base, &buf);
    Reveal__ItemGrads *out = NULL;
    CHECKF(rv_item_grads_decode(buf, n, &out, err) == 0, "valid: %s", err);
    CHECK(out && out->n_value_grads == 12 && out->ids[1] == 6);
    reveal__item_grads__free_unpacked(out, NULL);
    free(buf);
    m.n_value_grads = 11;
    n = pack_to(&m.base, &buf);
    expect(rv_item_grads_decode(buf, n, &out, err), "value grads",
           "ItemGrads: value_grads has 11 floats, expected ids*c*d = 2*2*3 = 12");
    free(buf);
    m.n_value_grads = 12;
    m.n_key_grads = 3;
    expect(rv_item_grads_check(&m, err), "key grads", "key_grads has 3 floats, expected ids*dk");
    m.n_key_grads = 6;
    kg[5] = NAN;
    expect(rv_item_grads_check(&m, err), "nan grad", "ItemGrads: key_grads[5] is not finite");
    kg[5] = 0;
    ids[1] = 5;
    expect(rv_item_grads_check(&m, err), "dup ids", "ItemGrads: ids holds id 0x0000000000000005");
}

static void test_control(void) {
    Reveal__Control m = REVEAL__CONTROL__INIT;
    m.command = REVEAL__CONTROL_COMMAND__CHECKPOINT;
    m.step = 100;
    m.path = "run/ckpt/step_100/kg";
    uint8_t *buf;
    size_t n = pack_to(&m.base, &buf);
    Reveal__Control *out = NULL;
    CHECKF(rv_control_decode(buf, n, &out, err) == 0, "valid: %s", err);
    CHECK(out && out->step == 100 && !strcmp(out->path, m.path));
    reveal__control__free_unpacked(out, NULL);
    free(buf);
    m.path = "";
    expect(rv_control_check(&m, err), "no path", "Control: CHECKPOINT has no path");
    m.command = REVEAL__CONTROL_COMMAND__SHUTDOWN;
    CHECK(rv_control_check(&m, err) == 0);
    const uint8_t bad[] = {0x08, 0x07};
    expect(rv_control_decode(bad, sizeof bad, &out, err), "command 7",
           "Control: command 7 is not a ControlCommand (1..4)");
    const uint8_t none[] = {0x10, 0x01};
    expect(rv_control_decode(none, sizeof none, &out, err), "no command", "command is not set");
    const uint8_t neg[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    expect(rv_control_decode(neg, sizeof neg, &out, err), "command -1",
           "Control: command -1 is not a ControlCommand");
    m.command = REVEAL__CONTROL_COMMAND__CHECKPOINT;
    m.path = "ckpt/\xc0\xaf";
    expect(rv_control_check(&m, err), "path UTF-8", "Control: field path is not valid UTF-8");
}

static void test_names(void) {
    for (int t = 1; t <= 4; t++)
        CHECK((int)rv_source_type_from_name(rv_source_type_name((Reveal__SourceType)t)) == t);
    CHECK(rv_source_type_from_name("kg") == REVEAL__SOURCE_TYPE__SOURCE_TYPE_UNSPECIFIED);
    CHECK(!strcmp(rv_source_type_name((Reveal__SourceType)77), "unknown"));
}

int main(void) {
    test_item();
    test_query_batch();
    test_topk_reply();
    test_item_grads();
    test_control();
    test_names();
    return check_report("store_proto");
}
