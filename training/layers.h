/* training/layers.h — the model engine's layers: forward and backward, hand-written.
 *
 * Conventions (llm.c style; docs/engine.md has the full list):
 * - Every function takes its outputs first and its dimensions last. Buffers are flat,
 *   row-major, and carry a shape comment. Dimension letters: B batch, T sequence (queries),
 *   S sequence of a context (keys/values of cross-attention), C width, NH heads, HS = C / NH
 *   head size, H hidden width of the MLP, V vocabulary, N = rows (B·T) of a position-wise layer.
 * - Forward overwrites its outputs. Backward ADDS into its gradient outputs (dinp, dw, ...), so
 *   the caller zeroes gradients once per step and shared inputs sum naturally. A gradient
 *   pointer may be NULL where noted (e.g. no gradient for an image).
 * - Linear weights are stored (out, in), as PyTorch and llm.c do: y = x·Wᵀ. The token
 *   embedding table (V, C) is therefore directly usable as a tied output projection.
 * - No allocation happens inside forward or backward. Layers that keep activations for the
 *   backward pass take an activation struct whose pointers the caller sets, usually with
 *   *_acts_carve over one block of *_acts_size reals; backward passes that need temporary
 *   memory take a scratch buffer of *_scratch_size reals (reusable across layers).
 * - Masks are uint8, 1 = a real token, 0 = padding; a NULL mask means all real.
 * - Every layer exists twice, from one source compiled twice: trn_<name> over float for
 *   training and trn_<name>_d over double for gradient checks (the double build is what the
 *   finite differences are run against; the float build is then compared with it).
 */
#ifndef TRN_LAYERS_PASS
#ifndef TRN_LAYERS_H
#define TRN_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* Attention shapes. causal = 1 masks key j > query i (needs T == S). */
typedef struct {
    int B, T, S, C, NH, causal;
} trn_attn_dims;

/* A pre-norm transformer block, one function for the three kinds:
 * - encoder (cross = 0): h = x + MHA(RMSNorm(x) ⊙ ω), out = h + MLP(RMSNorm(h));
 * - decoder (causal = 1, cross = 1): adds h' = h + XATTN(RMSNorm(h), ctx) before the MLP;
 * - Perceiver (cross = 1, norm_ctx = 1): x are the latents (no mask), ctx is RMSNorm(inputs).
 * ω (per-token weights, the attentive fusion of DESIGN.md §3) is optional. */
typedef struct {
    int B, T, S, C, NH, H;
    int causal, cross, norm_ctx;
} trn_block_dims;

/* Sizes in reals (the same count for float and double). */
size_t trn_mlp_acts_size(int N, int H);
size_t trn_mlp_scratch_size(int N, int H);
size_t trn_attn_acts_size(const trn_attn_dims *d);
size_t trn_attn_scratch_size(const trn_attn_dims *d);
size_t trn_block_acts_size(const trn_block_dims *d);
size_t trn_block_scratch_size(const trn_block_dims *d);
size_t trn_infonce_scratch_size(int B);

/* Checks that the dimensions make sense (positive, C divisible by NH, causal needs T == S). */
int trn_attn_dims_check(const trn_attn_dims *d, char *err);
int trn_block_dims_check(const trn_block_dims *d, char *err);

#define TRN_LAYERS_PASS
#define trn_real  float
#define TRN(name) trn_##name
#include "layers.h"
#undef trn_real
#undef TRN
#define trn_real  double
#define TRN(name) trn_##name##_d
#include "layers.h"
#undef trn_real
#undef TRN
#undef TRN_LAYERS_PASS

#endif /* TRN_LAYERS_H */
#else  /* TRN_LAYERS_PASS: the declarations, once per precision */

/* ---- linear, embeddings, patches (layer_linear.c) ---- */

/* out = inp · wᵀ (no bias). */
void TRN(linear_forward)(trn_real *out,       // (N, OC)
                         const trn_real *inp, // (N, C)
                         const trn_real *w,   // (OC, C)
                         int N, int C, int OC);
/* dinp += dout · w (skipped when dinp is NULL); dw += doutᵀ · inp. */
void TRN(linear_backward)(trn_real *dinp,       // (N, C) or NULL
                          trn_real *dw,         // (OC, C)
                          const trn_real *dout, // (N, OC)
                          const trn_real *inp,  // (N, C)
                          const trn_real *w,    // (OC, C)
                          int N, int C, int OC);

