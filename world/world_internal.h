/* world/world_internal.h — what the world's source files share: the random stream and the
 * builders that both creation and edits use. Not part of the public API. */
#ifndef WORLD_INTERNAL_H
#define WORLD_INTERNAL_H

#include "world.h"

#include <stdint.h>

/* splitmix64: tiny, fast, and the same on every machine and compiler, unlike rand(). */
typedef struct {
    uint64_t state;
} world_rng;

/* Independent streams per purpose (names, pictures, facts, ...), so that a change in how one
 * part is drawn does not reshuffle the others. */
enum {
    WORLD_STREAM_NAMES = 1,
    WORLD_STREAM_OBJECTS,
    WORLD_STREAM_PICTURES,
    WORLD_STREAM_FACTS,
    WORLD_STREAM_SPLIT,
    WORLD_STREAM_EDIT_PICK,
    WORLD_STREAM_EDIT_DRAW,
};

static inline uint64_t world_rng_next(world_rng *r) {
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline world_rng world_rng_stream(uint64_t seed, uint64_t stream) {
    world_rng r = {seed};
    r.state = world_rng_next(&r) ^ (stream * 0xd1342543de82ef95ULL);
    return r;
}

/* Uniform in [0, n), n > 0, without modulo bias. */
static inline uint64_t world_rng_below(world_rng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = world_rng_next(r);
    while (x >= limit);
    return x % n;
}

/* Draws every entity's picture into w->pictures, each at least cfg.min_image_distance from
 * all earlier ones (picture.c). */
int world_draw_pictures(world *w, char *err);

/* Builds the item at position idx from the current facts into *it (world.c). */
int world_build_item(const world *w, size_t idx, world_item *it, char *err);
void world_item_clear(world_item *it);
/* Sets a question's answer from the current fact. */
void world_refresh_question(world *w, size_t fact);

#endif
