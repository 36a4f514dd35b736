/* training/optim.h — AdamW with decoupled weight decay, global gradient-norm clipping and a
 * warmup + decay learning-rate schedule, over the flat buffers of training/params.h.
 *
 * The update follows PyTorch's torch.optim.AdamW (same order of operations), per element, with
 * lr = schedule(step) * lr_mult of the element's tensor:
 *     g  = grad * clip_scale                    clip_scale = min(1, clip_norm / (‖grad‖ + 1e-6))
 *     m  = beta1 m + (1 - beta1) g
 *     v  = beta2 v + (1 - beta2) g²
 *     w *= 1 - lr * weight_decay                 (tensors with decay = 1 only)
 *     w -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)      t = step + 1
 * ‖grad‖ is the L2 norm over every trainable tensor (lr_mult > 0), summed in double in fixed
 * blocks so the result does not depend on the thread count. Tensors with lr_mult = 0 are skipped
 * entirely: their weights, m and v never change. The update is deterministic.
 */
#ifndef TRN_OPTIM_H
#define TRN_OPTIM_H

#include "params.h"

typedef enum { TRN_DECAY_COSINE = 0, TRN_DECAY_LINEAR = 1, TRN_DECAY_CONSTANT = 2 } trn_decay_kind;

/* Linear warmup from lr/warmup_steps to lr over warmup_steps updates, then cosine or linear decay
 * to min_lr at total_steps, and min_lr after that. TRN_DECAY_CONSTANT stays at lr after warmup. */
typedef struct {
    float lr;
    float min_lr;
    long warmup_steps;
    long total_steps;
    trn_decay_kind decay;
} trn_schedule;

typedef struct {
    float beta1, beta2, eps;
    float weight_decay;
    float clip_norm; /* 0 disables clipping */
    trn_schedule sched;
} trn_adamw_config;

/* What one update did, for the progress line and metrics. */
typedef struct {
    float lr;         /* scheduled rate before per-tensor multipliers */
    float grad_norm;  /* global L2 norm of the trainable gradients, before clipping */
    float clip_scale; /* factor applied to the gradients (1 when not clipped) */
} trn_adamw_stats;

/* AdamW defaults of T5-style training: beta (0.9, 0.999), eps 1e-8, weight decay 0.01, clip 1.0,
 * cosine decay to 10% of lr. The caller sets lr, warmup_steps and total_steps. */
void trn_adamw_config_default(trn_adamw_config *c);
/* Refuses values that make no sense (beta outside [0, 1), eps <= 0, negative rates, a floor
 * above the peak, warmup longer than the run, an unknown decay kind), naming the field. */
int trn_adamw_config_check(const trn_adamw_config *c, char *err);

/* Learning rate of the update with 0-based index step. */
float trn_schedule_lr(const trn_schedule *s, long step);

/* Global L2 norm of the gradients of trainable tensors. Fails, naming the first tensor that holds
 * one, when a gradient is NaN or infinite. */
int trn_grad_norm(const trn_params *p, double *norm, char *err);

/* Applies update number step (0-based) to every trainable tensor. On failure (a non-finite
 * gradient, a bad config) nothing is changed. stats may be NULL. */
int trn_adamw_step(trn_params *p, const trn_adamw_config *c, long step, trn_adamw_stats *stats,
                   char *err);

#endif
