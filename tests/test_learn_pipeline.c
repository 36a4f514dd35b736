/* tests/test_learn_pipeline.c — learn_pipeline: the training machinery on a tiny world, fast
 * enough for the sanitizer build: config errors name the field; the memory holds every item of
 * its sources with its index in step; warm start then memory training; top-K candidates hold
 * the gold item where recall says so; an edit re-encodes exactly the changed items and nothing
 * else; a checkpoint restores the same answers; a checkpoint of another world is refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "coordinator.h"
#include "rv.h"

static void tiny(coord_config *c) {
    coord_config_default(c);
    c->world.entities = 8;
    c->world.relations = 3;
    c->world.unasked = 1;
    c->world.objects = 10;
    c->batch = 8;
    c->topk = 2;
    c->steps = 12;
    c->opt.sched.total_steps = 12;
    c->opt.sched.warmup_steps = 2;
    c->warm_steps = 4;
    c->edit_every = 5;
    c->log_every = 6;
    c->model.width = c->model.key_dim = 32;
    c->model.mlp_hidden = 64;
    c->model.text_max = 40; /* the smallest vocabulary spells some names letter by letter */
}

static void expect_error(const coord_config *c, const char *needle) {
    char err[RV_ERR_MAX] = "";
    int rc = coord_config_check(c, err);
    CHECKF(rc == -1 && strstr(err, needle), "expected an error naming \"%s\", got \"%s\"", needle,
           err);
}

static void config_errors(void) {
    coord_config c;
    tiny(&c);
    char err[RV_ERR_MAX];
    CHECKF(coord_config_check(&c, err) == 0, "%s", err);
    c.batch = 1;
    expect_error(&c, "batch");
    tiny(&c);
    c.warm_others = c.batch;
    expect_error(&c, "warm_others");
    tiny(&c);
    c.warm_ramp = -1;
    expect_error(&c, "warm_ramp");
    tiny(&c);
    c.rho = 1.5f;
    expect_error(&c, "rho");
    tiny(&c);
    c.source_types[1] = c.source_types[0];
    expect_error(&c, "listed twice");
    tiny(&c);
    c.model.image_size = 32;
    expect_error(&c, "image_size");
    tiny(&c);
    c.n_sources = 0;
    expect_error(&c, "n_sources");
}

/* The warm start's curriculum: M = 1, 2, 4, … fused items per stage, capped at 1 + warm_others. */
static void warm_curriculum(void) {
    coord_config c;
    tiny(&c);
    c.warm_others = 6;
    CHECK(coord_warm_others(&c, 0) == 6 && coord_warm_others(&c, 1000) == 6);
    c.warm_ramp = 10;
    const long step[] = {0, 9, 10, 19, 20, 29, 30, 1000000};
    const int others[] = {0, 0, 1, 1, 3, 3, 6, 6};
    for (size_t i = 0; i < sizeof step / sizeof step[0]; i++)
        CHECKF(coord_warm_others(&c, step[i]) == others[i], "step %ld: %d others, expected %d",
               step[i], coord_warm_others(&c, step[i]), others[i]);
}

static void memory_in_step(coord_trainer *t) {
    size_t total = 0;
    for (int j = 0; j < t->mem.n_sources; j++) {
        coord_source *s = &t->mem.src[j];
        CHECK(wrk_topk_count(s->index) == s->n);
        for (size_t i = 0; i < s->n; i++) {
            CHECK(t->w->items[s->item[i]].type == s->type);
            CHECK(s->stale[i] == 0);
            float key[64];
            CHECK(wrk_topk_get(s->index, i, key) == 1);
            CHECK(memcmp(key, s->keys + i * t->mem.key_dim, t->mem.key_dim * sizeof *key) == 0);
        }
        total += s->n;
    }
    /* image-text E, KG E·R, QA E·R */
    size_t E = (size_t)t->cfg.world.entities, R = (size_t)t->cfg.world.relations;
    CHECKF(total == E + 2 * E * R, "memory holds %zu items", total);
}

