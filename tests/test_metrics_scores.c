/* tests/test_metrics_scores.c — BLEU-4, CIDEr-D, recall@K / reciprocal rank and the score table
 * of training/metrics.h against values worked out by hand in the comments. Parts: bleu, cider,
 * retrieval, table (argv[1]).
 */
#include "check.h"
#include "metrics.h"
#include "rv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-6

static void fails_with(int rc, const char *err, const char *want) {
    CHECKF(rc == -1 && strstr(err, want), "rc %d, error \"%s\", want it to mention \"%s\"", rc, err,
           want);
}

static trn_caption_set *new_set(trn_tokenize_mode mode) {
    char err[RV_ERR_MAX] = "";
    trn_caption_set *s = NULL;
    REQUIRE(trn_caption_set_create(mode, &s, err) == 0 && s);
    return s;
}

static void add(trn_caption_set *s, const char *cand, const char *const *refs, size_t n) {
    char err[RV_ERR_MAX] = "";
    int rc = trn_caption_set_add(s, cand, refs, n, err);
    CHECKF(rc == 0, "add \"%s\": %s", cand, err);
}

/* Item 1: candidate "the cat sat on the mat" (6 tokens), references (6 and 7 tokens):
 *   n=1: the×2 cat sat on mat; max reference counts the 2, cat 1, on 1, mat 1, sat 0 → 5 / 6
 *   n=2: the·cat cat·sat sat·on on·the the·mat; the·cat, on·the, the·mat occur → 3 / 5
 *   n=3: the·cat·sat cat·sat·on sat·on·the on·the·mat; only on·the·mat → 1 / 4
 *   n=4: the·cat·sat·on cat·sat·on·the sat·on·the·mat; none → 0 / 3
 *   closest reference length 6 (|6-6| = 0).
 * Item 2: candidate "the dog runs fast" (4), references of 5 and 5 tokens; the second holds
 *   every candidate n-gram: 4/4, 3/3, 2/2, 1/1; reference length 5 > 4: brevity penalty. */
static const char *const refs1[] = {"the cat is on the mat", "there is a cat on the mat"};
static const char *const refs2[] = {"the dog runs very fast", "the dog runs fast today"};

