/* training/model_config.c — the model's config (defaults, validation), its parameter table, and
 * building a model: layout, weight views, seeded initialisation. One walk over the tensors in
 * a fixed order serves three purposes (the spec table, binding views, initialisation), so the
 * three can never disagree on names, shapes or order.
 */
#include "model_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "rv.h"

#define INIT_ONES (-1.0)
#define INIT_ZERO 0.0
#define EMBED_STD 0.02 /* embeddings, positions, latents (T5 / ViT practice) */

typedef enum { WALK_SPECS, WALK_BIND, WALK_INIT } walk_mode;

typedef struct {
    walk_mode mode;
    const rvm_config *c;
    trn_tensor_spec *specs; /* WALK_SPECS: grows */
    int n, cap, failed;
    const trn_params *p; /* WALK_BIND, WALK_INIT */
    real *base;
    int idx;
} walker;

/* One tensor: its spec, its view, or its initial values. std > 0: normal(0, std);
 * INIT_ZERO: zeros; INIT_ONES: ones (RMSNorm gains). Weight decay on matrices only. */
static void tensor(walker *k, real **dst, const char *name, int d0, int d1, double std) {
    if (k->mode == WALK_SPECS) {
        if (k->failed) return;
        if (k->n == k->cap) {
            int cap = k->cap ? 2 * k->cap : 64;
            trn_tensor_spec *s = realloc(k->specs, (size_t)cap * sizeof *s);
            if (!s) {
                k->failed = 1;
                return;
            }
            k->specs = s;
            k->cap = cap;
        }
        trn_tensor_spec *s = &k->specs[k->n];
        memset(s, 0, sizeof *s);
        s->name = strdup(name);
        if (!s->name) {
            k->failed = 1;
            return;
        }
        k->n++;
        s->ndim = d1 ? 2 : 1;
        s->shape[0] = d0;
        s->shape[1] = d1;
        s->lr_mult = 1.0f;
        s->decay = d1 && std > 0 && std != EMBED_STD;
        return;
    }
    real *x = k->base + k->p->offset[k->idx];
    size_t n = k->p->numel[k->idx];
    if (k->mode == WALK_BIND) {
        *dst = x;
    } else {
        for (size_t i = 0; i < n; i++)
            x[i] = std == INIT_ONES ? 1
                   : std == INIT_ZERO
                       ? 0
                       : (real)(std * trn_rng_normal(k->c->seed, (uint64_t)k->idx, i));
    }
    k->idx++;
}

static void attn_tensors(walker *k, TRN(attn_w) * a, const char *pre, int d) {
    char name[TRN_NAME_MAX];
    const char *part[4] = {"wq", "wk", "wv", "wo"};
    real **dst[4] = {&a->wq, &a->wk, &a->wv, &a->wo};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", pre, part[i]);
        tensor(k, dst[i], name, d, d, 1.0 / sqrt((double)d));
    }
}

/* A block's tensors under prefix pre: self-attention, optional cross-attention, MLP. */
static void block_tensors(walker *k, TRN(block_w) * b, const char *pre, int cross, int norm_ctx) {
    int d = k->c->width, H = k->c->mlp_hidden;
    char name[TRN_NAME_MAX];
    snprintf(name, sizeof name, "%s.ln_attn", pre);
    tensor(k, &b->ln_attn, name, d, 0, INIT_ONES);
    snprintf(name, sizeof name, "%s.attn", pre);
    attn_tensors(k, &b->attn, name, d);
    if (cross) {
        snprintf(name, sizeof name, "%s.ln_cross", pre);
        tensor(k, &b->ln_cross, name, d, 0, INIT_ONES);
        if (norm_ctx) {
            snprintf(name, sizeof name, "%s.ln_ctx", pre);
            tensor(k, &b->ln_ctx, name, d, 0, INIT_ONES);
        }
        snprintf(name, sizeof name, "%s.cross", pre);
        attn_tensors(k, &b->cross, name, d);
    }
    snprintf(name, sizeof name, "%s.ln_mlp", pre);
    tensor(k, &b->ln_mlp, name, d, 0, INIT_ONES);
    snprintf(name, sizeof name, "%s.mlp.w0", pre);
    tensor(k, &b->mlp.w0, name, H, d, 1.0 / sqrt((double)d));
    snprintf(name, sizeof name, "%s.mlp.w1", pre);
    tensor(k, &b->mlp.w1, name, H, d, 1.0 / sqrt((double)d));
    snprintf(name, sizeof name, "%s.mlp.w2", pre);
    tensor(k, &b->mlp.w2, name, d, H, 1.0 / sqrt((double)H));
}

