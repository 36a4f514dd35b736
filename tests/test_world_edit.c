/* tests/test_world_edit.c — knowledge edits change exactly what they should.
 *
 * An edited world is compared with an untouched twin drawn from the same seed: the facts that
 * differ are exactly the edited ones (each to a new object), the items that differ are
 * exactly the ones the edit reports (with `old` equal to the twin's item), those are exactly
 * the KG triples, QA pairs and passages stating an edited fact, and the questions' answers
 * follow the new facts while every other answer stays. Edits are deterministic, independent
 * of list order, and refuse bad input without touching the world. */
#include "check.h"
#include "world.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int same_str(const char *a, const char *b) {
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static int same_item(const world_item *a, const world_item *b) {
    return a->type == b->type && a->entity == b->entity && a->part == b->part &&
           a->image == b->image && same_str(a->key, b->key) && same_str(a->text, b->text) &&
           same_str(a->title, b->title) && same_str(a->question, b->question) &&
           same_str(a->answer, b->answer) && same_str(a->subject, b->subject) &&
           same_str(a->relation, b->relation) && same_str(a->object, b->object);
}

/* Same content, pictures compared by value since the twins have their own buffers. */
static int same_item_across(const world *wa, const world_item *a, const world *wb,
                            const world_item *b) {
    world_item c = *b;
    c.image = a->image;
    size_t stride = (size_t)wa->cfg.image_size * wa->cfg.image_size * 3;
    return same_item(a, &c) && !memcmp(a->image, b->image, stride) &&
           a->image == wa->pictures + a->entity * stride &&
           b->image == wb->pictures + b->entity * stride;
}

static world *make(uint64_t seed) {
    char err[RV_ERR_MAX];
    world_config cfg;
    world_config_default(&cfg);
    cfg.seed = seed;
    world *w = NULL;
    REQUIRE(world_create(&cfg, &w, err) == 0);
    return w;
}

/* Checks an applied edit of `edited` against its untouched twin `base`. */
static void check_edit(const world *base, const world *edited, const world_edit *edit) {
    size_t F = base->n_questions, R = (size_t)base->cfg.relations;
    uint8_t *in_edit = calloc(F, 1), *item_reported = calloc(base->n_items, 1);
    REQUIRE(in_edit && item_reported);
    for (size_t i = 0; i < edit->n_facts; i++) {
        const world_fact_change *c = &edit->facts[i];
        size_t f = (size_t)c->entity * R + c->relation;
        CHECKF(!in_edit[f], "fact %zu reported twice", f);
        in_edit[f] = 1;
        CHECK(i == 0 || f > (size_t)edit->facts[i - 1].entity * R + edit->facts[i - 1].relation);
        CHECK(c->old_object == base->facts[f]);
        CHECK(c->new_object == edited->facts[f]);
        CHECKF(c->new_object != c->old_object, "fact %zu re-drawn to the same object", f);
    }
    for (size_t f = 0; f < F; f++) {
        CHECKF((base->facts[f] != edited->facts[f]) == in_edit[f], "fact %zu", f);
        /* answers follow the facts; everything else about a question stays */
        const world_question *a = &base->questions[f], *b = &edited->questions[f];
        CHECK(!strcmp(b->answer, edited->object_words[edited->facts[f]]));
        CHECK(!strcmp(a->answer, b->answer) == !in_edit[f]);
        CHECK(!strcmp(a->question, b->question) && a->is_test == b->is_test &&
              a->gold_item == b->gold_item);
    }
    for (size_t k = 0; k < edit->n_items; k++) {
        size_t i = edit->items[k].item;
        CHECK(k == 0 || i > edit->items[k - 1].item);
        item_reported[i] = 1;
        CHECKF(same_item_across(base, &base->items[i], edited, &edit->items[k].old),
               "old copy of %s differs from the unedited item", base->items[i].key);
    }
    size_t changed = 0;
    for (size_t i = 0; i < base->n_items; i++) {
        const world_item *a = &base->items[i], *b = &edited->items[i];
        int differs = !same_item_across(base, a, edited, b);
        changed += (size_t)differs;
        CHECKF(differs == item_reported[i], "item %s: differs %d, reported %d", a->key, differs,
               item_reported[i]);
        CHECK(same_str(a->key, b->key)); /* an edit replaces an item under its key */
        /* which items should change: those that state an edited fact */
        int should = 0;
        if (a->type == WORLD_KG || a->type == WORLD_QA)
            should = in_edit[(size_t)a->entity * R + a->part];
        if (a->type == WORLD_TEXT)
            for (size_t r = 0; r < R; r++) {
                char word[32]; /* whole words only: a made-up word may contain "pet" */
                snprintf(word, sizeof word, " %s ", base->relation_names[r]);
                if (in_edit[(size_t)a->entity * R + r] && strstr(a->text, word)) should = 1;
            }
        CHECKF(differs == should, "item %s: differs %d, should %d", a->key, differs, should);
    }
    CHECK(changed == edit->n_items);
    free(in_edit);
    free(item_reported);
}

