/* tests/test_metrics_fuzz.c — libFuzzer target (REVEAL_FUZZ builds) for the text the metrics
 * take from users: an evaluation file's predictions, answers and captions.
 *
 * The input, split at newlines, is a prediction or candidate followed by answers or
 * references. Beyond "no crash, no sanitizer report", the promises the evaluation relies on:
 *   - normalisation and tokenisation succeed exactly on valid UTF-8 and fail with a message
 *     otherwise, and are idempotent (a normalised answer normalises to itself);
 *   - accuracies, BLEU and CIDEr-D are finite and within their ranges ([0, 1]; CIDEr-D ≥ 0);
 *   - a refused caption item leaves the set's scores unchanged.
 * A broken promise aborts, which libFuzzer reports as a failure. */
#include "metrics.h"
#include "rv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROMISE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_metrics: broken promise: %s (line %d)\n", #cond, __LINE__);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

enum { MAX_LINES = 16 };

static void check_idempotent(const char *line) {
    char err[RV_ERR_MAX] = "", *a = NULL, *b = NULL;
    int valid = rv_utf8_valid(line, strlen(line), NULL);
    int rc = trn_vqa_normalize(line, &a, err);
    PROMISE(rc == (valid ? 0 : -1) && (rc == 0 || err[0]));
    if (!rc) {
        PROMISE(trn_vqa_normalize(a, &b, err) == 0 && !strcmp(a, b));
        free(b);
        b = NULL;
    }
    free(a);
    a = NULL;
    rc = trn_caption_tokens(line, TRN_TOK_CAPTION, &a, err);
    PROMISE(rc == (valid ? 0 : -1));
    if (!rc) PROMISE(trn_caption_tokens(a, TRN_TOK_CAPTION, &b, err) == 0 && !strcmp(a, b));
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    for (size_t i = 0; i < size; i++) text[i] = data[i] ? (char)data[i] : ' ';
    text[size] = '\0';
    const char *lines[MAX_LINES];
    size_t n = 0;
    for (char *p = text; p && n < MAX_LINES;) {
        lines[n++] = p;
        p = strchr(p, '\n');
        if (p) *p++ = '\0';
    }
    for (size_t i = 0; i < n; i++) check_idempotent(lines[i]);

    char err[RV_ERR_MAX] = "";
    double acc = -1;
    for (int sc = TRN_VQA_EXACT; sc <= TRN_VQA_MIN3_LOO; sc++)
        if (trn_vqa_accuracy(lines[0], lines + 1, n - 1, (trn_vqa_scoring)sc, &acc, err) == 0)
            PROMISE(acc >= 0.0 && acc <= 1.0);

    trn_caption_set *s = NULL;
    PROMISE(trn_caption_set_create(TRN_TOK_CAPTION, &s, err) == 0);
    /* the input as one item, then again as one item per line pair, so CIDEr-D has N >= 2 */
    trn_caption_set_add(s, lines[0], lines + 1, n - 1, err);
    for (size_t i = 0; i + 1 < n; i += 2) trn_caption_set_add(s, lines[i], lines + i + 1, 1, err);
    size_t items = trn_caption_set_count(s);
    if (items) {
        trn_bleu_result r;
        double before = -1, after = -1, cider = -1;
        PROMISE(trn_bleu_corpus(s, &r, err) == 0 && r.bleu >= 0.0 && r.bleu <= 1.0 + 1e-12);
        before = r.bleu;
        for (size_t i = 0; i < items; i++)
            PROMISE(trn_bleu_sentence(s, i, &r, err) == 0 && r.bleu >= 0.0 &&
                    r.bleu <= 1.0 + 1e-12);
        PROMISE(trn_cider_d(s, &cider, NULL, err) == 0 && isfinite(cider) && cider >= 0.0);
        const char *const empty_ref[] = {" "};
        PROMISE(trn_caption_set_add(s, lines[0], empty_ref, 1, err) == -1);
        PROMISE(trn_caption_set_count(s) == items);
        PROMISE(trn_bleu_corpus(s, &r, err) == 0);
        after = r.bleu;
        PROMISE(before == after);
    }
    trn_caption_set_free(s);
    free(text);
    return 0;
}
