/* training/model_heads.c — the memory heads of DESIGN.md §3 over rows of b(·):
 * query / key head: L_f blocks, position 0 (or, with head_pool, the mean over the row's real
 * tokens), RMSNorm, W_o (shared), L2 norm;
 * value head: a Perceiver of c latents cross-attending to RMSNorm(b(z)), giving V(z) (c, d);
 * and the two regularisers on values encoded with gradient (R_dis, R_gap): the head's rows and
 * the fresh candidates' values (encoded with gradient by another call, e.g. on a worker).
 */
#include "model_impl.h"

#include <math.h>
#include <string.h>

static trn_block_dims head_dims(const rvm_config *c, int n, int T) {
    trn_block_dims d = {n, T, T, c->width, c->heads, c->mlp_hidden, 0, 0, 0};
    return d;
}

/* ---- query and key heads ---- */

static trn_attn_dims cls_dims(const rvm_config *c, int n, int Tb) {
    trn_attn_dims d = {n, 1, Tb, c->width, c->heads, 0};
    return d;
}

static void cls_carve(RVM(cls_block) * k, struct RVM(state) * st, const rvm_config *c, rvm_arena *a,
                      int n) {
    int d = c->width, H = c->mlp_hidden, Tb = st->enc.Tb;
    trn_attn_dims ad = cls_dims(c, n, Tb);
    k->n1 = RVM_TAKE(a, real, (size_t)n * Tb * d);
    k->rstd1 = RVM_TAKE(a, real, (size_t)n * Tb);
    k->q0 = RVM_TAKE(a, real, (size_t)n * d);
    real *abuf = RVM_TAKE(a, real, trn_attn_acts_size(&ad));
    if (abuf) TRN(attn_acts_carve)(&k->attn, abuf, &ad);
    k->a0 = RVM_TAKE(a, real, (size_t)n * d);
    k->h = RVM_TAKE(a, real, (size_t)n * d);
    k->n3 = RVM_TAKE(a, real, (size_t)n * d);
    k->rstd3 = RVM_TAKE(a, real, n);
    real *mbuf = RVM_TAKE(a, real, trn_mlp_acts_size(n, H));
    if (mbuf) TRN(mlp_acts_carve)(&k->mlp, mbuf, n, H);
    k->dh = k->dn3 = k->dq0 = k->dn1 = NULL;
    if (!st->job.backward) return;
    k->dh = RVM_TAKE(a, real, (size_t)n * d);
    k->dn3 = RVM_TAKE(a, real, (size_t)n * d);
    k->dq0 = RVM_TAKE(a, real, (size_t)n * d);
    k->dn1 = RVM_TAKE(a, real, (size_t)n * Tb * d);
    size_t need = trn_attn_scratch_size(&ad);
    if (trn_mlp_scratch_size(n, H) > need) need = trn_mlp_scratch_size(n, H);
    if (need > st->scratch_n) st->scratch_n = need;
}

/* out (n, d) = the block's output at position 0 of x (n, Tb, d). */
static void cls_forward(RVM(cls_block) * k, real *out, const real *x, const uint8_t *mask,
                        const TRN(block_w) * w, const rvm_config *c, int n, int Tb) {
    int d = c->width;
    trn_attn_dims ad = cls_dims(c, n, Tb);
    TRN(rmsnorm_forward)(k->n1, k->rstd1, x, w->ln_attn, n * Tb, d);
    for (int i = 0; i < n; i++) {
        memcpy(k->q0 + (size_t)i * d, k->n1 + (size_t)i * Tb * d, (size_t)d * sizeof(real));
        memcpy(k->h + (size_t)i * d, x + (size_t)i * Tb * d, (size_t)d * sizeof(real));
    }
    TRN(attention_forward)(k->a0, &k->attn, k->q0, k->n1, mask, &w->attn, &ad);
    for (size_t i = 0; i < (size_t)n * d; i++) k->h[i] += k->a0[i];
    TRN(rmsnorm_forward)(k->n3, k->rstd3, k->h, w->ln_mlp, n, d);
    TRN(mlp_forward)(out, &k->mlp, k->n3, &w->mlp, n, d, c->mlp_hidden);
    for (size_t i = 0; i < (size_t)n * d; i++) out[i] += k->h[i];
}

