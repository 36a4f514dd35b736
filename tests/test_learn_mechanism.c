/* tests/test_learn_mechanism.c — learn_mechanism: the generator's gradient reaches the
 * retriever through the fusion weights ω, and only through them.
 *
 * The recipe of coord_config_mechanism (docs/learning.md, "The mechanism"): contrastive loss
 * off, so the generation loss alone trains; facts re-drawn every 10 updates, so answers must be
 * read from the fused items; every row fused with its gold item and the gold items of other
 * rows (distractors), all re-encoded, no gate; a curriculum on the number of fused items
 * M = 1 → 2 → 4 → 8 (the decoder first learns to copy from the gold alone); the query and key
 * heads read the mean over the item's tokens.
 *
 * Measured on the never-asked test questions, each fused with the gold items of 7 other test
 * questions (M = 8): p(gold|x) is < 0.2 at initialisation and ≈ 1/M = 0.125 when the
 * distractors first appear (after the copy stage); it must reach ≥ 0.5 by the end. The same
 * run with ω ≡ 1 (fusion weights off) must stay < 0.2: with the contrastive loss off nothing
 * else carries a gradient to the query and key heads. docs/learning.md gives the curves and
 * the other seeds.
 */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "coordinator.h"
#include "rv.h"

#define SEED 2 /* the median of six seeds (docs/learning.md) */

/* p(gold|x) among the fused gold items of the test questions: at initialisation, when the
 * distractors first appear (after the copy stage, M = 1) and at the end. */
typedef struct {
    double init, start, end;
} measured;

static double p_fused(coord_trainer *t, const size_t *qs, size_t n) {
    char err[RV_ERR_MAX];
    coord_eval ev;
    REQUIRE(coord_evaluate(t, qs, n, NULL, &ev, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    return ev.p_gold_warm;
}

static void train_to(coord_trainer *t, long steps) {
    char err[RV_ERR_MAX];
    t->cfg.steps = steps;
    if (coord_train(t, err)) {
        fprintf(stderr, "training: %s\n", err);
        exit(1);
    }
}

static measured run(int omega_off) {
    char err[RV_ERR_MAX];
    coord_config c;
    coord_config_mechanism(&c);
    c.seed = c.model.seed = SEED;
    c.model.omega_off = omega_off;
    coord_trainer t;
    REQUIRE(coord_trainer_init(&t, &c, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    size_t n = 0, *qs = coord_test_questions(t.w, 0, &n);
    REQUIRE(qs && n > (size_t)c.warm_others);
    measured r;
    r.init = p_fused(&t, qs, n);
    train_to(&t, c.warm_ramp); /* the copy stage: every update's schedule is that of one run */
    r.start = p_fused(&t, qs, n);
    train_to(&t, c.steps);
    r.end = p_fused(&t, qs, n);
    printf("omega %s: p(gold|x) among %d fused gold items: %.3f at initialisation, %.3f after "
           "the copy stage, %.3f after %ld updates (%zu test questions)\n",
           omega_off ? "≡ 1" : "on", 1 + c.warm_others, r.init, r.start, r.end, c.steps, n);
    free(qs);
    coord_trainer_free(&t);
    return r;
}

int main(void) {
    rv_log_set_prefix("learn");
    coord_config c;
    coord_config_mechanism(&c);
    const double chance = 1.0 / (1 + c.warm_others);
    REQUIRE(c.model.con_weight == 0.0f && chance < 0.2 && c.warm_ramp > 0);
    measured on = run(0), off = run(1);
    /* At initialisation a question and its gold item share their picture's tokens in the
     * pooled readout, so p(gold|x) starts a little above chance; by the end of the copy stage
     * (no gradient to the heads yet: p ≡ 1 with M = 1) it is at chance in both runs. */
    CHECKF(on.init < 0.2 && off.init < 0.2, "p(gold|x) at initialisation %.3f / %.3f ≥ 0.2",
           on.init, off.init);
    CHECKF(fabs(on.start - chance) < 0.05 && fabs(off.start - chance) < 0.05,
           "after the copy stage %.3f / %.3f is not near 1/M = %.3f", on.start, off.start, chance);
    CHECKF(on.end >= 0.5, "with fusion weights p(gold|x) reached only %.3f", on.end);
    CHECKF(off.end < 0.2, "with ω ≡ 1 p(gold|x) reached %.3f", off.end);
    return check_report("learn_mechanism");
}
