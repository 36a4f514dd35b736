/* trainer/trainer.h — REVEAL trained over knowledge stores, in one process or as an MPI job
 * (DESIGN.md §4; docs/train.md). The `reveal train`, `refresh`, `eval` and `answer` commands are
 * thin on top of it.
 *
 * Who does what:
 * - A shard (tr_shard) is one store of the layout held in RAM by the rank that owns it: every
 *   item's tokens and picture, its stored key and value with their encoder version, and the
 *   top-K index over the keys. It answers a QueryBatch with a TopKReply (top-K ids, scores,
 *   stored keys and values; for training also the best fresh[j] items and the asked gold
 *   items re-encoded WITH gradient), takes the ItemGrads of what it re-encoded and runs the
 *   backward into its rank's gradient buffer, then writes the fresh keys and values back.
 * - Ranks 1..W own the shards of the layout, store i on rank 1 + i mod W; with one process
 *   (W = 0) rank 0 owns every shard and calls them in-process. Either way the same messages
 *   (protobuf structs) go in and out, so one process and an MPI job compute the same thing.
 * - Rank 0 holds the task (questions, pictures, answers), the tokenizer, and runs the model's
 *   step over the candidates it assembles from the replies (shards of a source merged).
 *   Gradients of every rank are summed with MPI_Allreduce; every rank applies the same AdamW
 *   step to its own copy of the parameters.
 *
 * Dimension letters: B rows, S sources, K candidates per source, R re-encoded per source
 * (ceil(rho·K)), dk key width, c value tokens, d model width.
 */
#ifndef TRAINER_H
#define TRAINER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"
#include "reveal.pb-c.h"
#include "tokenizer.h"
#include "worker.h"

struct comm;
struct mem_store;

/* ---- Config (config.c) ---------------------------------------------------------------- */

#define TR_PATH_MAX 1024

typedef struct {
    char layout[TR_PATH_MAX]; /* data.layout: sources → stores (worker.h layout JSON) */
    char train[TR_PATH_MAX];  /* data.train: training questions (JSONL, docs/train.md) */
    char dev[TR_PATH_MAX];    /* data.dev: evaluated at the end of training ("" : none) */
    long vocab;               /* tokenizer.vocab: SentencePiece pieces */
    /* model.* (rvm_config) */
    long width, heads, mlp_hidden, image_size, patch, text_max, answer_max;
    long vit_blocks, text_blocks, head_blocks, fusion_blocks, decoder_blocks, latents, key_dim;
    double tau_scale, con_weight, con_tau, dis_weight, gap_weight, label_smoothing;
    int uniform_gate, omega_off, head_pool;
    long model_seed;
    /* train.* */
    long batch, steps, warm_steps, warm_others, topk;
    double rho, inject;
    long refresh_every;      /* R: the whole memory re-encoded every R updates (0: never) */
    char edits[TR_PATH_MAX]; /* train.edits: a directory of edit rounds ("": none) */
    long edit_every;         /* an edit round applied every N updates (0: never) */
    double lr, min_lr, weight_decay, clip;
    long warmup;
    long seed;           /* data order, injection */
    long log_every;      /* a log line every N updates */
    long ckpt_every;     /* a checkpoint every N updates (0: only at the end) */
    long keep_last;      /* checkpoints kept (0: all) */
    long checksum_every; /* parameters compared across ranks every N updates (0: never) */
    double timeout_s;    /* bound on any wait for a peer (a lost rank ends the job) */
    long threads;        /* rank 0's engine threads (0: from the environment; workers always) */
} tr_config;

void tr_config_default(tr_config *c);
/* Defaults, then the file (may be NULL), then the "key=value" overrides; checks ranges. */
int tr_config_load(tr_config *c, const char *path, char *const *sets, int n_sets, char *err);
/* The same from config text (a checkpoint's resolved config), `origin` naming it. */
int tr_config_load_text(tr_config *c, const char *text, const char *origin, char *const *sets,
                        int n_sets, char *err);
/* The resolved config as JSON text (malloc'ed). */
char *tr_config_json(const tr_config *c);
void tr_config_help(const tr_config *c, FILE *f);
/* The model config of a trainer config (vocab, sources and special ids filled by the caller). */
void tr_model_config(const tr_config *c, rvm_config *m);

/* ---- Task data (task.c) --------------------------------------------------------------- */

typedef struct {
    char *id;       /* the line's "id", or "line N" */
    char *question; /* text */
    char *answer;   /* the training target */
    char **answers; /* accepted answers (at least the answer) */
    int n_answers;
    char *type;      /* question type for reports ("" when absent) */
    char *gold_key;  /* logical key of the gold item ("" when absent) */
    int gold_source; /* layout source of the gold item, -1 when absent */
    uint8_t *pixels; /* (image_size, image_size, 3) */
} tr_row;

typedef struct {
    tr_row *rows;
    size_t n;
} tr_task;

/* Captioning rows ("image" and "caption" only) ask this and have this type. */
#define TR_CAPTION_PROMPT "caption"
#define TR_CAPTION_TYPE   "caption"

/* Reads a task file (image_size 0: pictures not loaded): JSON Lines with "image" (path relative to
 * the file), "question", "answer", optional "answers" (list), "type", "id", and the gold item as
 * "gold_key" (or "gold") with "gold_source" (a layout source name or a store type; default: the
 * layout's kg source). Errors name file:line and the field. */