/* dx (n, Tb, d) += ∂/∂x given dout (n, d) at position 0. */
static void cls_backward(RVM(cls_block) * k, real *dx, TRN(block_w) * dw, const real *dout,
                         const real *x, const TRN(block_w) * w, real *scratch, const rvm_config *c,
                         int n, int Tb) {
    int d = c->width;
    size_t nd = (size_t)n * d;
    trn_attn_dims ad = cls_dims(c, n, Tb);
    memcpy(k->dh, dout, nd * sizeof(real));
    memset(k->dn3, 0, nd * sizeof(real));
    TRN(mlp_backward)
    (k->dn3, &dw->mlp, dout, &k->mlp, k->n3, &w->mlp, scratch, n, d, c->mlp_hidden);
    TRN(rmsnorm_backward)(k->dh, dw->ln_mlp, k->dn3, k->h, w->ln_mlp, k->rstd3, n, d);
    memset(k->dq0, 0, nd * sizeof(real));
    memset(k->dn1, 0, nd * Tb * sizeof(real));
    TRN(attention_backward)
    (k->dq0, k->dn1, &dw->attn, k->dh, &k->attn, k->q0, k->n1, &w->attn, scratch, &ad);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            k->dn1[(size_t)i * Tb * d + j] += k->dq0[(size_t)i * d + j];
            dx[(size_t)i * Tb * d + j] += k->dh[(size_t)i * d + j]; /* the residual path */
        }
    TRN(rmsnorm_backward)(dx, dw->ln_attn, k->dn1, x, w->ln_attn, k->rstd1, n * Tb, d);
}

/* ---- the pooled readout (head_pool = 1): out (n, d) = mean of x (n, Tb, d) over the row's
 * real tokens (text and picture, mask (n, Tb)); every block of the head is a full block ---- */

static void pool_forward(real *out, const real *x, const uint8_t *mask, int n, int Tb, int d) {
    memset(out, 0, (size_t)n * d * sizeof(real));
    for (int i = 0; i < n; i++) {
        int cnt = 0;
        real *o = out + (size_t)i * d;
        for (int t = 0; t < Tb; t++) {
            if (!mask[(size_t)i * Tb + t]) continue;
            const real *xt = x + ((size_t)i * Tb + t) * d;
            for (int j = 0; j < d; j++) o[j] += xt[j];
            cnt++;
        }
        for (int j = 0; cnt && j < d; j++) o[j] /= (real)cnt;
    }
}

/* dx (n, Tb, d) += ∂/∂x given dout (n, d). */
static void pool_backward(real *dx, const real *dout, const uint8_t *mask, int n, int Tb, int d) {
    for (int i = 0; i < n; i++) {
        int cnt = 0;
        for (int t = 0; t < Tb; t++) cnt += mask[(size_t)i * Tb + t] != 0;
        for (int t = 0; t < Tb; t++) {
            if (!mask[(size_t)i * Tb + t]) continue;
            real *dxt = dx + ((size_t)i * Tb + t) * d;
            for (int j = 0; j < d; j++) dxt[j] += dout[(size_t)i * d + j] / (real)cnt;
        }
    }
}

void RVM(head_carve)(RVM(head_ws) * h, struct RVM(state) * st, const rvm_config *c, rvm_arena *a,
                     int r0, int n) {
    int d = c->width, dk = c->key_dim, Tb = st->enc.Tb, bw = st->job.backward;
    h->r0 = r0;
    h->n = n;
    real *x0 = st->enc.b ? st->enc.b + (size_t)r0 * Tb * d : NULL; /* NULL while measuring */
    int full = c->head_pool ? c->head_blocks : c->head_blocks - 1;
    RVM(stack_carve)(&h->st, a, full, head_dims(c, n, Tb), x0, 1, bw, &st->scratch_n);
    if (!c->head_pool) cls_carve(&h->last, st, c, a, n);
    h->cls = RVM_TAKE(a, real, (size_t)n * d);
    h->n0 = RVM_TAKE(a, real, (size_t)n * d);
    h->rstd = RVM_TAKE(a, real, n);
    h->pre = RVM_TAKE(a, real, (size_t)n * dk);
    h->norm = RVM_TAKE(a, real, n);
    h->out = RVM_TAKE(a, real, (size_t)n * dk);
    h->dout = h->dpre = h->dn0 = h->dcls = h->dst = NULL;
    if (bw) {
        h->dout = RVM_TAKE(a, real, (size_t)n * dk);
        h->dpre = RVM_TAKE(a, real, (size_t)n * dk);
        h->dn0 = RVM_TAKE(a, real, (size_t)n * d);
        h->dcls = RVM_TAKE(a, real, (size_t)n * d);
        h->dst = RVM_TAKE(a, real, (size_t)n * Tb * d);
    }
}

