/* tests/test_metrics_text.c — the text rules of training/metrics.h against values worked out by
 * hand: VQA answer normalisation (each rule alone, then combined), VQA accuracy in its three
 * scorings, the caption tokeniser, the errors on bad input, and properties over random
 * strings. Parts: normalize, accuracy, tokens, errors, random (argv[1]).
 */
#include "check.h"
#include "metrics.h"
#include "rv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Checks that text normalises to want. */
static void norm_is(const char *text, const char *want) {
    char err[RV_ERR_MAX] = "", *got = NULL;
    int rc = trn_vqa_normalize(text, &got, err);
    CHECKF(rc == 0 && got && !strcmp(got, want), "normalize(\"%s\") = \"%s\" (%s), want \"%s\"",
           text, got ? got : "(null)", err, want);
    free(got);
}

static void test_normalize(void) {
    /* case */
    norm_is("Yes", "yes");
    norm_is("RED", "red");
    /* accents: Latin-1 Supplement, Latin Extended-A, ligatures, decomposed accents */
    norm_is("Café", "cafe");
    norm_is("ÉCOLE", "ecole");
    norm_is("Straße", "strasse");
    norm_is("Œuvre", "oeuvre");
    norm_is("Łódź", "lodz");
    norm_is("Ærøskøbing", "aeroskobing");
    norm_is("Þór", "thor");
    norm_is("Ĳsselmeer", "ijsselmeer");
    norm_is("ŉ", "'n");
    norm_is("naïve façade", "naive facade");
    norm_is("ÿ Ÿ", "y y");
    norm_is("İstanbul", "istanbul");
    norm_is("cafe\xCC\x81", "cafe"); /* e + U+0301 combining acute */
    /* Greek and Cyrillic capitals are lower-cased, not folded */
    norm_is("ΑΒΓ", "αβγ");
    norm_is("МОСКВА Ёж", "москва ёж");
    /* not folded: × and ÷, Latin Extended-B (ș), other scripts */
    norm_is("2×3", "2×3");
    norm_is("Ș", "Ș");
    norm_is("猫", "猫");
    /* whitespace: every kind collapses, ends stripped */
    norm_is("  big \t\n dog  ", "big dog");
    norm_is("big\xC2\xA0"
            "dog",
            "big dog"); /* U+00A0 */
    norm_is("big\xE3\x80\x80"
            "dog",
            "big dog"); /* U+3000 */
    norm_is("", "");
    /* punctuation without a space beside it becomes a space */
    norm_is("black-and-white", "black and white");
    norm_is("yes/no", "yes no");
    norm_is("(left)", "left");
    /* punctuation touching a space somewhere is deleted everywhere in the answer: ',' touches
     * a space, so both commas go; '-' touches none, so it becomes a space */
    norm_is("hello, world", "hello world");
    norm_is("red, white-blue,green", "red white bluegreen");
    norm_is("yes !", "yes");
    /* a digit-comma-digit deletes every punctuation character */
    norm_is("1,000", "1000");
    norm_is("1,000-2,000", "10002000");
    /* apostrophes and colons are not punctuation for VQA */
    norm_is("10:30", "10:30");
    /* periods: kept only before a digit */
    norm_is("3.5", "3.5");
    norm_is("end.", "end");
    norm_is("3.", "3");
    norm_is("a.m.", "am");
    norm_is(".5", ".5");
    /* number words: whole words, none..ten only */
    norm_is("two", "2");
    norm_is("Two dogs", "2 dogs");
    norm_is("none", "0");
    norm_is("zero", "0");
    norm_is("ten", "10");
    norm_is("eleven", "eleven");
    norm_is("twenty two", "twenty 2");
    norm_is("someone", "someone");
    /* articles: whole words only */
    norm_is("the dog", "dog");
    norm_is("a cat", "cat");
    norm_is("An apple", "apple");
    norm_is("the", "");
    norm_is("theater", "theater");
    /* contractions: a missing apostrophe is restored */
    norm_is("dont", "don't");
    norm_is("don't", "don't");
    norm_is("Isnt", "isn't");
    norm_is("twas", "'twas");
    norm_is("somebody'd", "somebodyd"); /* the reference script's own entry */
    norm_is("Im", "im");                /* its capitalised keys never match */
    /* combined: fold, strip, '-' to space, ',' deleted (touches a space), '?' to space (it
     * touches no space once the text is stripped), article dropped, number word to digit */
    norm_is("  The Two Café-Tables, arent they?  ", "2 cafe tables aren't they");
    norm_is("Dont know.", "don't know");
    norm_is("A  TWO-story Hôtel.", "2 story hotel");
}

