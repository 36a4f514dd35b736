/* world/world.c — drawing a world from its seed: names, object words, facts, the split of
 * asked and never-asked facts, and the knowledge items and questions built from the facts.
 * Items and questions are built by one function per kind, used both here and by edits, so an
 * edited item is exactly what a fresh world with the new facts would hold.
 */
#include "world_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const relation_names[WORLD_MAX_RELATIONS] = {
    "colour", "home", "food", "friend", "tool",  "pet",
    "drink",  "game", "song", "job",    "plant", "gift",
};

/* Words of the questions and passages: no made-up word may equal one of them. */
static const char *const template_words[] = {"what", "is", "the", "of", "this", "its", "and"};

/* Made-up words are consonant-vowel syllables with an optional final consonant:
 * pronounceable, short, and plentiful (70 syllables). */
static const char consonants[] = "bdfgklmnprstvz";
static const char vowels[] = "aeiou";
static const char finals[] = "nrls";

/* Tries per word before declaring the vocabulary exhausted. */
#define WORD_TRIES 1000

void world_config_default(world_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 1;
    cfg->entities = 64;
    cfg->relations = 6;
    cfg->objects = 50;
    cfg->image_size = 16;
    cfg->unasked = 2;
    cfg->passage_facts = 3;
    cfg->min_image_distance = 0.15;
}

int world_config_check(const world_config *cfg, char *err) {
    if (cfg->entities < 1 || cfg->entities > WORLD_MAX_ENTITIES)
        return rv_fail(err, "entities: %d is outside 1..%d", cfg->entities, WORLD_MAX_ENTITIES);
    if (cfg->relations < 1 || cfg->relations > WORLD_MAX_RELATIONS)
        return rv_fail(err, "relations: %d is outside 1..%d (the relation names available)",
                       cfg->relations, WORLD_MAX_RELATIONS);
    if (cfg->objects < 2 || cfg->objects > WORLD_MAX_OBJECTS)
        return rv_fail(err, "objects: %d is outside 2..%d (an edit needs another object)",
                       cfg->objects, WORLD_MAX_OBJECTS);
    if (cfg->image_size < WORLD_MIN_IMAGE || cfg->image_size > WORLD_MAX_IMAGE)
        return rv_fail(err, "image_size: %d is outside %d..%d", cfg->image_size, WORLD_MIN_IMAGE,
                       WORLD_MAX_IMAGE);
    if (cfg->unasked < 0 || cfg->unasked >= cfg->relations)
        return rv_fail(err,
                       "unasked: %d is outside 0..%d (relations - 1, so that training "
                       "asks something of every entity)",
                       cfg->unasked, cfg->relations - 1);
    if (cfg->passage_facts < 1 || cfg->passage_facts > cfg->relations)
        return rv_fail(err, "passage_facts: %d is outside 1..%d (relations)", cfg->passage_facts,
                       cfg->relations);
    if (!(cfg->min_image_distance >= 0.0 && cfg->min_image_distance < 1.0))
        return rv_fail(err, "min_image_distance: %g is outside [0, 1)", cfg->min_image_distance);
    return 0;
}

/* Open-addressing set of words, to keep every made-up word unique. */
typedef struct {
    const char **slots;
    size_t mask;
} word_set;

static int word_set_init(word_set *s, size_t words) {
    size_t cap = 16;
    while (cap < 2 * words) cap *= 2;
    s->slots = calloc(cap, sizeof *s->slots);
    s->mask = cap - 1;
    return s->slots ? 0 : -1;
}

/* Returns 1 when added, 0 when already present. */
static int word_set_add(word_set *s, const char *word) {
    size_t i = (size_t)rv_hash64(word, strlen(word), 0) & s->mask;
    for (; s->slots[i]; i = (i + 1) & s->mask)
        if (!strcmp(s->slots[i], word)) return 0;
    s->slots[i] = word;
    return 1;
}

static void draw_word(world_rng *r, int min_syllables, int max_syllables,
                      char out[WORLD_WORD_MAX]) {
    int syllables =
        min_syllables + (int)world_rng_below(r, (uint64_t)(max_syllables - min_syllables + 1));
    int n = 0;
    for (int i = 0; i < syllables; i++) {
        out[n++] = consonants[world_rng_below(r, sizeof consonants - 1)];
        out[n++] = vowels[world_rng_below(r, sizeof vowels - 1)];
    }
    if (world_rng_below(r, 2)) out[n++] = finals[world_rng_below(r, sizeof finals - 1)];
    out[n] = 0;
}

/* Fills words[0..count) with new words not yet in the set. */
static int draw_vocabulary(word_set *set, uint64_t seed, int stream, int min_syllables,
                           int max_syllables, char (*words)[WORLD_WORD_MAX], int count,
                           const char *what, char *err) {
    world_rng r = world_rng_stream(seed, (uint64_t)stream);
    for (int i = 0; i < count; i++) {
        int tries = 0;
        do {
            if (tries++ == WORD_TRIES)
                return rv_fail(err, "%s: cannot draw %d distinct words (stuck at %d)", what, count,
                               i);
            draw_word(&r, min_syllables, max_syllables, words[i]);
        } while (!word_set_add(set, words[i]));
    }
    return 0;
}

