/* tests/test_model_shapes.c — what the model's switches and calls must do, beyond gradients:
 * the parameter table; seeded initialisation; p(m|x), the gate and 1/τ as DESIGN.md §3 defines
 * them; memory removed (M = 0); ω ≡ 1 and the uniform gate cutting exactly the gradients they
 * should; the warm start's one pseudo-source; encodings that do not depend on the batch they
 * are computed in (padding and missing pictures are masked); greedy answers that agree with
 * teacher forcing on their own output; the float build against the double one on encodings.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rv.h"
#include "test_model_fixture.h"

static fx_batch fx;
static char err[RV_ERR_MAX];

/* Largest |gradient| of the tensors whose names start with prefix. */
static double grad_max(const rvm_model *m, const char *prefix) {
    double g = 0;
    for (int i = 0; i < m->params.n; i++) {
        trn_view v = trn_params_at(&m->params, i);
        if (strncmp(v.name, prefix, strlen(prefix))) continue;
        for (size_t j = 0; j < v.numel; j++) g = fmax(g, fabs(v.g[j]));
    }
    return g;
}

static int step(rvm_model *m, const rvm_batch *b, rvm_step_out *out) {
    trn_params_zero_grad(&m->params);
    int rc = rvm_step(m, b, out, err);
    if (rc) fprintf(stderr, "step: %s\n", err);
    return rc;
}

static void test_table(void) {
    rvm_config c;
    rvm_config_default(&c);
    trn_tensor_spec *specs;
    int n;
    REQUIRE(rvm_param_specs(&c, &specs, &n, err) == 0);
    const char *want[] = {"vit.patch",
                          "vit.block0.attn.wq",
                          "embed.tok",
                          "text.block0.mlp.w2",
                          "qhead.ln",
                          "khead.block0.ln_attn",
                          "proj.wo",
                          "vhead.latents",
                          "vhead.block0.ln_ctx",
                          "gate.w",
                          "tau.theta",
                          "fusion.ln",
                          "decoder.block0.cross.wq"};
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        int found = -1;
        for (int i = 0; i < n; i++)
            if (!strcmp(specs[i].name, want[w])) found = i;
        CHECKF(found >= 0, "tensor %s missing", want[w]);
        if (found < 0) continue;
        if (!strcmp(want[w], "gate.w"))
            CHECK(specs[found].shape[0] == c.sources && specs[found].shape[1] == c.key_dim);
        if (!strcmp(want[w], "vit.patch"))
            CHECK(specs[found].shape[0] == c.width && specs[found].shape[1] == 3 * 4 * 4);
        if (!strcmp(want[w], "proj.wo")) CHECK(specs[found].decay == 1);
        if (!strcmp(want[w], "tau.theta")) CHECK(specs[found].decay == 0);
    }
    char g[16];
    rvm_param_group("decoder.block0.cross.wq", g, sizeof g);
    CHECK(!strcmp(g, "decoder"));
    rvm_param_specs_free(specs, n);

    rvm_model a, b;
    REQUIRE(rvm_model_init(&a, &c, err) == 0);
    REQUIRE(rvm_model_init(&b, &c, err) == 0);
    CHECK(trn_params_checksum(&a.params) == trn_params_checksum(&b.params));
    printf("default model: %zu parameters in %d tensors\n", a.params.n_elements, a.params.n);
    rvm_model_free(&b);
    c.seed = 2;
    REQUIRE(rvm_model_init(&b, &c, err) == 0);
    CHECK(trn_params_checksum(&a.params) != trn_params_checksum(&b.params));
    rvm_model_free(&a);
    rvm_model_free(&b);
}