static double acc_of(const char *pred, const char *const *answers, size_t n, trn_vqa_scoring sc) {
    char err[RV_ERR_MAX] = "";
    double acc = -1;
    int rc = trn_vqa_accuracy(pred, answers, n, sc, &acc, err);
    CHECKF(rc == 0, "accuracy of \"%s\": %s", pred, err);
    return acc;
}

static void test_accuracy(void) {
    /* exact match against several accepted answers, after normalisation */
    const char *const accepted[] = {"2", "three", "a few"};
    CHECK(acc_of("Two", accepted, 3, TRN_VQA_EXACT) == 1.0);
    CHECK(acc_of("3", accepted, 3, TRN_VQA_EXACT) == 1.0); /* "three" normalises to "3" */
    CHECK(acc_of("few", accepted, 3, TRN_VQA_EXACT) == 1.0);
    CHECK(acc_of("four", accepted, 3, TRN_VQA_EXACT) == 0.0);
    CHECK(acc_of("The few!", accepted, 3, TRN_VQA_EXACT) == 1.0);

    /* ten annotators; normalised: red red blue blue blue blue green green "dark red" 2 */
    const char *const ten[] = {"Red",   "red.",  "blue",      "Blue!",    "BLUE",
                               "blue ", "green", "the green", "dark-red", "two"};
    /* blue: 4 matches. min(4/3, 1) = 1. Leave one out: a matching answer left out leaves 3
     * (→ 1), any other leaves 4 (→ 1): mean 1. */
    CHECK(fabs(acc_of("blue", ten, 10, TRN_VQA_MIN3) - 1.0) < 1e-12);
    CHECK(fabs(acc_of("blue", ten, 10, TRN_VQA_MIN3_LOO) - 1.0) < 1e-12);
    /* red: 2 matches. min(2/3, 1) = 0.666667. Leave one out: the 2 matching leave 1 → 1/3,
     * the 8 others leave 2 → 2/3: (2·1/3 + 8·2/3) / 10 = (18/3) / 10 = 0.6. */
    CHECK(fabs(acc_of("RED", ten, 10, TRN_VQA_MIN3) - 2.0 / 3.0) < 1e-6);
    CHECK(fabs(acc_of("RED", ten, 10, TRN_VQA_MIN3_LOO) - 0.6) < 1e-6);
    CHECK(acc_of("RED", ten, 10, TRN_VQA_EXACT) == 1.0);
    /* "2" meets "two": 1 match. min(1/3, 1) = 0.333333; leave one out: (1·0 + 9·1/3) / 10 =
     * 0.3. */
    CHECK(fabs(acc_of("2", ten, 10, TRN_VQA_MIN3) - 1.0 / 3.0) < 1e-6);
    CHECK(fabs(acc_of("2", ten, 10, TRN_VQA_MIN3_LOO) - 0.3) < 1e-6);
    /* "dark red" meets "dark-red" (the hyphen becomes a space) */
    CHECK(fabs(acc_of("Dark red", ten, 10, TRN_VQA_MIN3_LOO) - 0.3) < 1e-6);
    CHECK(acc_of("purple", ten, 10, TRN_VQA_MIN3) == 0.0);
    CHECK(acc_of("purple", ten, 10, TRN_VQA_MIN3_LOO) == 0.0);

    /* 3 matches: min(3/3, 1) = 1; leave one out: (3·2/3 + 7·1) / 10 = 0.9 */
    const char *const three[] = {"Blue", "blue.", "a blue", "red", "red",
                                 "red",  "red",   "red",    "red", "red"};
    CHECK(fabs(acc_of("blue", three, 10, TRN_VQA_MIN3) - 1.0) < 1e-12);
    CHECK(fabs(acc_of("blue", three, 10, TRN_VQA_MIN3_LOO) - 0.9) < 1e-6);
}

