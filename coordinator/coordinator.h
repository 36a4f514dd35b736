/* coordinator/coordinator.h — REVEAL training in one process on the generated world
 * (world/world.h): the in-process memory (one per knowledge source: items, their tokens and
 * pictures, stored keys and values with the encoder version, a wrk_topk index over the keys),
 * batches with candidates from the real top-K, the training recipe of LEARNING.md (warm start,
 * memory training with gold injection, continual fact edits with memory refresh), and the
 * evaluations (answer accuracy with and without memory, recall@K, p(gold|x), knowledge edits).
 * docs/learning.md describes the recipe, its choices and measured curves.
 *
 * Dimension letters: B batch rows, S memory sources, K candidates per source, M = S·K
 * candidates per row, N_j items of source j, dk key width, c value tokens, d model width.
 */
#ifndef COORDINATOR_H
#define COORDINATOR_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "optim.h"
#include "tokenizer.h"
#include "world.h"
#include "worker.h"

#define COORD_MAX_SOURCES 4

typedef struct {
    world_config world;
    rvm_config model; /* model.vocab and model.sources are set from the tokenizer and
                         n_sources when the trainer is built */
    int n_sources;    /* S: memory sources, in the order of source_types */
    world_source source_types[COORD_MAX_SOURCES];
    int tok_vocab;        /* BPE vocabulary trained on the world's texts; 0: automatic, large
                             enough that every word of the world is one token */
    int batch;            /* B */
    long steps;           /* updates in coord_train */
    long warm_steps;      /* warm start: the first warm_steps updates */
    int warm_others;      /* warm start: gold items of this many other rows fused per row */
    long warm_ramp;       /* warm start curriculum: M = 1, 2, 4, … fused items, each stage
                             warm_ramp updates, until M = 1 + warm_others (0: from the start) */
    int topk;             /* K per source */
    float rho;            /* re-encode ratio: the best ceil(rho·K) per source with gradient */
    float inject;         /* fraction of training rows whose gold item is injected */
    int memory_off;       /* 1: closed book, no candidates at all (ablation) */
    long edit_every;      /* R: facts re-drawn and memory refreshed every R updates (0: never) */
    double edit_fraction; /* share of facts re-drawn at each edit */
    trn_adamw_config opt;
    long log_every; /* a curve line every N updates (0: none) */
    int eval_rows;  /* test questions the curve's evaluation uses (0: all) */
    uint64_t seed;  /* data order, injection, edits */
} coord_config;

/* One knowledge source in memory: items of one world source type, in world order. */
typedef struct {
    world_source type;
    size_t n;          /* N_j */
    size_t *item;      /* (N_j) index into world.items */
    float *keys;       /* (N_j, dk) stored keys, L2-normalised */
    float *values;     /* (N_j, c, d) stored values */
    uint32_t *version; /* (N_j) encoder version the stored key / value were computed with */
    uint8_t *stale;    /* (N_j) 1: content changed since it was encoded */
    wrk_topk *index;   /* over keys, id = position in this source */
} coord_source;

typedef struct {
    int n_sources;
    coord_source src[COORD_MAX_SOURCES];
    int key_dim, value_floats; /* dk, c·d */
} coord_memory;

/* Token ids of every world item, question and answer (no BOS / EOS), and the model inputs
 * built on them (pictures point into the world). Rebuilt for the items an edit changes. */
typedef struct {
    int item_cap, answer_cap; /* ids per item / question text, ids per answer */
    int32_t *item_ids;        /* (n_items, item_cap) */
    rvm_input *items;         /* (n_items) */
    int32_t *question_ids;    /* (n_questions, item_cap) */
    rvm_input *questions;     /* (n_questions) */
    int32_t *answer_ids;      /* (n_questions, answer_cap) */
    rvm_text *answers;        /* (n_questions) */
    uint8_t *item_cut;        /* (n_items) 1: the item's text was cut to item_cap ids */
    size_t cut;               /* questions and answers cut to fit */
} coord_texts;

/* Diagnostics of one training update. */
typedef struct {
    long step;
    int warm;
    double loss, gen, con;
    double train_acc; /* share of rows answered exactly (teacher forcing) */
    double p_gold;    /* mean p(gold|x) over rows (0 for a row whose gold is not fused) */
    double recall;    /* share of rows whose gold is in the top-K of its source (memory stage,
                         before injection) */
    double inv_tau, gate_entropy;
    double ms; /* wall time of the whole update */
    float lr, grad_norm;
} coord_step_stats;

