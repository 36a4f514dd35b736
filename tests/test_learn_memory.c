/* tests/test_learn_memory.c — the model learns to answer from memory, and follows edits of it.
 *
 * learn_memory (no argument): trains the recipe of docs/learning.md on a small world with a
 * pinned seed, printing the curves, then with the memory refreshed checks, on test questions
 * whose facts were never asked in training: answer accuracy with memory ≥ 0.8, the same model
 * with memory removed ≤ 0.1, recall@K of the gold item ≥ 0.9. It saves the trained model to
 * learn_memory.ckpt (the fixture of model_edit).
 *
 * model_edit (argument "edit"): loads that checkpoint into the same world, re-draws half of the
 * facts, re-encodes only the memory items that changed, and checks with no parameter update
 * that ≥ 0.9 of the edited questions get the new answer and ≤ 0.05 the old one.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "coordinator.h"
#include "rv.h"

#define CKPT "learn_memory.ckpt"

/* The test's world and budget: small enough for a few minutes on one core (docs/learning.md
 * gives the full-size run). Never-asked facts: one relation per entity. */
static void test_config(coord_config *c) {
    coord_config_default(c);
    c->world.entities = 24;
    c->world.relations = 4;
    c->world.unasked = 1;
    c->batch = 16;
    c->steps = 500;
    c->opt.sched.total_steps = c->steps;
    c->warm_steps = 150;
    c->edit_every = 50;
    c->log_every = 50;
    c->seed = 7;
}

static int train(void) {
    char err[RV_ERR_MAX];
    coord_config cfg;
    test_config(&cfg);
    coord_trainer t;
    REQUIRE(coord_trainer_init(&t, &cfg, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    if (coord_train(&t, err)) {
        fprintf(stderr, "training: %s\n", err);
        exit(1);
    }
    REQUIRE(coord_save(&t, CKPT, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    size_t n = 0, *qs = coord_test_questions(t.w, 0, &n);
    REQUIRE(qs && n == t.w->n_test);
    coord_eval ev;
    REQUIRE(coord_memory_refresh(&t.mem, &t.model, &t.texts, 1, t.encoder_version, NULL, err) == 0);
    REQUIRE(coord_evaluate(&t, qs, n, NULL, &ev, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    printf("never-asked facts (%zu questions): accuracy with memory %.3f, memory removed %.3f, "
           "recall@%d %.3f, p(gold|x) %.3f\n",
           n, ev.acc, ev.acc_nomem, cfg.topk, ev.recall, ev.p_gold);
    CHECKF(ev.acc >= 0.8, "accuracy with memory %.3f < 0.8", ev.acc);
    CHECKF(ev.acc_nomem <= 0.1, "accuracy with memory removed %.3f > 0.1", ev.acc_nomem);
    CHECKF(ev.recall >= 0.9, "recall@%d %.3f < 0.9", cfg.topk, ev.recall);
    free(qs);
    coord_trainer_free(&t);
    return check_report("learn_memory");
}

static int edit(void) {
    char err[RV_ERR_MAX];
    coord_config cfg;
    test_config(&cfg);
    coord_trainer t;
    REQUIRE(coord_trainer_init(&t, &cfg, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    REQUIRE(coord_load(&t, CKPT, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    uint64_t before = trn_params_checksum(&t.model.params);
    world_edit e;
    size_t encoded = 0;
    REQUIRE(coord_edit(&t, 0.5, 0xED17, 0, &e, &encoded, err) == 0 ||
            (fprintf(stderr, "%s\n", err), 0));
    /* only the changed items of the memory's sources were re-encoded */
    size_t in_memory = 0, pos;
    for (size_t i = 0; i < e.n_items; i++)
        in_memory += coord_memory_find(&t.mem, e.items[i].item, &pos) >= 0;
    CHECKF(encoded == in_memory && encoded > 0, "re-encoded %zu items, %zu changed in memory",
           encoded, in_memory);
    size_t *qs = malloc(e.n_facts * sizeof *qs);
    const char **old = malloc(e.n_facts * sizeof *old);
    REQUIRE(qs && old && e.n_facts > 0);
    for (size_t i = 0; i < e.n_facts; i++) {
        qs[i] = (size_t)e.facts[i].entity * cfg.world.relations + e.facts[i].relation;
        old[i] = t.w->object_words[e.facts[i].old_object];
        REQUIRE(strcmp(old[i], t.w->questions[qs[i]].answer) != 0);
    }
    coord_eval ev;
    REQUIRE(coord_evaluate(&t, qs, e.n_facts, old, &ev, err) == 0 ||
            (fprintf(stderr, "%s\n", err), 0));
    printf("edit: %zu facts re-drawn, %zu memory items re-encoded; new answer %.3f, old answer "
           "%.3f, recall@%d %.3f\n",
           e.n_facts, encoded, ev.acc, ev.acc_old, cfg.topk, ev.recall);
    CHECKF(ev.acc >= 0.9, "new answers %.3f < 0.9", ev.acc);
    CHECKF(ev.acc_old <= 0.05, "old answers %.3f > 0.05", ev.acc_old);
    CHECK(trn_params_checksum(&t.model.params) == before);
    free(qs);
    free(old);
    world_edit_free(&e);
    coord_trainer_free(&t);
    return check_report("model_edit");
}

int main(int argc, char **argv) {
    rv_log_set_prefix("learn");
    return argc > 1 && strcmp(argv[1], "edit") == 0 ? edit() : train();
}
