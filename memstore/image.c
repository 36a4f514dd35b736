/* memstore/image.c — PNG and JPEG decoding (stb_image) and the resize to a store's square
 * image size.
 *
 * Images come from users' folders, so the header is read first (stbi_info) and anything
 * larger than MEM_IMAGE_SIDE_MAX on a side is refused before a pixel is decoded; stb_image is
 * built for PNG and JPEG only, which keeps the decoder surface small. Resizing averages areas
 * (a box filter whose support is the output pixel's footprint), the filter that keeps
 * thin detail from aliasing when a photo shrinks to 32×32. Averaging is done on the stored
 * sRGB values, as most training pipelines do. Pixels with alpha are composited over white.
 */
#include "memstore.h"
#include "rv.h"

#include <stdlib.h>
#include <string.h>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/* One axis of an area-averaging resize: output index o covers source interval
 * [o·in/out, (o+1)·in/out); each source index gets the length of its overlap with it. */
typedef struct {
    uint32_t first; /* first source index */
    uint32_t count; /* source indices covered */
    float *weight;  /* (count,) overlap lengths divided by the interval's length */
} area_span;

/* spans: (out,) with weights carved from `pool`, which holds at least out + in floats (neighbouring
 * outputs share at most one source index, so the total is at most in + out). */
static void area_spans(area_span *spans, float *pool, uint32_t out, uint32_t in) {
    double scale = (double)in / (double)out;
    for (uint32_t o = 0; o < out; o++) {
        double lo = o * scale, hi = (o + 1) * scale;
        uint32_t first = (uint32_t)lo;
        uint32_t last = (uint32_t)hi;
        if ((double)last == hi) last--; /* an interval ending on a pixel edge excludes it */
        if (last >= in) last = in - 1;
        spans[o].first = first;
        spans[o].count = last - first + 1;
        spans[o].weight = pool;
        for (uint32_t i = first; i <= last; i++) {
            double a = i > lo ? i : lo, b = i + 1 < hi ? i + 1 : hi;
            *pool++ = (float)((b - a) / scale);
        }
    }
}