static void stack_tensors(walker *k, TRN(block_w) * blocks, int L, const char *pre, int cross,
                          int norm_ctx) {
    char name[TRN_NAME_MAX];
    for (int l = 0; l < L; l++) {
        TRN(block_w) dummy;
        snprintf(name, sizeof name, "%s.block%d", pre, l);
        block_tensors(k, blocks ? &blocks[l] : &dummy, name, cross, norm_ctx);
    }
}

/* Every tensor of the model, in layout order. w may be NULL (specs only). */
static void walk(walker *k, RVM(weights) * w) {
    const rvm_config *c = k->c;
    RVM(weights) dummy;
    if (!w) {
        memset(&dummy, 0, sizeof dummy);
        w = &dummy;
    }
    int d = c->width, pp = 3 * c->patch * c->patch;
    int P = (c->image_size / c->patch) * (c->image_size / c->patch);
    tensor(k, &w->vit_patch, "vit.patch", d, pp, 1.0 / sqrt((double)pp));
    tensor(k, &w->vit_pos, "vit.pos", P, d, EMBED_STD);
    stack_tensors(k, w->vit, c->vit_blocks, "vit", 0, 0);
    tensor(k, &w->vit_proj, "vit.proj", d, d, 1.0 / sqrt((double)d));
    tensor(k, &w->tok_emb, "embed.tok", c->vocab, d, EMBED_STD);
    tensor(k, &w->text_pos, "text.pos", c->text_max, d, EMBED_STD);
    stack_tensors(k, w->text, c->text_blocks, "text", 0, 0);
    stack_tensors(k, w->qhead, c->head_blocks, "qhead", 0, 0);
    tensor(k, &w->q_ln, "qhead.ln", d, 0, INIT_ONES);
    stack_tensors(k, w->khead, c->head_blocks, "khead", 0, 0);
    tensor(k, &w->k_ln, "khead.ln", d, 0, INIT_ONES);
    tensor(k, &w->w_o, "proj.wo", c->key_dim, d, 1.0 / sqrt((double)d));
    tensor(k, &w->latents, "vhead.latents", c->latents, d, EMBED_STD);
    stack_tensors(k, w->vhead, c->head_blocks, "vhead", 1, 1);
    tensor(k, &w->gate_w, "gate.w", c->sources, c->key_dim, 1.0 / sqrt((double)c->key_dim));
    tensor(k, &w->gate_b, "gate.b", c->sources, 0, INIT_ZERO);
    tensor(k, &w->theta, "tau.theta", 1, 0, INIT_ZERO);
    stack_tensors(k, w->fusion, c->fusion_blocks, "fusion", 0, 0);
    tensor(k, &w->fusion_ln, "fusion.ln", d, 0, INIT_ONES);
    tensor(k, &w->dec_pos, "decoder.pos", c->answer_max, d, EMBED_STD);
    stack_tensors(k, w->dec, c->decoder_blocks, "decoder", 1, 0);
    tensor(k, &w->dec_ln, "decoder.ln", d, 0, INIT_ONES);
}

#ifndef TRN_F64
void rvm_config_default(rvm_config *c) {
    memset(c, 0, sizeof *c);
    c->vocab = 512;
    c->width = 64;
    c->heads = 4;
    c->mlp_hidden = 128;
    c->image_size = 16;
    c->patch = 4;
    c->text_max = 24;
    c->answer_max = 8;
    c->vit_blocks = 1;
    c->text_blocks = 1;
    c->head_blocks = 1;
    c->fusion_blocks = 1;
    c->decoder_blocks = 1;
    c->latents = 4;
    c->key_dim = 64;
    c->sources = 3;
    c->bos_id = 1;
    c->eos_id = 2;
    c->tau_scale = 5.0f;
    c->seed = 1;
    c->con_weight = 0.2f;
    c->con_tau = 0.2f;
    c->dis_weight = 0.0f;
    c->gap_weight = 0.0f;
    c->label_smoothing = 0.0f;
}

