/* tests/test_model_split.c — the split encoding of distributed training (docs/model.md, "Split
 * encoding"): items encoded with gradient by a view of the model (rvm_encode_grad), the step
 * run with their keys and values as fresh candidates and gold keys, and the gradients handed
 * back (rvm_encode_backward) must give the loss and the parameter gradient of the fused
 * rvm_step that re-encodes the same items itself — in memory training (stored, re-encoded and
 * injected gold items, one item retrieved by two rows, two rows sharing a gold item) and in
 * the warm start (every candidate fresh), every loss term on, float and double; and greedy
 * answers read fresh candidates as they read re-encoded ones.
 * Also: rvm_encode_grad writes what rvm_encode_items writes, bit for bit; a view shares the
 * parameters; the dkey / dvalue / gold dkey outputs against central finite differences
 * (double), the regularisers' part included; and the refusals.
 *
 * The per-precision part is this file included twice (SPLIT_PASS), like the model itself.
 */
#ifndef SPLIT_PASS
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rv.h"
#include "test_model_fixture.h"

/* Float rounds the keys, values and their gradients exchanged between the two halves: the
 * double split path sees the fused path's keys and values to 2^-24 relative, so that is the
 * scale of the double difference, not the double epsilon. */
#define TOL_F32   1e-4
#define TOL_F64   1e-5
#define TOL_FD    1e-5
#define FD_STEP   1e-4
#define MAX_GROUP 32
#define MAX_ITEMS FX_NIN

static fx_batch fx;
static char err[RV_ERR_MAX];

/* The distinct items the worker encodes, and the batch the step sees in their place. */
typedef struct {
    int n;
    const rvm_input *id[MAX_ITEMS]; /* identity: the fused batch's input pointer */
    rvm_input items[MAX_ITEMS];
    float keys[MAX_ITEMS * FX_MAXKV], values[MAX_ITEMS * FX_MAXKV];
    float dkeys[MAX_ITEMS * FX_MAXKV], dvalues[MAX_ITEMS * FX_MAXKV];
    rvm_candidate cand[FX_MAXB * FX_MAXM];
    rvm_candidates cands;
    const float *gold_keys[FX_MAXB];
    float *gold_dkeys[FX_MAXB];
    rvm_batch batch;
} split_batch;

static split_batch sp;

static int split_item(const rvm_input *in) {
    for (int i = 0; i < sp.n; i++)
        if (sp.id[i] == in) return i;
    REQUIRE(sp.n < MAX_ITEMS);
    sp.id[sp.n] = in;
    sp.items[sp.n] = *in;
    return sp.n++;
}

/* The split form of fx.batch: every re-encoded candidate fresh, the gold items as gold keys;
 * gold_of[b] names row b's gold item (rows whose gold_of is equal share it). */
static void split_build(const rvm_config *c, const rvm_input *const *gold_of) {
    memset(&sp, 0, sizeof sp);
    int dk = c->key_dim, cd = c->latents * c->width;
    for (int i = 0; i < fx.B * fx.M; i++) {
        sp.cand[i] = fx.cand[i];
        if (!fx.cand[i].item) continue;
        int r = split_item(fx.cand[i].item);
        sp.cand[i] = (rvm_candidate){NULL, sp.keys + r * dk, sp.values + r * cd, sp.dkeys + r * dk,
                                     sp.dvalues + r * cd};
    }
    for (int b = 0; b < fx.B; b++) {
        int r = split_item(gold_of[b]);
        sp.gold_keys[b] = sp.keys + r * dk;
        sp.gold_dkeys[b] = sp.dkeys + r * dk;
    }
    sp.cands = fx.cands;
    sp.cands.cand = sp.cand;
    sp.batch = fx.batch;
    sp.batch.cands = &sp.cands;
    sp.batch.gold = NULL;
    sp.batch.gold_keys = sp.gold_keys;
    sp.batch.gold_dkeys = sp.gold_dkeys;
}

/* Memory training, B = 3, sources of K = 2 and 3 (the first slot of each re-encoded): row 1
 * retrieves row 0's first item too, row 1's gold is injected into its second source, rows 0
 * and 2 share a gold item. */
