/* tests/fuzz/make_corpus_proto.c — writes the seed corpus of fuzz_proto: one valid message of
 * every kind the decoders read (first byte = decoder, as fuzz_proto.c expects), so the fuzzer
 * starts from inputs that pass the wire format and reach the checks. Regenerate with
 *   cmake --build build --target make_corpus_proto
 *   build/tests/make_corpus_proto tests/fuzz/corpus_proto
 * Inputs found by fuzzing are added beside these by hand (crash-* files). */
#include "proto.h"

#include "rv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_seed(const char *dir, const char *name, int decoder, const ProtobufCMessage *m) {
    char err[RV_ERR_MAX], path[4096];
    uint8_t *buf;
    size_t n;
    if (rv_pack(m, &buf, &n, err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    uint8_t *seed = malloc(n + 1);
    if (!seed) return -1;
    seed[0] = (uint8_t)decoder;
    memcpy(seed + 1, buf, n);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = rv_write_file_atomic(path, seed, n + 1, err);
    if (rc) fprintf(stderr, "%s\n", err);
    free(seed);
    free(buf);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    char err[RV_ERR_MAX];
    if (rv_mkdirs(dir, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int rc = 0;

    uint8_t px[2 * 2 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    Reveal__Image im = REVEAL__IMAGE__INIT;
    im.width = im.height = 2;
    im.channels = 3;
    im.pixels.data = px;
    im.pixels.len = sizeof px;
    Reveal__Provenance prov = REVEAL__PROVENANCE__INIT;
    prov.file = "facts.jsonl";
    prov.line = 3;
    Reveal__KnowledgeItem it = REVEAL__KNOWLEDGE_ITEM__INIT;
    it.type = REVEAL__SOURCE_TYPE__IMAGE_TEXT;
    it.text = "flag of Nepal — नेपाल";
    it.key = "img/np.png";
    it.image = &im;
    it.provenance = &prov;
    rc |= write_seed(dir, "item_image_text", 0, &it.base);
    Reveal__KnowledgeItem kg = REVEAL__KNOWLEDGE_ITEM__INIT;
    kg.type = REVEAL__SOURCE_TYPE__KG_TRIPLE;
    kg.subject = "Nepal";
    kg.relation = "capital";
    kg.object = "Kathmandu";
    rc |= write_seed(dir, "item_kg", 0, &kg.base);
    Reveal__KnowledgeItem qa = REVEAL__KNOWLEDGE_ITEM__INIT;
    qa.type = REVEAL__SOURCE_TYPE__QA;
    qa.question = "What is the capital of Nepal?";
    qa.answer = "Kathmandu";
    rc |= write_seed(dir, "item_qa", 0, &qa.base);
    Reveal__KnowledgeItem text = REVEAL__KNOWLEDGE_ITEM__INIT;
    text.type = REVEAL__SOURCE_TYPE__TEXT;
    text.title = "Nepal";
    text.text = "A landlocked country in South Asia.";
    rc |= write_seed(dir, "item_text", 0, &text.base);

    Reveal__StoreConfig cfg = REVEAL__STORE_CONFIG__INIT;
    cfg.type = REVEAL__SOURCE_TYPE__QA;
    cfg.name = "qa";
    cfg.image_size = 32;
    rc |= write_seed(dir, "store_config", 1, &cfg.base);

    float q[2 * 3] = {1, 0, 0, 0, 0.6f, 0.8f};
    uint32_t k[2] = {2, 3};
    Reveal__QueryBatch qb = REVEAL__QUERY_BATCH__INIT;
    qb.step = 1;
    qb.batch = 2;
    qb.dk = 3;
    qb.n_queries = 6;
    qb.queries = q;
    qb.n_k = 2;
    qb.k = k;
    rc |= write_seed(dir, "query_batch", 2, &qb.base);

    uint64_t ids[2 * 2] = {1, 2, 2, 3}, fresh[1] = {2};
    float scores[4] = {0.9f, 0.1f, 0.5f, 0.4f}, values[4 * 2 * 2], fk[3] = {1, 0, 0},
          fv[2 * 2] = {1, 2, 3, 4};
    for (int i = 0; i < 16; i++) values[i] = (float)i / 16;
    Reveal__TopKReply r = REVEAL__TOP_KREPLY__INIT;
    r.source = 1;
    r.step = 1;
    r.batch = 2;
    r.k = 2;
    r.n_ids = 4;
    r.ids = ids;
    r.n_scores = 4;
    r.scores = scores;
    r.c = 2;
    r.d = 2;
    r.n_values = 16;
    r.values = values;
    r.dk = 3;
    r.n_fresh_ids = 1;
    r.fresh_ids = fresh;
    r.n_fresh_keys = 3;
    r.fresh_keys = fk;
    r.n_fresh_values = 4;
    r.fresh_values = fv;
    rc |= write_seed(dir, "topk_reply", 3, &r.base);

    Reveal__ItemGrads g = REVEAL__ITEM_GRADS__INIT;
    g.step = 1;
    g.source = 1;
    g.dk = 3;
    g.c = 2;
    g.d = 2;
    g.n_ids = 1;
    g.ids = fresh;
    g.n_key_grads = 3;
    g.key_grads = fk;
    g.n_value_grads = 4;
    g.value_grads = fv;
    rc |= write_seed(dir, "item_grads", 4, &g.base);

    Reveal__Control c = REVEAL__CONTROL__INIT;
    c.command = REVEAL__CONTROL_COMMAND__CHECKPOINT;
    c.step = 100;
    c.path = "run/ckpt/step_100/kg";
    rc |= write_seed(dir, "control", 5, &c.base);
    return rc ? 1 : 0;
}
