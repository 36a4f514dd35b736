/* training/model_encoder.c — stacks of blocks with kept activations, and the unified encoder
 * b(x) = [text tokens ; image tokens] of DESIGN.md §3 over a batch of rows with padding.
 *
 * Layout of b: every row has Tt text positions (BOS + ids, padded to the batch's longest) and,
 * when any row of the batch has a picture, P image positions (zeros and masked for a row
 * without one). Only the rows with a picture go through the ViT.
 */
#include "model_impl.h"

#include <string.h>

#include "rv.h"

/* ---- stacks ---- */

/* x0: the stack's input when it is borrowed from another buffer (borrow = 1; NULL while
 * measuring); otherwise the stack owns its input buffer. */
void RVM(stack_carve)(RVM(stack) * s, rvm_arena *a, int L, trn_block_dims d, real *x0, int borrow,
                      int backward, size_t *scratch_n) {
    size_t BTC = (size_t)d.B * d.T * d.C;
    s->L = L;
    s->d = d;
    s->x = RVM_TAKE(a, real *, L + 1);
    s->acts_buf = RVM_TAKE(a, real *, L ? L : 1);
    s->acts = RVM_TAKE(a, TRN(block_acts), L ? L : 1);
    real *in = borrow ? x0 : RVM_TAKE(a, real, BTC);
    size_t acts_n = trn_block_acts_size(&d);
    for (int l = 0; l <= L; l++) {
        real *x = l ? RVM_TAKE(a, real, BTC) : in;
        if (s->x) s->x[l] = x;
        if (l < L) {
            real *buf = RVM_TAKE(a, real, acts_n);
            if (s->acts_buf) {
                s->acts_buf[l] = buf;
                TRN(block_acts_carve)(&s->acts[l], buf, &d);
            }
        }
    }
    s->dbuf[0] = s->dbuf[1] = NULL;
    if (backward && L > 1) {
        s->dbuf[0] = RVM_TAKE(a, real, BTC);
        s->dbuf[1] = RVM_TAKE(a, real, BTC);
    }
    if (backward && L && trn_block_scratch_size(&d) > *scratch_n)
        *scratch_n = trn_block_scratch_size(&d);
}

/* Re-carves the activations for a shorter sequence (greedy decoding grows T step by step). */
void RVM(stack_setT)(RVM(stack) * s, int T) {
    s->d.T = T;
    for (int l = 0; l < s->L; l++) TRN(block_acts_carve)(&s->acts[l], s->acts_buf[l], &s->d);
}

void RVM(stack_forward)(RVM(stack) * s, const real *omega, const uint8_t *xmask, const real *ctx,
                        const uint8_t *ctxmask, TRN(block_w) * w) {
    for (int l = 0; l < s->L; l++) TRN(block_forward)
    (s->x[l + 1], &s->acts[l], s->x[l], omega, xmask, ctx, ctxmask, &w[l], &s->d);
}

/* dx0 += ∂/∂x[0] given dout = ∂/∂x[L]; domega and dctx accumulate over the blocks. */
void RVM(stack_backward)(RVM(stack) * s, real *dx0, real *domega, real *dctx, TRN(block_w) * dw,
                         const real *dout, const real *omega, const real *ctx, TRN(block_w) * w,
                         real *scratch) {
    size_t BTC = (size_t)s->d.B * s->d.T * s->d.C;
    const real *cur = dout;
    if (!s->L) {
        for (size_t i = 0; i < BTC; i++) dx0[i] += dout[i];
        return;
    }
    for (int l = s->L - 1; l >= 0; l--) {
        real *dx = dx0;
        if (l) {
            dx = s->dbuf[l % 2];
            memset(dx, 0, BTC * sizeof(real));
        }
        TRN(block_backward)
        (dx, domega, dctx, &dw[l], cur, &s->acts[l], s->x[l], omega, ctx, &w[l], scratch, &s->d);
        cur = dx;
    }
}

/* ---- encoder ---- */

static trn_block_dims enc_dims(const rvm_config *c, int B, int T) {
    trn_block_dims d = {B, T, T, c->width, c->heads, c->mlp_hidden, 0, 0, 0};
    return d;
}

/* Needs st->enc.N, Tt, Ni, P, Tb set (from the inputs). */
void RVM(enc_carve)(struct RVM(state) * st, const rvm_config *c, rvm_arena *a) {
    RVM(enc_ws) *e = &st->enc;
    int bw = st->job.backward, d = c->width, pp = 3 * c->patch * c->patch;
    size_t *sn = &st->scratch_n;
    e->in = RVM_TAKE(a, const rvm_input *, e->N);
    e->tok = RVM_TAKE(a, int32_t, (size_t)e->N * e->Tt);
    e->tmask = RVM_TAKE(a, uint8_t, (size_t)e->N * e->Tt);
    e->mask = RVM_TAKE(a, uint8_t, (size_t)e->N * e->Tb);
    e->b = RVM_TAKE(a, real, (size_t)e->N * e->Tb * d);
    RVM(stack_carve)(&e->text, a, c->text_blocks, enc_dims(c, e->N, e->Tt), NULL, 0, bw, sn);
    e->img_row = RVM_TAKE(a, int, e->Ni);
    e->patches = e->img_tok = NULL;
    if (e->Ni) {
        e->patches = RVM_TAKE(a, real, (size_t)e->Ni * e->P * pp);
        RVM(stack_carve)(&e->vit, a, c->vit_blocks, enc_dims(c, e->Ni, e->P), NULL, 0, bw, sn);
        e->img_tok = RVM_TAKE(a, real, (size_t)e->Ni * e->P * d);
    }
    e->db = e->dtext = e->dimg = e->dvit = NULL;
    if (bw) {
        e->db = RVM_TAKE(a, real, (size_t)e->N * e->Tb * d);
        e->dtext = RVM_TAKE(a, real, (size_t)e->N * e->Tt * d);
        if (e->Ni) {
            e->dimg = RVM_TAKE(a, real, (size_t)e->Ni * e->P * d);
            e->dvit = RVM_TAKE(a, real, (size_t)e->Ni * e->P * d);
        }
    }
}