int main(void) {
    char err[RV_ERR_MAX];
    world *base = make(42), *edited = make(42), *twin = make(42);
    size_t F = base->n_questions;

    /* a quarter of the facts, chosen and re-drawn with a seed */
    world_edit e1, e2;
    REQUIRE(world_edit_fraction(edited, 0.25, 7, &e1, err) == 0);
    CHECK(e1.n_facts == (size_t)llround(0.25 * (double)F));
    CHECK(edited->version == 1 && base->version == 0);
    check_edit(base, edited, &e1);
    printf("edit of 0.25: %zu facts, %zu items changed\n", e1.n_facts, e1.n_items);

    /* the same edit on a twin is identical, and an explicit list in any order gives the same */
    REQUIRE(world_edit_fraction(twin, 0.25, 7, &e2, err) == 0);
    CHECK(e2.n_facts == e1.n_facts && e2.n_items == e1.n_items);
    CHECK(!memcmp(twin->facts, edited->facts, F * sizeof *twin->facts));
    world_edit_free(&e2);
    world *listed = make(42);
    size_t *list = malloc(e1.n_facts * sizeof *list);
    REQUIRE(list);
    for (size_t i = 0; i < e1.n_facts; i++) /* reversed */
        list[i] = (size_t)e1.facts[e1.n_facts - 1 - i].entity * (size_t)base->cfg.relations +
                  (size_t)e1.facts[e1.n_facts - 1 - i].relation;
    REQUIRE(world_edit_facts(listed, list, e1.n_facts, 7, &e2, err) == 0);
    CHECK(!memcmp(listed->facts, edited->facts, F * sizeof *listed->facts));
    world_edit_free(&e2);

    /* another edit seed re-draws other facts */
    world *other = make(42);
    REQUIRE(world_edit_fraction(other, 0.25, 8, &e2, err) == 0);
    CHECK(memcmp(other->facts, edited->facts, F * sizeof *other->facts) != 0);
    check_edit(base, other, &e2);
    world_edit_free(&e2);
    world_free(other);

    /* bad input is refused and leaves the world as it was */
    size_t dup[] = {3, 5, 3}, past[] = {F};
    CHECK(world_edit_facts(listed, dup, 3, 1, &e2, err) == -1);
    CHECKF(strstr(err, "fact 3") && strstr(err, "twice"), "got '%s'", err);
    CHECK(world_edit_facts(listed, past, 1, 1, &e2, err) == -1);
    CHECKF(strstr(err, "past the world's"), "got '%s'", err);
    CHECK(world_edit_fraction(listed, 1.5, 1, &e2, err) == -1);
    CHECKF(strstr(err, "fraction"), "got '%s'", err);
    CHECK(world_edit_fraction(listed, NAN, 1, &e2, err) == -1);
    CHECK(!memcmp(listed->facts, edited->facts, F * sizeof *listed->facts));
    CHECK(listed->version == 1);
    world_free(listed);
    free(list);

    /* a second edit chains on the first: compare with a twin carrying the first */
    world_edit e3;
    size_t one[] = {0};
    REQUIRE(world_edit_facts(twin, one, 1, 3, &e3, err) == 0);
    check_edit(edited, twin, &e3);
    CHECK(e3.n_facts == 1 && e3.n_items == 3 && twin->version == 2);
    world_edit_free(&e3);

    /* nothing, then everything */
    world *all = make(42);
    REQUIRE(world_edit_fraction(all, 0.0, 5, &e3, err) == 0);
    CHECK(e3.n_facts == 0 && e3.n_items == 0);
    world_edit_free(&e3);
    REQUIRE(world_edit_fraction(all, 1.0, 5, &e3, err) == 0);
    CHECK(e3.n_facts == F);
    check_edit(base, all, &e3);
    CHECK(e3.n_items == base->n_items - (size_t)base->cfg.entities); /* all but image-text */
    world_edit_free(&e3);
    world_free(all);

    world_edit_free(&e1);
    world_free(base);
    world_free(edited);
    world_free(twin);
    return check_report("world_edit");
}
