/* tests/test_model_copy.c — the float model trains with AdamW and learns to read its memory:
 * every question is a random token, its answer a random token held only by the one knowledge
 * item fused with it (re-encoded, so the value head, the encoder and the decoder all have to
 * learn). Fresh random rows every step, so the answer can only come from the item. After
 * training, greedy answers on new rows must be right far above chance, and the same model with
 * the memory removed must fall to about chance.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "rv.h"

#define B     16
#define STEPS 600
#define FIRST 3 /* answer tokens are FIRST .. V−1 */

static char err[RV_ERR_MAX];

typedef struct {
    int32_t q[B], a[B];
    rvm_input queries[B], items[B];
    rvm_text answers[B];
    rvm_candidate cand[B];
    int k;
    rvm_candidates cands;
    rvm_batch batch;
} copy_batch;

static void draw(copy_batch *c, const rvm_config *cfg, uint64_t stream) {
    memset(c, 0, sizeof *c);
    for (int b = 0; b < B; b++) {
        uint32_t n = (uint32_t)(cfg->vocab - FIRST);
        c->q[b] = FIRST + (int32_t)(trn_rng_u64(41, stream, 2 * b) % n);
        c->a[b] = FIRST + (int32_t)(trn_rng_u64(41, stream, 2 * b + 1) % n);
        c->queries[b].text.ids = &c->q[b];
        c->queries[b].text.n = 1;
        c->items[b].text.ids = &c->a[b];
        c->items[b].text.n = 1;
        c->answers[b].ids = &c->a[b];
        c->answers[b].n = 1;
        c->cand[b].item = &c->items[b];
    }
    c->k = 1;
    c->cands = (rvm_candidates){1, &c->k, 1, c->cand};
    c->batch = (rvm_batch){B, c->queries, &c->cands, c->answers, NULL, NULL, NULL};
}

/* Greedy accuracy on a fresh batch, with or without the memory. */
static double accuracy(rvm_model *m, uint64_t stream, int with_memory) {
    copy_batch c;
    draw(&c, &m->cfg, stream);
    int32_t out[B * 2];
    int len[B], right = 0;
    REQUIRE(rvm_answer(m, c.queries, B, with_memory ? &c.cands : NULL, 2, out, len, NULL, err) ==
            0);
    for (int b = 0; b < B; b++) right += len[b] >= 1 && out[b * 2] == c.a[b];
    return (double)right / B;
}

int main(void) {
    rvm_config cfg;
    rvm_config_default(&cfg);
    cfg.vocab = 16;
    cfg.width = 32;
    cfg.mlp_hidden = 64;
    cfg.text_max = 4;
    cfg.answer_max = 3;
    cfg.latents = 2;
    cfg.key_dim = 16;
    cfg.sources = 1;
    cfg.con_weight = 0;
    rvm_model m;
    REQUIRE(rvm_model_init(&m, &cfg, err) == 0);
    trn_adamw_config opt;
    trn_adamw_config_default(&opt);
    opt.sched.lr = 3e-3f;
    opt.sched.min_lr = 3e-4f;
    opt.sched.warmup_steps = 20;
    opt.sched.total_steps = STEPS;
    REQUIRE(trn_adamw_config_check(&opt, err) == 0);

    double first = 0, last = 0;
    for (int s = 0; s < STEPS; s++) {
        copy_batch c;
        draw(&c, &cfg, (uint64_t)s);
        rvm_step_out o;
        trn_params_zero_grad(&m.params);
        REQUIRE(rvm_step(&m, &c.batch, &o, err) == 0);
        trn_adamw_stats st;
        REQUIRE(trn_adamw_step(&m.params, &opt, s, &st, err) == 0);
        if (s < 20) first += o.gen / 20;
        if (s >= STEPS - 20) last += o.gen / 20;
        if (s % 100 == 0 || s == STEPS - 1) printf("step %4d  loss %.4f\n", s, o.gen);
    }
    double acc = 0, closed = 0;
    for (int r = 0; r < 4; r++) {
        acc += accuracy(&m, 100000 + r, 1) / 4;
        closed += accuracy(&m, 100000 + r, 0) / 4;
    }
    printf("generation loss %.3f -> %.3f; accuracy with memory %.3f, memory removed %.3f "
           "(chance %.3f)\n",
           first, last, acc, closed, 1.0 / (cfg.vocab - FIRST));
    CHECK(last < 0.5 * first);
    CHECK(acc >= 0.9);
    CHECK(closed <= 0.3);
    rvm_model_free(&m);
    return check_report("model_copy");
}
