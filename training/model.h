/* training/model.h — the REVEAL model of DESIGN.md §3 in one process: unified encoder b(x),
 * query / key heads and the Perceiver value head, the retriever maths over caller-chosen
 * candidates (gate, learned temperature, p(m|x)), attentive fusion, the decoder, the losses,
 * and greedy answering. docs/model.md records every choice made here.
 *
 * Who decides what:
 * - The caller (the trainer, the coordinator) chooses the candidates of every query: per
 *   source j its K_j items, each either STORED (its key and value, constants, e.g. from the
 *   memory), RE-ENCODED (its raw tokens and picture, encoded here with gradient by the key
 *   and value heads) or FRESH (encoded with gradient by rvm_encode_grad elsewhere, e.g. on the
 *   worker owning the source; the step returns its key and value gradients). The top-K
 *   search, the ρ fraction, gold injection and the warm start's in-batch items are all
 *   expressed by what the caller puts in rvm_candidates.
 * - The model computes everything from the encoder to the loss, forward and backward, and
 *   ADDS the gradient into its flat gradient buffer (the caller zeroes it once per step).
 *
 * Text conventions: token ids come WITHOUT BOS and EOS; the model puts BOS in front of every
 * query and item text (position 0 feeds the query and key heads) and builds the decoder input
 * BOS + answer and the targets answer + EOS itself.
 *
 * Precision: like layers.h, every per-model declaration exists twice, rvm_<name> over float
 * (training) and rvm_<name>_d over double (gradient checks), compiled from one source.
 * Stored keys and values, fresh candidates' keys, values and their gradients, gold keys, and
 * all returned keys, values and queries are float in both.
 *
 * Memory: a model owns one workspace arena that grows to the largest batch seen; no call
 * allocates anything else. Pointers returned in rvm_step_out point into that arena and stay
 * valid until the next call on the same model. A model is not thread-safe.
 */
#ifndef RVM_PASS
#ifndef RVM_MODEL_H
#define RVM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "params.h"

typedef struct {
    /* ---- structure (fixed once a model is built) ---- */
    int vocab;          /* V: token ids in [0, V); the output projection is tied to the embedding */
    int width;          /* d: width of every stack */
    int heads;          /* attention heads (width divisible by heads) */
    int mlp_hidden;     /* H: gated-GELU MLP width */
    int image_size;     /* pictures are image_size × image_size RGB, uint8 (rows, columns, RGB) */
    int patch;          /* p: ViT patch side (divides image_size) */
    int text_max;       /* most text tokens of a query or item, BOS included */
    int answer_max;     /* most decoder positions: BOS + answer (= answer + EOS targets) */
    int vit_blocks;     /* L_vit */
    int text_blocks;    /* L_low */
    int head_blocks;    /* L_f: blocks of each of the query, key and value heads */
    int fusion_blocks;  /* L_fuse */
    int decoder_blocks; /* L_dec */
    int latents;        /* c: value tokens per item */
    int key_dim;        /* dk */
    int sources;        /* S: knowledge sources the gate chooses among */
    int bos_id, eos_id; /* special token ids (the project tokenizer: BOS 1, EOS 2) */
    float tau_scale;    /* 1/τ = tau_scale · σ(θ) */
    int head_pool;      /* query / key readout: 0 position 0 (BOS), 1 the mean over the row's
                           real tokens (docs/model.md, "Query and key readout") */
    uint64_t seed;      /* initialisation */
    /* ---- behaviour (may be changed between calls on a built model) ---- */
    float con_weight;      /* r: L = (1−r)·L_gen + r·L_con + ... */
    float con_tau;         /* τ_c of the contrastive loss */
    float dis_weight;      /* λ_dis */
    float gap_weight;      /* λ_gap */
    float label_smoothing; /* ε of the generation cross-entropy */
    int uniform_gate;      /* 1: g = 1/S for every source (ablation: gate off) */
    int omega_off;         /* 1: ω ≡ 1 (ablation: fusion weights off) */
} rvm_config;

/* Token ids without BOS / EOS. */
typedef struct {
    const int32_t *ids; /* (n) */
    int n;
} rvm_text;

/* A query or a knowledge item: text and an optional picture. */
typedef struct {
    rvm_text text;        /* at most text_max − 1 ids (BOS is added) */
    const uint8_t *image; /* (image_size, image_size, 3) or NULL: no image tokens */
} rvm_input;