void RVM(head_forward)(RVM(head_ws) * h, struct RVM(state) * st, const rvm_config *c,
                       TRN(block_w) * blocks, const real *ln) {
    int d = c->width, Tb = st->enc.Tb, L = h->st.L;
    const uint8_t *mask = st->enc.mask + (size_t)h->r0 * Tb;
    RVM(stack_forward)(&h->st, NULL, mask, NULL, NULL, blocks);
    if (c->head_pool)
        pool_forward(h->cls, h->st.x[L], mask, h->n, Tb, d);
    else
        cls_forward(&h->last, h->cls, h->st.x[L], mask, &blocks[L], c, h->n, Tb);
    TRN(rmsnorm_forward)(h->n0, h->rstd, h->cls, ln, h->n, d);
    TRN(linear_forward)(h->pre, h->n0, st->w.w_o, h->n, d, c->key_dim);
    TRN(l2norm_forward)(h->out, h->norm, h->pre, h->n, c->key_dim);
}

/* From h->dout (filled by the retrieval maths and the contrastive loss) into b's rows. */
void RVM(head_backward)(RVM(head_ws) * h, struct RVM(state) * st, const rvm_config *c,
                        TRN(block_w) * blocks, const real *ln, TRN(block_w) * dblocks, real *dln) {
    int d = c->width, dk = c->key_dim, Tb = st->enc.Tb, n = h->n, L = h->st.L;
    memset(h->dpre, 0, (size_t)n * dk * sizeof(real));
    memset(h->dn0, 0, (size_t)n * d * sizeof(real));
    memset(h->dcls, 0, (size_t)n * d * sizeof(real));
    memset(h->dst, 0, (size_t)n * Tb * d * sizeof(real));
    TRN(l2norm_backward)(h->dpre, h->dout, h->out, h->norm, n, dk);
    TRN(linear_backward)(h->dn0, st->g.w_o, h->dpre, h->n0, st->w.w_o, n, d, dk);
    TRN(rmsnorm_backward)(h->dcls, dln, h->dn0, h->cls, ln, h->rstd, n, d);
    if (c->head_pool)
        pool_backward(h->dst, h->dcls, st->enc.mask + (size_t)h->r0 * Tb, n, Tb, d);
    else
        cls_backward(&h->last, h->dst, &dblocks[L], h->dcls, h->st.x[L], &blocks[L], st->scratch, c,
                     n, Tb);
    RVM(stack_backward)
    (&h->st, st->enc.db + (size_t)h->r0 * Tb * d, NULL, NULL, dblocks, h->dst, NULL, NULL, blocks,
     st->scratch);
}

/* ---- value head (Perceiver) ---- */

