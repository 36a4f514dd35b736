/* world/world.h — a generated knowledge world for tests and examples.
 *
 * A world is drawn deterministically from a seed: E entities, each with a distinct small
 * procedural RGB picture and a made-up pronounceable name; R relations with readable names
 * ("colour", "home", ...); and one fact per (entity, relation) naming an object from a
 * vocabulary of O made-up words. Facts are drawn at random, so neither the picture nor the
 * name reveals them: a model can only answer from memory.
 *
 * From the facts the world builds knowledge items for the four sources of proto/reveal.proto
 * (image-text, QA pairs, KG triples, text passages; every item carries its entity's picture)
 * and the task: the entity's picture + "what is the <relation> of this ?" → the object. For
 * each entity, `unasked` relations are never asked in training; test questions ask only those.
 *
 * Edits re-draw chosen facts (each to a different object) and report exactly which facts and
 * items changed, so a training loop can update its memory and a test can check that answers
 * follow the new facts. docs/world.md describes the world and its files.
 *
 * Dimension letters: E entities, R relations, O objects, S picture side (pixels), P passages
 * per entity (ceil(R / passage_facts)).
 */
#ifndef WORLD_H
#define WORLD_H

#include <stddef.h>
#include <stdint.h>

#include "rv.h"

#define WORLD_WORD_MAX      16    /* longest made-up word (names, objects) plus its NUL */
#define WORLD_MAX_RELATIONS 12    /* readable relation names available */
#define WORLD_MAX_ENTITIES  10000 /* the all-pairs picture check grows as E^2 */
#define WORLD_MAX_OBJECTS   10000
#define WORLD_MIN_IMAGE     8
#define WORLD_MAX_IMAGE     256

typedef struct {
    uint64_t seed;
    int entities;              /* E */
    int relations;             /* R, at most WORLD_MAX_RELATIONS */
    int objects;               /* O, at least 2 so an edit can change a fact */
    int image_size;            /* S */
    int unasked;               /* relations per entity never asked in training, < R */
    int passage_facts;         /* facts stated by one text passage */
    double min_image_distance; /* pictures differ at least this much (RMS over [0, 1]) */
} world_config;

/* Same numbers as Reveal__SourceType in proto/reveal.proto. */
typedef enum { WORLD_IMAGE_TEXT = 1, WORLD_QA = 2, WORLD_KG = 3, WORLD_TEXT = 4 } world_source;

/* One knowledge item, mirroring KnowledgeItem: the fields its type uses are set, the others
 * are NULL. Strings are owned by the world. */
typedef struct {
    world_source type;
    char *
        key; /* logical key: "it:<name>", "kg:<name>|<rel>", "qa:<name>|<rel>", "text:<name>#<p>" */
    char *text, *title;                /* IMAGE_TEXT: text; TEXT: title, text */
    char *question, *answer;           /* QA */
    char *subject, *relation, *object; /* KG_TRIPLE */
    const uint8_t *image;              /* (S, S, 3) the entity's picture */
    int entity;                        /* whose item */
    int part;                          /* QA, KG: relation; TEXT: passage; IMAGE_TEXT: 0 */
} world_item;

/* One task example: picture + question → answer. */
typedef struct {
    int entity, relation;
    int is_test;          /* 1: the fact is never asked in training */
    char *question;       /* "what is the <relation> of this ?" */
    const char *answer;   /* the object word (points into the world's vocabulary) */
    size_t gold_item;     /* index into items: the KG triple stating the fact */
    const uint8_t *image; /* (S, S, 3) */
} world_question;

/* Read-only for callers; world_edit_* change facts, items and questions. */
typedef struct {
    world_config cfg;
    int passages;                         /* P */
    const char *const *relation_names;    /* (R) */
    char (*entity_names)[WORLD_WORD_MAX]; /* (E) */
    char (*object_words)[WORLD_WORD_MAX]; /* (O) */
    uint8_t *pictures;                    /* (E, S, S, 3) row-major RGB */
    int *facts;                           /* (E, R) object index */
    uint8_t *unasked;                     /* (E, R) 1 when never asked in training */
    /* Items in a fixed order that edits keep: image-text (E), KG (E, R), QA (E, R), text (E, P). */
    world_item *items;
    size_t n_items;
    world_question *questions; /* (E, R) one per fact, in fact order */
    size_t n_questions, n_train, n_test;
    uint32_t version; /* number of edits applied */
} world;

/* One re-drawn fact. */
typedef struct {
    int entity, relation;
    int old_object, new_object;
} world_fact_change;

/* One changed item: its new content is world.items[item]; `old` is its content before. */
typedef struct {
    size_t item;
    world_item old; /* owned by the edit record */
} world_item_change;

typedef struct {
    uint64_t seed;
    world_fact_change *facts; /* in fact order */
    size_t n_facts;
    world_item_change *items; /* in item order */
    size_t n_items;
} world_edit;

/* The defaults of LEARNING.md's world: 64 entities, 6 relations, 50 objects, 16×16 pictures,
 * 2 unasked relations per entity, 3 facts per passage. */
void world_config_default(world_config *cfg);
/* Checks every field; the message names the field and its allowed range. */
int world_config_check(const world_config *cfg, char *err);

int world_create(const world_config *cfg, world **out, char *err);
void world_free(world *w);

/* Item positions (see world.items). */
size_t world_item_image_text(const world *w, int entity);
size_t world_item_kg(const world *w, int entity, int relation);
size_t world_item_qa(const world *w, int entity, int relation);
size_t world_item_text(const world *w, int entity, int passage);
/* The three items stating a fact: its KG triple, its QA pair and the passage holding it. */
void world_fact_items(const world *w, int entity, int relation, size_t out[3]);
/* "img/e<entity>.png": where world_write puts the picture, relative to the JSONL files. */
void world_image_path(int entity, char *buf, size_t cap);

/* Re-draws the listed facts (index entity * R + relation, each at most once), each to an
 * object other than its current one, with the given seed. Fills *edit (free it with
 * world_edit_free) with the changed facts and items; questions follow the new facts. */
int world_edit_facts(world *w, const size_t *facts, size_t n, uint64_t seed, world_edit *edit,
                     char *err);
/* Re-draws round(fraction * E * R) facts chosen at random with the seed (1.0: all). */
int world_edit_fraction(world *w, double fraction, uint64_t seed, world_edit *edit, char *err);
void world_edit_free(world_edit *edit);

/* Writes the world into `dir`, which must not exist unless `replace` is set: the four sources
 * (image_text.jsonl, kg.jsonl, qa.jsonl, text.jsonl), pictures (img/e<i>.png), questions
 * (questions_train.jsonl, questions_test.jsonl), edits.jsonl when `edit` is given, and
 * world.json. Everything is written into a temporary directory beside `dir` and renamed into
 * place, so `dir` holds a whole world or none. */
int world_write(const world *w, const world_edit *edit, const char *dir, int replace, char *err);

#endif
