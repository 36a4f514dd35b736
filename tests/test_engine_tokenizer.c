/* tests/test_engine_tokenizer.c — the SentencePiece tokenizer on real multilingual text.
 *
 * The corpus comes from files every reveal machine has (scripts/bootstrap.sh installs
 * unicode-cldr-core): CLDR emoji annotations in six languages and scripts, one line per emoji
 * ("😀 grinning face"), plus the GPL-3 text. Proves: training is repeatable byte for byte (unigram
 * and BPE, from texts and from a file), special ids are fixed, encode/decode round-trips every
 * line of languages left out of training, BOS/EOS and truncation behave, and bad input — to
 * training, encode, decode and load — is refused with a message naming the problem.
 */
#include "check.h"
#include "rv.h"
#include "tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLDR "/usr/share/unicode/cldr/common/annotations/"

typedef struct {
    char **lines;
    size_t n, cap;
} corpus;

static void corpus_add(corpus *c, const char *s, size_t len) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->lines = realloc(c->lines, c->cap * sizeof *c->lines);
        REQUIRE(c->lines);
    }
    c->lines[c->n] = strndup(s, len);
    REQUIRE(c->lines[c->n]);
    c->n++;
}

static void corpus_free(corpus *c) {
    for (size_t i = 0; i < c->n; i++) free(c->lines[i]);
    free(c->lines);
    memset(c, 0, sizeof *c);
}

/* Replaces the XML entities CLDR uses, in place. */
static void unescape_xml(char *s) {
    static const char *ent[][2] = {
        {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}};
    char *w = s;
    for (const char *r = s; *r;) {
        int done = 0;
        for (size_t k = 0; k < 5 && !done; k++) {
            size_t n = strlen(ent[k][0]);
            if (strncmp(r, ent[k][0], n) == 0) {
                *w++ = ent[k][1][0];
                r += n;
                done = 1;
            }
        }
        if (!done) *w++ = *r++;
    }
    *w = 0;
}

/* Adds "<emoji> <spoken name>" for each tts annotation of a CLDR annotations file. */
static void add_cldr(corpus *c, const char *lang) {
    char path[256], err[RV_ERR_MAX];
    snprintf(path, sizeof path, CLDR "%s.xml", lang);
    void *data;
    size_t n;
    int rc = rv_read_file(path, 1 << 24, &data, &n, err);
    REQUIRE(rc == 0 || (fprintf(stderr, "%s\n", err), 0));
    size_t before = c->n;
    for (char *line = data; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        char *cp = strstr(line, "<annotation cp=\"");
        if (cp && strstr(line, "type=\"tts\"")) {
            cp += strlen("<annotation cp=\"");
            char *cp_end = strchr(cp, '"');
            char *text = cp_end ? strchr(cp_end, '>') : NULL;
            char *text_end = text ? strstr(text, "</annotation>") : NULL;
            if (text_end) {
                char buf[1024];
                snprintf(buf, sizeof buf, "%.*s %.*s", (int)(cp_end - cp), cp,
                         (int)(text_end - text - 1), text + 1);
                unescape_xml(buf);
                corpus_add(c, buf, strlen(buf));
            }
        }
        line = next;
    }
    free(data);
    CHECKF(c->n - before > 1000, "%s gave only %zu lines", path, c->n - before);
}

static void add_text_file(corpus *c, const char *path) {
    void *data;
    size_t n;
    char err[RV_ERR_MAX];
    int rc = rv_read_file(path, 1 << 24, &data, &n, err);
    REQUIRE(rc == 0 || (fprintf(stderr, "%s\n", err), 0));
    for (char *line = data; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (*line) corpus_add(c, line, strlen(line));
        line = next;
    }
    free(data);
}

static trn_tokenizer *train_and_load(const corpus *c, const trn_tok_train_opts *o, void **model,
                                     size_t *len) {
    char err[RV_ERR_MAX];
    int rc = trn_tok_train_texts((const char *const *)c->lines, c->n, o, model, len, err);
    REQUIRE(rc == 0 || (fprintf(stderr, "%s\n", err), 0));
    trn_tokenizer *tok;
    rc = trn_tok_load(*model, *len, &tok, err);
    REQUIRE(rc == 0 || (fprintf(stderr, "%s\n", err), 0));
    return tok;
}

