/* training/model_calls.c — the model's calls: input validation, the plan of one call (which
 * rows go through which part), the workspace layout (measured, grown, carved), and the forward
 * and backward passes in order; then training (rvm_forward, rvm_step), memory refresh
 * (rvm_encode_items), queries for the search (rvm_encode_queries) and greedy answers
 * (rvm_answer) on top.
 *
 * Encoder rows of one call: [B queries | Nr re-encoded candidates (row-major over the batch's
 * candidate table) | Ng = B gold items when the contrastive loss is computed]. The query head
 * runs on the first block, the key head on the second and third, the value head on the second.
 */
#include "model_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rv.h"

/* ---- validation ---- */

static int check_text(const rvm_config *c, const rvm_text *t, int max, const char *what, int row,
                      char *err) {
    if (t->n < 0 || t->n > max)
        return rv_fail(err, "%s %d: %d tokens, must be in [0, %d]", what, row, t->n, max);
    if (t->n && !t->ids) return rv_fail(err, "%s %d: %d tokens but no ids", what, row, t->n);
    for (int i = 0; i < t->n; i++)
        if (t->ids[i] < 0 || t->ids[i] >= c->vocab)
            return rv_fail(err, "%s %d: token %d at position %d is outside the vocabulary [0, %d)",
                           what, row, (int)t->ids[i], i, c->vocab);
    return 0;
}

