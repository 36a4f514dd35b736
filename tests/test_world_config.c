/* tests/test_world_config.c — bad world settings are refused with a message naming the
 * setting, the defaults are LEARNING.md's world, and the world is a function of its seed:
 * the same seed draws the same names, pictures, facts and split, another seed others. */
#include "check.h"
#include "world.h"

#include <math.h>
#include <string.h>

static void expect_refused(world_config cfg, const char *field) {
    char err[RV_ERR_MAX] = "";
    world *w = NULL;
    CHECKF(world_create(&cfg, &w, err) == -1 && w == NULL, "%s accepted", field);
    CHECKF(strncmp(err, field, strlen(field)) == 0, "expected '%s: ...', got '%s'", field, err);
}

static int same_world(const world *a, const world *b) {
    size_t E = (size_t)a->cfg.entities, R = (size_t)a->cfg.relations;
    size_t S = (size_t)a->cfg.image_size;
    return !memcmp(a->entity_names, b->entity_names, E * WORLD_WORD_MAX) &&
           !memcmp(a->object_words, b->object_words, (size_t)a->cfg.objects * WORLD_WORD_MAX) &&
           !memcmp(a->pictures, b->pictures, E * S * S * 3) &&
           !memcmp(a->facts, b->facts, E * R * sizeof *a->facts) &&
           !memcmp(a->unasked, b->unasked, E * R);
}

int main(void) {
    char err[RV_ERR_MAX];
    world_config d;
    world_config_default(&d);
    CHECK(d.entities == 64 && d.relations == 6 && d.objects == 50 && d.image_size == 16 &&
          d.unasked == 2);
    CHECK(world_config_check(&d, err) == 0);

    world_config c = d;
    c.entities = 0;
    expect_refused(c, "entities");
    c = d, c.entities = WORLD_MAX_ENTITIES + 1;
    expect_refused(c, "entities");
    c = d, c.relations = WORLD_MAX_RELATIONS + 1;
    expect_refused(c, "relations");
    c = d, c.objects = 1;
    expect_refused(c, "objects");
    c = d, c.image_size = WORLD_MIN_IMAGE - 1;
    expect_refused(c, "image_size");
    c = d, c.unasked = d.relations;
    expect_refused(c, "unasked");
    c = d, c.unasked = -1;
    expect_refused(c, "unasked");
    c = d, c.passage_facts = 0;
    expect_refused(c, "passage_facts");
    c = d, c.min_image_distance = NAN;
    expect_refused(c, "min_image_distance");

    /* the largest vocabulary allowed can be drawn (2-syllable words leave room for it) */
    c = d, c.objects = WORLD_MAX_OBJECTS, c.entities = 1;
    world *w = NULL;
    CHECKF(world_create(&c, &w, err) == 0, "%s", err);
    world_free(w);

    world *a = NULL, *b = NULL, *other = NULL;
    REQUIRE(world_create(&d, &a, err) == 0 && world_create(&d, &b, err) == 0);
    c = d, c.seed = d.seed + 1;
    REQUIRE(world_create(&c, &other, err) == 0);
    CHECK(same_world(a, b));
    CHECK(!same_world(a, other));
    CHECK(memcmp(a->facts, other->facts, 64 * 6 * sizeof *a->facts) != 0);
    CHECK(memcmp(a->pictures, other->pictures, 64 * 16 * 16 * 3) != 0);
    CHECK(strcmp(a->entity_names[0], other->entity_names[0]) != 0 ||
          strcmp(a->entity_names[1], other->entity_names[1]) != 0);
    world_free(a);
    world_free(b);
    world_free(other);
    return check_report("world_config");
}