/* Fills tokens and masks from e->in, then computes b for every row. */
int RVM(enc_forward)(struct RVM(state) * st, const rvm_config *c, char *err) {
    RVM(enc_ws) *e = &st->enc;
    RVM(weights) *w = &st->w;
    int d = c->width, Tt = e->Tt, Tb = e->Tb, pp = 3 * c->patch * c->patch, ni = 0;
    for (int r = 0; r < e->N; r++) {
        const rvm_input *in = e->in[r];
        int32_t *tok = e->tok + (size_t)r * Tt;
        uint8_t *tm = e->tmask + (size_t)r * Tt, *m = e->mask + (size_t)r * Tb;
        for (int t = 0; t < Tt; t++) {
            tok[t] = t == 0 || t > in->text.n ? c->bos_id : in->text.ids[t - 1];
            tm[t] = t <= in->text.n;
        }
        memcpy(m, tm, (size_t)Tt);
        if (Tb > Tt) memset(m + Tt, in->image != NULL, (size_t)e->P);
        if (in->image) {
            e->img_row[ni] = r;
            TRN(patchify_u8)
            (e->patches + (size_t)ni * e->P * pp, in->image, 1, c->image_size, c->image_size,
             c->patch);
            ni++;
        }
    }
    real *x0 = e->text.x[0];
    if (TRN(embedding_forward)(x0, e->tok, w->tok_emb, e->N * Tt, c->vocab, d, err))
        return rv_fail_wrap(err, "encoder text");
    TRN(positions_forward)(x0, w->text_pos, e->N, Tt, d);
    RVM(stack_forward)(&e->text, NULL, e->tmask, NULL, NULL, w->text);
    if (e->Ni) {
        real *v0 = e->vit.x[0];
        TRN(linear_forward)(v0, e->patches, w->vit_patch, e->Ni * e->P, pp, d);
        TRN(positions_forward)(v0, w->vit_pos, e->Ni, e->P, d);
        RVM(stack_forward)(&e->vit, NULL, NULL, NULL, NULL, w->vit);
        TRN(linear_forward)(e->img_tok, e->vit.x[e->vit.L], w->vit_proj, e->Ni * e->P, d, d);
    }
    const real *text_out = e->text.x[e->text.L];
    ni = 0;
    for (int r = 0; r < e->N; r++) {
        real *row = e->b + (size_t)r * Tb * d;
        memcpy(row, text_out + (size_t)r * Tt * d, (size_t)Tt * d * sizeof(real));
        if (Tb == Tt) continue;
        real *img = row + (size_t)Tt * d;
        if (ni < e->Ni && e->img_row[ni] == r)
            memcpy(img, e->img_tok + (size_t)ni++ * e->P * d, (size_t)e->P * d * sizeof(real));
        else
            memset(img, 0, (size_t)e->P * d * sizeof(real));
    }
    return 0;
}

/* Back from e->db (filled by the heads, fusion and R_gap) into the encoder's parameters. */
void RVM(enc_backward)(struct RVM(state) * st, const rvm_config *c) {
    RVM(enc_ws) *e = &st->enc;
    RVM(weights) *w = &st->w, *g = &st->g;
    int d = c->width, Tt = e->Tt, Tb = e->Tb, pp = 3 * c->patch * c->patch;
    size_t rowT = (size_t)Tt * d, rowI = (size_t)e->P * d;
    for (int r = 0; r < e->N; r++)
        memcpy(e->dtext + r * rowT, e->db + (size_t)r * Tb * d, rowT * sizeof(real));
    for (int i = 0; i < e->Ni; i++)
        memcpy(e->dimg + i * rowI, e->db + (size_t)e->img_row[i] * Tb * d + rowT,
               rowI * sizeof(real));
    /* db is consumed: it becomes the text stack's input gradient */
    real *dtext_in = e->dtext;
    if (e->text.L) {
        dtext_in = e->db;
        memset(dtext_in, 0, (size_t)e->N * rowT * sizeof(real));
        RVM(stack_backward)
        (&e->text, dtext_in, NULL, NULL, g->text, e->dtext, NULL, NULL, w->text, st->scratch);
    }
    TRN(positions_backward)(g->text_pos, dtext_in, e->N, Tt, d);
    TRN(embedding_backward)(g->tok_emb, dtext_in, e->tok, e->N * Tt, d);
    if (!e->Ni) return;
    memset(e->dvit, 0, (size_t)e->Ni * rowI * sizeof(real));
    TRN(linear_backward)
    (e->dvit, g->vit_proj, e->dimg, e->vit.x[e->vit.L], w->vit_proj, e->Ni * e->P, d, d);
    /* the ViT input gradient reuses dimg (consumed by the line above) */
    real *dv0 = e->dvit;
    if (e->vit.L) {
        dv0 = e->dimg;
        memset(dv0, 0, (size_t)e->Ni * rowI * sizeof(real));
        RVM(stack_backward)
        (&e->vit, dv0, NULL, NULL, g->vit, e->dvit, NULL, NULL, w->vit, st->scratch);
    }
    TRN(positions_backward)(g->vit_pos, dv0, e->Ni, e->P, d);
    TRN(linear_backward)(NULL, g->vit_patch, dv0, e->patches, w->vit_patch, e->Ni * e->P, pp, d);
}