/* What an evaluation on a set of questions measured. */
typedef struct {
    size_t n;
    double acc;         /* greedy answer equals the current fact, with memory */
    double acc_old;     /* greedy answer equals old_answer (edit evaluation only) */
    double acc_nomem;   /* same model, memory removed */
    double recall;      /* gold item among the top-K of its source */
    double p_gold;      /* mean p(gold|x) (0 when not retrieved) */
    double p_gold_warm; /* mean p(gold|x) when fused with the gold items of warm_others others */
} coord_eval;

typedef struct {
    coord_config cfg;
    world *w;
    trn_tokenizer *tok;
    rvm_model model;
    coord_texts texts;
    coord_memory mem;
    uint32_t encoder_version; /* bumped by every parameter update */
    long step;                /* updates applied */
    long edits;               /* continual edits applied */
    size_t *order;            /* (n_train) training questions, shuffled per epoch */
    size_t order_pos;
    long epoch;
    struct coord_scratch *scratch;
} coord_trainer;

void coord_config_default(coord_config *c);
/* The mechanism run of docs/learning.md: retrieval learned through the fusion weights alone.
 * A small world (16 entities × 4 relations), contrastive loss off, facts re-drawn every 10
 * updates; the whole run is warm start: each row fused with its gold item and the gold items of
 * 7 other rows (M = 8), reached by the curriculum M = 1, 2, 4, 8 (250 updates each, then 250 at
 * M = 8); the query and key heads read the mean over the row's tokens (head_pool); 1/τ starts
 * at 5 (tau_scale 10). */
void coord_config_mechanism(coord_config *c);
int coord_config_check(const coord_config *c, char *err);

/* Tokenizer trained on every item text and question of the world (deterministic). */
int coord_tokenizer_train(const world *w, int vocab, trn_tokenizer **tok, char *err);
/* The text a world item contributes to memory (malloc'ed). */
char *coord_item_text(const world_item *it);

int coord_texts_init(coord_texts *t, const world *w, const trn_tokenizer *tok, int item_cap,
                     int answer_cap, char *err);
/* Re-tokenises the given items and every answer (after an edit). */
int coord_texts_update(coord_texts *t, const world *w, const trn_tokenizer *tok,
                       const size_t *items, size_t n, char *err);
void coord_texts_free(coord_texts *t);

int coord_memory_init(coord_memory *mem, const world *w, const world_source *types, int n_sources,
                      int key_dim, int value_floats, char *err);
void coord_memory_free(coord_memory *mem);
/* Marks the memory entries of changed world items stale. */
void coord_memory_mark(coord_memory *mem, const world_edit *edit);
/* Re-encodes every entry (all = 1) or only the stale ones with the model's current parameters
 * and updates the index. *encoded (may be NULL) receives the number of items encoded. */
int coord_memory_refresh(coord_memory *mem, rvm_model *m, const coord_texts *t, int all,
                         uint32_t version, size_t *encoded, char *err);
/* Source and position of world item `item`, or -1. */
int coord_memory_find(const coord_memory *mem, size_t item, size_t *pos);

/* Builds the world, tokenizer, model and memory (fully encoded). */
int coord_trainer_init(coord_trainer *t, const coord_config *cfg, char *err);
void coord_trainer_free(coord_trainer *t);
/* Other rows' gold items fused per row at warm-start update `step` (the warm_ramp curriculum). */
int coord_warm_others(const coord_config *c, long step);
/* One update (warm start while step < warm_steps, else memory training). */
int coord_train_step(coord_trainer *t, coord_step_stats *st, char *err);
/* cfg.steps updates with continual edits and a curve line every log_every updates. */
int coord_train(coord_trainer *t, char *err);
/* Re-draws a fraction of the facts and updates texts and memory (stale entries re-encoded
 * when reencode_all is 0, every entry when 1). *edit_out (may be NULL) keeps the edit record. */
int coord_edit(coord_trainer *t, double fraction, uint64_t seed, int reencode_all,
               world_edit *edit_out, size_t *encoded, char *err);

/* Evaluates questions qs (n indices into world.questions); old_answer (n) or NULL: the answers
 * an edit replaced, counted in acc_old. */
int coord_evaluate(coord_trainer *t, const size_t *qs, size_t n, const char *const *old_answer,
                   coord_eval *ev, char *err);
/* The first n (0: all) test questions, for coord_evaluate (malloc'ed). */
size_t *coord_test_questions(const world *w, size_t n, size_t *count);

/* Saves / loads the trained parameters with the tokenizer and the config (JSON). */
int coord_save(coord_trainer *t, const char *path, char *err);
int coord_load(coord_trainer *t, const char *path, char *err);

#endif
