/* tests/test_store_image.c — image decoding and the area-averaging resize.
 * The resize is checked against a direct double-precision evaluation of its definition (each
 * output pixel = mean of the source area it covers); decoding against images this test
 * encodes itself (PNG exactly, JPEG within its loss), and each refusal by its message. */
#include "check.h"
#include "memstore.h"
#include "rv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>

/* The definition: overlap of [lo, hi) with pixel i, integrated in 2-D, divided by the area. */
static double overlap(double lo, double hi, int i) {
    double a = lo > i ? lo : i, b = hi < i + 1 ? hi : i + 1;
    return b > a ? b - a : 0;
}

static double area_reference(const unsigned char *in, int iw, int ih, int ch, int ow, int oh,
                             int ox, int oy, int c) {
    double sx = (double)iw / ow, sy = (double)ih / oh, acc = 0;
    for (int y = 0; y < ih; y++) {
        double wy = overlap(oy * sy, (oy + 1) * sy, y);
        if (wy == 0) continue;
        for (int x = 0; x < iw; x++)
            acc += wy * overlap(ox * sx, (ox + 1) * sx, x) * in[(y * iw + x) * ch + c];
    }
    return acc / (sx * sy);
}

/* Largest difference between the resize and the reference over every pixel and channel. */
static double resize_error(int iw, int ih, int ow, int oh, unsigned seed) {
    int ch = 3;
    unsigned char *in = malloc((size_t)iw * ih * ch), *out = malloc((size_t)ow * oh * ch);
    REQUIRE(in && out);
    srand(seed);
    for (int i = 0; i < iw * ih * ch; i++) in[i] = (unsigned char)(rand() & 255);
    char err[RV_ERR_MAX];
    REQUIRE(mem_image_resize_area(out, ow, oh, in, iw, ih, ch, err) == 0);
    double worst = 0;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            for (int c = 0; c < ch; c++) {
                double d = fabs(out[(y * ow + x) * ch + c] -
                                area_reference(in, iw, ih, ch, ow, oh, x, y, c));
                if (d > worst) worst = d;
            }
    free(in);
    free(out);
    return worst;
}

static void test_resize(void) {
    /* Integer factors, fractional factors both ways, upscaling, one-pixel edges, the same
     * size (copied), the same size on one axis. */
    int cases[][4] = {{4, 4, 2, 2},      {64, 64, 32, 32}, {3, 1, 2, 1},     {100, 37, 32, 32},
                      {37, 100, 32, 32}, {1, 1, 3, 3},     {5, 7, 32, 32},   {320, 240, 32, 32},
                      {33, 31, 32, 32},  {1, 200, 1, 32},  {32, 32, 32, 32}, {32, 64, 32, 32}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double e = resize_error(cases[i][0], cases[i][1], cases[i][2], cases[i][3], (unsigned)i);
        /* Rounding to 8 bits allows 0.5; float accumulation a little more. */
        CHECKF(e <= 0.51, "%dx%d -> %dx%d: off by %.3f", cases[i][0], cases[i][1], cases[i][2],
               cases[i][3], e);
    }
    /* A 2x2 average by hand. */
    unsigned char in[16] = {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150};
    unsigned char out[4];
    char err[RV_ERR_MAX];
    REQUIRE(mem_image_resize_area(out, 2, 2, in, 4, 4, 1, err) == 0);
    CHECKF(out[0] == 25 && out[1] == 45 && out[2] == 105 && out[3] == 125, "got %d %d %d %d",
           out[0], out[1], out[2], out[3]);
}

typedef struct {
    unsigned char *data;
    size_t n;
} blob;

static void blob_write(void *ctx, void *data, int size) {
    blob *b = ctx;
    b->data = realloc(b->data, b->n + (size_t)size);
    REQUIRE(b->data != NULL);
    memcpy(b->data + b->n, data, (size_t)size);
    b->n += (size_t)size;
}

/* A smooth test picture (JPEG keeps it well) of w×h with ch channels. */
static unsigned char *picture(int w, int h, int ch) {
    unsigned char *p = malloc((size_t)w * h * ch);
    REQUIRE(p != NULL);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++)
                p[(y * w + x) * ch + c] =
                    (unsigned char)(c == 3 ? 255 : (x * 255 / w + y * 64 / h + c * 40) & 255);
    return p;
}

