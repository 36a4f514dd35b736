/* training/model_fusion.c — the retriever maths and the attentive fusion of DESIGN.md §3, and
 * the contrastive loss between queries and their gold items' keys.
 *
 * Per query row b and candidate m of source j:  Rel = q·k,  p = g_j · softmax_{i ∈ j}(Rel/τ),
 * 1/τ = tau_scale·σ(θ), g = softmax(W_g q + b_g) (1/S with uniform_gate, 1 in warm start).
 * Fusion: X = [b(x) ; V_1 … V_M], ω = 1 on query tokens and M·p on the c tokens of item m;
 * L_fuse blocks with U = RMSNorm(H) ⊙ ω; F = RMSNorm(H) ⊙ ω (ω ≡ 1 with omega_off).
 */
#include "model_impl.h"

#include <math.h>
#include <string.h>

static int gated(const struct RVM(state) * st, const rvm_config *c) {
    return st->fu.M && !st->job.cands->warm && !c->uniform_gate;
}

/* Needs st->fu.M, S, Tf set. */
void RVM(fusion_carve)(struct RVM(state) * st, const rvm_config *c, rvm_arena *a) {
    RVM(fusion_ws) *f = &st->fu;
    int B = st->B, M = f->M, S = f->S, d = c->width, dk = c->key_dim, bw = st->job.backward;
    size_t BTf = (size_t)B * f->Tf;
    trn_block_dims dims = {B, f->Tf, f->Tf, d, c->heads, c->mlp_hidden, 0, 0, 0};
    f->src = RVM_TAKE(a, int, M);
    f->keys = RVM_TAKE(a, real, (size_t)B * M * dk);
    f->rel = RVM_TAKE(a, real, (size_t)B * M);
    f->sm = RVM_TAKE(a, real, (size_t)B * M);
    f->p = RVM_TAKE(a, real, (size_t)B * M);
    f->glog = RVM_TAKE(a, real, (size_t)B * S);
    f->gate = RVM_TAKE(a, real, (size_t)B * S);
    f->omega = RVM_TAKE(a, real, BTf);
    f->fmask = RVM_TAKE(a, uint8_t, BTf);
    RVM(stack_carve)(&f->st, a, c->fusion_blocks, dims, NULL, 0, bw, &st->scratch_n);
    f->fn = RVM_TAKE(a, real, BTf * d);
    f->frstd = RVM_TAKE(a, real, BTf);
    f->F = RVM_TAKE(a, real, BTf * d);
    f->dF = f->dfn = f->dH = f->dX = f->domega = NULL;
    f->dp = f->dsm = f->drel = f->dgate = f->dglog = NULL;
    if (bw) {
        f->dF = RVM_TAKE(a, real, BTf * d);
        f->dfn = RVM_TAKE(a, real, BTf * d);
        f->dH = RVM_TAKE(a, real, BTf * d);
        f->dX = RVM_TAKE(a, real, BTf * d);
        f->domega = RVM_TAKE(a, real, BTf);
        f->dp = RVM_TAKE(a, real, (size_t)B * M);
        f->dsm = RVM_TAKE(a, real, (size_t)B * M);
        f->drel = RVM_TAKE(a, real, (size_t)B * M);
        f->dgate = RVM_TAKE(a, real, (size_t)B * S);
        f->dglog = RVM_TAKE(a, real, (size_t)B * S);
    }
    f->infonce_p = f->infonce_s = NULL;
    if (st->con) {
        f->infonce_p = RVM_TAKE(a, real, (size_t)B * B);
        f->infonce_s = RVM_TAKE(a, real, trn_infonce_scratch_size(B));
    }
}

/* Offsets of source j's slots within a row. */
static int src_offset(const rvm_candidates *cs, int j) {
    int o = 0;
    for (int i = 0; i < j; i++) o += cs->k[i];
    return o;
}