int tr_task_load(tr_task *t, const char *path, const wrk_layout *l, uint32_t image_size, char *err);
void tr_task_free(tr_task *t);

/* ---- Shards (shard.c) ----------------------------------------------------------------- */

typedef struct tr_shard tr_shard;

/* Opens store `index` of the layout (its path, or `path` when not NULL: a working copy) and
 * reads every item's text and picture into RAM. */
int tr_shard_open(const wrk_layout *l, uint32_t index, const char *path, int writable,
                  uint32_t image_size, tr_shard **out, char *err);
void tr_shard_free(tr_shard *s);
size_t tr_shard_count(const tr_shard *s);
uint32_t tr_shard_source(const tr_shard *s);
uint32_t tr_shard_index(const tr_shard *s);
const char *tr_shard_name(const tr_shard *s);
struct mem_store *tr_shard_store(tr_shard *s);
/* The encoder text of item i (for the tokenizer), NUL-terminated, owned by the shard. */
const char *tr_shard_text(const tr_shard *s, size_t i);
/* Tokenises every item and binds the shard to a model (an item encoder view is made of it:
 * the shard's backward adds into the model's gradient buffer). */
int tr_shard_bind(tr_shard *s, const trn_tokenizer *tok, rvm_model *m, char *err);
/* Memory: loads the stored keys and values of every item; items without vectors, or with
 * another shape, are encoded now (version `version`, written to the store when writable).
 * *encoded receives how many, *stale (may be NULL) how many loaded ones carry another version. */
int tr_shard_load_memory(tr_shard *s, uint32_t version, size_t *encoded, size_t *stale, char *err);
/* The stored encoder version of every item (0: no key and value of this model's shape), for a
 * refresh that reads nothing else. */
int tr_shard_load_versions(tr_shard *s, char *err);
/* Re-encodes items (all = 1: every item; 0: those whose version differs from `version`) and
 * writes them to RAM, the index (when loaded) and the store (when writable), with a progress
 * line every 5 s. *encoded receives how many. */
int tr_shard_refresh(tr_shard *s, int all, uint32_t version, size_t *encoded, char *err);
/* Edit rounds (counterfactual knowledge during training): the texts of the items named by the
 * lines of `file` (ingest JSON Lines of the store's type, matched by logical key; keys of other
 * shards are skipped; a missing file changes nothing) replace their stored texts in RAM, and
 * every other item returns to its stored text; file NULL restores every item. The store is
 * never written. Changed items are re-tokenised and, when encode, re-encoded with `version`;
 * *changed receives how many changed. */
int tr_shard_edit(tr_shard *s, const char *file, int encode, uint32_t version, size_t *changed,
                  char *err);
/* QueryBatch → *reply (owned by the shard until its next call). */
int tr_shard_serve(tr_shard *s, const Reveal__QueryBatch *q, Reveal__TopKReply **reply, char *err);
/* ItemGrads of the last training query: backward of what was used, into the model's
 * gradients; the used items' fresh keys and values become their stored ones (version). */
int tr_shard_apply(tr_shard *s, const Reveal__ItemGrads *g, uint32_t version, char *err);

/* The stored text of item `id`, or NULL when the shard does not hold it. */
const char *tr_shard_text_of(const tr_shard *s, uint64_t id);

/* ---- The training job (peers.c, batch.c, edits.c, run.c) ------------------------------- */

typedef struct {
    const char *config_path; /* NULL: defaults */
    char *const *sets;
    int n_sets;
    const char *run_dir;
    const char *resume; /* "auto" (default), "never" or a checkpoint path */
    long keep_last;     /* < 0: from the config */
} tr_train_args;

/* Exit codes: TR_EXIT_ABORT is a failure of one rank after set-up, which the caller turns into
 * MPI_Abort (the other ranks may be waiting for it); every other code is the process's. */
enum { TR_EXIT_OK = 0, TR_EXIT_FAIL = 1, TR_EXIT_ABORT = 3, TR_EXIT_STOPPED = 75 };

/* `reveal train` on every rank (MPI initialised by the caller). Returns 0 done, 1 a failure every
 * rank agreed on (printed once by rank 0), TR_EXIT_ABORT, or 75: stopped by SIGTERM/SIGUSR1
 * after a checkpoint. */
int tr_train_main(const tr_train_args *a);

/* ---- Using a trained model over the users' stores (serve.c) ---------------------------- */

typedef struct {
    const char *checkpoint; /* a checkpoint directory or its model.ckpt */
    const char *layout;     /* NULL: the checkpoint's data.layout */
    int stale_only;         /* refresh: only new, changed and stale items */
    const char *data;       /* eval: task file */
    const char *json;       /* eval: also write the results as JSON here (NULL: no) */
    int no_memory;          /* eval: memory removed only */
    const char *sources;    /* eval: comma-separated source names searched (NULL: all) */
    long topk;              /* eval, answer: K per source (0: the checkpoint's train.topk) */
    const char *image;      /* answer */
    const char *question;   /* answer */
    int show;               /* answer: retrieved items printed */
} tr_serve_args;

/* Each returns an exit code like tr_train_main (TR_EXIT_ABORT: the caller aborts the job). */
int tr_refresh_main(const tr_serve_args *a);
int tr_eval_main(const tr_serve_args *a);
int tr_answer_main(const tr_serve_args *a);

#endif