static void build_memory(const rvm_config *c, const rvm_input **gold_of) {
    int k[2] = {2, 3};
    fx_build(&fx, c, 3, 2, k, 0);
    int M = fx.M;
    fx.cand[M + 0].item = fx.cand[0].item;
    fx.cand[M + 2].item = &fx.gold[1];
    fx.gold[2] = fx.gold[0];
    for (int b = 0; b < fx.B; b++) gold_of[b] = &fx.gold[b];
    gold_of[2] = &fx.gold[0];
    split_build(c, gold_of);
}

/* Warm start, B = 3, one pseudo-source of 3: row b fuses the gold items of rows b, b+1, b+2,
 * every one of them re-encoded (fused) or fresh (split), and the gold keys are the same. */
static void build_warm(const rvm_config *c, const rvm_input **gold_of) {
    int k[1] = {3};
    fx_build(&fx, c, 3, 1, k, 1);
    for (int b = 0; b < fx.B; b++) {
        for (int i = 0; i < fx.M; i++) fx.cand[b * fx.M + i].item = &fx.gold[(b + i) % fx.B];
        gold_of[b] = &fx.gold[b];
    }
    split_build(c, gold_of);
}

/* Float parameters off their special initial values (gains of 1, zero gate bias and θ). */
static float *test_params(const rvm_config *c, size_t *n) {
    rvm_model m;
    REQUIRE(rvm_model_init(&m, c, err) == 0);
    for (int i = 0; i < m.params.n; i++) {
        trn_view v = trn_params_at(&m.params, i);
        for (size_t j = 0; j < v.numel; j++)
            v.w[j] += (float)(0.1 * trn_rng_normal(11, (uint64_t)i, j));
    }
    *n = m.params.total;
    float *p = malloc(*n * sizeof *p);
    REQUIRE(p);
    memcpy(p, m.params.params, *n * sizeof *p);
    rvm_model_free(&m);
    return p;
}

typedef struct {
    char name[32];
    double num, den;
} group_diff;

/* Normwise relative difference of gradient b against a per parameter group; prints the
 * worst, returns it. A group without gradient in a must have none in b (the gate in the warm
 * start); the encoder and the key and value heads must have one. */
static double group_compare(const trn_params *p, const double *ga, const double *gb,
                            const char *what) {
    group_diff g[MAX_GROUP] = {{{0}, 0, 0}};
    int ng = 0;
    for (int i = 0; i < p->n; i++) {
        char name[32];
        rvm_param_group(p->specs[i].name, name, sizeof name);
        int k = 0;
        while (k < ng && strcmp(g[k].name, name)) k++;
        if (k == ng) {
            REQUIRE(ng < MAX_GROUP);
            snprintf(g[ng].name, sizeof g[ng].name, "%s", name);
            g[ng].num = g[ng].den = 0;
            ng++;
        }
        for (size_t j = p->offset[i]; j < p->offset[i] + p->numel[i]; j++) {
            g[k].num += (ga[j] - gb[j]) * (ga[j] - gb[j]);
            g[k].den += ga[j] * ga[j];
        }
    }
    double worst = 0;
    const char *worst_name = "";
    for (int k = 0; k < ng; k++) {
        int needed = strstr("embed text vit khead vhead proj", g[k].name) != NULL;
        CHECKF(g[k].den > 0 || !needed, "%s: group %s has no gradient", what, g[k].name);
        double e = g[k].den > 0 ? sqrt(g[k].num / g[k].den) : (g[k].num > 0 ? INFINITY : 0);
        if (e >= worst) {
            worst = e;
            worst_name = g[k].name;
        }
    }
    printf("%s: worst group %s, relative gradient difference %.3g\n", what, worst_name, worst);
    return worst;
}

#define SPLIT_PASS
#define REAL      float
#define MODEL     rvm_model
#define OUT       rvm_step_out
#define F(name)   rvm_##name
#define P(name)   name##_f
#define PRECISION "float"
#define TOL_EQUIV TOL_F32
#include "test_model_split.c"
#undef REAL
#undef MODEL
#undef OUT
#undef F
#undef P
#undef PRECISION
#undef TOL_EQUIV
#define REAL      double
#define MODEL     rvm_model_d
#define OUT       rvm_step_out_d
#define F(name)   rvm_##name##_d
#define P(name)   name##_d
#define PRECISION "double"
#define TOL_EQUIV TOL_F64
#include "test_model_split.c"
#undef SPLIT_PASS

/* rvm_step's dkey, dvalue and gold dkey against central differences of rvm_forward (double),
 * at every key entry and some value entries of three items: one retrieved by two rows, the
 * injected gold (a candidate and a gold key), and a gold item shared by two rows. */