/* out[n] = wte[tokens[n]]. Fails, naming the position and value, on a token outside [0, V). */
int TRN(embedding_forward)(trn_real *out,         // (N, C)
                           const int32_t *tokens, // (N)
                           const trn_real *wte,   // (V, C)
                           int N, int V, int C, char *err);
/* dwte[tokens[n]] += dout[n] (tokens already validated by the forward pass). */
void TRN(embedding_backward)(trn_real *dwte,       // (V, C)
                             const trn_real *dout, // (N, C)
                             const int32_t *tokens, int N, int C);

/* Learned absolute positions, in place: x[b, t] += wpe[t]. */
void TRN(positions_forward)(trn_real *x,         // (B, T, C)
                            const trn_real *wpe, // (Tmax ≥ T, C)
                            int B, int T, int C);
void TRN(positions_backward)(trn_real *dwpe,       // (Tmax, C)
                             const trn_real *dout, // (B, T, C)
                             int B, int T, int C);

/* Cuts images into p×p patches, P = (Hi/p)·(Wi/p) per image, each patch flattened in
 * (row, column, channel) order; uint8 pixels are mapped to [0, 1]. The patch embedding is
 * patchify followed by linear_forward(out (B·P, C), patches, w (C, 3p²)). Hi and Wi must be
 * multiples of p (the model's configuration check): a remainder would be left out. */
void TRN(patchify_u8)(trn_real *patches,  // (B, P, 3·p·p)
                      const uint8_t *img, // (B, Hi, Wi, 3)
                      int B, int Hi, int Wi, int p);
void TRN(patchify)(trn_real *patches,   // (B, P, 3·p·p)
                   const trn_real *img, // (B, Hi, Wi, 3)
                   int B, int Hi, int Wi, int p);
void TRN(patchify_backward)(trn_real *dimg,           // (B, Hi, Wi, 3)
                            const trn_real *dpatches, // (B, P, 3·p·p)
                            int B, int Hi, int Wi, int p);

/* ---- normalisation and per-token weights (layer_norm.c) ---- */

/* RMSNorm (eps 1e-6): out = inp · rstd · g, rstd = 1 / sqrt(mean(inp²) + eps), kept for backward.
 */
void TRN(rmsnorm_forward)(trn_real *out,       // (N, C)
                          trn_real *rstd,      // (N)
                          const trn_real *inp, // (N, C)
                          const trn_real *g,   // (C)
                          int N, int C);
void TRN(rmsnorm_backward)(trn_real *dinp,       // (N, C)
                           trn_real *dg,         // (C)
                           const trn_real *dout, // (N, C)
                           const trn_real *inp,  // (N, C)
                           const trn_real *g,    // (C)
                           const trn_real *rstd, // (N)
                           int N, int C);

/* Per-token weighting U = inp ⊙ ω (ω broadcast over the width). */
void TRN(weight_forward)(trn_real *out,         // (N, C)
                         const trn_real *inp,   // (N, C)
                         const trn_real *omega, // (N)
                         int N, int C);
/* dinp += dout · ω; domega[n] += ⟨dout[n], inp[n]⟩. Either gradient may be NULL. */
void TRN(weight_backward)(trn_real *dinp,        // (N, C) or NULL
                          trn_real *domega,      // (N) or NULL
                          const trn_real *dout,  // (N, C)
                          const trn_real *inp,   // (N, C)
                          const trn_real *omega, // (N)
                          int N, int C);

/* Rows scaled to unit L2 norm: out = inp / norm, norm = sqrt(Σ inp² + 1e-12) (smooth at 0). */
void TRN(l2norm_forward)(trn_real *out,       // (N, C)
                         trn_real *norm,      // (N)
                         const trn_real *inp, // (N, C)
                         int N, int C);
void TRN(l2norm_backward)(trn_real *dinp,       // (N, C)
                          const trn_real *dout, // (N, C)
                          const trn_real *out,  // (N, C)
                          const trn_real *norm, // (N)
                          int N, int C);

/* ---- gated-GELU MLP (layer_mlp.c): out = (gelu(x·W0ᵀ) ⊙ x·W1ᵀ)·W2ᵀ, tanh GELU ---- */

typedef struct {
    trn_real *w0, *w1; // (H, C) each
    trn_real *w2;      // (C, H)
} TRN(mlp_w);