static void test_bleu(void) {
    char err[RV_ERR_MAX] = "";
    trn_bleu_result r;
    trn_caption_set *s = new_set(TRN_TOK_WHITESPACE);
    add(s, "the cat sat on the mat", refs1, 2);

    /* zero 4-gram matches over the corpus: no smoothing at corpus level, BLEU = 0 */
    REQUIRE(trn_bleu_corpus(s, &r, err) == 0);
    CHECK(r.matches[0] == 5 && r.totals[0] == 6 && r.matches[1] == 3 && r.totals[1] == 5);
    CHECK(r.matches[2] == 1 && r.totals[2] == 4 && r.matches[3] == 0 && r.totals[3] == 3);
    CHECK(r.cand_len == 6 && r.ref_len == 6);
    CHECK(fabs(r.precision[0] - 5.0 / 6.0) < TOL && fabs(r.precision[3]) < TOL);
    CHECK(r.brevity_penalty == 1.0 && r.bleu == 0.0);

    /* sentence BLEU, Lin & Och smoothing for n >= 2: p = 5/6, 4/6, 2/5, 1/4; c = r = 6 so
     * BP = exp(1 - 6/6) = 1; BLEU = (5/6 · 4/6 · 2/5 · 1/4)^(1/4) = (1/18)^(1/4) = 0.485492 */
    REQUIRE(trn_bleu_sentence(s, 0, &r, err) == 0);
    CHECK(fabs(r.precision[1] - 4.0 / 6.0) < TOL && fabs(r.precision[2] - 2.0 / 5.0) < TOL);
    CHECK(fabs(r.precision[3] - 0.25) < TOL);
    CHECKF(fabs(r.bleu - 0.48549177170732344) < TOL, "sentence bleu %.9f", r.bleu);

    add(s, "the dog runs fast", refs2, 2);
    /* item 2 alone: all precisions 1 (smoothed (3+1)/(3+1) etc.), c = 4 < r = 5:
     * BP = exp(1 - 5/4) = exp(-0.25) = 0.778801 */
    REQUIRE(trn_bleu_sentence(s, 1, &r, err) == 0);
    CHECK(r.cand_len == 4 && r.ref_len == 5);
    CHECKF(fabs(r.bleu - 0.7788007830714049) < TOL, "sentence bleu %.9f", r.bleu);

    /* corpus: p1 = (5+4)/(6+4) = 0.9, p2 = (3+3)/(5+3) = 0.75, p3 = (1+2)/(4+2) = 0.5,
     * p4 = (0+1)/(3+1) = 0.25; c = 10, r = 6 + 5 = 11, BP = exp(1 - 11/10) = exp(-0.1);
     * BLEU = exp(-0.1) · (0.9 · 0.75 · 0.5 · 0.25)^(1/4) = 0.904837 · 0.538954 = 0.487668 */
    REQUIRE(trn_bleu_corpus(s, &r, err) == 0);
    CHECK(r.matches[0] == 9 && r.totals[0] == 10 && r.matches[3] == 1 && r.totals[3] == 4);
    CHECK(r.cand_len == 10 && r.ref_len == 11);
    CHECK(fabs(r.brevity_penalty - exp(-0.1)) < TOL);
    CHECKF(fabs(r.bleu - 0.48766770743757065) < TOL, "corpus bleu %.9f", r.bleu);

    /* the closest reference length prefers the shorter on a tie: candidate 4, refs 3 and 5 */
    trn_caption_set *t = new_set(TRN_TOK_WHITESPACE);
    const char *const tie[] = {"x y z w v", "x y z"};
    add(t, "x y z w", tie, 2);
    REQUIRE(trn_bleu_corpus(t, &r, err) == 0);
    CHECK(r.ref_len == 3 && r.brevity_penalty == 1.0);
    /* clipping: "the the the" against "the cat": 1 of 3 unigrams */
    const char *const clip[] = {"the cat"};
    add(t, "the the the", clip, 1);
    REQUIRE(trn_bleu_sentence(t, 1, &r, err) == 0);
    CHECK(r.matches[0] == 1 && r.totals[0] == 3);
    /* an empty candidate: no n-grams, BP = 0, BLEU = 0 */
    add(t, "", clip, 1);
    REQUIRE(trn_bleu_sentence(t, 2, &r, err) == 0);
    CHECK(r.cand_len == 0 && r.brevity_penalty == 0.0 && r.bleu == 0.0);
    /* identical candidate and reference: 1 */
    add(t, "a b c d e", (const char *const[]){"a b c d e"}, 1);
    REQUIRE(trn_bleu_sentence(t, 3, &r, err) == 0);
    CHECK(fabs(r.bleu - 1.0) < 1e-12);

    /* errors: a failed add leaves the set as it was */
    fails_with(trn_caption_set_add(s, "x", refs1, 0, err), err, "no references");
    const char *const bad[] = {"fine", "   "};
    fails_with(trn_caption_set_add(s, "x", bad, 2, err), err, "reference 1: has no tokens");
    const char *const badutf[] = {"fine \xE2\x82"};
    fails_with(trn_caption_set_add(s, "x", badutf, 1, err), err, "invalid UTF-8 at byte 5");
    fails_with(trn_caption_set_add(s, "\xFF", refs1, 2, err), err, "candidate");
    CHECK(trn_caption_set_count(s) == 2);
    REQUIRE(trn_bleu_corpus(s, &r, err) == 0);
    CHECK(fabs(r.bleu - 0.48766770743757065) < TOL);
    fails_with(trn_bleu_sentence(s, 2, &r, err), err, "item 2 out of range (2 items)");
    trn_caption_set *empty = new_set(TRN_TOK_CAPTION);
    fails_with(trn_bleu_corpus(empty, &r, err), err, "empty");
    double mean = 0;
    fails_with(trn_cider_d(empty, &mean, NULL, err), err, "empty");
    trn_caption_set *none = NULL;
    fails_with(trn_caption_set_create((trn_tokenize_mode)5, &none, err), err, "mode 5");
    CHECK(none == NULL);
    trn_caption_set_free(empty);
    trn_caption_set_free(t);
    trn_caption_set_free(s);
}

/* Two images, L = ln 2 = log N. Document frequencies over each image's references:
 *   image 1 refs "a cat sits", "a black cat"; image 2 refs "a dog runs", "the dog sits".
 *   "a" and "sits" are in both images: df 2, IDF = L - ln 2 = 0; every other reference n-gram
 *   has df 1, IDF = L; an n-gram in no reference (df 0) gets L - ln max(1, 0) = L.
 * Image 1, candidate "a cat cat" (tf: a 1, cat 2; a·cat 1, cat·cat 1; a·cat·cat 1):
 *   g1 = {a: 0, cat: 2L} |g1| = 2L;  g2 = {a·cat: L, cat·cat: L} |g2| = √2 L;  g3 = {L}.
 *   vs "a cat sits": r1 = {a 0, cat L, sits 0} |r1| = L; r2 = {a·cat L, cat·sits L} √2 L.
 *     n=1: min(2L, L)·L / (2L · L) = 1/2   (the clipping of CIDEr-D: unclipped it is 1)
 *     n=2: min(L, L)·L / (√2 L · √2 L) = 1/2;  n=3: a·cat·cat is absent → 0;  n=4: 0
 *   vs "a black cat": r1 = {a 0, black L, cat L} √2 L; no common bigram.
 *     n=1: min(2L, L)·L / (2L · √2 L) = 1/(2√2) = 0.353553;  n=2..4: 0
 *   equal lengths: penalty 1. score = 10 · (1/2 + 1/2 + 1/(2√2)) / 4 / 2 refs = 1.691942
 * Image 2, candidate "a dog" (g1 = {a 0, dog L} |g1| = L; g2 = {a·dog L} |g2| = L), lengths
 *   2 vs 3: penalty e = exp(-(2-3)² / (2·6²)) = exp(-1/72) = 0.986207.
 *   vs "a dog runs": n=1: L·L / (L · √2 L) = 1/√2;  n=2: L·L / (L · √2 L) = 1/√2
 *   vs "the dog sits": n=1: 1/√2;  n=2: a·dog absent → 0
 *   score = 10 · e · (3/√2) / 4 / 2 = 2.615077
 * mean = (1.691942 + 2.615077) / 2 = 2.153509 */
