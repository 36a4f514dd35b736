/* tests/test_world_split.c — the task and its split: every test question asks a fact that no
 * training question asks; each entity has exactly `unasked` test relations; answers are the
 * facts and their gold item is the KG triple stating them; the question itself shows neither
 * the entity's name nor any object word, so only memory can answer it. */
#include "check.h"
#include "world.h"

#include <stdlib.h>
#include <string.h>

static int is_question_word(const world *w, const char *word) {
    static const char *const allowed[] = {"what", "is", "the", "of", "this", "?"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (!strcmp(word, allowed[i])) return 1;
    for (int r = 0; r < w->cfg.relations; r++)
        if (!strcmp(word, w->relation_names[r])) return 1;
    return 0;
}

static void check_split(int relations, int unasked, uint64_t seed) {
    char err[RV_ERR_MAX];
    world_config cfg;
    world_config_default(&cfg);
    cfg.relations = relations;
    cfg.unasked = unasked;
    cfg.passage_facts = 2;
    cfg.seed = seed;
    world *w = NULL;
    REQUIRE(world_create(&cfg, &w, err) == 0);
    int E = cfg.entities, R = cfg.relations;
    CHECK(w->n_questions == (size_t)E * R);
    CHECK(w->n_test == (size_t)E * unasked);
    CHECK(w->n_train + w->n_test == w->n_questions);

    /* the facts training asks, then no test question may ask one of them */
    uint8_t *asked = calloc((size_t)E * R, 1);
    int *test_per_entity = calloc((size_t)E, sizeof *test_per_entity);
    int *test_per_relation = calloc((size_t)R, sizeof *test_per_relation);
    REQUIRE(asked && test_per_entity && test_per_relation);
    size_t n_train = 0, n_test = 0;
    for (size_t i = 0; i < w->n_questions; i++) {
        const world_question *q = &w->questions[i];
        if (!q->is_test) {
            asked[(size_t)q->entity * R + q->relation] = 1;
            n_train++;
        }
    }
    for (size_t i = 0; i < w->n_questions; i++) {
        const world_question *q = &w->questions[i];
        if (!q->is_test) continue;
        n_test++;
        CHECKF(!asked[(size_t)q->entity * R + q->relation],
               "test question %zu is asked in training", i);
        test_per_entity[q->entity]++;
        test_per_relation[q->relation]++;
    }
    CHECK(n_train == w->n_train && n_test == w->n_test);
    for (int e = 0; e < E; e++)
        CHECKF(test_per_entity[e] == unasked, "entity %d has %d test relations", e,
               test_per_entity[e]);
    /* the split is drawn per entity, so every relation is asked of someone in the test set */
    if (unasked > 0)
        for (int r = 0; r < R; r++) CHECKF(test_per_relation[r] > 0, "relation %d never tested", r);

    for (size_t i = 0; i < w->n_questions; i++) {
        const world_question *q = &w->questions[i];
        size_t f = (size_t)q->entity * R + q->relation;
        CHECK(q->is_test == w->unasked[f]);
        CHECK(!strcmp(q->answer, w->object_words[w->facts[f]]));
        const world_item *gold = &w->items[q->gold_item];
        CHECK(gold->type == WORLD_KG && gold->entity == q->entity && gold->part == q->relation);
        CHECK(!strcmp(gold->subject, w->entity_names[q->entity]));
        CHECK(!strcmp(gold->relation, w->relation_names[q->relation]));
        CHECK(!strcmp(gold->object, q->answer));
        /* the question is "what is the <relation> of this ?" and nothing else */
        char expect[128];
        snprintf(expect, sizeof expect, "what is the %s of this ?", w->relation_names[q->relation]);
        CHECKF(!strcmp(q->question, expect), "question %zu: '%s'", i, q->question);
        char words[128];
        snprintf(words, sizeof words, "%s", q->question);
        for (char *save, *t = strtok_r(words, " ", &save); t; t = strtok_r(NULL, " ", &save))
            CHECKF(is_question_word(w, t), "question %zu shows '%s'", i, t);
    }
    free(asked);
    free(test_per_entity);
    free(test_per_relation);
    world_free(w);
}

int main(void) {
    check_split(6, 2, 1);
    check_split(6, 2, 99);
    check_split(8, 3, 5);
    check_split(12, 5, 6);
    check_split(3, 0, 7);
    return check_report("world_split");
}