int mem_image_resize_area(unsigned char *out, uint32_t ow, uint32_t oh, const unsigned char *in,
                          uint32_t iw, uint32_t ih, uint32_t ch, char *err) {
    if (ch == 0 || ch > 4 || !ow || !oh || !iw || !ih)
        return rv_fail(err, "cannot resize a %ux%u image with %u channels to %ux%u", iw, ih, ch, ow,
                       oh);
    if (iw == ow && ih == oh) { /* every output pixel covers exactly its source pixel */
        memcpy(out, in, (size_t)ow * oh * ch);
        return 0;
    }
    /* Separable: rows first into a float buffer, then columns, one output row at a time. */
    int rc = -1;
    size_t row = (size_t)ow * ch;
    area_span *xs = malloc(sizeof *xs * ow), *ys = malloc(sizeof *ys * oh);
    float *xw = malloc(sizeof *xw * (iw + 2 * (size_t)ow));
    float *yw = malloc(sizeof *yw * (ih + 2 * (size_t)oh));
    float *tmp = malloc(sizeof *tmp * (size_t)ih * row); // (ih, ow, ch)
    float *acc = malloc(sizeof *acc * row);              // (ow, ch)
    if (!xs || !ys || !xw || !yw || !tmp || !acc) {
        rv_fail(err, "out of memory resizing a %u×%u image to %u×%u", iw, ih, ow, oh);
        goto cleanup;
    }
    area_spans(xs, xw, ow, iw);
    area_spans(ys, yw, oh, ih);
    for (uint32_t y = 0; y < ih; y++) {
        const unsigned char *src = in + (size_t)y * iw * ch; // (iw, ch)
        float *dst = tmp + (size_t)y * row;                  // (ow, ch)
        for (uint32_t o = 0; o < ow; o++) {
            float sum[4] = {0, 0, 0, 0};
            const unsigned char *px = src + (size_t)xs[o].first * ch;
            for (uint32_t k = 0; k < xs[o].count; k++, px += ch)
                for (uint32_t c = 0; c < ch; c++) sum[c] += xs[o].weight[k] * px[c];
            for (uint32_t c = 0; c < ch; c++) dst[(size_t)o * ch + c] = sum[c];
        }
    }
    for (uint32_t o = 0; o < oh; o++) {
        memset(acc, 0, sizeof *acc * row);
        for (uint32_t k = 0; k < ys[o].count; k++) {
            const float *src = tmp + (size_t)(ys[o].first + k) * row;
            float w = ys[o].weight[k];
            for (size_t i = 0; i < row; i++) acc[i] += w * src[i];
        }
        unsigned char *dst = out + (size_t)o * row;
        for (size_t i = 0; i < row; i++) {
            int v = (int)(acc[i] + 0.5f);
            dst[i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    rc = 0;
cleanup:
    free(xs);
    free(ys);
    free(xw);
    free(yw);
    free(tmp);
    free(acc);
    return rc;
}

static int is_png(const unsigned char *b, size_t n) {
    return n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8);
}

static int is_jpeg(const unsigned char *b, size_t n) {
    return n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF;
}

int mem_image_decode(const unsigned char *bytes, size_t n, uint32_t size, unsigned char **pixels,
                     char *err) {
    *pixels = NULL;
    int rc = -1;
    unsigned char *rgb = NULL, *decoded = NULL;
    if (size == 0 || size > MEM_IMAGE_SIZE_MAX)
        return rv_fail(err, "image size %u is outside 1..%u", size, MEM_IMAGE_SIZE_MAX);
    if (n == 0) return rv_fail(err, "empty file, not an image");
    if (!is_png(bytes, n) && !is_jpeg(bytes, n))
        return rv_fail(err, "not a PNG or JPEG file (unknown signature)");
    if (n > (size_t)0x7fffffff) return rv_fail(err, "image file of %zu bytes is too large", n);
    int w, h, comp;
    if (!stbi_info_from_memory(bytes, (int)n, &w, &h, &comp))
        return rv_fail(err, "cannot read the image header: %s", stbi_failure_reason());
    if (w <= 0 || h <= 0 || (uint32_t)w > MEM_IMAGE_SIDE_MAX || (uint32_t)h > MEM_IMAGE_SIDE_MAX)
        return rv_fail(err, "image is %d×%d pixels; at most %u on a side is accepted", w, h,
                       MEM_IMAGE_SIDE_MAX);
    int has_alpha = comp == 2 || comp == 4;
    int want = has_alpha ? 4 : 3;
    int dw, dh, dc;
    decoded = stbi_load_from_memory(bytes, (int)n, &dw, &dh, &dc, want);
    if (!decoded) return rv_fail(err, "cannot decode the image: %s", stbi_failure_reason());
    if (dw != w || dh != h) {
        rv_fail(err, "image header says %d×%d but decodes to %d×%d", w, h, dw, dh);
        goto cleanup;
    }
    if (has_alpha) {
        /* Composite over white in place, packing RGBA into RGB. */
        size_t np = (size_t)w * h;
        for (size_t i = 0; i < np; i++) {
            unsigned a = decoded[4 * i + 3];
            for (int c = 0; c < 3; c++)
                decoded[3 * i + c] =
                    (unsigned char)((decoded[4 * i + c] * a + 255u * (255u - a) + 127u) / 255u);
        }
    }
    rgb = malloc((size_t)size * size * 3);
    if (!rgb) {
        rv_fail(err, "out of memory for a %u×%u image", size, size);
        goto cleanup;
    }
    if (mem_image_resize_area(rgb, size, size, decoded, (uint32_t)w, (uint32_t)h, 3, err) != 0)
        goto cleanup;
    *pixels = rgb;
    rgb = NULL;
    rc = 0;
cleanup:
    free(rgb);
    stbi_image_free(decoded);
    return rc;
}

int mem_image_load(const char *path, uint32_t size, unsigned char **pixels, char *err) {
    *pixels = NULL;
    void *data = NULL;
    size_t n = 0;
    if (rv_read_file(path, MEM_IMAGE_FILE_MAX, &data, &n, err) != 0) return -1;
    int rc = mem_image_decode(data, n, size, pixels, err);
    free(data);
    if (rc != 0) rv_fail_wrap(err, "%s", path);
    return rc;
}
