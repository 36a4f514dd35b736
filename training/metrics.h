/* training/metrics.h — evaluation metrics for `reveal eval`: VQA answer normalisation and
 * accuracy, caption BLEU-4 and CIDEr-D, retrieval recall@K and reciprocal rank, and a table of
 * scores per question type printed as text or JSON. docs/metrics.md states every rule and
 * constant, and where they differ from the reference scripts.
 *
 * Text is NUL-terminated UTF-8; invalid UTF-8 is refused with the byte offset of the first bad
 * byte. Every function returns 0 or -1 and fills err (RV_ERR_MAX bytes, may be NULL).
 *
 * No function keeps state between calls; distinct sets and tables may be used from different
 * threads at once.
 *
 * Ownership: a `char **out` receives a malloc'ed string the caller frees with free(); a
 * `cJSON **out` receives a tree the caller frees with cJSON_Delete(); a trn_caption_set and a
 * trn_score_table own copies of everything added to them and free them in their *_free. On
 * failure nothing is returned to free (outputs are left NULL), and a set or table that refused
 * an add is unchanged.
 *
 * Implemented in metrics_text.c (normalisation, VQA accuracy, tokenisation), metrics_caption.c
 * (BLEU, CIDEr-D) and metrics.c (retrieval, score tables).
 */
#ifndef TRN_METRICS_H
#define TRN_METRICS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* ---- VQA answers ---- */

/* The VQA evaluation's answer normalisation (docs/metrics.md lists the rules): lower case and
 * accents folded, punctuation removed or replaced, periods outside numbers removed, number
 * words "none", "zero" … "ten" to digits, articles dropped, missing apostrophes of contractions
 * restored ("dont" → "don't"), words joined by single spaces. *out is malloc'ed. */
int trn_vqa_normalize(const char *text, char **out, char *err);

typedef enum {
    TRN_VQA_EXACT = 0,    /* 1 when the prediction equals any accepted answer, else 0 */
    TRN_VQA_MIN3 = 1,     /* min(#matching annotator answers / 3, 1) */
    TRN_VQA_MIN3_LOO = 2, /* the official VQA v2 script: the mean over the n ways of leaving one
                             annotator answer out of min(#matches among the other n-1 / 3, 1);
                             needs n >= 2 */
} trn_vqa_scoring;

/* Accuracy of one prediction against n_answers (>= 1) accepted or annotator answers, all
 * normalised with trn_vqa_normalize before comparing. *acc is in [0, 1]. */
int trn_vqa_accuracy(const char *prediction, const char *const *answers, size_t n_answers,
                     trn_vqa_scoring scoring, double *acc, char *err);

/* ---- captions ---- */

typedef enum {
    TRN_TOK_WHITESPACE = 0, /* tokens are the runs between ASCII whitespace, taken as they are */
    TRN_TOK_CAPTION = 1,    /* lower case and accents folded as for VQA answers; punctuation
                               separates tokens and is dropped, except an apostrophe between
                               letters ("don't") and a period or comma between digits ("3.5") */
} trn_tokenize_mode;

/* The tokens of text joined by single spaces (*out malloc'ed; "" when there are none). */
int trn_caption_tokens(const char *text, trn_tokenize_mode mode, char **out, char *err);

/* A corpus of candidate captions, each with its own references, tokenised on add. */
typedef struct trn_caption_set trn_caption_set;

int trn_caption_set_create(trn_tokenize_mode mode, trn_caption_set **out, char *err);
void trn_caption_set_free(trn_caption_set *s);
/* Adds one item: a candidate and n_refs >= 1 references. An empty candidate is allowed (it
 * scores 0); an empty reference is refused. */
int trn_caption_set_add(trn_caption_set *s, const char *candidate, const char *const *refs,
                        size_t n_refs, char *err);
size_t trn_caption_set_count(const trn_caption_set *s);

/* n-gram orders 1..4 of BLEU-4 and CIDEr-D */
enum { TRN_NGRAM_N = 4 };

typedef struct {
    double bleu;                   /* BP * exp(mean_n log precision[n]) */
    double precision[TRN_NGRAM_N]; /* p_n for n = 1..4 (after smoothing, if any) */
    long matches[TRN_NGRAM_N];     /* clipped n-gram matches, summed over the corpus */
    long totals[TRN_NGRAM_N];      /* candidate n-grams, summed over the corpus */
    long cand_len, ref_len;        /* c and r of the brevity penalty, in tokens */
    double brevity_penalty;        /* 1 if c > r, else exp(1 - r / c); 0 when c = 0 */
} trn_bleu_result;

/* Corpus BLEU-4 (Papineni et al. 2002) over every item of s, without smoothing: a corpus with
 * no match at some n scores 0. Needs at least one item. */
int trn_bleu_corpus(const trn_caption_set *s, trn_bleu_result *out, char *err);
/* BLEU-4 of item i alone, with the add-one smoothing of Lin and Och (2004) for n = 2..4:
 * p_n = (matches + 1) / (totals + 1); no smoothing of p_1 (no unigram match scores 0). */
int trn_bleu_sentence(const trn_caption_set *s, size_t i, trn_bleu_result *out, char *err);

/* CIDEr-D (Vedantam et al. 2015, as in the coco-caption scorer): n = 1..4, document
 * frequencies over the references of the items of s, clipped TF-IDF cosine per n with a
 * Gaussian length penalty (sigma = 6), averaged over n and references, times 10. *mean is the
 * average over items; per_item (N = trn_caption_set_count(s) doubles, may be NULL) receives each
 * item's score. Needs at least one item; with a single item every IDF weight is 0. */
int trn_cider_d(const trn_caption_set *s, double *mean, double *per_item, char *err);

/* ---- retrieval ---- */

/* Fraction of the n_gold distinct gold ids found among the first k entries of ranked (fewer
 * when n_ranked < k): 0 or 1 for a single gold item. A gold id listed twice is refused. */
int trn_recall_at_k(const uint64_t *ranked, size_t n_ranked, const uint64_t *gold, size_t n_gold,
                    size_t k, double *recall, char *err);
/* 1 / (1-based rank of the first gold id in ranked), 0 when no gold id was retrieved. The mean
 * over queries (a trn_score_table) is the mean reciprocal rank. */
int trn_reciprocal_rank(const uint64_t *ranked, size_t n_ranked, const uint64_t *gold,
                        size_t n_gold, double *rr, char *err);

/* ---- scores per question type ---- */

typedef struct {
    char *type; /* owned */
    long count;
    double sum; /* of scores in [0, 1] */
} trn_score_row;

/* type → (count, sum of scores); rows kept sorted by type (byte order) so output is stable.
 * Zero-initialise (trn_score_table t = {0};) before the first add. */
typedef struct {
    trn_score_row *rows;
    size_t n_rows, cap_rows;
    long count; /* over all types */
    double sum;
} trn_score_table;

/* Adds one question's score (finite, in [0, 1]) under a non-empty UTF-8 type name. */
int trn_score_table_add(trn_score_table *t, const char *type, double score, char *err);
void trn_score_table_free(trn_score_table *t);
/* A plain-text table: a header, one row per type, then "all"; scores as the mean in percent
 * with two decimals under the column title score_name (e.g. "accuracy"). *out malloc'ed. */
int trn_score_table_text(const trn_score_table *t, const char *score_name, char **out, char *err);
/* {"all": {"count": N, "<score_name>": mean}, "per_type": {"<type>": {...}, ...}} with means
 * as fractions in [0, 1]. */
int trn_score_table_json(const trn_score_table *t, const char *score_name, cJSON **out, char *err);

#endif
