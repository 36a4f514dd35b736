/* tests/test_model_gradcheck.c — the whole REVEAL model's gradient against central finite
 * differences, in double, on a tiny config with every loss term on: B = 3 rows (one without a
 * picture, padding in every text), 2 sources with K = 2 and 3, the first candidate of each
 * source re-encoded (so the key head, the value head and the encoder below them get gradient
 * through p(m|x) and the fused values), the rest stored; gold items for the contrastive loss.
 *
 * For every tensor: the analytic gradient must not be identically zero, and at its largest
 * entries plus random ones the central difference must agree, normwise per tensor:
 * max|analytic − numeric| / max|numeric| ≤ TOL_FD. The worst error of every parameter group is
 * printed. Then the float model, given the same parameters, must match the double one (loss
 * and gradient per group, normwise ≤ TOL_F32), and two steps must accumulate twice the
 * gradient.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rv.h"
#include "test_model_fixture.h"

#define TOL_FD    1e-6
#define TOL_F32   2e-3
#define H_STEP    2e-6
#define N_TOP     4 /* largest analytic entries checked per tensor */
#define N_RANDOM  4 /* random entries checked per tensor */
#define MAX_GROUP 32

static fx_batch fx;

typedef struct {
    char name[32];
    double fd_err, f32_num, f32_den;
    int tensors, samples;
} group_stat;

static group_stat groups[MAX_GROUP];
static int n_groups;

static group_stat *group_of(const char *tensor) {
    char g[32];
    rvm_param_group(tensor, g, sizeof g);
    for (int i = 0; i < n_groups; i++)
        if (!strcmp(groups[i].name, g)) return &groups[i];
    REQUIRE(n_groups < MAX_GROUP);
    snprintf(groups[n_groups].name, sizeof groups[n_groups].name, "%s", g);
    return &groups[n_groups++];
}

static double loss_d(rvm_model_d *m) {
    char err[RV_ERR_MAX];
    rvm_step_out_d out;
    int rc = rvm_forward_d(m, &fx.batch, &out, err);
    if (rc) fprintf(stderr, "forward: %s\n", err);
    REQUIRE(rc == 0);
    return out.loss;
}

/* Nudges the initial parameters off their special values (gains of exactly 1, a zero gate
 * bias and θ) so that no check happens at a symmetric point. */
static void perturb(rvm_model *m) {
    for (int i = 0; i < m->params.n; i++) {
        trn_view v = trn_params_at(&m->params, i);
        for (size_t j = 0; j < v.numel; j++)
            v.w[j] += (float)(0.1 * trn_rng_normal(11, (uint64_t)i, j));
    }
}