/* One retrieved (or supplied) item. Exactly one of three forms:
 * re-encoded: item != NULL, key, value, dkey, dvalue NULL — its key and value are computed
 *             from the raw item with gradient (key head, value head, encoder) in this call;
 * stored:     item == NULL, key and value given, dkey == dvalue == NULL — constants;
 * fresh:      item == NULL, key and value given AND dkey, dvalue given — encoded with gradient
 *             elsewhere (rvm_encode_grad, e.g. on the worker that owns the source): rvm_step
 *             ADDS ∂L/∂key and ∂L/∂value into dkey and dvalue (rvm_forward leaves them).
 * Re-encoded candidates with the same item pointer are one item (encoded once); fresh
 * candidates with the same key pointer are one item (same value, dkey, dvalue pointers): its
 * gradients add up once, and the value regularisers count each item once. The buffers are
 * float in both precisions. */
typedef struct {
    const rvm_input *item;
    const float *key;   /* (dk) L2-normalised, as rvm_encode_items writes it */
    const float *value; /* (c, d) */
    float *dkey;        /* (dk) fresh only: ∂L/∂key is added */
    float *dvalue;      /* (c, d) fresh only: ∂L/∂value is added */
} rvm_candidate;

/* The candidates of a batch of B queries. Every row has the same layout: the K_0 candidates
 * of source 0, then the K_1 of source 1, ...: M = Σ_j K_j per row, cand is (B, M).
 * Memory training: n_sources = cfg.sources, p(m|x) = g_j · softmax_{i ∈ j}(Rel/τ).
 * Warm start: warm = 1, n_sources = 1 (one pseudo-source, e.g. the row's own gold item and the
 * gold items of other rows, all re-encoded), no gate: p(m|x) = softmax over the K_0 items.
 * Memory removed: n_sources = 0 or every K_j = 0 (or the whole struct NULL): M = 0, the
 * decoder reads the query tokens only. */
typedef struct {
    int n_sources;
    const int *k;              /* (n_sources) K_j ≥ 0 */
    int warm;                  /* 1: one pseudo-source without gate (see above) */
    const rvm_candidate *cand; /* (B, M) */
} rvm_candidates;

/* A training or evaluation batch. */
typedef struct {
    int B;
    const rvm_input *queries;      /* (B) */
    const rvm_candidates *cands;   /* or NULL: M = 0 */
    const rvm_text *answers;       /* (B) at most answer_max − 1 ids each (EOS is added) */
    const rvm_input *gold;         /* (B) each row's pseudo ground-truth item for L_con, encoded
                                      by the key head with gradient; may be NULL when con_weight
                                      is 0. Rows sharing a gold item are accepted as they are
                                      (docs/model.md, "Losses"). */
    const float *const *gold_keys; /* (B) or NULL: instead of gold, each row's gold key (dk),
                                      encoded with gradient elsewhere (rvm_encode_grad); rows
                                      sharing a gold item share the pointer */
    float *const *gold_dkeys;      /* (B) with gold_keys: rvm_step ADDS ∂L_con/∂key into each
                                      (a shared pointer receives every row's part) */
} rvm_batch;

/* The defaults of LEARNING.md's small REVEAL (set vocab to the tokenizer's size). */
void rvm_config_default(rvm_config *c);
/* Refuses a config that cannot build or run, naming the field and the allowed range. Every
 * call also validates its inputs (rows, slots, token positions are named in the message). */
int rvm_config_check(const rvm_config *c, char *err);

/* The parameter table of a config (names such as "vit.block0.attn.wq", shapes, learning-rate
 * multipliers, weight decay): *specs is malloc'ed, free it with rvm_param_specs_free. */
int rvm_param_specs(const rvm_config *c, trn_tensor_spec **specs, int *n, char *err);
void rvm_param_specs_free(trn_tensor_spec *specs, int n);
/* The parameter group of a tensor name: the text before its first '.' (e.g. "vit", "qhead"). */
void rvm_param_group(const char *name, char *group, size_t n);

#define RVM_PASS
#define trn_real  float
#define RVM(name) rvm_##name
#include "model.h"
#undef trn_real
#undef RVM
#define trn_real  double
#define RVM(name) rvm_##name##_d
#include "model.h"
#undef trn_real
#undef RVM
#undef RVM_PASS

#endif /* RVM_MODEL_H */
#else  /* RVM_PASS: the per-precision declarations */

struct RVM(state);