/* p(m|x) = g_j · softmax_j(Rel/τ): rows sum to 1, each source's share is its gate. */
static void test_retrieval(rvm_model *m) {
    int k[2] = {2, 3};
    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    rvm_step_out o;
    REQUIRE(step(m, &fx.batch, &o) == 0);
    CHECK(o.M == 5 && o.S == 2 && o.B == 3);
    double sig =
        1 / (1 + exp(-(double)m->params
                          .params[m->params.offset[trn_params_find(&m->params, "tau.theta")]]));
    CHECKF(fabs(o.inv_tau - 5 * sig) < 1e-5, "1/tau %g", (double)o.inv_tau);
    for (int b = 0; b < o.B; b++) {
        double total = 0, share0 = 0;
        for (int i = 0; i < o.M; i++) total += o.p[b * o.M + i];
        for (int i = 0; i < 2; i++) share0 += o.p[b * o.M + i];
        CHECKF(fabs(total - 1) < 1e-5, "row %d: p sums to %g", b, total);
        CHECKF(fabs(share0 - o.gate[b * 2]) < 1e-5, "row %d: source 0 holds %g, gate %g", b, share0,
               (double)o.gate[b * 2]);
    }
    CHECK(grad_max(m, "gate.") > 0 && grad_max(m, "tau.") > 0 && grad_max(m, "vhead.") > 0);
    /* targets are answer + EOS, padding −1; predictions are within the vocabulary */
    for (int b = 0; b < o.B; b++)
        for (int t = 0; t < o.T; t++) {
            int32_t want = t < fx.answers[b].n    ? fx.answers[b].ids[t]
                           : t == fx.answers[b].n ? m->cfg.eos_id
                                                  : -1;
            CHECK(o.target[b * o.T + t] == want);
            CHECK(o.pred[b * o.T + t] >= 0 && o.pred[b * o.T + t] < m->cfg.vocab);
        }
}

/* Memory removed: no candidates at all; the retriever's parameters get no gradient. */
static void test_no_memory(rvm_model *m) {
    int k[2] = {2, 3};
    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    fx.batch.cands = NULL;
    fx.batch.gold = NULL;
    m->cfg.con_weight = 0;
    rvm_step_out o;
    REQUIRE(step(m, &fx.batch, &o) == 0);
    CHECK(o.M == 0 && isfinite(o.loss) && o.loss > 0);
    CHECK(grad_max(m, "gate.") == 0 && grad_max(m, "tau.") == 0);
    CHECK(grad_max(m, "khead.") == 0 && grad_max(m, "vhead.") == 0 && grad_max(m, "qhead.") == 0);
    CHECK(grad_max(m, "decoder.") > 0 && grad_max(m, "fusion.") > 0 && grad_max(m, "text.") > 0);
    /* every K_j = 0 is the same */
    int zero[2] = {0, 0};
    fx_build(&fx, &m->cfg, 3, 2, zero, 0);
    fx.batch.gold = NULL;
    rvm_step_out o2;
    REQUIRE(step(m, &fx.batch, &o2) == 0);
    CHECK(o2.M == 0 && fabs(o2.loss - o.loss) < 1e-6);
    m->cfg.con_weight = 0.3f;
}

/* ω ≡ 1: the generation loss no longer reaches τ, the gate or the query and key heads (only
 * through ω can it). With the contrastive loss and the regularisers off, their gradient is
 * exactly zero. */
