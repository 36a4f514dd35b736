/* trainer/config.c — the keys of a training config file (docs/train.md "Config"): one table
 * serves loading, --set overrides, the resolved config written to the run directory, and
 * `reveal train --help-config`. Defaults are the tiny model of LEARNING.md's recipe. */
#include <stddef.h>
#include <string.h>

#include "job.h"
#include "rv.h"
#include "threads.h"
#include "trainer.h"

#define F(key, kind, field, lo, hi, help)                                                          \
    { key, kind, offsetof(tr_config, field), lo, hi, sizeof(((tr_config *)0)->field), help }

static const job_field fields[] = {
    F("data.layout", JOB_STRING, layout, 0, 0, "sources and their stores (layout JSON)"),
    F("data.train", JOB_STRING, train, 0, 0, "training questions (task JSONL)"),
    F("data.dev", JOB_STRING, dev, 0, 0, "questions evaluated after training (\"\": none)"),
    F("tokenizer.vocab", JOB_INT, vocab, 300, 1 << 20, "SentencePiece vocabulary size"),
    F("model.width", JOB_INT, width, 8, 4096, "d: width of every stack"),
    F("model.heads", JOB_INT, heads, 1, 64, "attention heads"),
    F("model.mlp_hidden", JOB_INT, mlp_hidden, 1, 16384, "gated-GELU MLP width"),
    F("model.image_size", JOB_INT, image_size, 4, 1024, "pictures are S×S (the stores' size)"),
    F("model.patch", JOB_INT, patch, 1, 64, "ViT patch side"),
    F("model.text_max", JOB_INT, text_max, 2, 4096, "text tokens of a query or item, BOS included"),
    F("model.answer_max", JOB_INT, answer_max, 2, 1024, "decoder positions: BOS + answer"),
    F("model.vit_blocks", JOB_INT, vit_blocks, 0, 64, "ViT blocks"),
    F("model.text_blocks", JOB_INT, text_blocks, 0, 64, "lower text-transformer blocks"),
    F("model.head_blocks", JOB_INT, head_blocks, 1, 64, "blocks of the query, key, value heads"),
    F("model.fusion_blocks", JOB_INT, fusion_blocks, 1, 64, "attentive-fusion blocks"),
    F("model.decoder_blocks", JOB_INT, decoder_blocks, 1, 64, "decoder blocks"),
    F("model.latents", JOB_INT, latents, 1, 256, "c: value tokens per item"),
    F("model.key_dim", JOB_INT, key_dim, 1, 4096, "dk: key width"),
    F("model.tau_scale", JOB_FLOAT, tau_scale, 1e-3, 1e3, "1/tau = tau_scale·sigmoid(theta)"),
    F("model.con_weight", JOB_FLOAT, con_weight, 0, 1, "r: weight of the contrastive loss"),
    F("model.con_tau", JOB_FLOAT, con_tau, 1e-4, 100, "temperature of the contrastive loss"),
    F("model.dis_weight", JOB_FLOAT, dis_weight, 0, 100, "disentangle regulariser weight"),
    F("model.gap_weight", JOB_FLOAT, gap_weight, 0, 100, "alignment regulariser weight"),
    F("model.label_smoothing", JOB_FLOAT, label_smoothing, 0, 0.99, "generation label smoothing"),
    F("model.uniform_gate", JOB_BOOL, uniform_gate, 0, 1, "ablation: g = 1/S"),
    F("model.omega_off", JOB_BOOL, omega_off, 0, 1, "ablation: fusion weights ω ≡ 1"),
    F("model.head_pool", JOB_BOOL, head_pool, 0, 1,
      "query / key readout: the mean over the row's tokens (else position 0)"),
    F("model.seed", JOB_INT, model_seed, 0, 9.0e15, "parameter initialisation"),
    F("train.batch", JOB_INT, batch, 1, 65536, "B: questions per update"),
    F("train.steps", JOB_INT, steps, 1, 1e9, "updates"),
    F("train.warm_steps", JOB_INT, warm_steps, 0, 1e9, "warm start: fusion over in-batch golds"),
    F("train.warm_others", JOB_INT, warm_others, 0, 255, "warm start: other rows' golds fused"),
    F("train.topk", JOB_INT, topk, 1, 4096, "K per source"),
    F("train.rho", JOB_FLOAT, rho, 0, 1, "re-encode the best ceil(rho·K) per source"),
    F("train.inject", JOB_FLOAT, inject, 0, 1, "share of rows whose gold item is injected"),
    F("train.refresh_every", JOB_INT, refresh_every, 0, 1e9, "R: re-encode all memory (0: never)"),
    F("train.edits", JOB_STRING, edits, 0, 0,
      "directory of edit rounds (counterfactual knowledge; \"\": none)"),
    F("train.edit_every", JOB_INT, edit_every, 0, 1e9, "an edit round every N updates (0: never)"),
    F("train.lr", JOB_FLOAT, lr, 0, 10, "peak learning rate"),
    F("train.min_lr", JOB_FLOAT, min_lr, 0, 10, "final learning rate (cosine decay)"),
    F("train.warmup", JOB_INT, warmup, 0, 1e9, "learning-rate warm-up updates"),
    F("train.weight_decay", JOB_FLOAT, weight_decay, 0, 10, "AdamW decoupled weight decay"),
    F("train.clip", JOB_FLOAT, clip, 0, 1e6, "global gradient-norm clip (0: off)"),
    F("train.seed", JOB_INT, seed, 0, 9.0e15, "data order and gold injection"),
    F("train.log_every", JOB_INT, log_every, 1, 1e9, "a log line every N updates"),
    F("train.ckpt_every", JOB_INT, ckpt_every, 0, 1e9, "a checkpoint every N updates (0: end)"),
    F("train.keep_last", JOB_INT, keep_last, 0, 1e6, "checkpoints kept (0: all)"),
    F("train.checksum_every", JOB_INT, checksum_every, 0, 1e9,
      "compare parameters across ranks every N updates (0: never)"),
    F("train.timeout_s", JOB_FLOAT, timeout_s, 0.1, 1e6, "bound on any wait for another rank"),
    F("train.threads", JOB_INT, threads, 0, TRN_THREADS_MAX,
      "rank 0's engine threads (0: REVEAL_THREADS, else OPENBLAS_NUM_THREADS, else 1)"),
};
#define N_FIELDS (sizeof fields / sizeof *fields)