/* decode(encode(s)) == s; returns 1 when it holds, printing the first difference otherwise. */
static int round_trips(const trn_tokenizer *tok, const char *s, int *n_tokens) {
    static int32_t ids[8192];
    char err[RV_ERR_MAX];
    int n;
    if (trn_tok_encode(tok, s, strlen(s), 0, 8192, ids, &n, NULL, err) != 0) {
        fprintf(stderr, "encode '%s': %s\n", s, err);
        return 0;
    }
    char *back;
    size_t len;
    if (trn_tok_decode(tok, ids, n, &back, &len, err) != 0) {
        fprintf(stderr, "decode '%s': %s\n", s, err);
        return 0;
    }
    int ok = len == strlen(s) && memcmp(back, s, len) == 0;
    if (!ok) fprintf(stderr, "round trip: '%s' came back as '%s'\n", s, back);
    free(back);
    if (n_tokens) *n_tokens = n;
    return ok;
}

/* 4000 pieces; 98% of the characters get their own piece, the rarest become bytes */
static void test_opts(trn_tok_train_opts *o, int nfkc) {
    trn_tok_train_opts_default(o);
    o->vocab_size = 4000;
    o->character_coverage = 0.98;
    o->nfkc = nfkc;
}

static const char *samples[] = {
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "اللغة العربية من أكثر اللغات انتشارا في العالم.",
    "हिन्दी भारत की राजभाषा है और करोड़ों लोग इसे बोलते हैं।",
    "Family 👨‍👩‍👧‍👦, flags 🇫🇷 🇯🇵, a face 😀, a thumb 👍🏽.",
    "Crème brûlée à la française: naïve façade, Ångström, Dvořák, São Paulo, Œuvre.",
    "Ελληνικά, русский язык, 日本語のテキスト, 한국어 문장, ภาษาไทย.",
    "Rare scripts never seen in training: 𝄞 𓀀 ꦲꦏ꧀ꦱꦫ ᚠᚢᚦ.",
    "question <sep> answer",
};

/* Training on a sample of the corpus: repeatable (SentencePiece draws it with a fixed seed), and
 * really a sample (the model differs from the one trained on every line). */
static void test_sampled_training(const corpus *c, const void *full, size_t full_len) {
    trn_tok_train_opts o;
    test_opts(&o, 1);
    o.type = TRN_TOK_BPE;
    o.max_sentences = 6000;
    void *m[2];
    size_t n[2];
    char err[RV_ERR_MAX];
    for (int i = 0; i < 2; i++) {
        int rc = trn_tok_train_texts((const char *const *)c->lines, c->n, &o, &m[i], &n[i], err);
        REQUIRE(rc == 0 || (fprintf(stderr, "%s\n", err), 0));
    }
    CHECKF(n[0] == n[1] && memcmp(m[0], m[1], n[0]) == 0, "two sampled trainings differ");
    CHECKF(n[0] != full_len || memcmp(m[0], full, full_len) != 0,
           "the sampled model equals the full one");
    for (int i = 0; i < 2; i++) free(m[i]);
    o.max_sentences = -1;
    CHECK(trn_tok_train_texts((const char *const *)c->lines, c->n, &o, &m[0], &n[0], err) == -1);
    CHECKF(strstr(err, "max_sentences -1"), "%s", err);
}

/* Trains BPE twice with the same options: the model bytes must be identical (unigram's
 * repeat is the training from a file below). Returns the first for the NFKC tests. */
static trn_tokenizer *train_bpe_twice(const corpus *c, void **model, size_t *len) {
    trn_tok_train_opts o;
    test_opts(&o, 1);
    o.type = TRN_TOK_BPE;
    void *b;
    size_t nb;
    trn_tokenizer *ta = train_and_load(c, &o, model, len);
    trn_tokenizer *tb = train_and_load(c, &o, &b, &nb);
    CHECKF(*len == nb && memcmp(*model, b, nb) == 0, "bpe: two trainings differ (%zu vs %zu bytes)",
           *len, nb);
    CHECK(trn_tok_version(ta) == trn_tok_version(tb));
    CHECK(trn_tok_vocab_size(ta) == o.vocab_size);
    trn_tok_free(tb);
    free(b);
    return ta;
}