static void test_cider(void) {
    char err[RV_ERR_MAX] = "";
    trn_caption_set *s = new_set(TRN_TOK_CAPTION);
    const char *const r1[] = {"a cat sits", "A black cat."};
    const char *const r2[] = {"a dog runs", "the dog sits"};
    add(s, "a cat cat", r1, 2);
    add(s, "A dog!", r2, 2);
    double mean = 0, per[2] = {0};
    REQUIRE(trn_cider_d(s, &mean, per, err) == 0);
    CHECKF(fabs(per[0] - 1.691941738241592) < TOL, "image 1: %.9f", per[0]);
    CHECKF(fabs(per[1] - 2.6150765246402115) < TOL, "image 2: %.9f", per[1]);
    CHECKF(fabs(mean - 2.153509131440902) < TOL, "mean: %.9f", mean);
    double mean_only = 0;
    REQUIRE(trn_cider_d(s, &mean_only, NULL, err) == 0);
    CHECK(mean_only == mean);

    /* a single image: log N = 0 and every reference n-gram has df 1, so every weight is 0 */
    trn_caption_set *one = new_set(TRN_TOK_WHITESPACE);
    add(one, "a cat sits", r1, 2);
    REQUIRE(trn_cider_d(one, &mean, per, err) == 0);
    CHECK(mean == 0.0 && per[0] == 0.0);
    trn_caption_set_free(one);
    trn_caption_set_free(s);
}

static void test_retrieval(void) {
    char err[RV_ERR_MAX] = "";
    const uint64_t ranked[] = {7, 3, 9, 5};
    const uint64_t g9[] = {9}, g35[] = {3, 5}, g42[] = {42};
    double v = -1;
    /* gold 9 at rank 3: recall@1 = @2 = 0, @3 = @10 = 1; reciprocal rank 1/3 */
    REQUIRE(trn_recall_at_k(ranked, 4, g9, 1, 1, &v, err) == 0);
    CHECK(v == 0.0);
    REQUIRE(trn_recall_at_k(ranked, 4, g9, 1, 2, &v, err) == 0);
    CHECK(v == 0.0);
    REQUIRE(trn_recall_at_k(ranked, 4, g9, 1, 3, &v, err) == 0);
    CHECK(v == 1.0);
    REQUIRE(trn_recall_at_k(ranked, 4, g9, 1, 10, &v, err) == 0);
    CHECK(v == 1.0);
    REQUIRE(trn_reciprocal_rank(ranked, 4, g9, 1, &v, err) == 0);
    CHECK(fabs(v - 1.0 / 3.0) < 1e-12);
    /* two gold items 3 (rank 2) and 5 (rank 4): recall@2 = 1/2, @4 = 1; rr = 1/2 */
    REQUIRE(trn_recall_at_k(ranked, 4, g35, 2, 2, &v, err) == 0);
    CHECK(v == 0.5);
    REQUIRE(trn_recall_at_k(ranked, 4, g35, 2, 4, &v, err) == 0);
    CHECK(v == 1.0);
    REQUIRE(trn_reciprocal_rank(ranked, 4, g35, 2, &v, err) == 0);
    CHECK(v == 0.5);
    /* never retrieved, or nothing retrieved: 0 */
    REQUIRE(trn_reciprocal_rank(ranked, 4, g42, 1, &v, err) == 0);
    CHECK(v == 0.0);
    REQUIRE(trn_recall_at_k(NULL, 0, g42, 1, 5, &v, err) == 0);
    CHECK(v == 0.0);
    /* a gold id retrieved twice counts once: {9, 9, 1}, gold {9, 1}, recall@2 = 1/2 */
    const uint64_t dup[] = {9, 9, 1}, g91[] = {9, 1};
    REQUIRE(trn_recall_at_k(dup, 3, g91, 2, 2, &v, err) == 0);
    CHECK(v == 0.5);
    /* errors */
    const uint64_t gdup[] = {4, 4};
    fails_with(trn_recall_at_k(ranked, 4, gdup, 2, 1, &v, err), err, "gold id 4 listed twice");
    fails_with(trn_recall_at_k(ranked, 4, g9, 1, 0, &v, err), err, "k must be at least 1");
    fails_with(trn_reciprocal_rank(ranked, 4, g9, 0, &v, err), err, "no gold ids");
    fails_with(trn_reciprocal_rank(NULL, 3, g9, 1, &v, err), err, "ranked ids are NULL");
}