static void test_finite_differences(const rvm_config *c, const float *params, size_t np) {
    const rvm_input *gold_of[FX_MAXB];
    build_memory(c, gold_of);
    rvm_model_d m, v;
    REQUIRE(rvm_model_init_d(&m, c, err) == 0);
    REQUIRE(rvm_model_set_params_d(&m, params, np, err) == 0);
    REQUIRE(rvm_model_view_d(&v, &m, err) == 0);
    REQUIRE(rvm_encode_items_d(&v, sp.items, sp.n, sp.keys, sp.values, err) == 0);
    rvm_step_out_d out;
    REQUIRE(rvm_step_d(&m, &sp.batch, &out, err) == 0);
    int dk = c->key_dim, cd = c->latents * c->width;
    int probe[3] = {split_item(fx.cand[0].item), split_item(&fx.gold[1]), split_item(&fx.gold[0])};
    const char *probe_name[3] = {"item of two rows", "injected gold", "shared gold"};
    for (int p = 0; p < 3; p++) {
        for (int kind = 0; kind < 2; kind++) {
            if (kind == 1 && p == 2) continue; /* a gold key only: it has no value */
            float *x = (kind ? sp.values + probe[p] * cd : sp.keys + probe[p] * dk);
            const float *g = (kind ? sp.dvalues + probe[p] * cd : sp.dkeys + probe[p] * dk);
            int n = kind ? 6 : dk;
            double maxdiff = 0, maxnum = 0;
            for (int e = 0; e < n; e++) {
                int i = kind ? (e * 7) % cd : e;
                float x0 = x[i];
                x[i] = x0 + (float)FD_STEP;
                double h_up = (double)x[i] - x0;
                REQUIRE(rvm_forward_d(&m, &sp.batch, &out, err) == 0);
                double up = out.loss;
                x[i] = x0 - (float)FD_STEP;
                double h_down = x0 - (double)x[i];
                REQUIRE(rvm_forward_d(&m, &sp.batch, &out, err) == 0);
                double down = out.loss;
                x[i] = x0;
                double num = (up - down) / (h_up + h_down);
                maxdiff = fmax(maxdiff, fabs(num - g[i]));
                maxnum = fmax(maxnum, fabs(num));
            }
            double e = maxnum > 0 ? maxdiff / maxnum : INFINITY;
            printf("finite differences, %s %s: max |numeric| %.3g, relative error %.3g\n",
                   probe_name[p], kind ? "value" : "key", maxnum, e);
            CHECKF(e <= TOL_FD, "%s %s: finite-difference error %.3g", probe_name[p],
                   kind ? "value" : "key", e);
        }
    }

    /* the regularisers' part of dvalue: without them dvalue must move, and the difference
     * must be their finite difference */
    int r = probe[0];
    float with[FX_MAXKV];
    memcpy(with, sp.dvalues + r * cd, (size_t)cd * sizeof(float));
    memset(sp.dvalues, 0, sizeof sp.dvalues);
    memset(sp.dkeys, 0, sizeof sp.dkeys);
    m.cfg.dis_weight = m.cfg.gap_weight = 0;
    REQUIRE(rvm_step_d(&m, &sp.batch, &out, err) == 0);
    m.cfg = *c;
    double num2 = 0, den2 = 0, fd_diff = 0, fd_max = 0;
    for (int i = 0; i < cd; i++) {
        double reg = (double)with[i] - sp.dvalues[r * cd + i];
        num2 += reg * reg;
        den2 += (double)with[i] * with[i];
    }
    for (int e = 0; e < 6; e++) {
        int i = (e * 5 + 1) % cd;
        float *x = sp.values + r * cd + i, x0 = *x;
        double reg_loss[2];
        for (int s = 0; s < 2; s++) {
            *x = x0 + (s ? -1 : 1) * (float)FD_STEP;
            REQUIRE(rvm_forward_d(&m, &sp.batch, &out, err) == 0);
            reg_loss[s] = c->dis_weight * out.dis + c->gap_weight * out.gap;
        }
        double h = ((double)(x0 + (float)FD_STEP) - (double)(x0 - (float)FD_STEP));
        *x = x0;
        double num = (reg_loss[0] - reg_loss[1]) / h;
        double reg = (double)with[i] - sp.dvalues[r * cd + i];
        fd_diff = fmax(fd_diff, fabs(num - reg));
        fd_max = fmax(fd_max, fabs(num));
    }
    printf("regularisers' part of dvalue: %.3g of its norm, finite-difference error %.3g\n",
           sqrt(num2 / den2), fd_max > 0 ? fd_diff / fd_max : INFINITY);
    CHECKF(sqrt(num2 / den2) > 1e-3, "the regularisers change dvalue by only %.3g",
           sqrt(num2 / den2));
    CHECKF(fd_max > 0 && fd_diff <= TOL_FD * fd_max, "regularisers' dvalue: error %.3g of %.3g",
           fd_diff, fd_max);
    rvm_model_free_d(&v);
    rvm_model_free_d(&m);
}