/* Training from a file gives the same model bytes as training from the same lines: this is
 * also the check that unigram training is repeatable. */
static void test_train_file(const corpus *c, const void *model, size_t model_len,
                            const trn_tok_train_opts *o) {
    char path[] = "engine_tok_corpus.txt";
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    for (size_t i = 0; i < c->n; i++) fprintf(f, "%s\n", c->lines[i]);
    fclose(f);
    void *m;
    size_t n;
    char err[RV_ERR_MAX];
    int rc = trn_tok_train_file(path, o, &m, &n, err);
    CHECKF(rc == 0, "%s", err);
    if (rc == 0) {
        CHECK(n == model_len && memcmp(m, model, n) == 0);
        free(m);
    }

    /* an invalid UTF-8 line is refused with its line number */
    f = fopen(path, "w");
    REQUIRE(f);
    fputs("first line\nsecond line\nthird \xC3\x28 line\n", f);
    fclose(f);
    rc = trn_tok_train_file(path, o, &m, &n, err);
    CHECK(rc == -1);
    CHECKF(strstr(err, "engine_tok_corpus.txt:3: not valid UTF-8"), "%s", err);
    unlink(path);
    rc = trn_tok_train_file("/nonexistent/corpus.txt", o, &m, &n, err);
    CHECK(rc == -1 && strstr(err, "/nonexistent/corpus.txt"));
}

static void test_specials_and_encode(const trn_tokenizer *tok) {
    char err[RV_ERR_MAX];
    CHECK(trn_tok_piece_id(tok, "<pad>") == TRN_TOK_PAD);
    CHECK(trn_tok_piece_id(tok, "<s>") == TRN_TOK_BOS);
    CHECK(trn_tok_piece_id(tok, "</s>") == TRN_TOK_EOS);
    CHECK(trn_tok_piece_id(tok, "<unk>") == TRN_TOK_UNK);
    CHECK(trn_tok_piece_id(tok, TRN_TOK_SEP_PIECE) == TRN_TOK_SEP);
    CHECK(trn_tok_piece_id(tok, "surely-not-a-piece-xyz") == -1);

    int32_t ids[64];
    int n, full;
    const char *q = "question <sep> answer";
    CHECK(trn_tok_encode(tok, q, strlen(q), TRN_TOK_ADD_BOS | TRN_TOK_ADD_EOS, 64, ids, &n, &full,
                         err) == 0);
    int seps = 0;
    for (int i = 0; i < n; i++) seps += ids[i] == TRN_TOK_SEP;
    CHECK(seps == 1);
    CHECK(n == full && n >= 4 && ids[0] == TRN_TOK_BOS && ids[n - 1] == TRN_TOK_EOS);

    /* truncation keeps BOS and EOS and reports the full length */
    const char *long_text = samples[4];
    int32_t all[256], cut[6];
    int n_all, n_cut, full_cut;
    CHECK(trn_tok_encode(tok, long_text, strlen(long_text), 0, 256, all, &n_all, NULL, err) == 0);
    CHECK(trn_tok_encode(tok, long_text, strlen(long_text), TRN_TOK_ADD_BOS | TRN_TOK_ADD_EOS, 6,
                         cut, &n_cut, &full_cut, err) == 0);
    CHECK(n_cut == 6 && full_cut == n_all + 2);
    CHECK(cut[0] == TRN_TOK_BOS && cut[5] == TRN_TOK_EOS);
    CHECK(memcmp(cut + 1, all, 4 * sizeof(int32_t)) == 0);
    CHECK(trn_tok_encode(tok, long_text, strlen(long_text), TRN_TOK_ADD_EOS, 3, cut, &n_cut, NULL,
                         err) == 0);
    CHECK(n_cut == 3 && cut[0] == all[0] && cut[1] == all[1] && cut[2] == TRN_TOK_EOS);
    /* BOS/EOS/PAD decode to nothing */
    int32_t framed[] = {TRN_TOK_BOS, all[0], all[1], TRN_TOK_EOS, TRN_TOK_PAD};
    char *a, *b;
    size_t la, lb;
    CHECK(trn_tok_decode(tok, framed, 5, &a, &la, err) == 0);
    CHECK(trn_tok_decode(tok, all, 2, &b, &lb, err) == 0);
    CHECK(la == lb && strcmp(a, b) == 0);
    free(a);
    free(b);

    /* bad input */
    CHECK(trn_tok_encode(tok, "ok", 2, TRN_TOK_ADD_BOS | TRN_TOK_ADD_EOS, 2, ids, &n, NULL, err) ==
          -1);
    CHECKF(strstr(err, "max_len 2 leaves no room"), "%s", err);
    const char bad[] = "abc\xE2\x82 def"; /* a cut 3-byte sequence */
    CHECK(trn_tok_encode(tok, bad, sizeof bad - 1, 0, 64, ids, &n, NULL, err) == -1);
    CHECKF(strstr(err, "not valid UTF-8 (byte 3)"), "%s", err);
    int32_t out_of_range[] = {5, trn_tok_vocab_size(tok)};
    char *t;
    size_t lt;
    CHECK(trn_tok_decode(tok, out_of_range, 2, &t, &lt, err) == -1);
    CHECKF(strstr(err, "id 4000 at position 1 is outside the vocabulary (4000)"), "%s", err);
    int32_t negative[] = {-7};
    CHECK(trn_tok_decode(tok, negative, 1, &t, &lt, err) == -1 && strstr(err, "id -7"));
}