/* One whole-model check of cfg. */
static void check_model(const rvm_config *cfgp) {
    char err[RV_ERR_MAX];
    rvm_config cfg = *cfgp;
    n_groups = 0;
    memset(groups, 0, sizeof groups);
    int k[2] = {2, 3};
    fx_build(&fx, &cfg, 3, 2, k, 0);

    rvm_model mf;
    rvm_model_d md;
    REQUIRE(rvm_model_init(&mf, &cfg, err) == 0);
    REQUIRE(rvm_model_init_d(&md, &cfg, err) == 0);
    perturb(&mf);
    REQUIRE(rvm_model_set_params_d(&md, mf.params.params, mf.params.total, err) == 0);
    size_t total = md.params.total;
    printf("\ntiny model, %d head / %d vit / %d decoder blocks: %d tensors, %zu parameters\n",
           cfg.head_blocks, cfg.vit_blocks, cfg.decoder_blocks, md.params.n, md.params.n_elements);

    /* analytic gradients, both builds */
    rvm_step_out_d od;
    rvm_step_out of;
    memset(md.g, 0, total * sizeof(double));
    trn_params_zero_grad(&mf.params);
    REQUIRE(rvm_step_d(&md, &fx.batch, &od, err) == 0);
    REQUIRE(rvm_step(&mf, &fx.batch, &of, err) == 0);
    printf("loss %.6f = 0.7·gen %.6f + 0.3·con %.6f + 0.5·dis %.6f + 0.5·gap %.6f, 1/tau %.4f\n",
           od.loss, od.gen, od.con, od.dis, od.gap, od.inv_tau);
    CHECK(od.gen > 0 && od.con > 0 && od.dis > 0 && od.gap > 0);
    double *ga = malloc(total * sizeof *ga);
    REQUIRE(ga);
    memcpy(ga, md.g, total * sizeof *ga);
    CHECKF(fabs(of.loss - od.loss) <= 1e-4 * fabs(od.loss), "float loss %.8f, double %.8f", of.loss,
           od.loss);

    /* finite differences */
    for (int i = 0; i < md.params.n; i++) {
        trn_view v = trn_params_at(&md.params, i);
        size_t off = md.params.offset[i], n = v.numel;
        group_stat *gs = group_of(v.name);
        gs->tensors++;
        size_t idx[N_TOP + N_RANDOM] = {0};
        int ns = 0;
        double gmax = 0;
        for (size_t j = 0; j < n; j++) gmax = fmax(gmax, fabs(ga[off + j]));
        CHECKF(gmax > 0, "tensor %s: analytic gradient identically zero", v.name);
        /* the N_TOP largest |analytic| entries, then random ones */
        for (int t = 0; t < N_TOP && (size_t)t < n; t++) {
            size_t best = n;
            for (size_t j = 0; j < n; j++) {
                int taken = 0;
                for (int s = 0; s < ns; s++) taken |= idx[s] == j;
                if (!taken && (best == n || fabs(ga[off + j]) > fabs(ga[off + best]))) best = j;
            }
            idx[ns++] = best;
        }
        for (int t = 0; t < N_RANDOM && n > (size_t)N_TOP; t++)
            idx[ns++] = (size_t)(trn_rng_u64(3, (uint64_t)i, (uint64_t)t) % n);
        double maxdiff = 0, maxnum = 0;
        for (int s = 0; s < ns; s++) {
            double *w = md.w + off + idx[s], w0 = *w;
            *w = w0 + H_STEP;
            double fp = loss_d(&md);
            *w = w0 - H_STEP;
            double fm = loss_d(&md);
            *w = w0;
            double num = (fp - fm) / (2 * H_STEP);
            maxdiff = fmax(maxdiff, fabs(num - ga[off + idx[s]]));
            maxnum = fmax(maxnum, fabs(num));
        }
        double e = maxnum > 0 ? maxdiff / maxnum : (maxdiff > 0 ? INFINITY : 0);
        CHECKF(maxnum > 0, "tensor %s: numeric gradient zero at every sample", v.name);
        CHECKF(e <= TOL_FD, "tensor %s: finite-difference error %.3g", v.name, e);
        if (e > gs->fd_err) gs->fd_err = e;
        gs->samples += ns;

        /* float against double, normwise per group */
        for (size_t j = 0; j < n; j++) {
            double dd = (double)mf.params.grads[off + j] - ga[off + j];
            gs->f32_num += dd * dd;
            gs->f32_den += ga[off + j] * ga[off + j];
        }
    }
    printf("%-10s %8s %8s %14s %14s\n", "group", "tensors", "samples", "worst fd err",
           "float vs dbl");
    const char *expect[] = {"vit",   "embed", "text", "qhead",  "khead",  "proj",
                            "vhead", "gate",  "tau",  "fusion", "decoder"};
    for (int i = 0; i < n_groups; i++) {
        double f32 = sqrt(groups[i].f32_num / fmax(groups[i].f32_den, 1e-300));
        printf("%-10s %8d %8d %14.3e %14.3e\n", groups[i].name, groups[i].tensors,
               groups[i].samples, groups[i].fd_err, f32);
        CHECKF(f32 <= TOL_F32, "group %s: float gradient differs from double by %.3g",
               groups[i].name, f32);
    }
    for (size_t e = 0; e < sizeof expect / sizeof expect[0]; e++) {
        int found = 0;
        for (int i = 0; i < n_groups; i++) found |= !strcmp(groups[i].name, expect[e]);
        CHECKF(found, "parameter group %s missing from the check", expect[e]);
    }

    /* accumulation: a second step adds the same gradient again */
    REQUIRE(rvm_step_d(&md, &fx.batch, &od, err) == 0);
    double worst = 0, gnorm = 0;
    for (size_t j = 0; j < total; j++) {
        worst = fmax(worst, fabs(md.g[j] - 2 * ga[j]));
        gnorm = fmax(gnorm, fabs(ga[j]));
    }
    CHECKF(worst <= 1e-12 * gnorm, "two steps give %.3g away from twice the gradient", worst);

    free(ga);
    rvm_model_free(&mf);
    rvm_model_free_d(&md);
}

int main(void) {
    rvm_config cfg;
    fx_tiny_config(&cfg);
    check_model(&cfg);
    /* deeper stacks: the heads' full blocks before their position-0 block, two Perceiver, ViT
     * and decoder blocks */
    cfg.head_blocks = 2;
    cfg.vit_blocks = 2;
    cfg.decoder_blocks = 2;
    check_model(&cfg);
    /* the pooled query / key readout: every head block full, then the mean over real tokens */
    cfg.head_pool = 1;
    check_model(&cfg);
    return check_report("model_gradcheck");
}
