/* training/model_decoder.c — the generator: BOS + answer (teacher forcing) → shared embedding +
 * learned positions → causal decoder blocks cross-attending to F (real query tokens and item
 * tokens) → RMSNorm → logits through the tied embedding; token cross-entropy; and greedy
 * decoding, which reruns the decoder over the growing prefix (answers are a few tokens).
 */
#include "model_impl.h"

#include <string.h>

#include "rv.h"

/* T positions; teacher forcing fills in/tgt from the answers. */
void RVM(dec_carve)(struct RVM(state) * st, const rvm_config *c, rvm_arena *a, int T) {
    RVM(dec_ws) *e = &st->dec;
    int B = st->B, d = c->width, V = c->vocab, bw = st->job.backward;
    size_t BT = (size_t)B * T;
    trn_block_dims dims = {B, T, st->fu.Tf, d, c->heads, c->mlp_hidden, 1, 1, 0};
    e->T = T;
    e->in = RVM_TAKE(a, int32_t, BT);
    e->tgt = RVM_TAKE(a, int32_t, BT);
    RVM(stack_carve)(&e->st, a, c->decoder_blocks, dims, NULL, 0, bw, &st->scratch_n);
    e->hn = RVM_TAKE(a, real, BT * d);
    e->hrstd = RVM_TAKE(a, real, BT);
    e->logits = RVM_TAKE(a, real, BT * V);
    e->lse = RVM_TAKE(a, real, BT);
    e->pred = RVM_TAKE(a, int32_t, BT);
    e->correct = RVM_TAKE(a, uint8_t, B);
    e->dlogits = e->dhn = e->dh = e->dx0 = NULL;
    if (bw) {
        e->dlogits = RVM_TAKE(a, real, BT * V);
        e->dhn = RVM_TAKE(a, real, BT * d);
        e->dh = RVM_TAKE(a, real, BT * d);
        e->dx0 = RVM_TAKE(a, real, BT * d);
    }
}

/* The decoder over e->in (B, T) to the logits. */
static int dec_logits(struct RVM(state) * st, const rvm_config *c, char *err) {
    RVM(dec_ws) *e = &st->dec;
    int B = st->B, T = e->T, d = c->width;
    real *x0 = e->st.x[0];
    if (TRN(embedding_forward)(x0, e->in, st->w.tok_emb, B * T, c->vocab, d, err))
        return rv_fail_wrap(err, "decoder input");
    TRN(positions_forward)(x0, st->w.dec_pos, B, T, d);
    RVM(stack_forward)(&e->st, NULL, NULL, st->fu.F, st->fu.fmask, st->w.dec);
    TRN(rmsnorm_forward)(e->hn, e->hrstd, e->st.x[e->st.L], st->w.dec_ln, B * T, d);
    TRN(linear_forward)(e->logits, e->hn, st->w.tok_emb, B * T, d, c->vocab);
    return 0;
}

static int32_t argmax(const real *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Teacher forcing over the batch's answers: the generation loss, predictions, exact matches. */
int RVM(dec_forward)(struct RVM(state) * st, const rvm_config *c, char *err) {
    RVM(dec_ws) *e = &st->dec;
    int B = st->B, T = e->T, V = c->vocab;
    for (int b = 0; b < B; b++) {
        const rvm_text *ans = &st->job.answers[b];
        for (int t = 0; t < T; t++) {
            e->in[b * T + t] = t == 0 || t > ans->n ? c->bos_id : ans->ids[t - 1];
            e->tgt[b * T + t] = t < ans->n ? ans->ids[t] : t == ans->n ? c->eos_id : -1;
        }
    }
    if (dec_logits(st, c, err)) return -1;
    real loss;
    if (TRN(crossentropy_forward)(&loss, e->lse, e->logits, e->tgt, -1, (real)c->label_smoothing,
                                  B * T, V, err))
        return rv_fail_wrap(err, "generation loss");
    st->loss_gen = loss;
    for (int b = 0; b < B; b++) {
        e->correct[b] = 1;
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            e->pred[i] = argmax(e->logits + i * V, V);
            if (e->tgt[i] >= 0 && e->pred[i] != e->tgt[i]) e->correct[b] = 0;
        }
    }
    return 0;
}

/* dloss = ∂L/∂L_gen; adds into the decoder's parameters, the embedding and fu.dF. */
void RVM(dec_backward)(struct RVM(state) * st, const rvm_config *c, real dloss) {
    RVM(dec_ws) *e = &st->dec;
    int B = st->B, T = e->T, d = c->width, V = c->vocab;
    size_t BT = (size_t)B * T;
    memset(e->dlogits, 0, BT * V * sizeof(real));
    memset(e->dhn, 0, BT * d * sizeof(real));
    memset(e->dh, 0, BT * d * sizeof(real));
    memset(e->dx0, 0, BT * d * sizeof(real));
    TRN(crossentropy_backward)
    (e->dlogits, dloss, e->logits, e->lse, e->tgt, -1, (real)c->label_smoothing, (int)BT, V);
    TRN(linear_backward)(e->dhn, st->g.tok_emb, e->dlogits, e->hn, st->w.tok_emb, (int)BT, d, V);
    TRN(rmsnorm_backward)
    (e->dh, st->g.dec_ln, e->dhn, e->st.x[e->st.L], st->w.dec_ln, e->hrstd, (int)BT, d);
    RVM(stack_backward)
    (&e->st, e->dx0, NULL, st->fu.dF, st->g.dec, e->dh, NULL, st->fu.F, st->w.dec, st->scratch);
    TRN(positions_backward)(st->g.dec_pos, e->dx0, B, T, d);
    TRN(embedding_backward)(st->g.tok_emb, e->dx0, e->in, (int)BT, d);
}

/* Greedy decoding: the decoder was carved for max_len + 1 positions; each step reruns it over
 * the prefix and appends the argmax of the last position, until every row has its EOS. */
int RVM(dec_generate)(struct RVM(state) * st, const rvm_config *c, int max_len, int32_t *out,
                      int *len, char *err) {
    RVM(dec_ws) *e = &st->dec;
    int B = st->B, V = c->vocab, Tmax = e->T;
    uint8_t *done = e->correct; /* reused: 1 once a row has produced EOS */
    memset(done, 0, (size_t)B);
    for (int b = 0; b < B; b++) len[b] = 0;
    for (int t = 0; t < max_len; t++) {
        int T = t + 1, live = 0;
        e->T = T;
        RVM(stack_setT)(&e->st, T);
        /* the prefix in (B, T) layout: BOS then the tokens chosen so far */
        for (int b = 0; b < B; b++)
            for (int s = 0; s < T; s++)
                e->in[b * T + s] = s == 0 ? c->bos_id : out[(size_t)b * max_len + s - 1];
        int rc = dec_logits(st, c, err);
        if (rc) {
            e->T = Tmax;
            return -1;
        }
        for (int b = 0; b < B; b++) {
            if (done[b]) {
                out[(size_t)b * max_len + t] = c->eos_id;
                continue;
            }
            int32_t tok = argmax(e->logits + ((size_t)b * T + t) * V, V);
            out[(size_t)b * max_len + t] = tok;
            if (tok == c->eos_id) {
                done[b] = 1;
            } else {
                len[b]++;
                live++;
            }
        }
        if (!live) break;
    }
    e->T = Tmax;
    RVM(stack_setT)(&e->st, Tmax);
    return 0;
}