static void training(coord_trainer *t) {
    char err[RV_ERR_MAX];
    for (int i = 0; i < 6; i++) {
        coord_step_stats st;
        REQUIRE(coord_train_step(t, &st, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
        CHECK(st.warm == (i < t->cfg.warm_steps));
        CHECK(isfinite(st.loss) && st.loss > 0);
        CHECK(st.p_gold > 0 && st.p_gold <= 1.0);
        CHECK(st.recall >= 0 && st.recall <= 1.0);
        /* warm start: no gate; memory training: a gate over the three sources */
        CHECK(st.warm ? st.gate_entropy == 0 : st.gate_entropy > 0);
    }
    CHECK(t->step == 6);
    REQUIRE(coord_train(t, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    CHECK(t->step == t->cfg.steps);
    /* steps 1–6 ran one by one; coord_train edits after step 10 */
    CHECKF(t->edits == 1, "%ld continual edits", t->edits);
}

/* Edits re-encode the changed items only: their keys move, every other key stays bit-equal. */
static void edit_reencodes_changed(coord_trainer *t) {
    char err[RV_ERR_MAX];
    coord_memory *mem = &t->mem;
    size_t before_n[COORD_MAX_SOURCES];
    float *before[COORD_MAX_SOURCES];
    for (int j = 0; j < mem->n_sources; j++) {
        before_n[j] = mem->src[j].n * (size_t)mem->key_dim;
        before[j] = malloc(before_n[j] * sizeof(float));
        REQUIRE(before[j]);
        memcpy(before[j], mem->src[j].keys, before_n[j] * sizeof(float));
    }
    /* a parameter update makes stored entries stale: re-encoding now changes keys */
    t->encoder_version += 1000;
    coord_step_stats st;
    REQUIRE(coord_train_step(t, &st, err) == 0);
    world_edit e;
    size_t encoded = 0;
    REQUIRE(coord_edit(t, 0.25, 99, 0, &e, &encoded, err) == 0 ||
            (fprintf(stderr, "%s\n", err), 0));
    size_t changed = 0, moved = 0, kept = 0, pos;
    for (int j = 0; j < mem->n_sources; j++)
        for (size_t i = 0; i < mem->src[j].n; i++) {
            int is_changed = 0;
            for (size_t k = 0; k < e.n_items; k++)
                if (e.items[k].item == mem->src[j].item[i]) is_changed = 1;
            int same = memcmp(before[j] + i * mem->key_dim, mem->src[j].keys + i * mem->key_dim,
                              mem->key_dim * sizeof(float)) == 0;
            changed += is_changed;
            moved += is_changed && !same;
            kept += !is_changed && same;
            if (is_changed) CHECK(mem->src[j].version[i] == t->encoder_version);
        }
    size_t total = 0;
    for (int j = 0; j < mem->n_sources; j++) total += mem->src[j].n;
    CHECKF(encoded == changed && changed > 0, "re-encoded %zu, changed in memory %zu", encoded,
           changed);
    CHECKF(moved == changed, "%zu of %zu changed items got a new key", moved, changed);
    CHECKF(kept == total - changed, "%zu of %zu unchanged items kept their key", kept,
           total - changed);
    /* every edited fact's KG triple is in memory and its question follows the new object */
    for (size_t f = 0; f < e.n_facts; f++) {
        size_t kg = world_item_kg(t->w, e.facts[f].entity, e.facts[f].relation);
        CHECK(coord_memory_find(mem, kg, &pos) >= 0);
        size_t q = (size_t)e.facts[f].entity * t->cfg.world.relations + e.facts[f].relation;
        CHECK(strcmp(t->w->questions[q].answer, t->w->object_words[e.facts[f].new_object]) == 0);
    }
    world_edit_free(&e);
    for (int j = 0; j < mem->n_sources; j++) free(before[j]);
}

static void checkpoint(coord_trainer *t) {
    char err[RV_ERR_MAX];
    const char *path = "learn_pipeline.ckpt";
    REQUIRE(coord_save(t, path, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    size_t n = 0, *qs = coord_test_questions(t->w, 0, &n);
    REQUIRE(qs);
    coord_eval a;
    REQUIRE(coord_evaluate(t, qs, n, NULL, &a, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    CHECK(a.n == n && a.recall >= 0 && a.recall <= 1 && a.p_gold >= 0 && a.p_gold <= 1);
    CHECK(a.acc >= 0 && a.acc <= 1 && a.acc_nomem >= 0 && a.acc_nomem <= 1);

    /* the same config: the same tokenizer, the same parameters, a memory encoded with them */
    coord_trainer u;
    REQUIRE(coord_trainer_init(&u, &t->cfg, err) == 0);
    CHECK(trn_params_checksum(&u.model.params) != trn_params_checksum(&t->model.params));
    REQUIRE(coord_load(&u, path, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    CHECK(trn_params_checksum(&u.model.params) == trn_params_checksum(&t->model.params));
    CHECK(u.step == t->step);
    memory_in_step(&u);
    coord_trainer_free(&u);

    coord_config other = t->cfg;
    other.world.entities = 9;
    REQUIRE(coord_trainer_init(&u, &other, err) == 0);
    CHECKF(coord_load(&u, path, err) == -1 && strstr(err, "entities"),
           "a checkpoint of another world: \"%s\"", err);
    coord_trainer_free(&u);
    free(qs);
}

int main(void) {
    rv_log_set_prefix("learn");
    config_errors();
    warm_curriculum();
    coord_config c;
    tiny(&c);
    coord_trainer t;
    char err[RV_ERR_MAX];
    REQUIRE(coord_trainer_init(&t, &c, err) == 0 || (fprintf(stderr, "%s\n", err), 0));
    memory_in_step(&t);
    training(&t);
    edit_reencodes_changed(&t);
    checkpoint(&t);
    coord_trainer_free(&t);
    return check_report("learn_pipeline");
}