typedef struct {
    trn_real *h0, *h1; // (N, H) the two input projections
    trn_real *a;       // (N, H) gelu(h0) ⊙ h1
} TRN(mlp_acts);

void TRN(mlp_acts_carve)(TRN(mlp_acts) * acts, trn_real *buf, int N, int H);
void TRN(mlp_forward)(trn_real *out,        // (N, C)
                      TRN(mlp_acts) * acts, //
                      const trn_real *inp,  // (N, C)
                      const TRN(mlp_w) * w, //
                      int N, int C, int H);
void TRN(mlp_backward)(trn_real *dinp,             // (N, C)
                       TRN(mlp_w) * dw,            //
                       const trn_real *dout,       // (N, C)
                       const TRN(mlp_acts) * acts, //
                       const trn_real *inp,        // (N, C)
                       const TRN(mlp_w) * w,       //
                       trn_real *scratch,          // (trn_mlp_scratch_size)
                       int N, int C, int H);

/* ---- multi-head attention (layer_attention.c) ----
 * Q = xq·Wqᵀ, K = xkv·Wkᵀ, V = xkv·Wvᵀ; per batch and head P = softmax(Q Kᵀ / sqrt(HS)) over
 * the keys that are real (kmask) and, if causal, not in the future; out = (P V)·Woᵀ.
 * Self-attention passes xq == xkv (T == S); cross-attention passes the context as xkv.
 * A query with no real key gets P = 0 and a zero output. */

typedef struct {
    trn_real *wq, *wk, *wv, *wo; // (C, C) each
} TRN(attn_w);

typedef struct {
    trn_real *q;     // (B, T, C)
    trn_real *k, *v; // (B, S, C)
    trn_real *p;     // (B, NH, T, S) attention probabilities
    trn_real *y;     // (B, T, C) heads before the output projection
} TRN(attn_acts);

void TRN(attn_acts_carve)(TRN(attn_acts) * acts, trn_real *buf, const trn_attn_dims *d);
void TRN(attention_forward)(trn_real *out,         // (B, T, C)
                            TRN(attn_acts) * acts, //
                            const trn_real *xq,    // (B, T, C)
                            const trn_real *xkv,   // (B, S, C)
                            const uint8_t *kmask,  // (B, S) or NULL
                            const TRN(attn_w) * w, //
                            const trn_attn_dims *d);
/* dxq and dxkv may be the same buffer (self-attention). */
void TRN(attention_backward)(trn_real *dxq,               // (B, T, C)
                             trn_real *dxkv,              // (B, S, C)
                             TRN(attn_w) * dw,            //
                             const trn_real *dout,        // (B, T, C)
                             const TRN(attn_acts) * acts, //
                             const trn_real *xq,          // (B, T, C)
                             const trn_real *xkv,         // (B, S, C)
                             const TRN(attn_w) * w,       //
                             trn_real *scratch,           // (trn_attn_scratch_size)
                             const trn_attn_dims *d);

/* ---- transformer blocks (layer_block.c), see trn_block_dims ---- */

typedef struct {
    trn_real *ln_attn;  // (C) RMSNorm scale before self-attention
    TRN(attn_w) attn;   //
    trn_real *ln_cross; // (C) before cross-attention (cross = 1)
    trn_real *ln_ctx;   // (C) on the context (norm_ctx = 1)
    TRN(attn_w) cross;  //
    trn_real *ln_mlp;   // (C)
    TRN(mlp_w) mlp;     //
} TRN(block_w);

typedef struct {
    trn_real *n1, *rstd1;   // (B, T, C), (B, T)  RMSNorm(x)
    trn_real *u;            // (B, T, C)          RMSNorm(x) ⊙ ω (unused without ω: n1 is read)
    TRN(attn_acts) attn;    //
    trn_real *h1;           // (B, T, C)          x + self-attention
    trn_real *n2, *rstd2;   // (B, T, C), (B, T)  RMSNorm(h1) (cross)
    trn_real *nctx, *rstdc; // (B, S, C), (B, S)  RMSNorm(ctx) (norm_ctx)
    TRN(attn_acts) cross;   //
    trn_real *h2;           // (B, T, C)          h1 + cross-attention (points at h1 without cross)
    trn_real *n3, *rstd3;   // (B, T, C), (B, T)  RMSNorm(h2)
    TRN(mlp_acts) mlp;      //
} TRN(block_acts);