#define EXPECT_FAIL(call, text)                                                                    \
    do {                                                                                           \
        err[0] = 0;                                                                                \
        int rc_ = (call);                                                                          \
        CHECKF(rc_ == -1, "expected failure containing '%s'", text);                               \
        CHECKF(strstr(err, text) != NULL, "message '%s' lacks '%s'", err, text);                   \
    } while (0)

static void test_errors(const rvm_config *c) {
    const rvm_input *gold_of[FX_MAXB];
    rvm_model m, v;
    rvm_step_out out;
    REQUIRE(rvm_model_init(&m, c, err) == 0);
    REQUIRE(rvm_model_view(&v, &m, err) == 0);
    build_memory(c, gold_of);

    EXPECT_FAIL(rvm_encode_backward(&v, sp.dkeys, sp.dvalues, err), "was not rvm_encode_grad");
    REQUIRE(rvm_encode_grad(&v, sp.items, sp.n, sp.keys, sp.values, err) == 0);
    REQUIRE(rvm_encode_items(&v, sp.items, 1, sp.keys, NULL, err) == 0);
    EXPECT_FAIL(rvm_encode_backward(&v, sp.dkeys, sp.dvalues, err), "was not rvm_encode_grad");
    REQUIRE(rvm_encode_grad(&v, sp.items, sp.n, sp.keys, sp.values, err) == 0);
    CHECK(rvm_encode_backward(&v, NULL, sp.dvalues, err) == 0);
    EXPECT_FAIL(rvm_encode_backward(&v, sp.dkeys, sp.dvalues, err), "was not rvm_encode_grad");
    EXPECT_FAIL(rvm_encode_grad(&v, sp.items, 0, sp.keys, sp.values, err), "0 items, at least 1");
    EXPECT_FAIL(rvm_encode_grad(&v, sp.items, 2, sp.keys, NULL, err), "no values output buffer");
    REQUIRE(rvm_encode_grad(&v, sp.items, sp.n, sp.keys, sp.values, err) == 0);
    sp.dvalues[3] = NAN;
    EXPECT_FAIL(rvm_encode_backward(&v, sp.dkeys, sp.dvalues, err), "dvalues of the");
    sp.dvalues[3] = 0;

    int fresh = 0; /* row 0, slot 0: fresh */
    sp.cand[fresh].value = NULL;
    EXPECT_FAIL(rvm_step(&m, &sp.batch, &out, err),
                "candidate 0 of row 0: a fresh candidate has no value");
    build_memory(c, gold_of);
    sp.cand[fresh].dvalue = NULL;
    EXPECT_FAIL(rvm_step(&m, &sp.batch, &out, err),
                "candidate 0 of row 0: a fresh candidate has no dvalue");
    build_memory(c, gold_of);
    sp.cand[1].dkey = sp.dkeys; /* a stored candidate with a dkey only */
    EXPECT_FAIL(rvm_step(&m, &sp.batch, &out, err),
                "candidate 1 of row 0: a fresh candidate has no dvalue");
    build_memory(c, gold_of);
    sp.cand[fresh].item = &fx.items[0];
    EXPECT_FAIL(rvm_step(&m, &sp.batch, &out, err), "candidate 0 of row 0: give either the item");
    build_memory(c, gold_of);
    sp.cand[fx.M].dvalue = sp.dvalues + 40 * c->latents * c->width; /* row 1 repeats row 0's key */
    EXPECT_FAIL(rvm_step(&m, &sp.batch, &out, err),
                "candidate 0 of row 1: the key of fresh candidate 0 of row 0 with another value, "
                "dkey or dvalue");
    build_memory(c, gold_of);
    sp.cand[1].key = sp.cand[fresh].key; /* stored, with a fresh item's key */
    EXPECT_FAIL(rvm_step(&m, &sp.batch, &out, err),
                "candidate 1 of row 0: stored, but its key is fresh in candidate 0 of row 0");
    build_memory(c, gold_of);
    sp.keys[2] = INFINITY;
    EXPECT_FAIL(rvm_step(&m, &sp.batch, &out, err), "fresh key or value is not finite");

    build_memory(c, gold_of);
    sp.batch.gold = fx.gold;
    EXPECT_FAIL(rvm_step(&m, &sp.batch, &out, err),
                "give the gold items (gold) or their keys (gold_keys), not both");
    build_memory(c, gold_of);
    sp.batch.gold_dkeys = NULL;
    EXPECT_FAIL(rvm_step(&m, &sp.batch, &out, err), "gold_keys need gold_dkeys");
    CHECK(rvm_forward(&m, &sp.batch, &out, err) == 0); /* no gradient: no dkeys needed */
    build_memory(c, gold_of);
    sp.gold_keys[1] = NULL;
    EXPECT_FAIL(rvm_step(&m, &sp.batch, &out, err), "gold key 1: no key");
    build_memory(c, gold_of);
    sp.batch.gold_keys = NULL;
    EXPECT_FAIL(rvm_step(&m, &sp.batch, &out, err), "gold_dkeys given without gold_keys");
    rvm_model_free(&v);
    rvm_model_free(&m);
}

