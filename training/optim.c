/* training/optim.c — AdamW, gradient-norm clipping and the learning-rate schedule. */
#include "optim.h"

#include "rv.h"
#include "threads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Gradient norms are summed in blocks of this many floats; block sums are added in order. */
#define NORM_BLOCK 65536
#define PAR_MIN    32768 /* elements below which a loop is not worth a parallel region */
#define CLIP_EPS   1e-6  /* as torch.nn.utils.clip_grad_norm_ */

void trn_adamw_config_default(trn_adamw_config *c) {
    memset(c, 0, sizeof *c);
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = 0.01f;
    c->clip_norm = 1.0f;
    c->sched.lr = 1e-3f;
    c->sched.min_lr = 1e-4f;
    c->sched.decay = TRN_DECAY_COSINE;
}

int trn_adamw_config_check(const trn_adamw_config *c, char *err) {
    const trn_schedule *s = &c->sched;
    if (!(c->beta1 >= 0 && c->beta1 < 1))
        return rv_fail(err, "beta1 = %g, expected [0, 1)", c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1))
        return rv_fail(err, "beta2 = %g, expected [0, 1)", c->beta2);
    if (!(c->eps > 0 && isfinite(c->eps))) return rv_fail(err, "eps = %g, expected > 0", c->eps);
    if (!(c->weight_decay >= 0 && isfinite(c->weight_decay)))
        return rv_fail(err, "weight_decay = %g, expected >= 0", c->weight_decay);
    if (!(c->clip_norm >= 0 && isfinite(c->clip_norm)))
        return rv_fail(err, "clip_norm = %g, expected >= 0 (0 = off)", c->clip_norm);
    if (!(s->lr >= 0 && isfinite(s->lr))) return rv_fail(err, "lr = %g, expected >= 0", s->lr);
    if (!(s->min_lr >= 0 && s->min_lr <= s->lr))
        return rv_fail(err, "min_lr = %g, expected between 0 and lr = %g", s->min_lr, s->lr);
    if (s->warmup_steps < 0)
        return rv_fail(err, "warmup_steps = %ld, expected >= 0", s->warmup_steps);
    if (s->total_steps < s->warmup_steps)
        return rv_fail(err, "total_steps = %ld is less than warmup_steps = %ld", s->total_steps,
                       s->warmup_steps);
    if (s->decay != TRN_DECAY_COSINE && s->decay != TRN_DECAY_LINEAR &&
        s->decay != TRN_DECAY_CONSTANT)
        return rv_fail(err, "unknown decay kind %d (cosine 0, linear 1, constant 2)",
                       (int)s->decay);
    return 0;
}

float trn_schedule_lr(const trn_schedule *s, long step) {
    /* (step + 1) so the first update already moves the weights. */
    if (step < s->warmup_steps)
        return (float)((double)s->lr * (double)(step + 1) / s->warmup_steps);
    if (s->decay == TRN_DECAY_CONSTANT) return s->lr;
    if (step >= s->total_steps) return s->min_lr;
    double progress = (double)(step - s->warmup_steps) / (double)(s->total_steps - s->warmup_steps);
    double coeff =
        s->decay == TRN_DECAY_COSINE ? 0.5 * (1.0 + cos(M_PI * progress)) : 1.0 - progress;
    return (float)(s->min_lr + coeff * ((double)s->lr - s->min_lr));
}

