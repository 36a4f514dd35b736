/* trainer/tr_impl.h — private to trainer/: the state every rank of a job holds, and the parts
 * (peers.c: ranks and messages; batch.c: rank 0's candidates; eval.c; run.c: the loop). */
#ifndef TR_IMPL_H
#define TR_IMPL_H

#include "ckpt.h"
#include "comm.h"
#include "metrics.h"
#include "optim.h"
#include "trainer.h"

/* Raw MPI tags of the set-up exchanges (protobuf kinds use 1..COMM_KIND_LAST). */
enum { TR_TAG_TEXTS = 101 };

typedef struct {
    comm *c;
    int rank, size, W; /* W worker ranks: size − 1 */
    wrk_layout *l;
    int *owner;        /* (n_stores) rank holding each store */
    tr_shard **shards; /* (n_stores) this rank's shards, NULL for others' */
    tr_config cfg;
    rvm_config mcfg;
    trn_tokenizer *tok;
    rvm_model model;
    trn_adamw_config opt;
    long step;        /* updates applied */
    uint32_t version; /* encoder version of a checkpoint's parameters (refresh, eval, answer) */
    double timeout_s;
    /* rank 0 */
    tr_task task;
    int32_t *q_ids;     /* (n, text_max − 1) */
    rvm_input *queries; /* (n) */
    int32_t *a_ids;     /* (n, answer_max − 1) */
    rvm_text *answers;  /* (n) */
    size_t *order;      /* (n) training order of this epoch */
    tr_task orig;       /* the task's answers as in data.train (pictures not loaded) */
    char **rounds;      /* (n_rounds) edit round directories, in name order */
    size_t n_rounds;
    /* replies of the last exchange, by store (rank 0) */
    Reveal__TopKReply **replies; /* (n_stores) */
    comm_msg *reply_msgs;        /* (n_stores) received messages (remote stores) */
} tr_job;

/* Timings of one update, in ms. */
typedef struct {
    double refresh, edit; /* the periodic memory refresh and edit round before this update */
    double retrieval, fusion, backward, allreduce, total;
} tr_times;

/* peers.c */
int tr_job_layout(tr_job *j, const char *layout_path, char *err);
int tr_job_open_shards(tr_job *j, const char *work_dir, int writable, char *err);
int tr_job_gather_texts(tr_job *j, char ***texts, size_t *n, char *err);
int tr_job_bcast_bytes(tr_job *j, void **buf, size_t *n, char *err);
int tr_exchange(tr_job *j, const Reveal__QueryBatch *q, char *err);
void tr_exchange_release(tr_job *j);
int tr_send_grads(tr_job *j, Reveal__ItemGrads *const *g, char *err);
int tr_control(tr_job *j, int command, uint64_t step, const char *path, char *err);
/* The same for a whole Control message (REFRESH with a version and stale_only); *done (may be
 * NULL) receives the items encoded over every rank. */
int tr_control_msg(tr_job *j, const Reveal__Control *ctl, uint64_t *done, char *err);
int tr_allreduce_grads(tr_job *j, char *err);
int tr_checksum(tr_job *j, char *err);
int tr_worker_loop(tr_job *j, char *err);
/* Rank 0 and workers: the update after the gradients are summed. */
int tr_apply_update(tr_job *j, trn_adamw_stats *st, char *err);
/* A control command on every store of the job (local shards in-process); path as in Control,
 * encode 0 only for EDIT (texts only). */
int tr_control_ex(tr_job *j, int command, uint64_t step, const char *path, int encode, char *err);

/* run.c: set-up shared by every command. */
int tr_bcast_string(tr_job *j, char *s, size_t cap, char *err);
/* The tokenizer: trained on the stores' texts and the task's questions and answers, or (resumed)
 * the checkpoint's, whose file rank 0 holds open in ck; every rank loads the same bytes. */
int tr_setup_tokenizer(tr_job *j, int resumed, const trn_ckpt *ck, char *err);
/* The model on every rank from rank 0's parameters (fresh, or the checkpoint's in ck). */
int tr_setup_model(tr_job *j, const trn_ckpt *ck, char *err);
void tr_job_free(tr_job *j);

/* edits.c: counterfactual edit rounds during training (rank 0). */
int tr_edits_open(tr_job *j, char *err);
/* Applies the round active after the edit at update `at` (texts, answers); round NULL (at < 0)
 * restores data.train's. */
int tr_edits_apply(tr_job *j, long at, int encode, char *err);

/* batch.c: one training update on rank 0. */
typedef struct {
    float score;
    uint64_t id;
    size_t store, at; /* the reply it came from and its index there (row·k + rank) */
} tr_hit;
/* The replies' results for row b of source src, merged over the source's stores: best first,
 * equal scores by id (as one store would rank them). hits holds Σ k of those replies. */
size_t tr_merge_hits(const tr_job *j, int src, int b, tr_hit *hits);
/* Candidates per source in the replies (the K asked, or fewer when a source holds fewer items):
 * ks (S); returns M, their sum. */
int tr_source_counts(const tr_job *j, const uint32_t *k, int *ks);
typedef struct {
    double loss, gen, con, train_acc, p_gold, recall, inv_tau;
    int warm;
    float lr, grad_norm;
    tr_times ms;
} tr_step_stats;
int tr_train_step(tr_job *j, tr_step_stats *st, char *err);

/* eval.c: greedy answers to a task's questions, scored against their accepted answers. */
typedef struct {
    int memory;                /* 0: memory removed (the decoder reads the question only) */
    long topk;                 /* K per searched source */
    const uint8_t *use_source; /* (S) 1: searched; NULL: every source */
} tr_eval_opts;
typedef struct {
    size_t n;
    double acc;              /* mean accuracy (exact match after VQA normalisation) */
    double recall;           /* gold item among the top-K of its source (rows with a gold) */
    size_t n_gold;           /* rows with a gold item whose source was searched */
    trn_score_table by_type; /* accuracy per question type */
    size_t n_captions;       /* captioning rows, scored by BLEU-4 and CIDEr-D over the corpus */
    double bleu4, cider;
    char **pred; /* (n) predicted answers */
} tr_eval;
int tr_evaluate(tr_job *j, const tr_task *t, const rvm_input *queries, const tr_eval_opts *o,
                tr_eval *ev, char *err);
void tr_eval_free(tr_eval *ev);
/* Replaces each byte that is not part of well-formed UTF-8 by '?' (a generated answer may stop
 * inside a character spelled in byte pieces), so printed and JSON answers stay valid. */
void tr_utf8_repair(char *s, size_t n);
/* Accuracy per question type in percent, with memory (on may be NULL) and memory removed. */
void tr_print_table(const trn_score_table *on, const trn_score_table *off);
/* Token ids of a task's questions (rank 0): q_ids (n, text_max − 1), queries (n) and, when
 * a_ids is not NULL, the answers (n, answer_max − 1). */
int tr_task_tokenize(const tr_job *j, const tr_task *t, int32_t **q_ids, rvm_input **queries,
                     int32_t **a_ids, rvm_text **answers, char *err);

#endif