static void test_decode(void) {
    char err[RV_ERR_MAX];
    int w = 96, h = 64;
    unsigned char *rgb = picture(w, h, 3), *want = malloc(32 * 32 * 3), *got;
    REQUIRE(want != NULL);
    REQUIRE(mem_image_resize_area(want, 32, 32, rgb, w, h, 3, err) == 0);

    blob png = {0}, jpg = {0};
    REQUIRE(stbi_write_png_to_func(blob_write, &png, w, h, 3, rgb, w * 3));
    REQUIRE(mem_image_decode(png.data, png.n, 32, &got, err) == 0);
    CHECK(!memcmp(got, want, 32 * 32 * 3)); /* PNG is lossless */
    free(got);

    REQUIRE(stbi_write_jpg_to_func(blob_write, &jpg, w, h, 3, rgb, 95));
    REQUIRE(mem_image_decode(jpg.data, jpg.n, 32, &got, err) == 0);
    int worst = 0;
    for (int i = 0; i < 32 * 32 * 3; i++) {
        int d = abs(got[i] - want[i]);
        if (d > worst) worst = d;
    }
    CHECKF(worst <= 12, "JPEG differs by %d after resize", worst);
    free(got);

    /* Grey becomes RGB; transparent becomes white; half-transparent black becomes grey. */
    unsigned char grey[4] = {7, 7, 7, 7}, rgba[4 * 4] = {0};
    blob g = {0}, a = {0};
    REQUIRE(stbi_write_png_to_func(blob_write, &g, 2, 2, 1, grey, 2));
    REQUIRE(mem_image_decode(g.data, g.n, 4, &got, err) == 0);
    CHECK(got[0] == 7 && got[1] == 7 && got[2] == 7 && got[47] == 7);
    free(got);
    rgba[3] = 0;    /* pixel 0 transparent */
    rgba[7] = 128;  /* pixel 1 half-transparent black */
    rgba[11] = 255; /* pixels 2 and 3 opaque black */
    rgba[15] = 255;
    REQUIRE(stbi_write_png_to_func(blob_write, &a, 4, 1, 4, rgba, 16));
    REQUIRE(mem_image_decode(a.data, a.n, 4, &got, err) == 0);
    CHECKF(got[0] == 255 && got[3] == 127 && got[6] == 0 && got[9] == 0, "got %d %d %d %d", got[0],
           got[3], got[6], got[9]);
    free(got);

    /* Refusals, each with its reason. */
    CHECK(mem_image_decode(png.data, 0, 32, &got, err) == -1 && strstr(err, "empty"));
    CHECK(mem_image_decode((const unsigned char *)"GIF89a....", 10, 32, &got, err) == -1 &&
          strstr(err, "not a PNG or JPEG"));
    CHECK(mem_image_decode(png.data, png.n / 2, 32, &got, err) == -1 &&
          strstr(err, "cannot decode"));
    CHECKF(mem_image_decode(jpg.data, 200, 32, &got, err) == -1, "truncated JPEG accepted");
    CHECK(mem_image_decode(png.data, png.n, 0, &got, err) == -1 && strstr(err, "image size 0"));
    CHECK(got == NULL);

    /* A header claiming 10000×10000 pixels: refused from the header alone (the file has no
     * pixel data at all, so a decode attempt would report something else). */
    unsigned char huge[33];
    memcpy(huge, png.data, 33);
    const unsigned char dims[8] = {0, 0, 0x27, 0x10, 0, 0, 0x27, 0x10};
    memcpy(huge + 16, dims, 8);
    CHECKF(mem_image_decode(huge, sizeof huge, 32, &got, err) == -1 &&
               strstr(err, "10000×10000 pixels; at most 8192 on a side"),
           "got '%s'", err);

    CHECK(mem_image_load("/nonexistent/x.png", 32, &got, err) == -1 &&
          strstr(err, "/nonexistent/x.png: cannot open"));
    free(png.data);
    free(jpg.data);
    free(g.data);
    free(a.data);
    free(rgb);
    free(want);
}

int main(void) {
    test_resize();
    test_decode();
    return check_report("store_image");
}