static void tokens_are(const char *text, trn_tokenize_mode mode, const char *want) {
    char err[RV_ERR_MAX] = "", *got = NULL;
    int rc = trn_caption_tokens(text, mode, &got, err);
    CHECKF(rc == 0 && got && !strcmp(got, want), "tokens(\"%s\") = \"%s\" (%s), want \"%s\"", text,
           got ? got : "(null)", err, want);
    free(got);
}

static void test_tokens(void) {
    tokens_are("A  Man,\tx", TRN_TOK_WHITESPACE, "A Man, x");
    tokens_are("  ", TRN_TOK_WHITESPACE, "");
    tokens_are("A man's Café, riding 3.5 km\xE2\x80\x94"
               "fast!",
               TRN_TOK_CAPTION, "a man's cafe riding 3.5 km fast");
    tokens_are("'quoted' dogs' bowl", TRN_TOK_CAPTION, "quoted dogs bowl");
    tokens_are("don't stop, 1,000 times.", TRN_TOK_CAPTION, "don't stop 1,000 times");
    tokens_are("«Ça va?» ¿sí?", TRN_TOK_CAPTION, "ca va si");
    tokens_are("é'x", TRN_TOK_CAPTION, "e'x");
    tokens_are("猫's", TRN_TOK_CAPTION, "猫's"); /* a non-ASCII letter before an apostrophe */
    tokens_are("...", TRN_TOK_CAPTION, "");
}

/* Checks that a call failed with a message containing want. */
static void fails_with(int rc, const char *err, const char *want) {
    CHECKF(rc == -1 && strstr(err, want), "rc %d, error \"%s\", want it to mention \"%s\"", rc, err,
           want);
}

static void test_errors(void) {
    char err[RV_ERR_MAX] = "", *out = NULL;
    double acc = 0;
    fails_with(trn_vqa_normalize("ok \xC3\x28", &out, err), err, "invalid UTF-8 at byte 3");
    CHECK(out == NULL);
    fails_with(trn_vqa_normalize("\xC0\xAF", &out, err), err, "invalid UTF-8 at byte 0");
    fails_with(trn_vqa_normalize("\xED\xA0\x80", &out, err), err, "invalid UTF-8"); /* surrogate */
    fails_with(trn_vqa_normalize(NULL, &out, err), err, "NULL");
    const char *const good[] = {"yes", "no"};
    const char *const bad[] = {"yes", "n\xFFo"};
    fails_with(trn_vqa_accuracy("yes", bad, 2, TRN_VQA_EXACT, &acc, err), err,
               "vqa accuracy: accepted answer 1: vqa normalize: invalid UTF-8 at byte 1 (0xff)");
    fails_with(trn_vqa_accuracy("\xFF", good, 2, TRN_VQA_EXACT, &acc, err), err,
               "vqa accuracy: prediction: vqa normalize: invalid UTF-8 at byte 0");
    fails_with(trn_vqa_accuracy("yes", good, 0, TRN_VQA_EXACT, &acc, err), err,
               "no accepted answers");
    fails_with(trn_vqa_accuracy("yes", good, 1, TRN_VQA_MIN3_LOO, &acc, err), err, "at least 2");
    fails_with(trn_vqa_accuracy("yes", good, 2, (trn_vqa_scoring)7, &acc, err), err,
               "unknown scoring 7");
    fails_with(trn_caption_tokens("a\xF5", TRN_TOK_CAPTION, &out, err), err,
               "invalid UTF-8 at byte 1");
    fails_with(trn_caption_tokens("a\xF5", TRN_TOK_WHITESPACE, &out, err), err,
               "invalid UTF-8 at byte 1");
    fails_with(trn_caption_tokens("a", (trn_tokenize_mode)9, &out, err), err,
               "unknown tokenize mode 9");
    CHECK(out == NULL);
}

/* Pieces random strings are made of: words of the rule tables, punctuation, digits, folded
 * and unfolded letters, combining marks, spaces of several kinds, and bytes that break UTF-8. */