void RVM(fusion_forward)(struct RVM(state) * st, const rvm_config *c) {
    RVM(fusion_ws) *f = &st->fu;
    const rvm_candidates *cs = st->job.cands;
    int B = st->B, M = f->M, S = f->S, d = c->width, dk = c->key_dim, cl = c->latents;
    int Tb = st->enc.Tb, Tf = f->Tf;
    const real *q = st->qh.out, *V = st->vh.V;
    real sig = 1 / (1 + exp(-st->w.theta[0]));
    f->inv_tau = (real)c->tau_scale * sig;
    real tau = 1 / f->inv_tau;
    for (int j = 0, m = 0; M && j < cs->n_sources; j++)
        for (int i = 0; i < cs->k[j]; i++) f->src[m++] = j;

    /* keys, Rel, X and the mask; items with gradient by their number st->vrow (model_calls.c):
     * a re-encoded one's key from the key head, a fresh one's from the caller, both values
     * from V */
    for (int b = 0; b < B; b++) {
        real *X = f->st.x[0] + (size_t)b * Tf * d;
        memcpy(X, st->enc.b + (size_t)b * Tb * d, (size_t)Tb * d * sizeof(real));
        memcpy(f->fmask + (size_t)b * Tf, st->enc.mask + (size_t)b * Tb, (size_t)Tb);
        memset(f->fmask + (size_t)b * Tf + Tb, 1, (size_t)M * cl);
        for (int m = 0; m < M; m++) {
            const rvm_candidate *cand = &cs->cand[(size_t)b * M + m];
            real *key = f->keys + ((size_t)b * M + m) * dk, *xv = X + ((size_t)Tb + m * cl) * d;
            int r = st->vrow[b * M + m];
            if (r >= 0 && r < st->Nr)
                memcpy(key, st->kh.out + (size_t)r * dk, (size_t)dk * sizeof(real));
            else
                for (int i = 0; i < dk; i++) key[i] = (real)cand->key[i];
            if (r >= 0)
                memcpy(xv, V + (size_t)r * cl * d, (size_t)cl * d * sizeof(real));
            else
                for (int i = 0; i < cl * d; i++) xv[i] = (real)cand->value[i];
            double dot = 0;
            for (int i = 0; i < dk; i++) dot += (double)q[(size_t)b * dk + i] * key[i];
            f->rel[b * M + m] = (real)dot;
        }
    }

    /* gate and p(m|x) */
    if (gated(st, c)) {
        TRN(linear_forward)(f->glog, q, st->w.gate_w, B, dk, S);
        for (int b = 0; b < B; b++)
            for (int j = 0; j < S; j++) f->glog[b * S + j] += st->w.gate_b[j];
        TRN(softmax_forward)(f->gate, f->glog, 1, B, S);
    } else {
        for (int i = 0; i < B * S; i++) f->gate[i] = (real)1 / S;
    }
    for (int b = 0; b < B; b++)
        for (int j = 0; M && j < cs->n_sources; j++) {
            int o = src_offset(cs, j), K = cs->k[j];
            if (!K) continue;
            size_t r = (size_t)b * M + o;
            TRN(softmax_forward)(f->sm + r, f->rel + r, tau, 1, K);
            for (int i = 0; i < K; i++) f->p[r + i] = f->gate[b * S + j] * f->sm[r + i];
        }

    /* ω and the fusion stack */
    for (int b = 0; b < B; b++) {
        real *om = f->omega + (size_t)b * Tf;
        for (int t = 0; t < Tb; t++) om[t] = 1;
        for (int m = 0; m < M; m++)
            for (int t = 0; t < cl; t++) om[Tb + m * cl + t] = (real)M * f->p[b * M + m];
    }
    const real *omega = c->omega_off ? NULL : f->omega;
    RVM(stack_forward)(&f->st, omega, f->fmask, NULL, NULL, st->w.fusion);
    TRN(rmsnorm_forward)(f->fn, f->frstd, f->st.x[f->st.L], st->w.fusion_ln, B * Tf, d);
    if (omega)
        TRN(weight_forward)(f->F, f->fn, omega, B * Tf, d);
    else
        memcpy(f->F, f->fn, (size_t)B * Tf * d * sizeof(real));
}

