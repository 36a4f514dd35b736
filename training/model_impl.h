/* training/model_impl.h — private to model_*.c: the weight views, the workspace arena and the
 * activations of one call, shared by the parts of the model (config, encoder, heads, fusion,
 * decoder, calls). Like layer_impl.h, every model_*.c is compiled twice (float and, with
 * -DTRN_F64, double); RVM(name) gives rvm_<name> or rvm_<name>_d.
 */
#ifndef RVM_MODEL_IMPL_H
#define RVM_MODEL_IMPL_H

#include "layer_impl.h"
#include "model.h"

#ifdef TRN_F64
#define RVM(name) rvm_##name##_d
#else
#define RVM(name) rvm_##name
#endif

/* Views of every tensor, into the parameters (st->w) or the gradients (st->g). */
typedef struct {
    real *vit_patch;       // (d, 3·p·p) patch embedding
    real *vit_pos;         // (P, d) learned image positions
    TRN(block_w) * vit;    // (L_vit) blocks
    real *vit_proj;        // (d, d) image tokens to the shared width
    real *tok_emb;         // (V, d) shared: text input, decoder input, tied output projection
    real *text_pos;        // (text_max, d)
    TRN(block_w) * text;   // (L_low)
    TRN(block_w) * qhead;  // (L_f)
    real *q_ln;            // (d)
    TRN(block_w) * khead;  // (L_f)
    real *k_ln;            // (d)
    real *w_o;             // (dk, d) shared by the query and key heads
    real *latents;         // (c, d) Perceiver latents
    TRN(block_w) * vhead;  // (L_f) Perceiver blocks
    real *gate_w;          // (S, dk)
    real *gate_b;          // (S)
    real *theta;           // (1) 1/τ = tau_scale·σ(θ)
    TRN(block_w) * fusion; // (L_fuse)
    real *fusion_ln;       // (d) the final RMSNorm of F
    real *dec_pos;         // (answer_max, d)
    TRN(block_w) * dec;    // (L_dec)
    real *dec_ln;          // (d)
} RVM(weights);

/* A bump allocator over one growing block. With base == NULL it only measures. */
typedef struct {
    char *base;
    size_t cap, used;
} rvm_arena;

static inline void *rvm_take(rvm_arena *a, size_t bytes) {
    size_t off = (a->used + 63) & ~(size_t)63;
    a->used = off + bytes;
    return a->base ? a->base + off : NULL;
}
#define RVM_TAKE(a, type, n) ((type *)rvm_take((a), (size_t)(n) * sizeof(type)))

/* A stack of L blocks with the input of every block kept for the backward pass. */
typedef struct {
    int L;
    trn_block_dims d;
    real **x;               // (L + 1) each (B, T, C): x[0] the input, x[L] the output
    real **acts_buf;        // (L) each (trn_block_acts_size)
    TRN(block_acts) * acts; // (L)
    real *dbuf[2];          // (B, T, C) each: backward ping-pong
} RVM(stack);

/* The encoder b(x) over N rows: [queries | re-encoded items | gold items]. */
typedef struct {
    int N, Tt, Ni, P, Tb;      /* rows, text positions, rows with a picture, patches, b width */
    const rvm_input **in;      // (N)
    int32_t *tok;              // (N, Tt) BOS + ids, padded with BOS
    uint8_t *tmask;            // (N, Tt)
    uint8_t *mask;             // (N, Tb) text then image tokens
    int *img_row;              // (Ni) row of each picture
    real *patches;             // (Ni, P, 3·p·p)
    RVM(stack) vit;            // (Ni, P, d)
    real *img_tok;             // (Ni, P, d)
    RVM(stack) text;           // (N, Tt, d)
    real *b;                   // (N, Tb, d)
    real *db;                  // (N, Tb, d) backward
    real *dtext, *dimg, *dvit; // (N, Tt, d), (Ni, P, d), (Ni, P, d) backward
} RVM(enc_ws);

/* The last block of a query or key head, computed for position 0 only: the head's output is
 * read there, so the other positions of that block are skipped (their keys and values, which
 * position 0 attends to, are still computed). Same weights and maths as a full block. */
typedef struct {
    real *n1, *rstd1;     // (n, Tb, d), (n, Tb) RMSNorm of every token
    real *q0;             // (n, d) RMSNorm at position 0
    TRN(attn_acts) attn;  // dims (n, 1, Tb)
    real *a0, *h;         // (n, d) attention output, residual sum
    real *n3, *rstd3;     // (n, d), (n)
    TRN(mlp_acts) mlp;    // (n, H)
    real *dh, *dn3, *dq0; // (n, d) backward
    real *dn1;            // (n, Tb, d) backward
} RVM(cls_block);

