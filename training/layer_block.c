/* training/layer_block.c — pre-norm transformer blocks from the layers: encoder (self-attention
 * + MLP), decoder (causal self-attention + cross-attention + MLP) and Perceiver (latent
 * self-attention + cross-attention to normalised inputs + MLP) are one function with three
 * configurations (trn_block_dims), so one gradient check covers the shared path. The optional
 * per-token weights ω make the encoder block the fusion layer of DESIGN.md §3. */
#include "layer_impl.h"

#include <string.h>

#include "rv.h"

static trn_attn_dims block_self_dims(const trn_block_dims *d) {
    trn_attn_dims a = {d->B, d->T, d->T, d->C, d->NH, d->causal};
    return a;
}

static trn_attn_dims block_cross_dims(const trn_block_dims *d) {
    trn_attn_dims a = {d->B, d->T, d->S, d->C, d->NH, 0};
    return a;
}

#ifndef TRN_F64
size_t trn_block_acts_size(const trn_block_dims *d) {
    trn_attn_dims sa = block_self_dims(d), ca = block_cross_dims(d);
    size_t BT = (size_t)d->B * d->T, BTC = BT * d->C, BS = (size_t)d->B * d->S;
    size_t n = 4 * BTC + 2 * BT + trn_attn_acts_size(&sa) + trn_mlp_acts_size((int)BT, d->H);
    if (d->cross) n += 2 * BTC + BT + trn_attn_acts_size(&ca);
    if (d->cross && d->norm_ctx) n += BS * d->C + BS;
    return n;
}

size_t trn_block_scratch_size(const trn_block_dims *d) {
    trn_attn_dims sa = block_self_dims(d), ca = block_cross_dims(d);
    size_t BTC = (size_t)d->B * d->T * d->C;
    size_t inner = trn_attn_scratch_size(&sa);
    size_t m = trn_mlp_scratch_size(d->B * d->T, d->H);
    if (m > inner) inner = m;
    if (d->cross && trn_attn_scratch_size(&ca) > inner) inner = trn_attn_scratch_size(&ca);
    size_t n = 3 * BTC + inner; /* dh, dn, du (+ dnctx) + the widest sub-layer's scratch */
    if (d->cross && d->norm_ctx) n += (size_t)d->B * d->S * d->C;
    return n;
}

int trn_block_dims_check(const trn_block_dims *d, char *err) {
    if (d->H <= 0) return rv_fail(err, "block: MLP width must be positive (H %d)", d->H);
    trn_attn_dims sa = block_self_dims(d);
    if (trn_attn_dims_check(&sa, err)) return rv_fail_wrap(err, "block self-attention");
    if (d->cross) {
        trn_attn_dims ca = block_cross_dims(d);
        if (trn_attn_dims_check(&ca, err)) return rv_fail_wrap(err, "block cross-attention");
    }
    return 0;
}
#endif

/* Hands out consecutive slices of a buffer. */
static real *take(real **cur, size_t n) {
    real *p = *cur;
    *cur += n;
    return p;
}

void TRN(block_acts_carve)(TRN(block_acts) * a, real *buf, const trn_block_dims *d) {
    trn_attn_dims sa = block_self_dims(d), ca = block_cross_dims(d);
    size_t BT = (size_t)d->B * d->T, BTC = BT * d->C, BS = (size_t)d->B * d->S;
    real *cur = buf;
    memset(a, 0, sizeof *a);
    a->n1 = take(&cur, BTC);
    a->rstd1 = take(&cur, BT);
    a->u = take(&cur, BTC);
    TRN(attn_acts_carve)(&a->attn, take(&cur, trn_attn_acts_size(&sa)), &sa);
    a->h1 = take(&cur, BTC);
    if (d->cross) {
        a->n2 = take(&cur, BTC);
        a->rstd2 = take(&cur, BT);
        TRN(attn_acts_carve)(&a->cross, take(&cur, trn_attn_acts_size(&ca)), &ca);
        if (d->norm_ctx) {
            a->nctx = take(&cur, BS * d->C);
            a->rstdc = take(&cur, BS);
        }
    }
    a->h2 = d->cross ? take(&cur, BTC) : a->h1;
    a->n3 = take(&cur, BTC);
    a->rstd3 = take(&cur, BT);
    TRN(mlp_acts_carve)(&a->mlp, take(&cur, trn_mlp_acts_size((int)BT, d->H)), (int)BT, d->H);
}

