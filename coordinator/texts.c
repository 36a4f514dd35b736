/* coordinator/texts.c — the world as model inputs: the project tokenizer trained on the world's
 * texts, and the token ids of every item, question and answer, with the rvm_input / rvm_text
 * views the model reads. Item texts follow their source type (docs/learning.md, "memory"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"
#include "rv.h"

/* Specials (PAD, BOS, EOS, UNK, <sep>) and the 256 byte pieces every reveal tokenizer has;
 * the smallest vocabulary training/tokenizer.cc accepts. */
#define COORD_TOK_FIXED     261
#define COORD_TOK_MIN_VOCAB 300

static char *join(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
    char *s = malloc(n);
    if (!s) return NULL;
    if (c)
        snprintf(s, n, "%s %s %s", a, b, c);
    else
        snprintf(s, n, "%s %s", a, b);
    return s;
}

char *coord_item_text(const world_item *it) {
    switch (it->type) {
    case WORLD_IMAGE_TEXT:
        return strdup(it->text);
    case WORLD_QA:
        return join(it->question, it->answer, NULL);
    case WORLD_KG:
        return join(it->subject, it->relation, it->object);
    case WORLD_TEXT:
        return join(it->title, it->text, NULL);
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The automatic vocabulary: the fixed pieces plus, for every distinct space-separated word,
 * as many pieces as BPE needs to merge "▁word" from its letters — enough that each word of
 * the world becomes one token (a one-token answer is one decoding step). */
static int auto_vocab(char **texts, size_t n, int *vocab, char *err) {
    size_t cap = n, k = 0;
    for (size_t i = 0; i < n; i++)
        for (const char *p = texts[i]; *p; p++) cap += *p == ' ';
    char **words = calloc(cap, sizeof *words);
    int rc = -1;
    if (!words) return rv_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        for (const char *p = texts[i]; *p;) {
            size_t len = strcspn(p, " ");
            if (len && !(words[k++] = strndup(p, len))) {
                rv_fail(err, "out of memory");
                goto cleanup;
            }
            p += len + (p[len] == ' ');
        }
    }
    qsort(words, k, sizeof *words, cmp_str);
    long pieces = COORD_TOK_FIXED;
    for (size_t i = 0; i < k; i++)
        if (i == 0 || strcmp(words[i], words[i - 1]) != 0) pieces += (long)strlen(words[i]) + 1;
    *vocab = pieces < COORD_TOK_MIN_VOCAB ? COORD_TOK_MIN_VOCAB : (int)pieces;
    rc = 0;
cleanup:
    for (size_t i = 0; i < k; i++) free(words[i]);
    free(words);
    return rc;
}

int coord_tokenizer_train(const world *w, int vocab, trn_tokenizer **tok, char *err) {
    size_t n = w->n_items + w->n_questions, k = 0;
    char **texts = calloc(n, sizeof *texts);
    void *model = NULL;
    size_t model_len = 0;
    int rc = -1;
    if (!texts) return rv_fail(err, "out of memory");
    for (size_t i = 0; i < w->n_items; i++)
        if (!(texts[k++] = coord_item_text(&w->items[i]))) {
            rv_fail(err, "out of memory");
            goto cleanup;
        }
    for (size_t i = 0; i < w->n_questions; i++)
        if (!(texts[k++] = strdup(w->questions[i].question))) {
            rv_fail(err, "out of memory");
            goto cleanup;
        }
    int automatic = vocab <= 0;
    if (automatic && auto_vocab(texts, n, &vocab, err)) goto cleanup;
    trn_tok_train_opts o;
    trn_tok_train_opts_default(&o);
    o.type = TRN_TOK_BPE;
    o.nfkc = 0; /* the world's texts are plain ASCII words */
    /* The estimate can exceed the pieces BPE can form when words share their beginnings:
     * an automatic vocabulary then shrinks by 2% until SentencePiece accepts it. */
    for (int tries = 0;; tries++) {
        o.vocab_size = vocab;
        if (trn_tok_train_texts((const char *const *)texts, n, &o, &model, &model_len, err) == 0)
            break;
        if (!automatic || tries == 20 || vocab * 98 / 100 < COORD_TOK_MIN_VOCAB) {
            rv_fail_wrap(err, "tokenizer on the world's texts");
            goto cleanup;
        }
        vocab = vocab * 98 / 100;
    }
    if (trn_tok_load(model, model_len, tok, err)) {
        rv_fail_wrap(err, "tokenizer on the world's texts");
        goto cleanup;
    }
    rc = 0;
cleanup:
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(model);
    return rc;
}

/* Tokenises text into ids (cap) without BOS / EOS; *cut = 1 when it did not fit. */
static int encode(const trn_tokenizer *tok, const char *text, int cap, int32_t *ids, int *n,
                  uint8_t *cut, char *err) {
    int full = 0;
    if (trn_tok_encode(tok, text, strlen(text), 0, cap, ids, n, &full, err))
        return rv_fail_wrap(err, "tokenising \"%s\"", text);
    *cut = full > *n;
    return 0;
}

static int encode_item(coord_texts *t, const world *w, const trn_tokenizer *tok, size_t i,
                       char *err) {
    char *s = coord_item_text(&w->items[i]);
    if (!s) return rv_fail(err, "out of memory");
    int32_t *ids = t->item_ids + i * (size_t)t->item_cap;
    int rc = encode(tok, s, t->item_cap, ids, &t->items[i].text.n, &t->item_cut[i], err);
    free(s);
    t->items[i].text.ids = ids;
    t->items[i].image = w->items[i].image;
    return rc;
}

static int encode_answers(coord_texts *t, const world *w, const trn_tokenizer *tok, char *err) {
    for (size_t q = 0; q < w->n_questions; q++) {
        int32_t *ids = t->answer_ids + q * (size_t)t->answer_cap;
        uint8_t cut = 0;
        if (encode(tok, w->questions[q].answer, t->answer_cap, ids, &t->answers[q].n, &cut, err))
            return -1;
        t->cut += cut;
        t->answers[q].ids = ids;
    }
    return 0;
}

int coord_texts_init(coord_texts *t, const world *w, const trn_tokenizer *tok, int item_cap,
                     int answer_cap, char *err) {
    memset(t, 0, sizeof *t);
    t->item_cap = item_cap;
    t->answer_cap = answer_cap;
    t->item_ids = malloc(w->n_items * (size_t)item_cap * sizeof *t->item_ids);
    t->items = calloc(w->n_items, sizeof *t->items);
    t->question_ids = malloc(w->n_questions * (size_t)item_cap * sizeof *t->question_ids);
    t->questions = calloc(w->n_questions, sizeof *t->questions);
    t->answer_ids = malloc(w->n_questions * (size_t)answer_cap * sizeof *t->answer_ids);
    t->answers = calloc(w->n_questions, sizeof *t->answers);
    t->item_cut = calloc(w->n_items, 1);
    if (!t->item_cut || !t->item_ids || !t->items || !t->question_ids || !t->questions ||
        !t->answer_ids || !t->answers) {
        coord_texts_free(t);
        return rv_fail(err, "out of memory for the world's token ids");
    }
    for (size_t i = 0; i < w->n_items; i++)
        if (encode_item(t, w, tok, i, err)) goto fail;
    for (size_t q = 0; q < w->n_questions; q++) {
        int32_t *ids = t->question_ids + q * (size_t)item_cap;
        uint8_t cut = 0;
        if (encode(tok, w->questions[q].question, item_cap, ids, &t->questions[q].text.n, &cut,
                   err))
            goto fail;
        t->cut += cut;
        t->questions[q].text.ids = ids;
        t->questions[q].image = w->questions[q].image;
    }
    if (encode_answers(t, w, tok, err)) goto fail;
    return 0;
fail:
    coord_texts_free(t);
    return -1;
}

int coord_texts_update(coord_texts *t, const world *w, const trn_tokenizer *tok,
                       const size_t *items, size_t n, char *err) {
    for (size_t i = 0; i < n; i++)
        if (encode_item(t, w, tok, items[i], err)) return -1;
    return encode_answers(t, w, tok, err);
}

void coord_texts_free(coord_texts *t) {
    free(t->item_ids);
    free(t->items);
    free(t->question_ids);
    free(t->questions);
    free(t->answer_ids);
    free(t->answers);
    free(t->item_cut);
    memset(t, 0, sizeof *t);
}