/* Which trainable tensor holds global norm block g: the i with first[i] <= g < first[i + 1]. */
static int norm_block_tensor(const size_t *first, int n, size_t g) {
    int lo = 0, hi = n; /* first[lo] <= g < first[hi] */
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (first[mid] <= g)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

int trn_grad_norm(const trn_params *p, double *norm, char *err) {
    /* Every tensor is cut into blocks of NORM_BLOCK floats; the blocks' sums of squares are
     * taken on the team (one region for the whole model) and added in order afterwards, so the
     * norm does not depend on the thread count. first[i] is tensor i's first block; frozen
     * tensors have none. */
    size_t *first = malloc(((size_t)p->n + 1) * sizeof *first);
    double *part = NULL;
    int rc = -1;
    if (!first) {
        rv_fail(err, "gradient norm: out of memory");
        goto cleanup;
    }
    first[0] = 0;
    for (int i = 0; i < p->n; i++)
        first[i + 1] =
            first[i] + (p->specs[i].lr_mult == 0 ? 0 : (p->numel[i] + NORM_BLOCK - 1) / NORM_BLOCK);
    size_t blocks = first[p->n];
    part = malloc((blocks ? blocks : 1) * sizeof *part);
    if (!part) {
        rv_fail(err, "gradient norm: out of memory for %zu block sums", blocks);
        goto cleanup;
    }
#pragma omp parallel for schedule(static) if (blocks > 1 && trn_threads_team() > 1)
    for (size_t g = 0; g < blocks; g++) {
        int i = norm_block_tensor(first, p->n, g);
        size_t lo = (g - first[i]) * NORM_BLOCK;
        size_t hi = lo + NORM_BLOCK < p->numel[i] ? lo + NORM_BLOCK : p->numel[i];
        const float *x = p->grads + p->offset[i];
        double acc = 0;
        /* vector lanes fix the summation order at compile time, not per run */
#pragma omp simd reduction(+ : acc)
        for (size_t k = lo; k < hi; k++) acc += (double)x[k] * x[k];
        part[g] = acc;
    }
    double total = 0;
    for (int i = 0; i < p->n; i++) {
        double s = 0;
        for (size_t g = first[i]; g < first[i + 1]; g++) s += part[g];
        /* squares of finite floats cannot overflow a double, so a non-finite sum means a NaN
         * or an infinity in this tensor's gradient */
        if (!isfinite(s)) {
            rv_fail(err, "gradient of tensor '%s' holds NaN or infinity", p->specs[i].name);
            goto cleanup;
        }
        total += s;
    }
    *norm = sqrt(total);
    rc = 0;
cleanup:
    free(first);
    free(part);
    return rc;
}

/* The scalars of one update, computed once per step. */
typedef struct {
    float scale, beta1, beta2, sqrt_bc2, eps;
    double lr, bc1, weight_decay;
} adamw_scalars;

/* Elements [lo, hi) of the model's buffers, alignment gaps skipped: each tensor's part with its
 * own learning rate and decay. */
static void adamw_range(trn_params *p, const adamw_scalars *k, size_t lo, size_t hi) {
    for (int i = 0; i < p->n; i++) {
        const trn_tensor_spec *s = &p->specs[i];
        size_t a = p->offset[i] > lo ? p->offset[i] : lo;
        size_t b = p->offset[i] + p->numel[i] < hi ? p->offset[i] + p->numel[i] : hi;
        if (s->lr_mult == 0 || a >= b) continue;
        double lr_i = k->lr * s->lr_mult;
        float decay_factor = (float)(s->decay ? 1.0 - lr_i * k->weight_decay : 1.0);
        float step_size = (float)(lr_i / k->bc1);
        /* local copies, so the stores below cannot alias them and the loop vectorises */
        float scale = k->scale, beta1 = k->beta1, beta2 = k->beta2, sqrt_bc2 = k->sqrt_bc2,
              eps = k->eps;
        float *w = p->params, *g_buf = p->grads, *m = p->m, *v = p->v;
        for (size_t j = a; j < b; j++) {
            float g = g_buf[j] * scale;
            m[j] = beta1 * m[j] + (1.0f - beta1) * g;
            v[j] = beta2 * v[j] + (1.0f - beta2) * g * g;
            float denom = sqrtf(v[j]) / sqrt_bc2 + eps;
            w[j] = w[j] * decay_factor - step_size * (m[j] / denom);
        }
    }
}

int trn_adamw_step(trn_params *p, const trn_adamw_config *c, long step, trn_adamw_stats *stats,
                   char *err) {
    if (trn_adamw_config_check(c, err) != 0) return -1;
    if (step < 0) return rv_fail(err, "step = %ld, expected >= 0", step);
    double norm;
    if (trn_grad_norm(p, &norm, err) != 0) return rv_fail_wrap(err, "AdamW step %ld skipped", step);
    double scale = 1.0;
    if (c->clip_norm > 0 && norm > c->clip_norm) scale = c->clip_norm / (norm + CLIP_EPS);
    double lr = trn_schedule_lr(&c->sched, step);
    double t = (double)step + 1.0;
    adamw_scalars k = {(float)scale,
                       c->beta1,
                       c->beta2,
                       (float)sqrt(1.0 - pow(c->beta2, t)),
                       c->eps,
                       lr,
                       1.0 - pow(c->beta1, t),
                       c->weight_decay};
    /* one region for the whole model: thread j of nt takes the j-th contiguous share of the
     * buffers, whatever tensors it crosses (each element's update is independent) */
    int team = p->total >= PAR_MIN ? trn_threads_team() : 1;
#pragma omp parallel num_threads(team) if (team > 1)
    {
        size_t lo, hi;
        trn_threads_share(p->total, &lo, &hi);
        adamw_range(p, &k, lo, hi);
    }
    if (stats) {
        stats->lr = (float)lr;
        stats->grad_norm = (float)norm;
        stats->clip_scale = (float)scale;
    }
    return 0;
}