/* A query or key head over n rows of b: L_f − 1 full blocks, then the position-0 block; with
 * head_pool, L_f full blocks, then the mean over the row's real tokens. */
typedef struct {
    int r0, n;     /* first encoder row, rows */
    RVM(stack) st; // (n, Tb, d) the full blocks
    RVM(cls_block) last;
    real *cls;                     // (n, d) position 0 (or the mean) of the head's output
    real *n0, *rstd;               // (n, d), (n)
    real *pre;                     // (n, dk) before L2 normalisation
    real *norm;                    // (n)
    real *out;                     // (n, dk)
    real *dout;                    // (n, dk) backward (callers add into it)
    real *dpre, *dn0, *dcls, *dst; // (n, dk), (n, d), (n, d), (n, Tb, d)
} RVM(head_ws);

/* The Perceiver value head over n rows, and the regularisers over the nv = n + Nf values
 * encoded with gradient: the head's n rows, then the Nf fresh candidates' values. */
typedef struct {
    int r0, n, nv;
    RVM(stack) st;         // (n, c, d); x[L] is the head's output
    real *V;               // (nv, c, d) the head's rows, then the fresh values
    real *dv;              // (nv, c, d) backward: callers add ∂L/∂V
    real *dlat;            // (n, c, d)
    real *cen, *vhat;      // (nv, c, d) centred tokens and their unit vectors (R_dis)
    real *cnorm;           // (nv, c)
    real *dvhat, *dcen;    // (nv, c, d)
    real *vnorm;           // (nv, c) ‖V‖ per token (R_gap)
    real *bnorm;           // (B, Tb) ‖b(x)‖ per query token (R_gap)
    double v_mean, b_mean; /* mean value and query token norms */
} RVM(value_ws);

/* Retrieval maths and attentive fusion over B rows and M candidates. */
typedef struct {
    int M, S, Tf;      /* candidates per row, gate width, fused tokens Tb + M·c */
    int *src;          // (M) source of each candidate slot
    real *keys;        // (B, M, dk)
    real *rel;         // (B, M) q·k
    real *sm;          // (B, M) softmax within each source
    real *glog, *gate; // (B, S)
    real *p;           // (B, M)
    real *omega;       // (B, Tf)
    uint8_t *fmask;    // (B, Tf)
    RVM(stack) st;     // (B, Tf, d); x[0] = X
    real *fn, *frstd;  // (B, Tf, d), (B, Tf) RMSNorm(H)
    real *F;           // (B, Tf, d) the decoder's context
    real inv_tau;
    real *dF, *dfn, *dH, *dX, *domega;     // backward (B, Tf, d) ×4, (B, Tf)
    real *dp, *dsm, *drel, *dgate, *dglog; // (B, M) ×3, (B, S) ×2
    real *infonce_p, *infonce_s;           // (B, B) ×2 the contrastive loss
} RVM(fusion_ws);

/* The decoder over B rows and T positions. */
typedef struct {
    int T;
    int32_t *in, *tgt;              // (B, T) BOS + answer, answer + EOS (−1 past the end)
    RVM(stack) st;                  // (B, T, d)
    real *hn, *hrstd;               // (B, T, d), (B, T)
    real *logits;                   // (B, T, V)
    real *lse;                      // (B, T)
    int32_t *pred;                  // (B, T)
    uint8_t *correct;               // (B)
    real *dlogits, *dhn, *dh, *dx0; // backward
} RVM(dec_ws);

/* What one call computes. */
typedef struct {
    int B;                       /* query rows */
    const rvm_input *queries;    /* (B) */
    const rvm_candidates *cands; /* or NULL */
    const rvm_input *items;      /* (n_items) encode_items: key and value heads on every item */
    int n_items;
    const rvm_input *gold;         /* (B) or NULL */
    const float *const *gold_keys; /* (B) or NULL: gold keys encoded elsewhere */
    float *const *gold_dkeys;      /* (B) with gold_keys in a backward call */
    const rvm_text *answers;       /* (B) teacher forcing, or NULL */
    int gen_len;                   /* > 0: greedy answering of at most gen_len tokens */
    int keys, values;              /* encode_items: which heads */
    int backward;
} RVM(job);