typedef struct {
    rvm_config cfg;
    trn_params params;      /* the tensor table and layout; the float model trains params.params
                               with gradients in params.grads (m, v are AdamW's) */
    trn_real *w;            /* (params.total) parameters in this precision (float: params.params) */
    trn_real *g;            /* (params.total) gradients (float: params.grads); calls ADD to it */
    struct RVM(state) * st; /* private: weight views and the workspace arena */
} RVM(model);

/* What a forward (and backward) pass reports. Pointers are into the model's arena. */
typedef struct {
    double loss;            /* (1−r)·gen + r·con + λ_dis·dis + λ_gap·gap */
    double gen, con;        /* generation cross-entropy (per target token), InfoNCE */
    double dis, gap;        /* regularisers over the re-encoded values (0 when none) */
    int B, M, S;            /* rows, candidates per row, gate width (S = 1 in warm start) */
    int T;                  /* decoder positions of this batch (longest answer + 1) */
    trn_real inv_tau;       /* 1/τ */
    const trn_real *p;      /* (B, M) p(m|x) */
    const trn_real *gate;   /* (B, S) g(x) (1 in warm start; 1/S with uniform_gate) */
    const int32_t *pred;    /* (B, T) argmax under teacher forcing; pred[b,t] guesses target t */
    const int32_t *target;  /* (B, T) answer + EOS, −1 past the end */
    const uint8_t *correct; /* (B) 1 when every target of the row is predicted (exact match) */
} RVM(step_out);

/* Builds a model: checks the config, lays out the parameters, initialises them from cfg->seed. */
int RVM(model_init)(RVM(model) * m, const rvm_config *cfg, char *err);
/* A view of m: the same parameter and gradient buffers (w, g, params), its own workspace arena
 * and a copy of m->cfg. A rank holds an item encoder (rvm_encode_grad activations waiting for
 * their gradients) beside the model that runs the step. An optimiser update of m (or
 * rvm_model_set_params) is seen by the view, and the view's gradients land in m->g. Calls on
 * a view and on its model must not run at the same time (both add into g). Free the view
 * (rvm_model_free frees only its own parts) before m. */
int RVM(model_view)(RVM(model) * view, RVM(model) * m, char *err);
void RVM(model_free)(RVM(model) * m);
/* Copies a float parameter buffer of m->params.total floats (a checkpoint, or the float model
 * into the double one for checks). */
int RVM(model_set_params)(RVM(model) * m, const float *src, size_t n, char *err);

/* Forward pass only: the losses and diagnostics, no gradient. */
int RVM(forward)(RVM(model) * m, const rvm_batch *batch, RVM(step_out) * out, char *err);
/* Forward and backward: as rvm_forward, then ADDS ∂L/∂θ into m->g. */
int RVM(step)(RVM(model) * m, const rvm_batch *batch, RVM(step_out) * out, char *err);

/* Memory refresh, no gradient: keys (n, dk) L2-normalised and values (n, c, d) of n items.
 * Either output may be NULL. */
int RVM(encode_items)(RVM(model) * m, const rvm_input *items, int n, float *keys, float *values,
                      char *err);
/* Split encoding (distributed training, docs/model.md): the key and value heads over n ≥ 1
 * items WITH gradient. keys (n, dk) L2-normalised and values (n, c, d) are written, bit-equal
 * to rvm_encode_items; the activations stay in m's arena for rvm_encode_backward. */
int RVM(encode_grad)(RVM(model) * m, const rvm_input *items, int n, float *keys, float *values,
                     char *err);
/* ADDS ∂L/∂θ into m->g given dkeys (n, dk) and dvalues (n, c, d) of the items of the preceding
 * rvm_encode_grad (either may be NULL: zero). Refused unless the last call on m was
 * rvm_encode_grad; once done, the activations are spent. The parameters must not change in
 * between (the backward reads the current ones). */
int RVM(encode_backward)(RVM(model) * m, const float *dkeys, const float *dvalues, char *err);
/* Queries for the top-K search, no gradient: q (n, dk), L2-normalised. */
int RVM(encode_queries)(RVM(model) * m, const rvm_input *queries, int n, float *q, char *err);

/* Greedy answers, no gradient: for each of the B queries fused with its candidates, tokens
 * until EOS or max_len (≤ answer_max − 1) tokens. out (B, max_len) holds the answer ids
 * (EOS not included), len (B) their counts; p (B, M) receives p(m|x) when not NULL. */
int RVM(answer)(RVM(model) * m, const rvm_input *queries, int B, const rvm_candidates *cands,
                int max_len, int32_t *out, int *len, float *p, char *err);

#endif /* RVM_PASS */