static const char *const pieces[] = {"the",
                                     "A",
                                     "an",
                                     "Two",
                                     "none",
                                     "ten",
                                     "dont",
                                     "isnt",
                                     "somebody'd",
                                     "yall",
                                     "red",
                                     "1",
                                     "000",
                                     "3",
                                     ",",
                                     ".",
                                     "-",
                                     "/",
                                     "?",
                                     "!",
                                     "'",
                                     ":",
                                     "(",
                                     ")",
                                     "\\",
                                     "\"",
                                     "`",
                                     " ",
                                     "  ",
                                     "\t",
                                     "\n",
                                     "\xC2\xA0",
                                     "\xE3\x80\x80",
                                     "É",
                                     "ß",
                                     "Œ",
                                     "ŉ",
                                     "Ǆ",
                                     "ș",
                                     "猫",
                                     "Α",
                                     "Ё",
                                     "\xCC\x81",
                                     "«",
                                     "\xE2\x80\x94",
                                     "×",
                                     "\xFF",
                                     "\xC3",
                                     "\xED\xA0\x80",
                                     "\xF0\x9F\x98\x80"};

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng_next(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

/* Output is valid UTF-8, has no leading, trailing or doubled spaces. */
static int well_formed(const char *s) {
    size_t n = strlen(s);
    if (!rv_utf8_valid(s, n, NULL)) return 0;
    if (n && (s[0] == ' ' || s[n - 1] == ' ')) return 0;
    return strstr(s, "  ") == NULL;
}

/* On 20,000 random strings: normalisation and tokenisation succeed exactly when the input is
 * valid UTF-8, give well-formed output, and are idempotent (a normalised answer normalises to
 * itself, so comparing normalised answers is stable); a prediction scores 1 against itself. */
static void test_random(void) {
    char text[512], err[RV_ERR_MAX];
    int failures_before = check_failures;
    for (int it = 0; it < 20000 && check_failures - failures_before < 10; it++) {
        size_t n = 0, parts = rng_next() % 12;
        for (size_t p = 0; p < parts; p++) {
            const char *piece = pieces[rng_next() % (sizeof pieces / sizeof pieces[0])];
            size_t len = strlen(piece);
            if (n + len >= sizeof text) break;
            memcpy(text + n, piece, len);
            n += len;
        }
        text[n] = '\0';
        int valid = rv_utf8_valid(text, n, NULL);
        char *a = NULL, *b = NULL;
        int rc = trn_vqa_normalize(text, &a, err);
        CHECKF(rc == (valid ? 0 : -1), "normalize of string %d: rc %d, valid %d", it, rc, valid);
        if (!rc) {
            CHECKF(well_formed(a), "normalize of string %d gave \"%s\"", it, a);
            REQUIRE(trn_vqa_normalize(a, &b, err) == 0);
            CHECKF(!strcmp(a, b), "not idempotent: \"%s\" -> \"%s\" -> \"%s\"", text, a, b);
            double acc = 0;
            const char *const self[] = {text};
            REQUIRE(trn_vqa_accuracy(text, self, 1, TRN_VQA_EXACT, &acc, err) == 0);
            CHECK(acc == 1.0);
        }
        free(a);
        free(b);
        a = b = NULL;
        rc = trn_caption_tokens(text, TRN_TOK_CAPTION, &a, err);
        CHECKF(rc == (valid ? 0 : -1), "tokens of string %d: rc %d, valid %d", it, rc, valid);
        if (!rc) {
            CHECKF(well_formed(a), "tokens of string %d gave \"%s\"", it, a);
            REQUIRE(trn_caption_tokens(a, TRN_TOK_CAPTION, &b, err) == 0);
            CHECKF(!strcmp(a, b), "tokens not idempotent: \"%s\" -> \"%s\" -> \"%s\"", text, a, b);
        }
        free(a);
        free(b);
    }
}

int main(int argc, char **argv) {
    const char *part = argc > 1 ? argv[1] : "";
    if (!strcmp(part, "normalize"))
        test_normalize();
    else if (!strcmp(part, "accuracy"))
        test_accuracy();
    else if (!strcmp(part, "tokens"))
        test_tokens();
    else if (!strcmp(part, "errors"))
        test_errors();
    else if (!strcmp(part, "random"))
        test_random();
    else {
        fprintf(stderr, "usage: %s normalize|accuracy|tokens|errors|random\n", argv[0]);
        return 2;
    }
    return check_report(part);
}
