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

/* Geometry is integer, in hundredths of a pixel, so pictures are the same bytes on every
 * machine and compiler (no floating-point contraction or rounding differences). */
typedef struct {
    int background, stripes, stripe_colour, shape, shape_colour;
    int64_t cx, cy, radius; /* hundredths of a pixel */
} picture_spec;

static int colour_other_than(world_rng *r, int a, int b) {
    int c;
    do c = (int)world_rng_below(r, N_COLOURS);
    while (c == a || c == b);
    return c;
}

static picture_spec picture_draw_spec(world_rng *r, int size) {
    static const int positions[] = {28, 50, 72}; /* percent of the side */
    static const int radii[] = {22, 32};
    picture_spec p;
    p.background = (int)world_rng_below(r, N_COLOURS);
    p.stripes = (int)world_rng_below(r, N_STRIPES);
    p.stripe_colour = colour_other_than(r, p.background, -1);
    p.shape = (int)world_rng_below(r, N_SHAPES);
    p.shape_colour = colour_other_than(r, p.background, p.stripe_colour);
    p.cx = (int64_t)positions[world_rng_below(r, 3)] * size;
    p.cy = (int64_t)positions[world_rng_below(r, 3)] * size;
    p.radius = (int64_t)radii[world_rng_below(r, 2)] * size;
    return p;
}

/* dx, dy: offset of a pixel centre from the shape's centre; r: its radius (same units). */
static int shape_covers(int shape, int64_t dx, int64_t dy, int64_t r) {
    int64_t ax = dx < 0 ? -dx : dx, ay = dy < 0 ? -dy : dy, dd = dx * dx + dy * dy;
    switch (shape) {
    case SHAPE_DISC:
        return dd <= r * r;
    case SHAPE_SQUARE:
        return 5 * ax <= 4 * r && 5 * ay <= 4 * r;
    case SHAPE_TRIANGLE:
        return dy >= -r && 5 * dy <= 4 * r && 9 * ax <= 5 * (dy + r);
    case SHAPE_DIAMOND:
        return ax + ay <= r;
    case SHAPE_CROSS:
        return (20 * ax <= 7 * r && ay <= r) || (20 * ay <= 7 * r && ax <= r);
    default:
        return dd <= r * r && 5 * dd >= 2 * r * r; /* SHAPE_RING */
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
            int64_t dx = (int64_t)(2 * x + 1) * 50 - p->cx, dy = (int64_t)(2 * y + 1) * 50 - p->cy;
            int colour = p->background;
            if (stripe_covers(p->stripes, x, y, period)) colour = p->stripe_colour;
            if (shape_covers(p->shape, dx, dy, p->radius)) colour = p->shape_colour;
            memcpy(out + ((size_t)y * size + x) * 3, palette[colour], 3);
        }
    }
}

/* 1 when the squared pixel differences of a and b sum to at least `bound`. Most pairs are
 * far apart, so stopping as soon as the bound is reached (checked per row) skips most of the
 * work of the all-pairs check. */
static int pictures_far_apart(const uint8_t *a, const uint8_t *b, int size, double bound) {
    size_t row = (size_t)size * 3;
    uint64_t sum = 0;
    for (int y = 0; y < size; y++) {
        for (size_t i = (size_t)y * row; i < (size_t)(y + 1) * row; i++) {
            int d = (int)a[i] - (int)b[i];
            sum += (uint64_t)(d * d);
        }
        if ((double)sum >= bound) return 1;
    }
    return 0;
}

int world_draw_pictures(world *w, char *err) {
    int size = w->cfg.image_size;
    size_t stride = (size_t)size * size * 3;
    /* distance >= d  <=>  sum of squared differences >= d^2 * stride * 255^2 */
    double bound =
        w->cfg.min_image_distance * w->cfg.min_image_distance * (double)stride * 255.0 * 255.0;
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
                accepted = pictures_far_apart(pic, w->pictures + (size_t)o * stride, size, bound);
        }
    }
    return 0;
}