/* Lossless mode: every sample and every line of languages left out of training come back
 * exactly; real subwords are learned (far fewer tokens than bytes on a training language). */
static void test_round_trip_lossless(const trn_tokenizer *tok) {
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++)
        CHECK(round_trips(tok, samples[i], NULL));
    const char *spacing[] = {"  leading, double  spaces,\ttabs\tand\na newline ",
                             "e\xCC\x81t\xC3\xA9", ""};
    for (int i = 0; i < 3; i++) CHECK(round_trips(tok, spacing[i], NULL));
    const char *held_out[] = {"ko", "th", "he", "el", "ru", "ja", "de"};
    for (int k = 0; k < 7; k++) {
        corpus c = {0};
        add_cldr(&c, held_out[k]);
        size_t fails = 0, bytes = 0, tokens = 0;
        for (size_t i = 0; i < c.n; i++) {
            int n = 0;
            fails += !round_trips(tok, c.lines[i], &n);
            bytes += strlen(c.lines[i]);
            tokens += (size_t)n;
        }
        CHECKF(fails == 0, "%s: %zu of %zu lines did not round-trip", held_out[k], fails, c.n);
        printf("held out %s: %zu lines round-trip, %.2f bytes per token\n", held_out[k], c.n,
               (double)bytes / (double)tokens);
        corpus_free(&c);
    }
    /* real subwords: English prose takes far fewer tokens than bytes (a byte-level
     * tokenizer would need one token per byte) */
    int n;
    const char *en = "The licenses for most software are designed to take away your freedom to "
                     "share and change it.";
    CHECK(round_trips(tok, en, &n));
    CHECKF(n * 2 < (int)strlen(en), "English sample: %d tokens for %zu bytes", n, strlen(en));
}

/* NFKC mode (T5's choice), on the BPE tokenizer: NFKC-stable text with single spaces
 * round-trips; compatibility characters are folded (full-width letters become ASCII). */
static void test_round_trip_nfkc(const trn_tokenizer *tok) {
    /* samples[0] has a full-width comma, which NFKC folds */
    for (size_t i = 1; i < sizeof samples / sizeof *samples; i++)
        CHECKF(round_trips(tok, samples[i], NULL), "nfkc sample %zu", i);
    char err[RV_ERR_MAX];
    int32_t ids[64];
    int n;
    const char *wide = "ＡＢＣ ｆｕｌｌ，  width";
    CHECK(trn_tok_encode(tok, wide, strlen(wide), 0, 64, ids, &n, NULL, err) == 0);
    char *back;
    size_t lb;
    CHECK(trn_tok_decode(tok, ids, n, &back, &lb, err) == 0);
    CHECKF(strcmp(back, "ABC full, width") == 0, "full-width came back as '%s'", back);
    free(back);
}

