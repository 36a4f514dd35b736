/* training/optim.c — AdamW, gradient-norm clipping and the learning-rate schedule. */
#include "optim.h"

#include "rv.h"

#include <math.h>
#include <string.h>

/* Gradient norms are summed in blocks of this many floats; block sums are added in order. */
#define NORM_BLOCK 65536
#define NORM_BATCH 64    /* blocks summed in parallel before their partial sums are added */
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

static double sum_squares(const float *x, size_t n) {
    double total = 0;
    size_t n_blocks = (n + NORM_BLOCK - 1) / NORM_BLOCK;
    for (size_t b0 = 0; b0 < n_blocks; b0 += NORM_BATCH) {
        double part[NORM_BATCH];
        int batch = (int)(n_blocks - b0 < NORM_BATCH ? n_blocks - b0 : NORM_BATCH);
#pragma omp parallel for schedule(static) if (batch > 1)
        for (int b = 0; b < batch; b++) {
            size_t lo = (b0 + (size_t)b) * NORM_BLOCK;
            size_t hi = lo + NORM_BLOCK < n ? lo + NORM_BLOCK : n;
            double acc = 0;
            /* vector lanes fix the summation order at compile time, not per run */
#pragma omp simd reduction(+ : acc)
            for (size_t i = lo; i < hi; i++) acc += (double)x[i] * x[i];
            part[b] = acc;
        }
        for (int b = 0; b < batch; b++) total += part[b];
    }
    return total;
}

int trn_grad_norm(const trn_params *p, double *norm, char *err) {
    double total = 0;
    for (int i = 0; i < p->n; i++) {
        if (p->specs[i].lr_mult == 0) continue;
        double s = sum_squares(p->grads + p->offset[i], p->numel[i]);
        /* squares of finite floats cannot overflow a double, so a non-finite sum means a NaN
         * or an infinity in this tensor's gradient */
        if (!isfinite(s))
            return rv_fail(err, "gradient of tensor '%s' holds NaN or infinity", p->specs[i].name);
        total += s;
    }
    *norm = sqrt(total);
    return 0;
}

/* One tensor's update; every scalar is computed once per step by the caller. */
static void adamw_tensor(float *w, float *g_buf, float *m, float *v, size_t n, float scale,
                         float beta1, float beta2, float decay_factor, float step_size,
                         float sqrt_bc2, float eps) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = g_buf[i] * scale;
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        float denom = sqrtf(v[i]) / sqrt_bc2 + eps;
        w[i] = w[i] * decay_factor - step_size * (m[i] / denom);
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
    double bc1 = 1.0 - pow(c->beta1, t);
    double bc2 = 1.0 - pow(c->beta2, t);
    for (int i = 0; i < p->n; i++) {
        const trn_tensor_spec *s = &p->specs[i];
        if (s->lr_mult == 0) continue;
        double lr_i = lr * s->lr_mult;
        double decay_factor = s->decay ? 1.0 - lr_i * c->weight_decay : 1.0;
        size_t o = p->offset[i];
        adamw_tensor(p->params + o, p->grads + o, p->m + o, p->v + o, p->numel[i], (float)scale,
                     c->beta1, c->beta2, (float)decay_factor, (float)(lr_i / bc1), (float)sqrt(bc2),
                     c->eps);
    }
    if (stats) {
        stats->lr = (float)lr;
        stats->grad_norm = (float)norm;
        stats->clip_scale = (float)scale;
    }
    return 0;
}