/* out = a + b, elementwise (out may be a or b). */
TRN_HOT static void add(real *out, const real *a, const real *b, size_t n) {
#pragma omp parallel for schedule(static) if (trn_par(n))
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void TRN(block_forward)(real *out,              // (B, T, C)
                        TRN(block_acts) * a,    //
                        const real *x,          // (B, T, C)
                        const real *omega,      // (B, T) or NULL
                        const uint8_t *xmask,   // (B, T) or NULL
                        const real *ctx,        // (B, S, C) or NULL
                        const uint8_t *ctxmask, // (B, S) or NULL
                        const TRN(block_w) * w, //
                        const trn_block_dims *d) {
    trn_attn_dims sa = block_self_dims(d), ca = block_cross_dims(d);
    int BT = d->B * d->T, C = d->C;
    size_t BTC = (size_t)BT * C;
    TRN(rmsnorm_forward)(a->n1, a->rstd1, x, w->ln_attn, BT, C);
    if (omega) TRN(weight_forward)(a->u, a->n1, omega, BT, C);
    const real *u = omega ? a->u : a->n1;
    /* the sub-layer's output goes to `out` first, then the residual sum replaces it */
    TRN(attention_forward)(out, &a->attn, u, u, xmask, &w->attn, &sa);
    add(a->h1, x, out, BTC);
    if (d->cross) {
        const real *kv = ctx;
        TRN(rmsnorm_forward)(a->n2, a->rstd2, a->h1, w->ln_cross, BT, C);
        if (d->norm_ctx) {
            TRN(rmsnorm_forward)(a->nctx, a->rstdc, ctx, w->ln_ctx, d->B * d->S, C);
            kv = a->nctx;
        }
        TRN(attention_forward)(out, &a->cross, a->n2, kv, ctxmask, &w->cross, &ca);
        add(a->h2, a->h1, out, BTC);
    }
    TRN(rmsnorm_forward)(a->n3, a->rstd3, a->h2, w->ln_mlp, BT, C);
    TRN(mlp_forward)(out, &a->mlp, a->n3, &w->mlp, BT, C, d->H);
    add(out, a->h2, out, BTC);
}

void TRN(block_backward)(real *dx,                  // (B, T, C)
                         real *domega,              // (B, T) or NULL
                         real *dctx,                // (B, S, C) or NULL
                         TRN(block_w) * dw,         //
                         const real *dout,          // (B, T, C)
                         const TRN(block_acts) * a, //
                         const real *x,             // (B, T, C)
                         const real *omega,         // (B, T) or NULL
                         const real *ctx,           // (B, S, C) or NULL
                         const TRN(block_w) * w,    //
                         real *scratch,             // (trn_block_scratch_size)
                         const trn_block_dims *d) {
    trn_attn_dims sa = block_self_dims(d), ca = block_cross_dims(d);
    int BT = d->B * d->T, C = d->C;
    size_t BTC = (size_t)BT * C;
    real *dh = scratch;     // (B, T, C) gradient of the residual stream
    real *dn = dh + BTC;    // (B, T, C) gradient of a sub-layer's normalised input
    real *du = dn + BTC;    // (B, T, C) gradient of RMSNorm(x) when ω is given
    real *dnctx = du + BTC; // (B, S, C) gradient of RMSNorm(ctx) when norm_ctx
    real *inner = dnctx + (d->cross && d->norm_ctx ? (size_t)d->B * d->S * C : 0);
    memcpy(dh, dout, BTC * sizeof(real));

    memset(dn, 0, BTC * sizeof(real));
    TRN(mlp_backward)(dn, &dw->mlp, dh, &a->mlp, a->n3, &w->mlp, inner, BT, C, d->H);
    TRN(rmsnorm_backward)(dh, dw->ln_mlp, dn, a->h2, w->ln_mlp, a->rstd3, BT, C);

    if (d->cross) {
        const real *kv = d->norm_ctx ? a->nctx : ctx;
        real *dkv = dctx;
        if (d->norm_ctx) {
            dkv = dnctx;
            memset(dkv, 0, (size_t)d->B * d->S * C * sizeof(real));
        }
        memset(dn, 0, BTC * sizeof(real));
        TRN(attention_backward)
        (dn, dkv, &dw->cross, dh, &a->cross, a->n2, kv, &w->cross, inner, &ca);
        if (d->norm_ctx)
            TRN(rmsnorm_backward)(dctx, dw->ln_ctx, dkv, ctx, w->ln_ctx, a->rstdc, d->B * d->S, C);
        TRN(rmsnorm_backward)(dh, dw->ln_cross, dn, a->h1, w->ln_cross, a->rstd2, BT, C);
    }

    memset(dn, 0, BTC * sizeof(real));
    const real *u = omega ? a->u : a->n1;
    TRN(attention_backward)(dn, dn, &dw->attn, dh, &a->attn, u, u, &w->attn, inner, &sa);
    const real *dnorm = dn;
    if (omega) {
        memset(du, 0, BTC * sizeof(real));
        TRN(weight_backward)(du, domega, dn, a->n1, omega, BT, C);
        dnorm = du;
    }
    TRN(rmsnorm_backward)(dh, dw->ln_attn, dnorm, x, w->ln_attn, a->rstd1, BT, C);
    add(dx, dx, dh, BTC);
}