/* n rows through the head (encoder rows r0 ..), nf fresh values after them in V. */
void RVM(value_carve)(struct RVM(state) * st, const rvm_config *c, rvm_arena *a, int r0, int n,
                      int nf) {
    RVM(value_ws) *v = &st->vh;
    int d = c->width, cl = c->latents, Tb = st->enc.Tb, bw = st->job.backward;
    size_t vcd = (size_t)(n + nf) * cl * d;
    trn_block_dims dims = {n, cl, Tb, d, c->heads, c->mlp_hidden, 0, 1, 1};
    v->r0 = r0;
    v->n = n;
    v->nv = n + nf;
    memset(&v->st, 0, sizeof v->st);
    if (n) RVM(stack_carve)(&v->st, a, c->head_blocks, dims, NULL, 0, bw, &st->scratch_n);
    v->V = RVM_TAKE(a, real, vcd);
    v->dv = v->dlat = v->cen = v->vhat = v->cnorm = v->dvhat = v->dcen = NULL;
    v->vnorm = v->bnorm = NULL;
    if (bw) {
        v->dv = RVM_TAKE(a, real, vcd);
        v->dlat = RVM_TAKE(a, real, (size_t)n * cl * d);
        v->dvhat = RVM_TAKE(a, real, vcd);
        v->dcen = RVM_TAKE(a, real, vcd);
    }
    if (st->job.answers) { /* the regularisers are part of the training loss */
        v->cen = RVM_TAKE(a, real, vcd);
        v->vhat = RVM_TAKE(a, real, vcd);
        v->cnorm = RVM_TAKE(a, real, (size_t)v->nv * cl);
        v->vnorm = RVM_TAKE(a, real, (size_t)v->nv * cl);
        v->bnorm = RVM_TAKE(a, real, (size_t)st->B * Tb);
    }
}

void RVM(value_forward)(struct RVM(state) * st, const rvm_config *c) {
    RVM(value_ws) *v = &st->vh;
    int d = c->width, cl = c->latents, Tb = st->enc.Tb;
    for (int i = 0; i < v->n; i++)
        memcpy(v->st.x[0] + (size_t)i * cl * d, st->w.latents, (size_t)cl * d * sizeof(real));
    RVM(stack_forward)
    (&v->st, NULL, NULL, st->enc.b + (size_t)v->r0 * Tb * d, st->enc.mask + (size_t)v->r0 * Tb,
     st->w.vhead);
    memcpy(v->V, v->st.x[v->st.L], (size_t)v->n * cl * d * sizeof(real));
}

static real row_norm(const real *x, int d) {
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)x[j] * x[j];
    return (real)sqrt(s);
}

/* R_dis = mean over items and pairs i > j of (v̂_i·v̂_j)², v̂ the unit centred tokens;
 * R_gap = |1 − mean‖V_t‖ / mean‖b(x)_t‖| over value tokens and real query tokens. */
void RVM(value_regularisers)(struct RVM(state) * st, const rvm_config *c) {
    RVM(value_ws) *v = &st->vh;
    int d = c->width, cl = c->latents, n = v->nv, Tb = st->enc.Tb;
    const real *V = v->V;
    double dis = 0;
    for (int i = 0; i < n; i++) {
        const real *vi = V + (size_t)i * cl * d;
        real *ce = v->cen + (size_t)i * cl * d;
        for (int j = 0; j < d; j++) {
            double mean = 0;
            for (int t = 0; t < cl; t++) mean += vi[(size_t)t * d + j];
            mean /= cl;
            for (int t = 0; t < cl; t++) ce[(size_t)t * d + j] = vi[(size_t)t * d + j] - (real)mean;
        }
    }
    TRN(l2norm_forward)(v->vhat, v->cnorm, v->cen, n * cl, d);
    int pairs = cl * (cl - 1) / 2;
    for (int i = 0; i < n && pairs; i++) {
        const real *vh = v->vhat + (size_t)i * cl * d;
        for (int a = 1; a < cl; a++)
            for (int b = 0; b < a; b++) {
                double g = 0;
                for (int j = 0; j < d; j++)
                    g += (double)vh[(size_t)a * d + j] * vh[(size_t)b * d + j];
                dis += g * g;
            }
    }
    st->loss_dis = pairs ? dis / ((double)n * pairs) : 0;

    double vs = 0, bs = 0;
    int nb = 0;
    for (int t = 0; t < n * cl; t++) vs += v->vnorm[t] = row_norm(V + (size_t)t * d, d);
    for (int t = 0; t < st->B * Tb; t++) {
        v->bnorm[t] = 0;
        if (!st->enc.mask[t]) continue;
        bs += v->bnorm[t] = row_norm(st->enc.b + (size_t)t * d, d);
        nb++;
    }
    v->v_mean = vs / (n * cl);
    v->b_mean = nb ? bs / nb : 0;
    st->loss_gap = v->b_mean > 0 ? fabs(1 - v->v_mean / v->b_mean) : 0;
}