int main(void) {
    rvm_config c;
    fx_tiny_config(&c);
    size_t np;
    float *params = test_params(&c, &np);
    test_equivalence_f(&c, params, np);
    test_equivalence_d(&c, params, np);
    test_encode_grad_f(&c, params, np);
    test_encode_grad_d(&c, params, np);
    test_finite_differences(&c, params, np);
    test_errors(&c);
    free(params);
    return check_report("model_split");
}

#else /* SPLIT_PASS: the per-precision part */

/* The fused step on a against the split one on b (view v encodes, b steps, v backs up). */
// cppcheck-suppress unknownMacro
static void P(equivalence_case)(const rvm_config *c, const float *params, size_t np, int warm) {
    const char *what = warm ? PRECISION ", warm start" : PRECISION ", memory training";
    const rvm_input *gold_of[FX_MAXB];
    if (warm)
        build_warm(c, gold_of);
    else
        build_memory(c, gold_of);
    MODEL a, b, v;
    REQUIRE(F(model_init)(&a, c, err) == 0);
    REQUIRE(F(model_init)(&b, c, err) == 0);
    REQUIRE(F(model_set_params)(&a, params, np, err) == 0);
    REQUIRE(F(model_set_params)(&b, params, np, err) == 0);
    REQUIRE(F(model_view)(&v, &b, err) == 0);
    memset(a.g, 0, np * sizeof(REAL));
    memset(b.g, 0, np * sizeof(REAL));

    OUT oa, ob;
    int rc = F(step)(&a, &fx.batch, &oa, err);
    if (rc) fprintf(stderr, "fused step: %s\n", err);
    REQUIRE(rc == 0);
    rc = F(encode_grad)(&v, sp.items, sp.n, sp.keys, sp.values, err);
    if (rc) fprintf(stderr, "encode with gradient: %s\n", err);
    REQUIRE(rc == 0);
    rc = F(step)(&b, &sp.batch, &ob, err);
    if (rc) fprintf(stderr, "split step: %s\n", err);
    REQUIRE(rc == 0);
    rc = F(encode_backward)(&v, sp.dkeys, sp.dvalues, err);
    if (rc) fprintf(stderr, "encode backward: %s\n", err);
    REQUIRE(rc == 0);

    printf("%s: %d items encoded apart; loss fused %.10f, split %.10f (gen %.6f con %.6f dis "
           "%.6f gap %.6f)\n",
           what, sp.n, oa.loss, ob.loss, oa.gen, oa.con, oa.dis, oa.gap);
    CHECK(oa.con > 0 && oa.dis > 0 && oa.gap > 0);
    CHECKF(fabs(oa.loss - ob.loss) <= TOL_EQUIV * fabs(oa.loss), "%s: loss %.10g against %.10g",
           what, ob.loss, oa.loss);
    CHECKF(
        fabs(oa.dis - ob.dis) <= TOL_EQUIV * oa.dis && fabs(oa.gap - ob.gap) <= TOL_EQUIV * oa.gap,
        "%s: regularisers dis %.8g / %.8g, gap %.8g / %.8g", what, ob.dis, oa.dis, ob.gap, oa.gap);
    for (int i = 0; i < ob.B * ob.M; i++)
        CHECKF(fabs((double)oa.p[i] - ob.p[i]) <= TOL_EQUIV, "%s: p[%d] %.8g against %.8g", what, i,
               (double)ob.p[i], (double)oa.p[i]);
    /* greedy answers read fresh candidates as they read re-encoded ones */
    int32_t ans_a[FX_MAXB * 4], ans_b[FX_MAXB * 4];
    int len_a[FX_MAXB], len_b[FX_MAXB];
    float pa[FX_MAXB * FX_MAXM], pb[FX_MAXB * FX_MAXM];
    int max_len = c->answer_max - 1;
    REQUIRE(F(answer)(&a, fx.queries, fx.B, &fx.cands, max_len, ans_a, len_a, pa, err) == 0);
    REQUIRE(F(answer)(&b, fx.queries, fx.B, &sp.cands, max_len, ans_b, len_b, pb, err) == 0);
    CHECKF(!memcmp(len_a, len_b, sizeof(int) * fx.B) &&
               !memcmp(ans_a, ans_b, sizeof(int32_t) * fx.B * max_len),
           "%s: greedy answers differ", what);
    for (int i = 0; i < fx.B * fx.M; i++)
        CHECKF(fabs((double)pa[i] - pb[i]) <= TOL_EQUIV, "%s: answer p[%d] %.8g against %.8g", what,
               i, (double)pb[i], (double)pa[i]);

    double *ga = malloc(np * sizeof *ga), *gb = malloc(np * sizeof *gb);
    REQUIRE(ga && gb);
    for (size_t i = 0; i < np; i++) {
        ga[i] = a.g[i];
        gb[i] = b.g[i];
    }
    double worst = group_compare(&a.params, ga, gb, what);
    CHECKF(worst <= TOL_EQUIV, "%s: gradients differ by %.3g", what, worst);
    free(ga);
    free(gb);
    F(model_free)(&v);
    F(model_free)(&b);
    F(model_free)(&a);
}

