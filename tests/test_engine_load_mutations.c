/* tests/test_engine_load_mutations.c — malformed checkpoints and tokenizer models that pass the
 * checksum: the parsers behind it must refuse them cleanly or accept something consistent,
 * never crash or read out of bounds (this test also runs under ASan + UBSan).
 *
 * A checksum catches accidental damage, so to reach the parsers each mutated body is re-signed:
 * the checkpoint gets a fresh payload size and XXH3 in its header, the tokenizer model a fresh
 * envelope. Mutations (seeded, so a failure reproduces): byte flips aimed mostly at the
 * structural fields, 32- and 64-bit fields set to extreme values, and cuts at random points.
 */
#include "check.h"
#include "ckpt.h"
#include "params.h"
#include "rv.h"
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng = 0x853C49E6748FEA9Bull;
static uint64_t next_u64(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* Applies one random mutation to buf[lo .. *n) and returns a description. */
static const char *mutate(unsigned char *buf, size_t *n, size_t lo, size_t hot_end) {
    size_t span = (hot_end > lo ? hot_end : *n) - lo;
    size_t at = lo + (size_t)(next_u64() % span);
    switch (next_u64() % 4) {
    case 0:
        buf[at] ^= (unsigned char)(1u << (next_u64() % 8));
        return "bit flip";
    case 1:
        if (at + 4 <= *n) memset(buf + at, 0xFF, 4);
        return "u32 set to 0xFFFFFFFF";
    case 2:
        if (at + 8 <= *n) {
            uint64_t big = 1ull << (20 + next_u64() % 40);
            memcpy(buf + at, &big, 8);
        }
        return "u64 set to a large power of two";
    default:
        *n = at;
        return "cut";
    }
}

static void test_checkpoint_mutations(void) {
    trn_tensor_spec specs[] = {
        {"embed", 2, {11, 4}, 1, 0}, {"block.0.w", 3, {4, 3, 2}, 1, 1}, {"norm", 1, {4}, 0, 0}};
    trn_params p;
    char err[RV_ERR_MAX];
    REQUIRE(trn_params_init(&p, specs, 3, err) == 0);
    for (size_t i = 0; i < p.total; i++) p.params[i] = (float)i * 0.5f;
    const char *config = "{\"d\": 4, \"layers\": [1, 2]}";
    const char state[] = "rng-state";
    trn_ckpt_meta meta = {.step = 5,
                          .config = config,
                          .config_len = strlen(config),
                          .tokenizer = "tok",
                          .tokenizer_len = 3,
                          .state = state,
                          .state_len = sizeof state};
    const char *path = "engine_mutation.ckpt";
    REQUIRE(trn_ckpt_save(path, &p, &meta, err) == 0);
    void *orig;
    size_t n_orig;
    REQUIRE(rv_read_file(path, 1 << 20, &orig, &n_orig, err) == 0);
    size_t tensor_bytes = 3 * p.n_elements * sizeof(float);
    size_t structure_end = n_orig - tensor_bytes; /* header and sections before the floats */
    unsigned char *buf = malloc(n_orig);
    REQUIRE(buf);
    int accepted = 0, restored = 0, refused = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, orig, n_orig);
        size_t n = n_orig;
        int hot = next_u64() % 10 < 8;
        mutate(buf, &n, 64, hot ? structure_end : n_orig);
        if (n < 64) n = 64;
        uint64_t payload = n - 64, hash = rv_hash64(buf + 64, payload, 0);
        memcpy(buf + 16, &payload, 8);
        memcpy(buf + 24, &hash, 8);
        FILE *f = fopen(path, "wb");
        REQUIRE(f && fwrite(buf, 1, n, f) == n);
        fclose(f);
        trn_ckpt ck;
        err[0] = 0;
        if (trn_ckpt_open(path, &ck, err) != 0) {
            CHECKF(strstr(err, path) && strlen(err) > strlen(path) + 4, "unclear refusal: '%s'",
                   err);
            refused++;
            continue;
        }
        accepted++;
        /* what was accepted is self-consistent: read every section and every float */
        double sum = 0;
        for (size_t i = 0; i < ck.meta.config_len; i++) sum += ((const char *)ck.meta.config)[i];
        for (size_t i = 0; i < ck.meta.state_len; i++)
            sum += ((const unsigned char *)ck.meta.state)[i];
        for (size_t i = 0; i < 3 * ck.n_elements * sizeof(float); i++) sum += ck.data[i];
        CHECK(sum == sum);
        trn_ckpt_check_config(&ck, config, strlen(config), err);
        if (trn_ckpt_restore(&ck, &p, err) == 0) restored++;
        trn_ckpt_close(&ck);
    }
    printf("checkpoint: 3000 re-signed mutations: %d refused, %d opened (%d restored into the "
           "model)\n",
           refused, accepted, restored);
    CHECK(refused > 1000);
    unlink(path);
    free(buf);
    free(orig);
    trn_params_free(&p);
}

static void test_tokenizer_mutations(void) {
    /* a small real model: the GPL text, 400 pieces */
    void *text;
    size_t len;
    char err[RV_ERR_MAX];
    REQUIRE(rv_read_file("/usr/share/common-licenses/GPL-3", 1 << 20, &text, &len, err) == 0);
    const char *lines[1024];
    size_t n_lines = 0;
    for (char *s = text; s && *s && n_lines < 1024;) {
        char *nl = strchr(s, '\n');
        if (nl) *nl = 0;
        if (*s) lines[n_lines++] = s;
        s = nl ? nl + 1 : NULL;
    }
    trn_tok_train_opts o;
    trn_tok_train_opts_default(&o);
    o.vocab_size = 400;
    o.character_coverage = 1.0;
    void *model;
    size_t model_len;
    REQUIRE(trn_tok_train_texts(lines, n_lines, &o, &model, &model_len, err) == 0);
    unsigned char *buf = malloc(model_len);
    REQUIRE(buf);
    int loaded = 0, refused = 0;
    const char *probe = "This License applies to any program — même en français, 中文 😀.";
    for (int iter = 0; iter < 400; iter++) {
        memcpy(buf, model, model_len);
        size_t n = model_len;
        /* the pieces come first in the proto; aim half the mutations at its first 2 kB */
        mutate(buf, &n, 32, next_u64() % 2 ? 32 + 2048 : model_len);
        if (n < 32) n = 32;
        uint64_t body = n - 32, hash = rv_hash64(buf + 32, body, 0);
        memcpy(buf + 16, &body, 8);
        memcpy(buf + 24, &hash, 8);
        trn_tokenizer *tok = NULL;
        err[0] = 0;
        if (trn_tok_load(buf, n, &tok, err) != 0) {
            CHECKF(tok == NULL && strlen(err) > 10, "unclear refusal: '%s'", err);
            refused++;
            continue;
        }
        loaded++;
        int32_t ids[256];
        int k;
        if (trn_tok_encode(tok, probe, strlen(probe), TRN_TOK_ADD_BOS | TRN_TOK_ADD_EOS, 256, ids,
                           &k, NULL, err) == 0) {
            char *back;
            size_t lb;
            if (trn_tok_decode(tok, ids, k, &back, &lb, err) == 0) free(back);
        }
        trn_tok_free(tok);
    }
    printf("tokenizer: 400 re-signed mutations: %d refused, %d loaded and used\n", refused, loaded);
    CHECK(refused > 50);
    free(buf);
    free(model);
    free(text);
}

int main(void) {
    test_checkpoint_mutations();
    test_tokenizer_mutations();
    return check_report("engine_load_mutations");
}