/* ∂(ddis·R_dis + dgap·R_gap)/∂V and /∂b added, then the Perceiver backward from the head's
 * rows of v->dv (the fresh rows keep their gradient for the caller). */
void RVM(value_backward)(struct RVM(state) * st, const rvm_config *c, real ddis, real dgap) {
    RVM(value_ws) *v = &st->vh;
    int d = c->width, cl = c->latents, n = v->nv, Tb = st->enc.Tb;
    size_t ncd = (size_t)n * cl * d;
    const real *V = v->V;
    int pairs = cl * (cl - 1) / 2;
    if (ddis != 0 && pairs) {
        memset(v->dvhat, 0, ncd * sizeof(real));
        memset(v->dcen, 0, ncd * sizeof(real));
        double scale = 2.0 * ddis / ((double)n * pairs);
        for (int i = 0; i < n; i++) {
            const real *vh = v->vhat + (size_t)i * cl * d;
            real *dvh = v->dvhat + (size_t)i * cl * d;
            for (int a = 1; a < cl; a++)
                for (int b = 0; b < a; b++) {
                    double g = 0;
                    for (int j = 0; j < d; j++)
                        g += (double)vh[(size_t)a * d + j] * vh[(size_t)b * d + j];
                    real s = (real)(scale * g);
                    for (int j = 0; j < d; j++) {
                        dvh[(size_t)a * d + j] += s * vh[(size_t)b * d + j];
                        dvh[(size_t)b * d + j] += s * vh[(size_t)a * d + j];
                    }
                }
        }
        TRN(l2norm_backward)(v->dcen, v->dvhat, v->vhat, v->cnorm, n * cl, d);
        /* centring: dV_t = dcen_t − mean_s dcen_s */
        for (int i = 0; i < n; i++) {
            const real *dc = v->dcen + (size_t)i * cl * d;
            real *dv = v->dv + (size_t)i * cl * d;
            for (int j = 0; j < d; j++) {
                double mean = 0;
                for (int t = 0; t < cl; t++) mean += dc[(size_t)t * d + j];
                mean /= cl;
                for (int t = 0; t < cl; t++)
                    dv[(size_t)t * d + j] += dc[(size_t)t * d + j] - (real)mean;
            }
        }
    }
    if (dgap != 0 && v->b_mean > 0) {
        double ratio = v->v_mean / v->b_mean, sgn = ratio > 1 ? 1.0 : -1.0;
        int nb = 0;
        for (int t = 0; t < st->B * Tb; t++) nb += st->enc.mask[t] != 0;
        /* R = |1 − a/b|: ∂R/∂a = sgn/b, ∂R/∂b = −sgn·a/b² */
        real da = (real)(dgap * sgn / v->b_mean / (n * cl));
        real db = (real)(-dgap * sgn * v->v_mean / (v->b_mean * v->b_mean) / nb);
        for (int t = 0; t < n * cl; t++) {
            if (v->vnorm[t] <= 0) continue;
            real s = da / v->vnorm[t];
            for (int j = 0; j < d; j++) v->dv[(size_t)t * d + j] += s * V[(size_t)t * d + j];
        }
        for (int t = 0; t < st->B * Tb; t++) {
            if (v->bnorm[t] <= 0) continue;
            real s = db / v->bnorm[t];
            for (int j = 0; j < d; j++)
                st->enc.db[(size_t)t * d + j] += s * st->enc.b[(size_t)t * d + j];
        }
    }
    if (!v->n) return; /* only fresh values: their gradient stays in dv for the caller */
    memset(v->dlat, 0, (size_t)v->n * cl * d * sizeof(real));
    RVM(stack_backward)
    (&v->st, v->dlat, NULL, st->enc.db + (size_t)v->r0 * Tb * d, st->g.vhead, v->dv, NULL,
     st->enc.b + (size_t)v->r0 * Tb * d, st->w.vhead, st->scratch);
    for (int i = 0; i < v->n; i++)
        for (size_t j = 0; j < (size_t)cl * d; j++)
            st->g.latents[j] += v->dlat[(size_t)i * cl * d + j];
}