static void test_omega_off(rvm_model *m) {
    int k[2] = {2, 3};
    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    fx.batch.gold = NULL;
    rvm_config keep = m->cfg;
    m->cfg.con_weight = 0;
    m->cfg.dis_weight = m->cfg.gap_weight = 0;
    rvm_step_out o;
    REQUIRE(step(m, &fx.batch, &o) == 0);
    double on_tau = grad_max(m, "tau."), on_gate = grad_max(m, "gate.");
    double on_q = grad_max(m, "qhead."), on_k = grad_max(m, "khead."), on_o = grad_max(m, "proj.");
    m->cfg.omega_off = 1;
    REQUIRE(step(m, &fx.batch, &o) == 0);
    printf("|grad| with omega: tau %.3g gate %.3g qhead %.3g khead %.3g; with omega = 1: tau "
           "%.3g gate %.3g qhead %.3g khead %.3g (head_pool %d)\n",
           on_tau, on_gate, on_q, on_k, grad_max(m, "tau."), grad_max(m, "gate."),
           grad_max(m, "qhead."), grad_max(m, "khead."), m->cfg.head_pool);
    CHECK(on_tau > 0 && on_gate > 0 && on_q > 0 && on_k > 0 && on_o > 0);
    CHECK(grad_max(m, "tau.") == 0 && grad_max(m, "gate.") == 0);
    CHECK(grad_max(m, "qhead.") == 0 && grad_max(m, "khead.") == 0 && grad_max(m, "proj.") == 0);
    /* values still reach the generator: the value head still learns */
    CHECK(grad_max(m, "vhead.") > 0);
    m->cfg = keep;
}

/* Uniform gate: g = 1/S, no gradient to the gate, τ still learns. */
static void test_uniform_gate(rvm_model *m) {
    int k[2] = {2, 3};
    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    m->cfg.uniform_gate = 1;
    rvm_step_out o;
    REQUIRE(step(m, &fx.batch, &o) == 0);
    for (int i = 0; i < o.B * o.S; i++) CHECK(fabs(o.gate[i] - 0.5) < 1e-7);
    for (int b = 0; b < o.B; b++) {
        double s0 = o.p[b * o.M] + o.p[b * o.M + 1];
        CHECKF(fabs(s0 - 0.5) < 1e-6, "row %d: source 0 holds %g", b, s0);
    }
    CHECK(grad_max(m, "gate.") == 0 && grad_max(m, "tau.") > 0);
    m->cfg.uniform_gate = 0;
}

/* Warm start: one pseudo-source of re-encoded in-batch items, p = softmax over them. */
static void test_warm(rvm_model *m) {
    int k[1] = {3};
    fx_build(&fx, &m->cfg, 3, 1, k, 1);
    rvm_step_out o;
    REQUIRE(step(m, &fx.batch, &o) == 0);
    CHECK(o.S == 1 && o.M == 3);
    for (int b = 0; b < o.B; b++) {
        double total = 0;
        for (int i = 0; i < o.M; i++) total += o.p[b * o.M + i];
        CHECK(fabs(total - 1) < 1e-5 && o.gate[b] == 1);
    }
    CHECK(grad_max(m, "gate.") == 0 && grad_max(m, "tau.") > 0 && grad_max(m, "khead.") > 0);
}

/* An item's key and value do not depend on the batch around it (padding, other rows'
 * pictures), and the query encoding equals the one the step uses. */