static int draw_words(world *w, char *err) {
    word_set set;
    size_t reserved = WORLD_MAX_RELATIONS + sizeof template_words / sizeof template_words[0];
    if (word_set_init(&set, (size_t)w->cfg.entities + (size_t)w->cfg.objects + reserved))
        return rv_fail(err, "out of memory");
    for (int i = 0; i < WORLD_MAX_RELATIONS; i++) word_set_add(&set, relation_names[i]);
    for (size_t i = 0; i < sizeof template_words / sizeof template_words[0]; i++)
        word_set_add(&set, template_words[i]);
    int rc = draw_vocabulary(&set, w->cfg.seed, WORLD_STREAM_NAMES, 2, 3, w->entity_names,
                             w->cfg.entities, "entity names", err);
    if (rc == 0)
        rc = draw_vocabulary(&set, w->cfg.seed, WORLD_STREAM_OBJECTS, 2, 2, w->object_words,
                             w->cfg.objects, "object words", err);
    free(set.slots);
    return rc;
}

static void draw_facts_and_split(world *w) {
    int E = w->cfg.entities, R = w->cfg.relations;
    world_rng facts = world_rng_stream(w->cfg.seed, WORLD_STREAM_FACTS);
    for (size_t f = 0; f < (size_t)E * R; f++)
        w->facts[f] = (int)world_rng_below(&facts, (uint64_t)w->cfg.objects);
    /* per entity, the first `unasked` relations of a random permutation are never asked */
    world_rng split = world_rng_stream(w->cfg.seed, WORLD_STREAM_SPLIT);
    int order[WORLD_MAX_RELATIONS];
    for (int e = 0; e < E; e++) {
        for (int r = 0; r < R; r++) order[r] = r;
        for (int i = 0; i < w->cfg.unasked; i++) {
            int j = i + (int)world_rng_below(&split, (uint64_t)(R - i));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
            w->unasked[(size_t)e * R + order[i]] = 1;
        }
    }
}

size_t world_item_image_text(const world *w, int entity) {
    return (size_t)entity;
}

size_t world_item_kg(const world *w, int entity, int relation) {
    size_t E = (size_t)w->cfg.entities, R = (size_t)w->cfg.relations;
    return E + (size_t)entity * R + (size_t)relation;
}

size_t world_item_qa(const world *w, int entity, int relation) {
    size_t E = (size_t)w->cfg.entities, R = (size_t)w->cfg.relations;
    return E + E * R + (size_t)entity * R + (size_t)relation;
}

size_t world_item_text(const world *w, int entity, int passage) {
    size_t E = (size_t)w->cfg.entities, R = (size_t)w->cfg.relations;
    return E + 2 * E * R + (size_t)entity * (size_t)w->passages + (size_t)passage;
}

void world_fact_items(const world *w, int entity, int relation, size_t out[3]) {
    out[0] = world_item_kg(w, entity, relation);
    out[1] = world_item_qa(w, entity, relation);
    out[2] = world_item_text(w, entity, relation / w->cfg.passage_facts);
}