static void test_table(void) {
    char err[RV_ERR_MAX] = "", *text = NULL;
    trn_score_table t = {0};
    /* what color: 1, 0 → 50%; is this: 1, 1 → 100%; how many: 1/3 → 33.33%;
     * all: (1 + 0 + 1 + 1 + 1/3) / 5 = (10/3) / 5 = 2/3 → 66.67% */
    REQUIRE(trn_score_table_add(&t, "what color", 1.0, err) == 0);
    REQUIRE(trn_score_table_add(&t, "is this", 1.0, err) == 0);
    REQUIRE(trn_score_table_add(&t, "what color", 0.0, err) == 0);
    REQUIRE(trn_score_table_add(&t, "how many", 1.0 / 3.0, err) == 0);
    REQUIRE(trn_score_table_add(&t, "is this", 1.0, err) == 0);
    REQUIRE(trn_score_table_text(&t, "accuracy", &text, err) == 0);
    const char *want = "type             count    accuracy\n"
                       "how many             1       33.33\n"
                       "is this              2      100.00\n"
                       "what color           2       50.00\n"
                       "all                  5       66.67\n";
    CHECKF(!strcmp(text, want), "table text:\n%s", text);
    free(text);

    cJSON *json = NULL;
    REQUIRE(trn_score_table_json(&t, "accuracy", &json, err) == 0);
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(json, "all");
    const cJSON *per = cJSON_GetObjectItemCaseSensitive(json, "per_type");
    const cJSON *wc = cJSON_GetObjectItemCaseSensitive(per, "what color");
    CHECK(cJSON_GetObjectItemCaseSensitive(all, "count")->valuedouble == 5);
    CHECK(fabs(cJSON_GetObjectItemCaseSensitive(all, "accuracy")->valuedouble - 2.0 / 3.0) < TOL);
    CHECK(cJSON_GetObjectItemCaseSensitive(wc, "count")->valuedouble == 2);
    CHECK(fabs(cJSON_GetObjectItemCaseSensitive(wc, "accuracy")->valuedouble - 0.5) < TOL);
    CHECK(cJSON_GetArraySize(per) == 3);
    cJSON_Delete(json);

    /* bad scores and names are refused and change nothing */
    fails_with(trn_score_table_add(&t, "how many", 1.5, err), err, "outside [0, 1]");
    fails_with(trn_score_table_add(&t, "how many", NAN, err), err, "outside [0, 1]");
    fails_with(trn_score_table_add(&t, "", 1.0, err), err, "empty question type");
    fails_with(trn_score_table_add(&t, "bad\xC3", 1.0, err), err, "invalid UTF-8 at byte 3");
    CHECK(t.count == 5 && t.n_rows == 3);

    /* non-ASCII names line up by characters; an empty table prints 0 */
    trn_score_table u = {0};
    REQUIRE(trn_score_table_text(&u, "recall@5", &text, err) == 0);
    CHECKF(!strcmp(text, "type       count    recall@5\n"
                         "all            0        0.00\n"),
           "empty table:\n%s", text);
    free(text);
    REQUIRE(trn_score_table_add(&u, "größe", 0.25, err) == 0);
    REQUIRE(trn_score_table_text(&u, "mrr", &text, err) == 0);
    CHECKF(!strcmp(text, "type        count        mrr\n"
                         "größe           1      25.00\n"
                         "all             1      25.00\n"),
           "unicode table:\n%s", text);
    free(text);
    trn_score_table_free(&u);
    trn_score_table_free(&t);
    CHECK(t.rows == NULL && t.count == 0);
}

int main(int argc, char **argv) {
    const char *part = argc > 1 ? argv[1] : "";
    if (!strcmp(part, "bleu"))
        test_bleu();
    else if (!strcmp(part, "cider"))
        test_cider();
    else if (!strcmp(part, "retrieval"))
        test_retrieval();
    else if (!strcmp(part, "table"))
        test_table();
    else {
        fprintf(stderr, "usage: %s bleu|cider|retrieval|table\n", argv[0]);
        return 2;
    }
    return check_report(part);
}
