/* world/picture.c — the entities' procedural pictures.
 *
 * Each picture combines a background colour, optional stripes (horizontal, vertical or
 * diagonal, in a second colour), and one shape (disc, square, triangle, diamond, cross, ring)
 * in a third colour, at one of 9 positions and 2 sizes. The parts are coarse (several pixels
 * wide even at 8×8), so a small ViT can tell pictures apart; a drawn picture is kept only if
 * it differs from every earlier one by at least cfg.min_image_distance, so no two entities
 * look alike whatever the seed.
 */
#include "world_internal.h"

#include <math.h>
#include <string.h>

enum { SHAPE_DISC, SHAPE_SQUARE, SHAPE_TRIANGLE, SHAPE_DIAMOND, SHAPE_CROSS, SHAPE_RING, N_SHAPES };
enum { STRIPES_NONE, STRIPES_HORIZONTAL, STRIPES_VERTICAL, STRIPES_DIAGONAL, N_STRIPES };

/* Saturated colours far apart in RGB, so a colour change is always a large pixel change. */
static const uint8_t palette[][3] = {
    {230, 40, 40},  {40, 180, 60},  {40, 70, 220},   {240, 220, 40},
    {40, 210, 220}, {210, 50, 200}, {245, 245, 245}, {20, 20, 20},
};
#define N_COLOURS ((int)(sizeof palette / sizeof palette[0]))

/* Tries before giving up on one entity's picture: at the default sizes a fresh draw is
 * rejected rarely, so running out means the configuration asks for too much. */
#define PICTURE_TRIES 1000

typedef struct {
    int background, stripes, stripe_colour, shape, shape_colour;
    float cx, cy, radius; /* in pixels */
} picture_spec;

static int colour_other_than(world_rng *r, int a, int b) {
    int c;
    do c = (int)world_rng_below(r, N_COLOURS);
    while (c == a || c == b);
    return c;
}

static picture_spec picture_draw_spec(world_rng *r, int size) {
    static const float positions[] = {0.28f, 0.5f, 0.72f};
    static const float radii[] = {0.22f, 0.32f};
    picture_spec p;
    p.background = (int)world_rng_below(r, N_COLOURS);
    p.stripes = (int)world_rng_below(r, N_STRIPES);
    p.stripe_colour = colour_other_than(r, p.background, -1);
    p.shape = (int)world_rng_below(r, N_SHAPES);
    p.shape_colour = colour_other_than(r, p.background, p.stripe_colour);
    p.cx = positions[world_rng_below(r, 3)] * (float)size;
    p.cy = positions[world_rng_below(r, 3)] * (float)size;
    p.radius = radii[world_rng_below(r, 2)] * (float)size;
    return p;
}

/* dx, dy: offset from the shape's centre in units of its radius. */
static int shape_covers(int shape, float dx, float dy) {
    float ax = fabsf(dx), ay = fabsf(dy), rr = dx * dx + dy * dy;
    switch (shape) {
    case SHAPE_DISC:
        return rr <= 1.0f;
    case SHAPE_SQUARE:
        return ax <= 0.8f && ay <= 0.8f;
    case SHAPE_TRIANGLE:
        return dy >= -1.0f && dy <= 0.8f && ax <= (dy + 1.0f) / 1.8f;
    case SHAPE_DIAMOND:
        return ax + ay <= 1.0f;
    case SHAPE_CROSS:
        return (ax <= 0.35f && ay <= 1.0f) || (ay <= 0.35f && ax <= 1.0f);
    default:
        return rr <= 1.0f && rr >= 0.4f; /* SHAPE_RING */
    }
}

static int stripe_covers(int stripes, int x, int y, int period) {
    int half = period / 2;
    switch (stripes) {
    case STRIPES_HORIZONTAL:
        return y % period < half;
    case STRIPES_VERTICAL:
        return x % period < half;
    case STRIPES_DIAGONAL:
        return (x + y) % period < half;
    default:
        return 0;
    }
}

static void picture_render(uint8_t *out, const picture_spec *p, int size) {
    int period = size / 4 < 2 ? 2 : size / 4;
    for (int y = 0; y < size; y++) {
        for (int x = 0; x < size; x++) {
            float dx = ((float)x + 0.5f - p->cx) / p->radius;
            float dy = ((float)y + 0.5f - p->cy) / p->radius;
            int colour = p->background;
            if (stripe_covers(p->stripes, x, y, period)) colour = p->stripe_colour;
            if (shape_covers(p->shape, dx, dy)) colour = p->shape_colour;
            memcpy(out + ((size_t)y * size + x) * 3, palette[colour], 3);
        }
    }
}

double world_image_distance(const uint8_t *a, const uint8_t *b, int size) {
    size_t n = (size_t)size * size * 3;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = ((double)a[i] - (double)b[i]) / 255.0;
        sum += d * d;
    }
    return sqrt(sum / (double)n);
}

int world_draw_pictures(world *w, char *err) {
    int size = w->cfg.image_size;
    size_t stride = (size_t)size * size * 3;
    world_rng r = world_rng_stream(w->cfg.seed, WORLD_STREAM_PICTURES);
    for (int e = 0; e < w->cfg.entities; e++) {
        uint8_t *pic = w->pictures + (size_t)e * stride;
        int tries = 0, accepted = 0;
        while (!accepted) {
            if (tries++ == PICTURE_TRIES)
                return rv_fail(err,
                               "entity %d: no picture at least %.3f from the %d before it in %d "
                               "tries; lower min_image_distance, or use fewer entities or "
                               "larger pictures",
                               e, w->cfg.min_image_distance, e, PICTURE_TRIES);
            picture_spec spec = picture_draw_spec(&r, size);
            picture_render(pic, &spec, size);
            accepted = 1;
            for (int o = 0; o < e && accepted; o++)
                if (world_image_distance(pic, w->pictures + (size_t)o * stride, size) <
                    w->cfg.min_image_distance)
                    accepted = 0;
        }
    }
    return 0;
}