void world_image_path(int entity, char *buf, size_t cap) {
    snprintf(buf, cap, "img/e%d.png", entity);
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void world_item_clear(world_item *it) {
    free(it->key);
    free(it->text);
    free(it->title);
    free(it->question);
    free(it->answer);
    free(it->subject);
    free(it->relation);
    free(it->object);
    memset(it, 0, sizeof *it);
}

/* "the colour of bakor is tilu , its home is sema and its food is rovi ." — punctuation is
 * spaced like the questions' " ?", so every word is one whitespace-separated token. */
static char *passage_text(const world *w, int e, int first, int last) {
    size_t cap = 64 + (size_t)(last - first) * (2 * WORLD_WORD_MAX + 24);
    char *s = malloc(cap);
    if (!s) return NULL;
    const char *name = w->entity_names[e];
    size_t n = 0;
    for (int r = first; r < last; r++) {
        const char *obj = w->object_words[w->facts[(size_t)e * w->cfg.relations + r]];
        const char *sep = r == first ? "" : r == last - 1 ? " and" : " ,";
        if (r == first)
            n += (size_t)snprintf(s + n, cap - n, "the %s of %s is %s", w->relation_names[r], name,
                                  obj);
        else
            n +=
                (size_t)snprintf(s + n, cap - n, "%s its %s is %s", sep, w->relation_names[r], obj);
    }
    snprintf(s + n, cap - n, " .");
    return s;
}

int world_build_item(const world *w, size_t idx, world_item *it, char *err) {
    size_t E = (size_t)w->cfg.entities, R = (size_t)w->cfg.relations;
    size_t S = (size_t)w->cfg.image_size;
    memset(it, 0, sizeof *it);
    int ok;
    if (idx < E) {
        it->type = WORLD_IMAGE_TEXT;
        it->entity = (int)idx;
        const char *name = w->entity_names[it->entity];
        it->key = str_printf("it:%s", name);
        it->text = str_printf("%s", name);
        ok = it->key && it->text;
    } else if (idx < E + 2 * E * R) {
        size_t f = (idx - E) % (E * R);
        it->type = idx < E + E * R ? WORLD_KG : WORLD_QA;
        it->entity = (int)(f / R);
        it->part = (int)(f % R);
        const char *name = w->entity_names[it->entity], *rel = w->relation_names[it->part];
        const char *obj = w->object_words[w->facts[f]];
        if (it->type == WORLD_KG) {
            it->key = str_printf("kg:%s|%s", name, rel);
            it->subject = str_printf("%s", name);
            it->relation = str_printf("%s", rel);
            it->object = str_printf("%s", obj);
            ok = it->key && it->subject && it->relation && it->object;
        } else {
            it->key = str_printf("qa:%s|%s", name, rel);
            it->question = str_printf("what is the %s of %s ?", rel, name);
            it->answer = str_printf("%s", obj);
            ok = it->key && it->question && it->answer;
        }
    } else if (idx < E + 2 * E * R + E * (size_t)w->passages) {
        size_t k = idx - E - 2 * E * R;
        it->type = WORLD_TEXT;
        it->entity = (int)(k / (size_t)w->passages);
        it->part = (int)(k % (size_t)w->passages);
        int first = it->part * w->cfg.passage_facts;
        int last = first + w->cfg.passage_facts;
        if (last > w->cfg.relations) last = w->cfg.relations;
        const char *name = w->entity_names[it->entity];
        it->key = str_printf("text:%s#%d", name, it->part);
        it->title = str_printf("%s", name);
        it->text = passage_text(w, it->entity, first, last);
        ok = it->key && it->title && it->text;
    } else {
        return rv_fail(err, "item %zu: past the world's %zu items", idx, w->n_items);
    }
    it->image = w->pictures + (size_t)it->entity * S * S * 3;
    if (!ok) {
        world_item_clear(it);
        return rv_fail(err, "item %zu: out of memory", idx);
    }
    return 0;
}

void world_refresh_question(world *w, size_t fact) {
    w->questions[fact].answer = w->object_words[w->facts[fact]];
}

static int build_questions(world *w, char *err) {
    size_t R = (size_t)w->cfg.relations, S = (size_t)w->cfg.image_size;
    for (size_t f = 0; f < w->n_questions; f++) {
        world_question *q = &w->questions[f];
        q->entity = (int)(f / R);
        q->relation = (int)(f % R);
        q->is_test = w->unasked[f];
        q->question = str_printf("what is the %s of this ?", w->relation_names[q->relation]);
        if (!q->question) return rv_fail(err, "question %zu: out of memory", f);
        q->gold_item = world_item_kg(w, q->entity, q->relation);
        q->image = w->pictures + (size_t)q->entity * S * S * 3;
        world_refresh_question(w, f);
        if (q->is_test)
            w->n_test++;
        else
            w->n_train++;
    }
    return 0;
}

int world_create(const world_config *cfg, world **out, char *err) {
    *out = NULL;
    if (world_config_check(cfg, err)) return -1;
    world *w = calloc(1, sizeof *w);
    if (!w) return rv_fail(err, "out of memory");
    w->cfg = *cfg;
    w->relation_names = relation_names;
    w->passages = (cfg->relations + cfg->passage_facts - 1) / cfg->passage_facts;
    size_t E = (size_t)cfg->entities, R = (size_t)cfg->relations, S = (size_t)cfg->image_size;
    w->n_items = E + 2 * E * R + E * (size_t)w->passages;
    w->n_questions = E * R;
    w->entity_names = calloc(E, sizeof *w->entity_names);
    w->object_words = calloc((size_t)cfg->objects, sizeof *w->object_words);
    w->pictures = calloc(E * S * S * 3, 1);
    w->facts = calloc(E * R, sizeof *w->facts);
    w->unasked = calloc(E * R, 1);
    w->items = calloc(w->n_items, sizeof *w->items);
    w->questions = calloc(w->n_questions, sizeof *w->questions);
    if (!w->entity_names || !w->object_words || !w->pictures || !w->facts || !w->unasked ||
        !w->items || !w->questions) {
        rv_fail(err, "out of memory for a world of %zu entities", E);
        goto fail;
    }
    if (draw_words(w, err) || world_draw_pictures(w, err)) goto fail;
    draw_facts_and_split(w);
    for (size_t i = 0; i < w->n_items; i++)
        if (world_build_item(w, i, &w->items[i], err)) goto fail;
    if (build_questions(w, err)) goto fail;
    *out = w;
    return 0;
fail:
    world_free(w);
    return -1;
}

void world_free(world *w) {
    if (!w) return;
    if (w->items)
        for (size_t i = 0; i < w->n_items; i++) world_item_clear(&w->items[i]);
    if (w->questions)
        for (size_t i = 0; i < w->n_questions; i++) free(w->questions[i].question);
    free(w->items);
    free(w->questions);
    free(w->entity_names);
    free(w->object_words);
    free(w->pictures);
    free(w->facts);
    free(w->unasked);
    free(w);
}
