/* tests/test_learn_mechanism.c — learn_mechanism: the generator's gradient reaches the
 * retriever through the fusion weights ω, and only through them.
 *
 * Contrastive loss off; the generation loss alone trains, with facts re-drawn every 10 steps
 * so that answers must be read. First the decoder learns to copy from the gold item fused
 * alone (M = 1: p ≡ 1, no gradient reaches the query and key heads, so retrieval stays
 * untrained); then every row is fused with its gold item and the gold item of another row
 * (M = 2, both re-encoded, no gate). Measured on test questions fused the same way: p(gold|x)
 * starts at 1/M = 0.5 and rises to ≥ 0.75. The same run with ω ≡ 1 (fusion weights off)
 * leaves p(gold|x) below 0.6: nothing else carries a generation gradient to the query and key
 * heads. (docs/learning.md: with M = 8 the same rise stalls at ≈ 0.3 within this budget.)
 */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "coordinator.h"
#include "rv.h"

#define COPY_STEPS 200
#define FUSE_STEPS 400
#define FUSED      2 /* M */

/* p(gold|x) on the test questions before and after training among FUSED items. */
static void run(int omega_off, double *start, double *end) {
    char err[RV_ERR_MAX];
    coord_config c;
    coord_config_default(&c);
    c.world.entities = 16;
    c.world.relations = 4;
    c.world.unasked = 1;
    c.batch = 16;
    c.warm_others = 0; /* first the gold alone */
    c.steps = c.warm_steps = COPY_STEPS + FUSE_STEPS;
    c.opt.sched.total_steps = c.steps;
    c.edit_every = 10;
    c.log_every = 50;
    c.model.con_weight = 0.0f;
    c.model.omega_off = omega_off;
    c.seed = 3;
    coord_trainer t;
    REQUIRE(coord_trainer_init(&t, &c, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    size_t n = 0, *qs = coord_test_questions(t.w, 0, &n);
    REQUIRE(qs && n > FUSED);
    printf("omega %s: copying from the gold item alone\n", omega_off ? "≡ 1" : "on");
    t.cfg.steps = COPY_STEPS;
    if (coord_train(&t, err)) {
        fprintf(stderr, "training: %s\n", err);
        exit(1);
    }
    t.cfg.warm_others = FUSED - 1;
    coord_eval ev;
    REQUIRE(coord_evaluate(&t, qs, n, NULL, &ev, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    *start = ev.p_gold_warm;
    printf("omega %s: the gold among %d fused items, p(gold|x) %.3f\n", omega_off ? "≡ 1" : "on",
           FUSED, *start);
    t.cfg.steps = c.steps;
    if (coord_train(&t, err)) {
        fprintf(stderr, "training: %s\n", err);
        exit(1);
    }
    REQUIRE(coord_evaluate(&t, qs, n, NULL, &ev, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    *end = ev.p_gold_warm;
    printf("omega %s: p(gold|x) among %d fused gold items %.3f -> %.3f\n", omega_off ? "≡ 1" : "on",
           FUSED, *start, *end);
    free(qs);
    coord_trainer_free(&t);
}

int main(void) {
    rv_log_set_prefix("learn");
    double start, end, start_off, end_off;
    run(0, &start, &end);
    run(1, &start_off, &end_off);
    const double m = FUSED;
    CHECKF(fabs(start - 1 / m) < 0.1 && fabs(start_off - 1 / m) < 0.1,
           "start %.3f / %.3f is not near 1/M = %.3f", start, start_off, 1 / m);
    CHECKF(end >= 0.75, "with fusion weights p(gold|x) reached only %.3f", end);
    CHECKF(end_off < 0.6, "with ω ≡ 1 p(gold|x) reached %.3f", end_off);
    return check_report("learn_mechanism");
}