static int check_inputs(const rvm_config *c, const rvm_input *in, int n, const char *what,
                        char *err) {
    if (n > 0 && !in) return rv_fail(err, "%s: missing (%d expected)", what, n);
    for (int i = 0; i < n; i++)
        if (check_text(c, &in[i].text, c->text_max - 1, what, i, err)) return -1;
    return 0;
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static int cands_M(const rvm_candidates *cs) {
    int M = 0;
    for (int j = 0; cs && j < cs->n_sources; j++) M += cs->k[j];
    return M;
}

static int check_cands(const rvm_config *c, const rvm_candidates *cs, int B, char *err) {
    if (!cs || !cs->n_sources) return 0;
    if (cs->n_sources < 0 || !cs->k)
        return rv_fail(err, "candidates: n_sources %d needs a K per source", cs->n_sources);
    if (cs->warm && cs->n_sources != 1)
        return rv_fail(err, "candidates: warm start takes one pseudo-source, not %d",
                       cs->n_sources);
    if (!cs->warm && cs->n_sources != c->sources)
        return rv_fail(err, "candidates: %d sources given, the model's gate has %d", cs->n_sources,
                       c->sources);
    long M = 0;
    for (int j = 0; j < cs->n_sources; j++) {
        if (cs->k[j] < 0 || cs->k[j] > 1 << 16)
            return rv_fail(err, "candidates: K of source %d is %d", j, cs->k[j]);
        M += cs->k[j];
    }
    if (M && !cs->cand) return rv_fail(err, "candidates: %ld per row but no table", M);
    for (long i = 0; i < (long)B * M; i++) {
        const rvm_candidate *k = &cs->cand[i];
        int row = (int)(i / M), slot = (int)(i % M);
        if (k->item ? k->key || k->value : !k->key || !k->value)
            return rv_fail(err,
                           "candidate %d of row %d: give either the item (re-encoded) or its key "
                           "and value (stored), not both or neither",
                           slot, row);
        if (k->item && check_inputs(c, k->item, 1, "candidate item", err))
            return rv_fail_wrap(err, "row %d, candidate %d", row, slot);
        if (!k->item && (!all_finite(k->key, c->key_dim) ||
                         !all_finite(k->value, (size_t)c->latents * c->width)))
            return rv_fail(err, "candidate %d of row %d: stored key or value is not finite", slot,
                           row);
    }
    return 0;
}

static int check_batch(const rvm_config *c, const rvm_batch *bt, char *err) {
    if (bt->B < 1) return rv_fail(err, "batch: %d rows", bt->B);
    if (check_inputs(c, bt->queries, bt->B, "query", err)) return -1;
    if (!bt->answers) return rv_fail(err, "batch: no answers");
    for (int b = 0; b < bt->B; b++)
        if (check_text(c, &bt->answers[b], c->answer_max - 1, "answer", b, err)) return -1;
    if (c->con_weight > 0 && !bt->gold)
        return rv_fail(err, "batch: the contrastive loss (con_weight %g) needs gold items",
                       (double)c->con_weight);
    if (bt->gold && check_inputs(c, bt->gold, bt->B, "gold item", err)) return -1;
    return check_cands(c, bt->cands, bt->B, err);
}

/* ---- plan and layout ---- */

/* Encoder row r's input. */
static const rvm_input *row_input(const RVM(job) * j, int r, int *reenc_seen, long *scan) {
    if (r < j->B) return &j->queries[r];
    if (j->items) return &j->items[r - j->B];
    const rvm_candidates *cs = j->cands;
    long M = cands_M(cs), total = (long)j->B * M;
    while (*scan < total && !cs->cand[*scan].item) (*scan)++;
    if (*scan < total) {
        (*reenc_seen)++;
        return cs->cand[(*scan)++].item;
    }
    return &j->gold[r - j->B - *reenc_seen];
}

static void plan(struct RVM(state) * st, const rvm_config *c) {
    const RVM(job) *j = &st->job;
    st->B = j->B;
    st->Nr = j->n_items;
    if (!j->items)
        for (long i = 0, n = (long)j->B * cands_M(j->cands); i < n; i++)
            st->Nr += j->cands->cand[i].item != NULL;
    st->Ng = j->gold ? j->B : 0;
    RVM(enc_ws) *e = &st->enc;
    e->N = st->B + st->Nr + st->Ng;
    e->Tt = 1;
    e->Ni = 0;
    int seen = 0;
    long scan = 0;
    for (int r = 0; r < e->N; r++) {
        const rvm_input *in = row_input(j, r, &seen, &scan);
        if (in->text.n + 1 > e->Tt) e->Tt = in->text.n + 1;
        e->Ni += in->image != NULL;
    }
    e->P = (c->image_size / c->patch) * (c->image_size / c->patch);
    e->Tb = e->Tt + (e->Ni ? e->P : 0);
    st->fu.M = cands_M(j->cands);
    st->fu.S = j->cands && j->cands->n_sources && !j->cands->warm ? c->sources : 1;
    st->fu.Tf = e->Tb + st->fu.M * c->latents;
    st->dec.T = j->gen_len + 1;
    if (j->answers) {
        st->dec.T = 1;
        for (int b = 0; b < j->B; b++)
            if (j->answers[b].n + 1 > st->dec.T) st->dec.T = j->answers[b].n + 1;
    }
}

static int use_khead(const struct RVM(state) * st) {
    return st->Nr + st->Ng > 0 && (!st->job.items || st->job.keys);
}
static int use_vhead(const struct RVM(state) * st) {
    return st->Nr > 0 && (!st->job.items || st->job.values);
}
static int use_decoder(const struct RVM(state) * st) {
    return st->B > 0 && (st->job.answers || st->job.gen_len);
}

static void layout(struct RVM(state) * st, const rvm_config *c, rvm_arena *a) {
    st->scratch_n = 0;
    RVM(enc_carve)(st, c, a);
    st->qh.n = st->kh.n = st->vh.n = 0;
    if (st->B) RVM(head_carve)(&st->qh, st, c, a, 0, st->B);
    if (use_khead(st)) RVM(head_carve)(&st->kh, st, c, a, st->B, st->Nr + st->Ng);
    if (use_vhead(st)) RVM(value_carve)(st, c, a, st->B, st->Nr);
    if (use_decoder(st)) {
        RVM(fusion_carve)(st, c, a);
        RVM(dec_carve)(st, c, a, st->dec.T);
    }
    st->scratch = st->job.backward ? RVM_TAKE(a, real, st->scratch_n) : NULL;
}

/* Plans the call, grows the arena if needed, carves it and lists the encoder rows. */
static int prepare(RVM(model) * m, const RVM(job) * job, char *err) {
    struct RVM(state) *st = m->st;
    st->job = *job;
    plan(st, &m->cfg);
    rvm_arena measure = {0};
    layout(st, &m->cfg, &measure);
    if (measure.used > st->arena.cap) {
        free(st->arena.base);
        st->arena.cap = 0;
        st->arena.base = malloc(measure.used);
        if (!st->arena.base) return rv_fail(err, "model: out of memory (%zu bytes)", measure.used);
        st->arena.cap = measure.used;
    }
    st->arena.used = 0;
    layout(st, &m->cfg, &st->arena);
    int seen = 0;
    long scan = 0;
    for (int r = 0; r < st->enc.N; r++) st->enc.in[r] = row_input(&st->job, r, &seen, &scan);
    return 0;
}

static int forward(RVM(model) * m, char *err) {
    struct RVM(state) *st = m->st;
    const rvm_config *c = &m->cfg;
    st->loss_gen = st->loss_con = st->loss_dis = st->loss_gap = 0;
    if (RVM(enc_forward)(st, c, err)) return -1;
    if (st->qh.n) RVM(head_forward)(&st->qh, st, c, st->w.qhead, st->w.q_ln);
    if (st->kh.n) RVM(head_forward)(&st->kh, st, c, st->w.khead, st->w.k_ln);
    if (st->vh.n) {
        RVM(value_forward)(st, c);
        if (st->job.answers) RVM(value_regularisers)(st, c);
    }
    if (!use_decoder(st)) return 0;
    RVM(fusion_forward)(st, c);
    if (st->Ng) RVM(con_forward)(st, c);
    return st->job.answers ? RVM(dec_forward)(st, c, err) : 0;
}

static void backward(RVM(model) * m) {
    struct RVM(state) *st = m->st;
    const rvm_config *c = &m->cfg;
    int d = c->width, dk = c->key_dim;
    real r = (real)c->con_weight;
    memset(st->enc.db, 0, (size_t)st->enc.N * st->enc.Tb * d * sizeof(real));
    memset(st->qh.dout, 0, (size_t)st->qh.n * dk * sizeof(real));
    if (st->kh.n) memset(st->kh.dout, 0, (size_t)st->kh.n * dk * sizeof(real));
    if (st->vh.n) memset(st->vh.dv, 0, (size_t)st->vh.n * c->latents * d * sizeof(real));
    memset(st->fu.dF, 0, (size_t)st->B * st->fu.Tf * d * sizeof(real));
    RVM(dec_backward)(st, c, 1 - r);
    RVM(fusion_backward)(st, c);
    if (st->Ng) RVM(con_backward)(st, c, r);
    if (st->vh.n) RVM(value_backward)(st, c, (real)c->dis_weight, (real)c->gap_weight);
    RVM(head_backward)(&st->qh, st, c, st->w.qhead, st->w.q_ln, st->g.qhead, st->g.q_ln);
    if (st->kh.n)
        RVM(head_backward)(&st->kh, st, c, st->w.khead, st->w.k_ln, st->g.khead, st->g.k_ln);
    RVM(enc_backward)(st, c);
}

/* ---- the calls ---- */

static int train_call(RVM(model) * m, const rvm_batch *bt, RVM(step_out) * out, int bw, char *err) {
    const rvm_config *c = &m->cfg;
    if (rvm_config_check(c, err) || check_batch(c, bt, err)) return -1;
    RVM(job)
    job = {.B = bt->B,
           .queries = bt->queries,
           .cands = bt->cands,
           .gold = bt->gold,
           .answers = bt->answers,
           .backward = bw};
    if (prepare(m, &job, err) || forward(m, err)) return -1;
    struct RVM(state) *st = m->st;
    double r = c->con_weight;
    memset(out, 0, sizeof *out);
    out->gen = st->loss_gen;
    out->con = st->loss_con;
    out->dis = st->loss_dis;
    out->gap = st->loss_gap;
    out->loss =
        (1 - r) * out->gen + r * out->con + c->dis_weight * out->dis + c->gap_weight * out->gap;
    out->B = st->B;
    out->M = st->fu.M;
    out->S = st->fu.S;
    out->T = st->dec.T;
    out->inv_tau = st->fu.inv_tau;
    out->p = st->fu.p;
    out->gate = st->fu.gate;
    out->pred = st->dec.pred;
    out->target = st->dec.tgt;
    out->correct = st->dec.correct;
    if (bw) backward(m);
    return 0;
}

int RVM(forward)(RVM(model) * m, const rvm_batch *batch, RVM(step_out) * out, char *err) {
    return train_call(m, batch, out, 0, err);
}

int RVM(step)(RVM(model) * m, const rvm_batch *batch, RVM(step_out) * out, char *err) {
    return train_call(m, batch, out, 1, err);
}

int RVM(encode_items)(RVM(model) * m, const rvm_input *items, int n, float *keys, float *values,
                      char *err) {
    const rvm_config *c = &m->cfg;
    if (n < 0) return rv_fail(err, "encode items: %d items", n);
    if (!n || (!keys && !values)) return 0;
    if (check_inputs(c, items, n, "item", err)) return -1;
    RVM(job) job = {.items = items, .n_items = n, .keys = keys != NULL, .values = values != NULL};
    if (prepare(m, &job, err) || forward(m, err)) return -1;
    struct RVM(state) *st = m->st;
    if (keys)
        for (size_t i = 0; i < (size_t)n * c->key_dim; i++) keys[i] = (float)st->kh.out[i];
    if (values) {
        const real *V = st->vh.st.x[st->vh.st.L];
        for (size_t i = 0; i < (size_t)n * c->latents * c->width; i++) values[i] = (float)V[i];
    }
    return 0;
}

int RVM(encode_queries)(RVM(model) * m, const rvm_input *queries, int n, float *q, char *err) {
    const rvm_config *c = &m->cfg;
    if (n < 0) return rv_fail(err, "encode queries: %d queries", n);
    if (!n) return 0;
    if (!q) return rv_fail(err, "encode queries: no output buffer");
    if (check_inputs(c, queries, n, "query", err)) return -1;
    RVM(job) job = {.B = n, .queries = queries};
    if (prepare(m, &job, err) || forward(m, err)) return -1;
    for (size_t i = 0; i < (size_t)n * c->key_dim; i++) q[i] = (float)m->st->qh.out[i];
    return 0;
}

int RVM(answer)(RVM(model) * m, const rvm_input *queries, int B, const rvm_candidates *cands,
                int max_len, int32_t *out, int *len, float *p, char *err) {
    const rvm_config *c = &m->cfg;
    if (B < 1) return rv_fail(err, "answer: %d queries", B);
    if (max_len < 1 || max_len > c->answer_max - 1)
        return rv_fail(err, "answer: max_len %d must be in [1, %d] (answer_max − 1)", max_len,
                       c->answer_max - 1);
    if (!out || !len) return rv_fail(err, "answer: no output buffers");
    if (check_inputs(c, queries, B, "query", err) || check_cands(c, cands, B, err)) return -1;
    RVM(job) job = {.B = B, .queries = queries, .cands = cands, .gen_len = max_len};
    if (prepare(m, &job, err) || forward(m, err)) return -1;
    struct RVM(state) *st = m->st;
    if (p)
        for (size_t i = 0; i < (size_t)B * st->fu.M; i++) p[i] = (float)st->fu.p[i];
    return RVM(dec_generate)(st, c, max_len, out, len, err);
}