struct RVM(state) {
    RVM(weights) w, g;
    TRN(block_w) * blocks; /* storage of the block views of w and g (NULL in a view) */
    int is_view;           /* w, g and params belong to another model */
    rvm_arena arena;
    RVM(job) job;
    int grad_ready; /* the last call was rvm_encode_grad: its activations await the backward */
    int B, Nr, Ng;  /* queries, re-encoded items (value head), gold items (key head only) */
    int Nf;         /* fresh candidates (distinct items), after the Nr in the value numbering */
    int con;        /* the contrastive loss is computed (gold or gold_keys given) */
    /* The plan, at the front of the arena. Items with gradient are numbered 0 .. Nr − 1
     * (re-encoded here: encoder rows B + r) then Nr .. Nr + Nf − 1 (fresh). */
    int *vrow;        // (B, M) number of a candidate's item with gradient, −1 when stored
    int *first;       // (B·M) first slot of each item with gradient
    int *table;       // (table_n) open-addressing set of item identities, while planning
    size_t table_n;   /* a power of two ≥ 2·B·M, or 0 */
    real *dfkey;      // (Nf, dk) backward: ∂L/∂key of the fresh items
    const real *gkey; // (B, dk) the contrastive loss's gold keys (key-head rows or gkey_buf)
    real *dgkey;      // (B, dk) backward
    real *gkey_buf, *dgkey_buf; // (B, dk) each, with gold_keys
    real *scratch;              /* block backward scratch (largest of all stacks) */
    size_t scratch_n;
    RVM(enc_ws) enc;
    RVM(head_ws) qh, kh;
    RVM(value_ws) vh;
    RVM(fusion_ws) fu;
    RVM(dec_ws) dec;
    double loss_gen, loss_con, loss_dis, loss_gap;
};

/* model_encoder.c: stacks and the encoder. */
void RVM(stack_carve)(RVM(stack) * s, rvm_arena *a, int L, trn_block_dims d, real *x0, int borrow,
                      int backward, size_t *scratch_n);
void RVM(stack_setT)(RVM(stack) * s, int T);
void RVM(stack_forward)(RVM(stack) * s, const real *omega, const uint8_t *xmask, const real *ctx,
                        const uint8_t *ctxmask, TRN(block_w) * w);
void RVM(stack_backward)(RVM(stack) * s, real *dx0, real *domega, real *dctx, TRN(block_w) * dw,
                         const real *dout, const real *omega, const real *ctx, TRN(block_w) * w,
                         real *scratch);
void RVM(enc_carve)(struct RVM(state) * st, const rvm_config *c, rvm_arena *a);
int RVM(enc_forward)(struct RVM(state) * st, const rvm_config *c, char *err);
void RVM(enc_backward)(struct RVM(state) * st, const rvm_config *c);

/* model_heads.c: query / key heads, value head, regularisers. */
void RVM(head_carve)(RVM(head_ws) * h, struct RVM(state) * st, const rvm_config *c, rvm_arena *a,
                     int r0, int n);
void RVM(head_forward)(RVM(head_ws) * h, struct RVM(state) * st, const rvm_config *c,
                       TRN(block_w) * blocks, const real *ln);
void RVM(head_backward)(RVM(head_ws) * h, struct RVM(state) * st, const rvm_config *c,
                        TRN(block_w) * blocks, const real *ln, TRN(block_w) * dblocks, real *dln);
void RVM(value_carve)(struct RVM(state) * st, const rvm_config *c, rvm_arena *a, int r0, int n,
                      int nf);
void RVM(value_forward)(struct RVM(state) * st, const rvm_config *c);
void RVM(value_regularisers)(struct RVM(state) * st, const rvm_config *c);
void RVM(value_backward)(struct RVM(state) * st, const rvm_config *c, real ddis, real dgap);

/* model_fusion.c: retrieval maths, attentive fusion, contrastive loss. */
void RVM(fusion_carve)(struct RVM(state) * st, const rvm_config *c, rvm_arena *a);
void RVM(fusion_forward)(struct RVM(state) * st, const rvm_config *c);
void RVM(fusion_backward)(struct RVM(state) * st, const rvm_config *c);
void RVM(con_forward)(struct RVM(state) * st, const rvm_config *c);
void RVM(con_backward)(struct RVM(state) * st, const rvm_config *c, real dloss);

/* model_decoder.c: decoder, generation loss, greedy decoding. */
void RVM(dec_carve)(struct RVM(state) * st, const rvm_config *c, rvm_arena *a, int T);
int RVM(dec_forward)(struct RVM(state) * st, const rvm_config *c, char *err);
void RVM(dec_backward)(struct RVM(state) * st, const rvm_config *c, real dloss);
int RVM(dec_generate)(struct RVM(state) * st, const rvm_config *c, int max_len, int32_t *out,
                      int *len, char *err);

#endif