static void expect_load_error(const void *bytes, size_t n, const char *needle) {
    char err[RV_ERR_MAX] = "";
    trn_tokenizer *tok = NULL;
    int rc = trn_tok_load(bytes, n, &tok, err);
    CHECKF(rc == -1 && tok == NULL, "loaded a bad model (expected '%s')", needle);
    CHECKF(strstr(err, needle), "error '%s' does not mention '%s'", err, needle);
    if (tok) trn_tok_free(tok);
}

static void test_bad_models(const void *model, size_t len) {
    unsigned char *b = malloc(len);
    REQUIRE(b);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = (unsigned char)x;
    }
    expect_load_error(b, len, "not a reveal tokenizer model");
    expect_load_error(b, 0, "not a reveal tokenizer model");
    expect_load_error(NULL, 0, "not a reveal tokenizer model");

    memcpy(b, model, len);
    expect_load_error(b, 20, "truncated tokenizer model: 20 bytes");
    char want[128];
    snprintf(want, sizeof want, "truncated tokenizer model: header says %zu bytes, have %zu", len,
             len - 100);
    expect_load_error(b, len - 100, want);
    b[len / 2] ^= 0x10;
    expect_load_error(b, len, "corrupt tokenizer model: checksum");
    b[len / 2] ^= 0x10;
    b[8] = 2;
    expect_load_error(b, len, "tokenizer model format version 2");
    b[8] = 1;

    /* a well-formed envelope around bytes SentencePiece cannot parse */
    size_t body = 4096;
    unsigned char *e = calloc(1, 32 + body);
    REQUIRE(e);
    memcpy(e, model, 16);
    uint64_t blen = body;
    for (size_t i = 0; i < body; i++) e[32 + i] = (unsigned char)(i * 7919 + 13);
    uint64_t h = rv_hash64(e + 32, body, 0);
    memcpy(e + 16, &blen, 8);
    memcpy(e + 24, &h, 8);
    expect_load_error(e, 32 + body, "rejected by SentencePiece");
    free(e);

    /* the original still loads */
    trn_tokenizer *tok;
    char err[RV_ERR_MAX];
    CHECK(trn_tok_load(b, len, &tok, err) == 0);
    if (tok) trn_tok_free(tok);
    free(b);
}

int main(void) {
    corpus c = {0};
    const char *langs[] = {"en", "fr", "vi", "zh", "ar", "hi"};
    for (int i = 0; i < 6; i++) add_cldr(&c, langs[i]);
    add_text_file(&c, "/usr/share/common-licenses/GPL-3");
    printf("corpus: %zu lines\n", c.n);

    char err[RV_ERR_MAX];
    void *m;
    size_t n;
    const char *none[] = {""};
    trn_tok_train_opts o;
    trn_tok_train_opts_default(&o);
    CHECK(trn_tok_train_texts(none, 1, &o, &m, &n, err) == -1 && strstr(err, "no text"));
    const char *bad_text[] = {"fine", "broken \xFF byte"};
    CHECK(trn_tok_train_texts(bad_text, 2, &o, &m, &n, err) == -1);
    CHECKF(strstr(err, "training text 1 is not valid UTF-8 (byte 7)"), "%s", err);
    o.vocab_size = 10;
    CHECK(trn_tok_train_texts(bad_text, 1, &o, &m, &n, err) == -1 && strstr(err, "vocab_size 10"));

    test_opts(&o, 0);
    trn_tokenizer *tok = train_and_load(&c, &o, &m, &n);
    CHECK(trn_tok_vocab_size(tok) == 4000);
    CHECK(trn_tok_version(tok) == rv_hash64(m, n, 0));
    printf("unigram: %d pieces, %zu model bytes, version %016llx\n", trn_tok_vocab_size(tok), n,
           (unsigned long long)trn_tok_version(tok));
    test_train_file(&c, m, n, &o);
    test_specials_and_encode(tok);
    test_round_trip_lossless(tok);
    test_bad_models(m, n);

    void *bm;
    size_t bn;
    trn_tokenizer *bpe = train_bpe_twice(&c, &bm, &bn);
    CHECK(trn_tok_version(bpe) != trn_tok_version(tok));
    test_round_trip_nfkc(bpe);
    test_sampled_training(&c, bm, bn);
    trn_tok_free(bpe);
    free(bm);
    trn_tok_free(tok);
    free(m);
    corpus_free(&c);
    return check_report("engine_tokenizer");
}
