/* tests/test_model_errors.c — bad configs and bad batches are refused with a message that names
 * what is wrong, and a refused call leaves the model usable.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "rv.h"
#include "test_model_fixture.h"

static fx_batch fx;
static char err[RV_ERR_MAX];

#define EXPECT_FAIL(call, text)                                                                    \
    do {                                                                                           \
        err[0] = 0;                                                                                \
        int rc_ = (call);                                                                          \
        CHECKF(rc_ == -1 && strstr(err, text), "%s: rc %d, message \"%s\", expected \"%s\"",       \
               #call, rc_, err, text);                                                             \
    } while (0)

static void test_config(void) {
    const char *cases[] = {
        "width 62 is not divisible by heads 4",
        "image_size 16 is not divisible by patch 5",
        "vocab is 2, must be in [3,",
        "head_blocks is 0",
        "bos_id 1 and eos_id 1 must be distinct",
        "tau_scale 0 must be positive",
        "con_weight 1.5 must be in [0, 1]",
        "label_smoothing 1 must be in [0, 1)",
        "uniform_gate 2 and omega_off 0 must be 0 or 1",
        "decoder_blocks is 0",
        "width is 1000000",
        "head_pool 2 must be 0 (position 0) or 1 (mean)",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rvm_config c;
        rvm_config_default(&c);
        switch (i) {
        case 0:
            c.width = 62;
            break;
        case 1:
            c.patch = 5;
            break;
        case 2:
            c.vocab = 2;
            break;
        case 3:
            c.head_blocks = 0;
            break;
        case 4:
            c.eos_id = 1;
            break;
        case 5:
            c.tau_scale = 0;
            break;
        case 6:
            c.con_weight = 1.5f;
            break;
        case 7:
            c.label_smoothing = 1;
            break;
        case 8:
            c.uniform_gate = 2;
            break;
        case 9:
            c.decoder_blocks = 0;
            break;
        case 10:
            c.width = 1000000;
            break;
        case 11:
            c.head_pool = 2;
            break;
        }
        EXPECT_FAIL(rvm_config_check(&c, err), cases[i]);
        rvm_model m;
        EXPECT_FAIL(rvm_model_init(&m, &c, err), cases[i]);
    }
    rvm_config c;
    rvm_config_default(&c);
    CHECK(rvm_config_check(&c, err) == 0);
}

static void test_batch(rvm_model *m) {
    int k[2] = {2, 3};
    rvm_step_out o;
    int32_t bad[3] = {4, 99, 5};

    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    fx.queries[2].text.ids = bad;
    fx.queries[2].text.n = 3;
    EXPECT_FAIL(rvm_step(m, &fx.batch, &o, err),
                "query 2: token 99 at position 1 is outside the vocabulary [0, 13)");

    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    fx.queries[0].text.n = m->cfg.text_max;
    EXPECT_FAIL(rvm_step(m, &fx.batch, &o, err), "query 0: 6 tokens, must be in [0, 5]");

    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    fx.answers[1].n = m->cfg.answer_max;
    EXPECT_FAIL(rvm_step(m, &fx.batch, &o, err), "answer 1: 4 tokens, must be in [0, 3]");

    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    fx.cand[4].item = &fx.items[0]; /* a stored candidate given an item as well */
    EXPECT_FAIL(rvm_step(m, &fx.batch, &o, err),
                "candidate 4 of row 0: give either the item (re-encoded) or its key");

    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    fx.cand[5].item = NULL; /* a re-encoded candidate with nothing */
    EXPECT_FAIL(rvm_step(m, &fx.batch, &o, err), "candidate 0 of row 1: give either");

    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    fx.items[2].text.ids = bad;
    fx.items[2].text.n = 3;
    EXPECT_FAIL(rvm_step(m, &fx.batch, &o, err), "row 1, candidate 0: candidate item 0: token 99");

    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    fx.values[4][7] = NAN; /* row 0, slot 4: stored */
    EXPECT_FAIL(rvm_step(m, &fx.batch, &o, err),
                "candidate 4 of row 0: stored key or value is not finite");

    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    fx.cands.warm = 1;
    EXPECT_FAIL(rvm_step(m, &fx.batch, &o, err), "warm start takes one pseudo-source, not 2");

    int k1[1] = {2};
    fx_build(&fx, &m->cfg, 3, 1, k1, 0);
    EXPECT_FAIL(rvm_step(m, &fx.batch, &o, err), "1 sources given, the model's gate has 2");

    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    fx.k[1] = -1;
    EXPECT_FAIL(rvm_step(m, &fx.batch, &o, err), "K of source 1 is -1");

    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    fx.batch.gold = NULL;
    EXPECT_FAIL(rvm_step(m, &fx.batch, &o, err),
                "the contrastive loss (con_weight 0.3) needs gold");

    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    fx.batch.B = 0;
    EXPECT_FAIL(rvm_step(m, &fx.batch, &o, err), "batch: 0 rows");

    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    fx.batch.answers = NULL;
    EXPECT_FAIL(rvm_forward(m, &fx.batch, &o, err), "batch: no answers");

    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    int32_t out[16];
    int len[3];
    EXPECT_FAIL(rvm_answer(m, fx.queries, 3, &fx.cands, 4, out, len, NULL, err),
                "max_len 4 must be in [1, 3]");
    EXPECT_FAIL(rvm_encode_items(m, fx.items, -1, NULL, NULL, err), "encode items: -1 items");
    float q[16];
    fx.queries[1].text.n = -2;
    EXPECT_FAIL(rvm_encode_queries(m, fx.queries, 3, q, err), "query 1: -2 tokens");
    float small[4] = {0};
    EXPECT_FAIL(rvm_model_set_params(m, small, 4, err), "parameter buffer holds 4 floats");
    m->cfg.con_weight = 2;
    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    EXPECT_FAIL(rvm_step(m, &fx.batch, &o, err), "con_weight 2 must be in [0, 1]");
    m->cfg.con_weight = 0.3f;

    /* after all the refusals, a good batch still works */
    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    CHECK(rvm_step(m, &fx.batch, &o, err) == 0);
}

int main(void) {
    test_config();
    rvm_config c;
    fx_tiny_config(&c);
    rvm_model m;
    REQUIRE(rvm_model_init(&m, &c, err) == 0);
    test_batch(&m);
    rvm_model_free(&m);
    return check_report("model_errors");
}