#define RVM_DIM_MAX 65536 /* keeps every product of sizes far inside size_t and int ranges */

static int check_range(const char *name, int v, int lo, char *err) {
    if (v < lo || v > RVM_DIM_MAX)
        return rv_fail(err, "model config: %s is %d, must be in [%d, %d]", name, v, lo,
                       RVM_DIM_MAX);
    return 0;
}

int rvm_config_check(const rvm_config *c, char *err) {
    struct {
        const char *name;
        int v, lo;
    } ints[] = {{"vocab", c->vocab, 3},
                {"width", c->width, 1},
                {"heads", c->heads, 1},
                {"mlp_hidden", c->mlp_hidden, 1},
                {"image_size", c->image_size, 1},
                {"patch", c->patch, 1},
                {"text_max", c->text_max, 1},
                {"answer_max", c->answer_max, 1},
                {"vit_blocks", c->vit_blocks, 0},
                {"text_blocks", c->text_blocks, 0},
                {"head_blocks", c->head_blocks, 1},
                {"fusion_blocks", c->fusion_blocks, 0},
                {"decoder_blocks", c->decoder_blocks, 1},
                {"latents", c->latents, 1},
                {"key_dim", c->key_dim, 1},
                {"sources", c->sources, 1}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (check_range(ints[i].name, ints[i].v, ints[i].lo, err)) return -1;
    if (c->width % c->heads)
        return rv_fail(err, "model config: width %d is not divisible by heads %d", c->width,
                       c->heads);
    if (c->image_size % c->patch)
        return rv_fail(err, "model config: image_size %d is not divisible by patch %d",
                       c->image_size, c->patch);
    if (c->bos_id < 0 || c->bos_id >= c->vocab || c->eos_id < 0 || c->eos_id >= c->vocab ||
        c->bos_id == c->eos_id)
        return rv_fail(err, "model config: bos_id %d and eos_id %d must be distinct ids in [0, %d)",
                       c->bos_id, c->eos_id, c->vocab);
    if (!(c->tau_scale > 0) || !isfinite(c->tau_scale))
        return rv_fail(err, "model config: tau_scale %g must be positive and finite",
                       (double)c->tau_scale);
    if (!(c->con_tau > 0) || !isfinite(c->con_tau))
        return rv_fail(err, "model config: con_tau %g must be positive and finite",
                       (double)c->con_tau);
    if (!(c->con_weight >= 0 && c->con_weight <= 1))
        return rv_fail(err, "model config: con_weight %g must be in [0, 1]", (double)c->con_weight);
    if (!(c->dis_weight >= 0) || !isfinite(c->dis_weight))
        return rv_fail(err, "model config: dis_weight %g must be ≥ 0 and finite",
                       (double)c->dis_weight);
    if (!(c->gap_weight >= 0) || !isfinite(c->gap_weight))
        return rv_fail(err, "model config: gap_weight %g must be ≥ 0 and finite",
                       (double)c->gap_weight);
    if (!(c->label_smoothing >= 0 && c->label_smoothing < 1))
        return rv_fail(err, "model config: label_smoothing %g must be in [0, 1)",
                       (double)c->label_smoothing);
    if (c->head_pool != 0 && c->head_pool != 1)
        return rv_fail(err, "model config: head_pool %d must be 0 (position 0) or 1 (mean)",
                       c->head_pool);
    if ((c->uniform_gate != 0 && c->uniform_gate != 1) || (c->omega_off != 0 && c->omega_off != 1))
        return rv_fail(err, "model config: uniform_gate %d and omega_off %d must be 0 or 1",
                       c->uniform_gate, c->omega_off);
    return 0;
}

void rvm_param_specs_free(trn_tensor_spec *specs, int n) {
    if (!specs) return;
    for (int i = 0; i < n; i++) free((char *)specs[i].name);
    free(specs);
}

int rvm_param_specs(const rvm_config *c, trn_tensor_spec **specs, int *n, char *err) {
    *specs = NULL;
    *n = 0;
    if (rvm_config_check(c, err)) return -1;
    walker k = {.mode = WALK_SPECS, .c = c};
    walk(&k, NULL);
    if (k.failed) {
        rvm_param_specs_free(k.specs, k.n);
        return rv_fail(err, "model: out of memory building the parameter table");
    }
    *specs = k.specs;
    *n = k.n;
    return 0;
}

void rvm_param_group(const char *name, char *group, size_t n) {
    size_t len = strcspn(name, ".");
    if (!n) return;
    if (len >= n) len = n - 1;
    memcpy(group, name, len);
    group[len] = 0;
}
#endif /* !TRN_F64 */

int RVM(model_init)(RVM(model) * m, const rvm_config *cfg, char *err) {
    trn_tensor_spec *specs = NULL;
    int n = 0, rc = -1;
    memset(m, 0, sizeof *m);
    if (rvm_param_specs(cfg, &specs, &n, err)) return -1;
    m->cfg = *cfg;
    if (trn_params_init(&m->params, specs, n, err)) {
        rv_fail_wrap(err, "model parameters");
        goto cleanup;
    }
    m->st = calloc(1, sizeof *m->st);
    int nb = cfg->vit_blocks + cfg->text_blocks + 3 * cfg->head_blocks + cfg->fusion_blocks +
             cfg->decoder_blocks;
    if (m->st) m->st->blocks = calloc((size_t)(2 * nb + 1), sizeof(TRN(block_w)));
#ifdef TRN_F64
    m->w = calloc(m->params.total, sizeof(real));
    m->g = calloc(m->params.total, sizeof(real));
#else
    m->w = m->params.params;
    m->g = m->params.grads;
#endif
    if (!m->st || !m->st->blocks || !m->w || !m->g) {
        rv_fail(err, "model: out of memory");
        goto cleanup;
    }
    for (int which = 0; which < 2; which++) {
        RVM(weights) *w = which ? &m->st->g : &m->st->w;
        TRN(block_w) *b = m->st->blocks + (size_t)which * nb;
        w->vit = b;
        w->text = w->vit + cfg->vit_blocks;
        w->qhead = w->text + cfg->text_blocks;
        w->khead = w->qhead + cfg->head_blocks;
        w->vhead = w->khead + cfg->head_blocks;
        w->fusion = w->vhead + cfg->head_blocks;
        w->dec = w->fusion + cfg->fusion_blocks;
        walker k = {.mode = WALK_BIND, .c = cfg, .p = &m->params, .base = which ? m->g : m->w};
        walk(&k, w);
    }
    walker k = {.mode = WALK_INIT, .c = cfg, .p = &m->params, .base = m->w};
    walk(&k, NULL);
    rc = 0;
cleanup:
    rvm_param_specs_free(specs, n);
    if (rc) RVM(model_free)(m);
    return rc;
}

/* The view borrows m's buffers and weight views (st->w, st->g point into m's block storage)
 * and owns only its state and arena. */
int RVM(model_view)(RVM(model) * view, RVM(model) * m, char *err) {
    memset(view, 0, sizeof *view);
    if (!m || !m->st) return rv_fail(err, "model view: the model is not built");
    view->st = calloc(1, sizeof *view->st);
    if (!view->st) return rv_fail(err, "model view: out of memory");
    view->cfg = m->cfg;
    view->params = m->params;
    view->w = m->w;
    view->g = m->g;
    view->st->w = m->st->w;
    view->st->g = m->st->g;
    view->st->is_view = 1;
    return 0;
}

void RVM(model_free)(RVM(model) * m) {
    int view = m->st && m->st->is_view;
    if (m->st) {
        free(m->st->blocks);
        free(m->st->arena.base);
        free(m->st);
    }
    if (!view) {
#ifdef TRN_F64
        free(m->w);
        free(m->g);
#endif
        trn_params_free(&m->params);
    }
    memset(m, 0, sizeof *m);
}

int RVM(model_set_params)(RVM(model) * m, const float *src, size_t n, char *err) {
    if (n != m->params.total)
        return rv_fail(err, "model: parameter buffer holds %zu floats, the model needs %zu", n,
                       m->params.total);
    for (size_t i = 0; i < n; i++) m->w[i] = (real)src[i];
    return 0;
}