/* From f->dF (the decoder's context gradient) to b, the heads' outputs, V, θ and the gate. */
void RVM(fusion_backward)(struct RVM(state) * st, const rvm_config *c) {
    RVM(fusion_ws) *f = &st->fu;
    const rvm_candidates *cs = st->job.cands;
    int B = st->B, M = f->M, S = f->S, d = c->width, dk = c->key_dim, cl = c->latents;
    int Tb = st->enc.Tb, Tf = f->Tf;
    size_t BTf = (size_t)B * Tf;
    const real *omega = c->omega_off ? NULL : f->omega;
    real *dfn = f->dF;
    memset(f->domega, 0, BTf * sizeof(real));
    if (omega) {
        dfn = f->dfn;
        memset(dfn, 0, BTf * d * sizeof(real));
        TRN(weight_backward)(dfn, f->domega, f->dF, f->fn, omega, (int)BTf, d);
    }
    memset(f->dH, 0, BTf * d * sizeof(real));
    memset(f->dX, 0, BTf * d * sizeof(real));
    TRN(rmsnorm_backward)
    (f->dH, st->g.fusion_ln, dfn, f->st.x[f->st.L], st->w.fusion_ln, f->frstd, (int)BTf, d);
    RVM(stack_backward)
    (&f->st, f->dX, omega ? f->domega : NULL, NULL, st->g.fusion, f->dH, omega, NULL, st->w.fusion,
     st->scratch);

    /* X = [b ; V_m]: query tokens to b, item tokens to the values with gradient */
    for (int b = 0; b < B; b++) {
        const real *dX = f->dX + (size_t)b * Tf * d;
        real *db = st->enc.db + (size_t)b * Tb * d;
        for (size_t i = 0; i < (size_t)Tb * d; i++) db[i] += dX[i];
        for (int m = 0; m < M; m++) {
            int r = st->vrow[b * M + m];
            if (r < 0) continue;
            const real *dxv = dX + ((size_t)Tb + m * cl) * d;
            real *dv = st->vh.dv + (size_t)r * cl * d;
            for (int i = 0; i < cl * d; i++) dv[i] += dxv[i];
        }
    }
    if (!M || !omega) return; /* without ω nothing downstream depends on p(m|x) */

    /* ω = M·p → p = g_j·sm → sm = softmax(Rel/τ), g = softmax(W_g q + b_g) */
    memset(f->dgate, 0, (size_t)B * S * sizeof(real));
    memset(f->drel, 0, (size_t)B * M * sizeof(real));
    for (int b = 0; b < B; b++)
        for (int m = 0; m < M; m++) {
            double s = 0;
            for (int t = 0; t < cl; t++) s += f->domega[(size_t)b * Tf + Tb + m * cl + t];
            int j = f->src[m];
            real dp = (real)(M * s);
            f->dp[b * M + m] = dp;
            f->dsm[b * M + m] = dp * f->gate[b * S + j];
            f->dgate[b * S + j] += dp * f->sm[b * M + m];
        }
    real tau = 1 / f->inv_tau, dtau = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < cs->n_sources; j++) {
            int o = src_offset(cs, j), K = cs->k[j];
            if (!K) continue;
            size_t r = (size_t)b * M + o;
            TRN(softmax_backward)(f->drel + r, &dtau, f->dsm + r, f->sm + r, f->rel + r, tau, 1, K);
        }
    /* τ = 1 / (a σ(θ)): dτ/dθ = −(1 − σ) / (a σ) */
    real sig = 1 / (1 + exp(-st->w.theta[0]));
    st->g.theta[0] += dtau * (-(1 - sig) / ((real)c->tau_scale * sig));

    real *dq = st->qh.dout;
    const real *q = st->qh.out;
    for (int b = 0; b < B; b++)
        for (int m = 0; m < M; m++) {
            real g = f->drel[b * M + m];
            const real *key = f->keys + ((size_t)b * M + m) * dk;
            for (int i = 0; i < dk; i++) dq[(size_t)b * dk + i] += g * key[i];
            int r = st->vrow[b * M + m];
            if (r < 0) continue;
            real *dkey =
                r < st->Nr ? st->kh.dout + (size_t)r * dk : st->dfkey + (size_t)(r - st->Nr) * dk;
            for (int i = 0; i < dk; i++) dkey[i] += g * q[(size_t)b * dk + i];
        }
    if (gated(st, c)) {
        memset(f->dglog, 0, (size_t)B * S * sizeof(real));
        TRN(softmax_backward)(f->dglog, NULL, f->dgate, f->gate, f->glog, 1, B, S);
        TRN(linear_backward)(dq, st->g.gate_w, f->dglog, q, st->w.gate_w, B, dk, S);
        for (int b = 0; b < B; b++)
            for (int j = 0; j < S; j++) st->g.gate_b[j] += f->dglog[b * S + j];
    }
}

/* InfoNCE between q(x_b) and the key of row b's gold item: st->gkey, the key-head rows
 * Nr .. Nr + B or the caller's gold_keys (gradient into st->dgkey). */
void RVM(con_forward)(struct RVM(state) * st, const rvm_config *c) {
    real loss;
    TRN(infonce_forward)
    (&loss, st->fu.infonce_p, st->qh.out, st->gkey, (real)c->con_tau, st->B, c->key_dim);
    st->loss_con = loss;
}

void RVM(con_backward)(struct RVM(state) * st, const rvm_config *c, real dloss) {
    TRN(infonce_backward)
    (st->qh.dout, st->dgkey, dloss, st->fu.infonce_p, st->qh.out, st->gkey, st->fu.infonce_s,
     (real)c->con_tau, st->B, c->key_dim);
}
