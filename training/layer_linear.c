/* training/layer_linear.c — linear layer (sgemm), token embedding, learned positions, and the
 * patch cutting of the image patch embedding. */
#include "layer_impl.h"

#include "rv.h"

void TRN(linear_forward)(real *out,       // (N, OC)
                         const real *inp, // (N, C)
                         const real *w,   // (OC, C)
                         int N, int C, int OC) {
    gemm(0, 1, N, OC, C, 1, inp, C, w, C, 0, out, OC);
}

void TRN(linear_backward)(real *dinp,       // (N, C) or NULL
                          real *dw,         // (OC, C)
                          const real *dout, // (N, OC)
                          const real *inp,  // (N, C)
                          const real *w,    // (OC, C)
                          int N, int C, int OC) {
    if (dinp) gemm(0, 0, N, C, OC, 1, dout, OC, w, C, 1, dinp, C);
    gemm(1, 0, OC, C, N, 1, dout, OC, inp, C, 1, dw, C);
}

int TRN(embedding_forward)(real *out,             // (N, C)
                           const int32_t *tokens, // (N)
                           const real *wte,       // (V, C)
                           int N, int V, int C, char *err) {
    for (int n = 0; n < N; n++) {
        if (tokens[n] < 0 || tokens[n] >= V)
            return rv_fail(err,
                           "embedding: token %d at position %d is outside the vocabulary [0, %d)",
                           tokens[n], n, V);
        const real *row = wte + (size_t)tokens[n] * C;
        real *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = row[c];
    }
    return 0;
}

void TRN(embedding_backward)(real *dwte,       // (V, C)
                             const real *dout, // (N, C)
                             const int32_t *tokens, int N, int C) {
    for (int n = 0; n < N; n++) {
        real *row = dwte + (size_t)tokens[n] * C;
        const real *d = dout + (size_t)n * C;
        for (int c = 0; c < C; c++) row[c] += d[c];
    }
}

void TRN(positions_forward)(real *x,         // (B, T, C)
                            const real *wpe, // (Tmax, C)
                            int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        real *xb = x + (size_t)b * T * C;
        for (size_t i = 0; i < (size_t)T * C; i++) xb[i] += wpe[i];
    }
}

void TRN(positions_backward)(real *dwpe,       // (Tmax, C)
                             const real *dout, // (B, T, C)
                             int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        const real *db = dout + (size_t)b * T * C;
        for (size_t i = 0; i < (size_t)T * C; i++) dwpe[i] += db[i];
    }
}

/* Offset of pixel (py, px) of patch `patch` of image b, in a (B, Hi, Wi, 3) image. */
static size_t patch_pixel(int b, int patch, int py, int px, int Hi, int Wi, int p) {
    int per_row = Wi / p;
    int y = (patch / per_row) * p + py, x = (patch % per_row) * p + px;
    return (((size_t)b * Hi + y) * Wi + x) * 3;
}

/* One loop serves the three directions: gather u8 or real pixels into patches, or scatter
 * patch gradients back onto the image. */
static void patch_walk(real *patches, real *img_out, const real *img, const uint8_t *img_u8,
                       const real *dpatches, int B, int Hi, int Wi, int p) {
    int P = (Hi / p) * (Wi / p), PD = 3 * p * p;
    for (int b = 0; b < B; b++)
        for (int q = 0; q < P; q++) {
            size_t row = ((size_t)b * P + q) * PD;
            for (int py = 0; py < p; py++)
                for (int px = 0; px < p; px++) {
                    size_t src = patch_pixel(b, q, py, px, Hi, Wi, p);
                    size_t dst = row + (size_t)(py * p + px) * 3;
                    for (int ch = 0; ch < 3; ch++) {
                        if (img_u8)
                            patches[dst + ch] = (real)img_u8[src + ch] * (real)(1.0 / 255.0);
                        else if (img)
                            patches[dst + ch] = img[src + ch];
                        else
                            img_out[src + ch] += dpatches[dst + ch];
                    }
                }
        }
}

void TRN(patchify_u8)(real *patches,      // (B, P, 3·p·p)
                      const uint8_t *img, // (B, Hi, Wi, 3)
                      int B, int Hi, int Wi, int p) {
    patch_walk(patches, NULL, NULL, img, NULL, B, Hi, Wi, p);
}

void TRN(patchify)(real *patches,   // (B, P, 3·p·p)
                   const real *img, // (B, Hi, Wi, 3)
                   int B, int Hi, int Wi, int p) {
    patch_walk(patches, NULL, img, NULL, NULL, B, Hi, Wi, p);
}

void TRN(patchify_backward)(real *dimg,           // (B, Hi, Wi, 3)
                            const real *dpatches, // (B, P, 3·p·p)
                            int B, int Hi, int Wi, int p) {
    patch_walk(NULL, dimg, NULL, NULL, dpatches, B, Hi, Wi, p);
}