void TRN(block_acts_carve)(TRN(block_acts) * acts, trn_real *buf, const trn_block_dims *d);
void TRN(block_forward)(trn_real *out,          // (B, T, C)
                        TRN(block_acts) * acts, //
                        const trn_real *x,      // (B, T, C)
                        const trn_real *omega,  // (B, T) or NULL
                        const uint8_t *xmask,   // (B, T) or NULL
                        const trn_real *ctx,    // (B, S, C) or NULL when cross = 0
                        const uint8_t *ctxmask, // (B, S) or NULL
                        const TRN(block_w) * w, //
                        const trn_block_dims *d);
void TRN(block_backward)(trn_real *dx,                 // (B, T, C)
                         trn_real *domega,             // (B, T) or NULL
                         trn_real *dctx,               // (B, S, C), needed when cross = 1
                         TRN(block_w) * dw,            //
                         const trn_real *dout,         // (B, T, C)
                         const TRN(block_acts) * acts, //
                         const trn_real *x,            // (B, T, C)
                         const trn_real *omega,        // (B, T) or NULL
                         const trn_real *ctx,          // (B, S, C) or NULL
                         const TRN(block_w) * w,       //
                         trn_real *scratch,            // (trn_block_scratch_size)
                         const trn_block_dims *d);

/* ---- softmax, losses (layer_loss.c) ---- */

/* out = softmax(inp / tau) over each row. */
void TRN(softmax_forward)(trn_real *out,       // (N, K)
                          const trn_real *inp, // (N, K)
                          trn_real tau, int N, int K);
/* dinp += ∂/∂inp; *dtau += ∂/∂tau (dtau may be NULL). */
void TRN(softmax_backward)(trn_real *dinp,       // (N, K)
                           trn_real *dtau,       // (1) or NULL
                           const trn_real *dout, // (N, K)
                           const trn_real *out,  // (N, K)
                           const trn_real *inp,  // (N, K)
                           trn_real tau, int N, int K);

/* Token cross-entropy with label smoothing ε (target distribution (1−ε)·onehot + ε/V, as in
 * PyTorch), mean over the tokens whose target is not ignore_id (0 when there are none). Fails,
 * naming the position, on a target outside [0, V) that is not ignore_id. */
int TRN(crossentropy_forward)(trn_real *loss,         // (1)
                              trn_real *lse,          // (N) log-sum-exp of each row
                              const trn_real *logits, // (N, V)
                              const int32_t *targets, // (N)
                              int ignore_id, trn_real smoothing, int N, int V, char *err);
void TRN(crossentropy_backward)(trn_real *dlogits,      // (N, V)
                                trn_real dloss,         //
                                const trn_real *logits, // (N, V)
                                const trn_real *lse,    // (N)
                                const int32_t *targets, // (N)
                                int ignore_id, trn_real smoothing, int N, int V);

/* In-batch contrastive loss (InfoNCE): logits = q·kᵀ / tau, row i's positive is key i,
 * loss = mean_i −log softmax(logits_i)_i. The probabilities are kept for backward. */
void TRN(infonce_forward)(trn_real *loss,    // (1)
                          trn_real *probs,   // (B, B)
                          const trn_real *q, // (B, D)
                          const trn_real *k, // (B, D)
                          trn_real tau, int B, int D);
void TRN(infonce_backward)(trn_real *dq,          // (B, D)
                           trn_real *dk,          // (B, D)
                           trn_real dloss,        //
                           const trn_real *probs, // (B, B)
                           const trn_real *q,     // (B, D)
                           const trn_real *k,     // (B, D)
                           trn_real *scratch,     // (trn_infonce_scratch_size)
                           trn_real tau, int B, int D);

/* ---- dropout (layer_dropout.c) ----
 * Element i is kept with probability 1 − p (and scaled by 1 / (1 − p)) when
 * trn_rng_uniform(seed, stream, i) ≥ p: the mask is recomputed, never stored. */
void TRN(dropout_forward)(trn_real *out,       // (N)
                          const trn_real *inp, // (N)
                          trn_real p, uint64_t seed, uint64_t stream, size_t N);
void TRN(dropout_backward)(trn_real *dinp,       // (N)
                           const trn_real *dout, // (N)
                           trn_real p, uint64_t seed, uint64_t stream, size_t N);

#endif /* TRN_LAYERS_PASS */