static void P(test_equivalence)(const rvm_config *c, const float *params, size_t np) {
    P(equivalence_case)(c, params, np, 0);
    P(equivalence_case)(c, params, np, 1);
}

/* rvm_encode_grad writes what rvm_encode_items writes; the view shares m's parameters and
 * gradients, and its free leaves m whole. */
static void P(test_encode_grad)(const rvm_config *c, const float *params, size_t np) {
    const rvm_input *gold_of[FX_MAXB];
    build_memory(c, gold_of);
    MODEL m, v;
    REQUIRE(F(model_init)(&m, c, err) == 0);
    REQUIRE(F(model_set_params)(&m, params, np, err) == 0);
    REQUIRE(F(model_view)(&v, &m, err) == 0);
    CHECK(v.w == m.w && v.g == m.g && v.params.params == m.params.params);
    size_t nk = (size_t)sp.n * c->key_dim, nv = (size_t)sp.n * c->latents * c->width;
    static float k2[MAX_ITEMS * FX_MAXKV], v2[MAX_ITEMS * FX_MAXKV];
    REQUIRE(F(encode_grad)(&v, sp.items, sp.n, sp.keys, sp.values, err) == 0);
    REQUIRE(F(encode_items)(&m, sp.items, sp.n, k2, v2, err) == 0);
    CHECKF(!memcmp(k2, sp.keys, nk * sizeof(float)) && !memcmp(v2, sp.values, nv * sizeof(float)),
           "%s: rvm_encode_grad and rvm_encode_items differ", PRECISION);
    /* an update of m is seen by the view */
    for (size_t i = 0; i < np; i++) m.w[i] *= (REAL)1.01;
    REQUIRE(F(encode_items)(&v, sp.items, sp.n, k2, v2, err) == 0);
    CHECKF(memcmp(k2, sp.keys, nk * sizeof(float)), "%s: the view did not see the update",
           PRECISION);
    F(model_free)(&v);
    CHECK(v.st == NULL && m.w != NULL);
    REQUIRE(F(encode_items)(&m, sp.items, sp.n, k2, v2, err) == 0);
    F(model_free)(&m);
}

#endif /* SPLIT_PASS */