static void test_encodings(rvm_model *m) {
    int k[2] = {2, 3};
    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    int dk = m->cfg.key_dim, cd = m->cfg.latents * m->cfg.width;
    float keys[4 * 64], vals[4 * 8 * 64], key1[64], val1[8 * 64];
    rvm_input items[4] = {fx.gold[0], fx.queries[1], fx.gold[2], fx.queries[0]};
    REQUIRE(rvm_encode_items(m, items, 4, keys, NULL, err) == 0);
    REQUIRE(rvm_encode_items(m, items, 4, NULL, vals, err) == 0);
    for (int i = 0; i < 4; i++) {
        /* alone: item 1 has one token and no picture, so its batch has no image tokens */
        REQUIRE(rvm_encode_items(m, &items[i], 1, key1, val1, err) == 0);
        double dkey = 0, dval = 0, nrm = 0;
        for (int t = 0; t < dk; t++) {
            dkey = fmax(dkey, fabs(key1[t] - keys[i * dk + t]));
            nrm += (double)key1[t] * key1[t];
        }
        for (int t = 0; t < cd; t++) dval = fmax(dval, fabs(val1[t] - vals[i * cd + t]));
        CHECKF(dkey < 1e-5 && dval < 1e-4, "item %d: alone vs in a batch: key %g value %g", i, dkey,
               dval);
        CHECKF(fabs(nrm - 1) < 1e-5, "item %d: key norm² %g", i, nrm);
    }
    float q[3 * 64], q1[64];
    REQUIRE(rvm_encode_queries(m, fx.queries, 3, q, err) == 0);
    REQUIRE(rvm_encode_queries(m, &fx.queries[1], 1, q1, err) == 0);
    double dq = 0;
    for (int t = 0; t < dk; t++) dq = fmax(dq, fabs(q1[t] - q[dk + t]));
    CHECKF(dq < 1e-5, "query 1 alone vs in a batch: %g", dq);

    /* the double build gives the same encodings from the same parameters */
    rvm_model_d md;
    float keysd[4 * 64];
    REQUIRE(rvm_model_init_d(&md, &m->cfg, err) == 0);
    REQUIRE(rvm_model_set_params_d(&md, m->params.params, m->params.total, err) == 0);
    REQUIRE(rvm_encode_items_d(&md, items, 4, keysd, NULL, err) == 0);
    double dd = 0;
    for (int i = 0; i < 4; i++)
        for (int t = 0; t < dk; t++) dd = fmax(dd, fabs(keysd[i * dk + t] - keys[i * dk + t]));
    CHECKF(dd < 1e-5, "float vs double keys: %g", dd);
    rvm_model_free_d(&md);
}

/* Greedy answers, fed back as teacher-forced answers, are the argmax at every position. */
static void test_answer(rvm_model *m) {
    int k[2] = {2, 3};
    fx_build(&fx, &m->cfg, 3, 2, k, 0);
    int max_len = m->cfg.answer_max - 1, len[3];
    int32_t out[3 * 16];
    float p[3 * 5];
    REQUIRE(rvm_answer(m, fx.queries, 3, &fx.cands, max_len, out, len, p, err) == 0);
    rvm_text ans[3];
    for (int b = 0; b < 3; b++) {
        CHECK(len[b] >= 0 && len[b] <= max_len);
        ans[b].ids = out + b * max_len;
        ans[b].n = len[b];
        printf("answer %d: %d tokens\n", b, len[b]);
    }
    rvm_batch bt = fx.batch;
    bt.answers = ans;
    bt.gold = NULL;
    m->cfg.con_weight = 0;
    rvm_step_out o;
    int rc = rvm_forward(m, &bt, &o, err);
    if (rc) fprintf(stderr, "forward: %s\n", err);
    REQUIRE(rc == 0);
    for (int b = 0; b < 3; b++) {
        for (int t = 0; t < len[b]; t++) CHECK(o.pred[b * o.T + t] == out[b * max_len + t]);
        /* the row stopped because EOS won, or it ran out of room */
        if (len[b] < max_len) CHECK(o.pred[b * o.T + len[b]] == m->cfg.eos_id);
        for (int i = 0; i < 5; i++) CHECK(fabs(p[b * 5 + i] - o.p[b * 5 + i]) < 1e-6);
    }
    m->cfg.con_weight = 0.3f;
}

int main(void) {
    test_table();
    rvm_config c;
    fx_tiny_config(&c);
    rvm_model m;
    REQUIRE(rvm_model_init(&m, &c, err) == 0);
    test_retrieval(&m);
    test_no_memory(&m);
    test_omega_off(&m);
    test_uniform_gate(&m);
    test_warm(&m);
    test_encodings(&m);
    test_answer(&m);
    rvm_model_free(&m);
    /* the pooled query / key readout: encodings still independent of the batch (padding is
     * outside the mean), and still no gradient to the heads without ω */
    c.head_pool = 1;
    REQUIRE(rvm_model_init(&m, &c, err) == 0);
    test_omega_off(&m);
    test_encodings(&m);
    rvm_model_free(&m);
    return check_report("model_shapes");
}
