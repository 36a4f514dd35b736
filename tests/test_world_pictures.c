/* tests/test_world_pictures.c — the entities' pictures: pairwise distinct above the
 * configured distance (measured here independently of the library), made of several colours,
 * carried by every item and question of their entity, and a distance the pictures cannot
 * meet is refused with a message naming it. */
#include "check.h"
#include "world.h"

#include <math.h>
#include <string.h>

static double rms_distance(const uint8_t *a, const uint8_t *b, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = ((double)a[i] - (double)b[i]) / 255.0;
        sum += d * d;
    }
    return sqrt(sum / (double)n);
}

static int distinct_colours(const uint8_t *pic, size_t pixels) {
    uint32_t seen[64];
    int n = 0;
    for (size_t p = 0; p < pixels && n < 64; p++) {
        uint32_t c = (uint32_t)pic[3 * p] << 16 | (uint32_t)pic[3 * p + 1] << 8 | pic[3 * p + 2];
        int found = 0;
        for (int i = 0; i < n && !found; i++) found = seen[i] == c;
        if (!found) seen[n++] = c;
    }
    return n;
}

static void check_world_pictures(uint64_t seed, int entities, int size) {
    char err[RV_ERR_MAX];
    world_config cfg;
    world_config_default(&cfg);
    cfg.seed = seed;
    cfg.entities = entities;
    cfg.image_size = size;
    world *w = NULL;
    CHECKF(world_create(&cfg, &w, err) == 0, "seed %llu size %d: %s", (unsigned long long)seed,
           size, err);
    if (!w) return;
    size_t stride = (size_t)size * size * 3;
    double min_d = 1e9;
    for (int a = 0; a < entities; a++)
        for (int b = a + 1; b < entities; b++) {
            double d = rms_distance(w->pictures + a * stride, w->pictures + b * stride, stride);
            if (d < min_d) min_d = d;
        }
    CHECKF(min_d >= cfg.min_image_distance, "seed %llu size %d: pictures only %.4f apart",
           (unsigned long long)seed, size, min_d);
    printf("seed %llu, %d entities, %dx%d: least pairwise RMS distance %.3f (required %.3f)\n",
           (unsigned long long)seed, entities, size, size, min_d, cfg.min_image_distance);
    int flat = 0;
    for (int e = 0; e < entities; e++)
        flat += distinct_colours(w->pictures + e * stride, (size_t)size * size) < 2;
    CHECKF(flat == 0, "%d pictures have a single colour", flat);
    for (size_t i = 0; i < w->n_items; i++)
        CHECK(w->items[i].image == w->pictures + w->items[i].entity * stride);
    for (size_t i = 0; i < w->n_questions; i++)
        CHECK(w->questions[i].image == w->pictures + w->questions[i].entity * stride);
    world_free(w);
}

int main(void) {
    for (uint64_t seed = 1; seed <= 3; seed++) {
        check_world_pictures(seed, 64, 8);
        check_world_pictures(seed, 64, 16);
        check_world_pictures(seed, 64, 32);
    }
    check_world_pictures(11, 512, 16);

    /* a distance no set of pictures can meet is refused, naming the setting */
    char err[RV_ERR_MAX] = "";
    world_config cfg;
    world_config_default(&cfg);
    cfg.min_image_distance = 0.95;
    world *w = NULL;
    CHECK(world_create(&cfg, &w, err) == -1 && w == NULL);
    CHECKF(strstr(err, "min_image_distance") != NULL, "got '%s'", err);
    return check_report("world_pictures");
}