void tr_config_default(tr_config *c) {
    memset(c, 0, sizeof *c);
    rvm_config m;
    rvm_config_default(&m);
    c->vocab = 1000;
    c->width = m.width;
    c->heads = m.heads;
    c->mlp_hidden = m.mlp_hidden;
    c->image_size = m.image_size;
    c->patch = m.patch;
    c->text_max = m.text_max;
    c->answer_max = m.answer_max;
    c->vit_blocks = m.vit_blocks;
    c->text_blocks = m.text_blocks;
    c->head_blocks = m.head_blocks;
    c->fusion_blocks = m.fusion_blocks;
    c->decoder_blocks = m.decoder_blocks;
    c->latents = m.latents;
    c->key_dim = m.key_dim;
    c->tau_scale = m.tau_scale;
    c->con_weight = m.con_weight;
    c->con_tau = m.con_tau;
    c->dis_weight = m.dis_weight;
    c->gap_weight = m.gap_weight;
    c->label_smoothing = m.label_smoothing;
    c->model_seed = 1;
    c->batch = 32;
    c->steps = 1000;
    c->warm_steps = 200;
    c->warm_others = 3;
    c->topk = 4;
    c->rho = 0.25;
    c->inject = 0.5;
    c->refresh_every = 100;
    c->lr = 2e-3;
    c->min_lr = 2e-3;
    c->warmup = 50;
    c->weight_decay = 0.01;
    c->clip = 1.0;
    c->seed = 1;
    c->log_every = 10;
    c->ckpt_every = 0;
    c->keep_last = 2;
    c->checksum_every = 50;
    c->timeout_s = 120;
}

/* The checks beyond each key's range, and the model config's own. */
static int config_check(tr_config *c, char *err) {
    if (!c->layout[0]) return rv_fail(err, "config: data.layout is required");
    if (!c->train[0]) return rv_fail(err, "config: data.train is required");
    if (c->warm_steps > c->steps)
        return rv_fail(err, "config: train.warm_steps %ld is more than train.steps %ld",
                       c->warm_steps, c->steps);
    if (c->warmup > c->steps)
        return rv_fail(err, "config: train.warmup %ld is more than train.steps %ld", c->warmup,
                       c->steps);
    if (c->edits[0] && c->edit_every <= 0)
        return rv_fail(err, "config: train.edits is set but train.edit_every is 0");
    if (c->min_lr > c->lr)
        return rv_fail(err, "config: train.min_lr %g is above train.lr %g", c->min_lr, c->lr);
    rvm_config m;
    tr_model_config(c, &m);
    m.vocab = (int)c->vocab;
    m.sources = 1;
    if (rvm_config_check(&m, err)) return rv_fail_wrap(err, "config: model");
    return 0;
}

int tr_config_load(tr_config *c, const char *path, char *const *sets, int n_sets, char *err) {
    return job_config_load(fields, N_FIELDS, c, path, sets, n_sets, err) || config_check(c, err)
               ? -1
               : 0;
}

int tr_config_load_text(tr_config *c, const char *text, const char *origin, char *const *sets,
                        int n_sets, char *err) {
    return job_config_load_text(fields, N_FIELDS, c, text, origin, sets, n_sets, err) ||
                   config_check(c, err)
               ? -1
               : 0;
}

char *tr_config_json(const tr_config *c) {
    return job_config_json(fields, N_FIELDS, c);
}

void tr_config_help(const tr_config *c, FILE *f) {
    job_config_help(fields, N_FIELDS, c, f);
}

void tr_model_config(const tr_config *c, rvm_config *m) {
    rvm_config_default(m);
    m->width = (int)c->width;
    m->heads = (int)c->heads;
    m->mlp_hidden = (int)c->mlp_hidden;
    m->image_size = (int)c->image_size;
    m->patch = (int)c->patch;
    m->text_max = (int)c->text_max;
    m->answer_max = (int)c->answer_max;
    m->vit_blocks = (int)c->vit_blocks;
    m->text_blocks = (int)c->text_blocks;
    m->head_blocks = (int)c->head_blocks;
    m->fusion_blocks = (int)c->fusion_blocks;
    m->decoder_blocks = (int)c->decoder_blocks;
    m->latents = (int)c->latents;
    m->key_dim = (int)c->key_dim;
    m->tau_scale = (float)c->tau_scale;
    m->con_weight = (float)c->con_weight;
    m->con_tau = (float)c->con_tau;
    m->dis_weight = (float)c->dis_weight;
    m->gap_weight = (float)c->gap_weight;
    m->label_smoothing = (float)c->label_smoothing;
    m->uniform_gate = c->uniform_gate;
    m->omega_off = c->omega_off;
    m->head_pool = c->head_pool;
    m->seed = (uint64_t)c->model_seed;
    m->bos_id = TRN_TOK_BOS;
    m->eos_id = TRN_TOK_EOS;
}
