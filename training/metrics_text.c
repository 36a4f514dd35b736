/* training/metrics_text.c — text rules of the metrics: case and accent folding, the VQA answer
 * normalisation and accuracy, and the caption tokeniser. The VQA rules reproduce the official
 * VQA evaluation script (vqaEval.py: processPunctuation, processDigitArticle); docs/metrics.md
 * lists them and the few places where this code differs on purpose.
 */
#include "metrics.h"

#include "rv.h"

#include <stdlib.h>
#include <string.h>

/* Lower-case base letters of U+00C0..U+017F (Latin-1 Supplement letters, Latin Extended-A);
 * NULL leaves the character as it is (× and ÷). Ligatures and letters without a base letter
 * spell out: æ → ae, œ → oe, ß → ss, þ → th, ĳ → ij, ŉ → 'n. None is longer in bytes than the
 * two-byte character it replaces, so folding never grows a text. */
static const char *const fold_latin[0x180 - 0xC0] = {
    /* C0 */ "a",  "a",  "a",  "a",  "a", "a", "ae", "c",
    "e",           "e",  "e",  "e",  "i", "i", "i",  "i",
    /* D0 */ "d",  "n",  "o",  "o",  "o", "o", "o",  NULL,
    "o",           "u",  "u",  "u",  "u", "y", "th", "ss",
    /* E0 */ "a",  "a",  "a",  "a",  "a", "a", "ae", "c",
    "e",           "e",  "e",  "e",  "i", "i", "i",  "i",
    /* F0 */ "d",  "n",  "o",  "o",  "o", "o", "o",  NULL,
    "o",           "u",  "u",  "u",  "u", "y", "th", "y",
    /* 100 */ "a", "a",  "a",  "a",  "a", "a", "c",  "c",
    "c",           "c",  "c",  "c",  "c", "c", "d",  "d",
    /* 110 */ "d", "d",  "e",  "e",  "e", "e", "e",  "e",
    "e",           "e",  "e",  "e",  "g", "g", "g",  "g",
    /* 120 */ "g", "g",  "g",  "g",  "h", "h", "h",  "h",
    "i",           "i",  "i",  "i",  "i", "i", "i",  "i",
    /* 130 */ "i", "i",  "ij", "ij", "j", "j", "k",  "k",
    "k",           "l",  "l",  "l",  "l", "l", "l",  "l",
    /* 140 */ "l", "l",  "l",  "n",  "n", "n", "n",  "n",
    "n",           "'n", "n",  "n",  "o", "o", "o",  "o",
    /* 150 */ "o", "o",  "oe", "oe", "r", "r", "r",  "r",
    "r",           "r",  "s",  "s",  "s", "s", "s",  "s",
    /* 160 */ "s", "s",  "t",  "t",  "t", "t", "t",  "t",
    "u",           "u",  "u",  "u",  "u", "u", "u",  "u",
    /* 170 */ "u", "u",  "u",  "u",  "w", "w", "y",  "y",
    "y",           "z",  "z",  "z",  "z", "z", "z",  "s",
};

/* Decodes the code point at s (already validated) and its length in bytes. */
static unsigned utf8_decode(const unsigned char *s, size_t *len) {
    if (s[0] < 0x80) {
        *len = 1;
        return s[0];
    }
    if (s[0] < 0xE0) {
        *len = 2;
        return ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu);
    }
    if (s[0] < 0xF0) {
        *len = 3;
        return ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
    }
    *len = 4;
    return ((s[0] & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
}

/* Encodes a code point below U+0800 (all that folding produces). */
static size_t utf8_encode2(unsigned cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* The characters Python's str.split() splits on, as the reference script splits words. */
static int is_unicode_space(unsigned cp) {
    return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F) || cp == 0x85 ||
           cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Lower case, accents folded, every space character made ' '. Also lower-cases basic Greek
 * and Cyrillic capitals and drops combining diacritical marks (U+0300..U+036F) so decomposed
 * accents fold like precomposed ones. out needs n + 1 bytes; the result is NUL-terminated. */
static int fold_text(const char *text, size_t n, char *out, size_t *out_n, char *err) {
    size_t bad_at = 0;
    if (!rv_utf8_valid(text, n, &bad_at))
        return rv_fail(err, "invalid UTF-8 at byte %zu (0x%02x)", bad_at,
                       (unsigned char)text[bad_at]);
    const unsigned char *s = (const unsigned char *)text;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t len;
        unsigned cp = utf8_decode(s + i, &len);
        if (is_unicode_space(cp)) {
            out[o++] = ' ';
        } else if (cp >= 'A' && cp <= 'Z') {
            out[o++] = (char)(cp + 32);
        } else if (cp >= 0xC0 && cp < 0x180 && fold_latin[cp - 0xC0]) {
            const char *f = fold_latin[cp - 0xC0];
            size_t fl = strlen(f);
            memcpy(out + o, f, fl);
            o += fl;
        } else if (cp >= 0x300 && cp <= 0x36F) {
            /* combining mark: dropped */
        } else if ((cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) || (cp >= 0x410 && cp <= 0x42F)) {
            o += utf8_encode2(cp + 0x20, out + o);
        } else if (cp >= 0x400 && cp <= 0x40F) {
            o += utf8_encode2(cp + 0x50, out + o);
        } else {
            memcpy(out + o, s + i, len);
            o += len;
        }
        i += len;
    }
    out[o] = '\0';
    *out_n = o;
    return 0;
}

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* Punctuation of the reference script; a period is handled apart. Apostrophes and colons are
 * not in its list and stay. */
static const char vqa_punct[] = ";/[]\"{}()=+\\_-><@`,?!";

/* Word replacements of processDigitArticle, applied to each word in turn: number words to
 * digits, articles dropped (NULL), then contractions missing their apostrophes restored. The
 * script's keys with capitals ("Im", "Ive", "Id've", "I'dve") never meet a lower-cased word and
 * are left out; "somebody'd" → "somebodyd" is the script's own entry and is kept, so both
 * spellings still meet. */
static const char *const vqa_words[][2] = {
    {"none", "0"},
    {"zero", "0"},
    {"one", "1"},
    {"two", "2"},
    {"three", "3"},
    {"four", "4"},
    {"five", "5"},
    {"six", "6"},
    {"seven", "7"},
    {"eight", "8"},
    {"nine", "9"},
    {"ten", "10"},
    {"a", NULL},
    {"an", NULL},
    {"the", NULL},
    {"aint", "ain't"},
    {"arent", "aren't"},
    {"cant", "can't"},
    {"couldve", "could've"},
    {"couldnt", "couldn't"},
    {"couldn'tve", "couldn't've"},
    {"couldnt've", "couldn't've"},
    {"didnt", "didn't"},
    {"doesnt", "doesn't"},
    {"dont", "don't"},
    {"hadnt", "hadn't"},
    {"hadnt've", "hadn't've"},
    {"hadn'tve", "hadn't've"},
    {"hasnt", "hasn't"},
    {"havent", "haven't"},
    {"hed", "he'd"},
    {"hed've", "he'd've"},
    {"he'dve", "he'd've"},
    {"hes", "he's"},
    {"howd", "how'd"},
    {"howll", "how'll"},
    {"hows", "how's"},
    {"isnt", "isn't"},
    {"itd", "it'd"},
    {"itd've", "it'd've"},
    {"it'dve", "it'd've"},
    {"itll", "it'll"},
    {"let's", "let's"},
    {"maam", "ma'am"},
    {"mightnt", "mightn't"},
    {"mightnt've", "mightn't've"},
    {"mightn'tve", "mightn't've"},
    {"mightve", "might've"},
    {"mustnt", "mustn't"},
    {"mustve", "must've"},
    {"neednt", "needn't"},
    {"notve", "not've"},
    {"oclock", "o'clock"},
    {"oughtnt", "oughtn't"},
    {"ow's'at", "'ow's'at"},
    {"'ows'at", "'ow's'at"},
    {"'ow'sat", "'ow's'at"},
    {"shant", "shan't"},
    {"shed've", "she'd've"},
    {"she'dve", "she'd've"},
    {"she's", "she's"},
    {"shouldve", "should've"},
    {"shouldnt", "shouldn't"},
    {"shouldnt've", "shouldn't've"},
    {"shouldn'tve", "shouldn't've"},
    {"somebody'd", "somebodyd"},
    {"somebodyd've", "somebody'd've"},
    {"somebody'dve", "somebody'd've"},
    {"somebodyll", "somebody'll"},
    {"somebodys", "somebody's"},
    {"someoned", "someone'd"},
    {"someoned've", "someone'd've"},
    {"someone'dve", "someone'd've"},
    {"someonell", "someone'll"},
    {"someones", "someone's"},
    {"somethingd", "something'd"},
    {"somethingd've", "something'd've"},
    {"something'dve", "something'd've"},
    {"somethingll", "something'll"},
    {"thats", "that's"},
    {"thered", "there'd"},
    {"thered've", "there'd've"},
    {"there'dve", "there'd've"},
    {"therere", "there're"},
    {"theres", "there's"},
    {"theyd", "they'd"},
    {"theyd've", "they'd've"},
    {"they'dve", "they'd've"},
    {"theyll", "they'll"},
    {"theyre", "they're"},
    {"theyve", "they've"},
    {"twas", "'twas"},
    {"wasnt", "wasn't"},
    {"wed've", "we'd've"},
    {"we'dve", "we'd've"},
    {"weve", "we've"},
    {"werent", "weren't"},
    {"whatll", "what'll"},
    {"whatre", "what're"},
    {"whats", "what's"},
    {"whatve", "what've"},
    {"whens", "when's"},
    {"whered", "where'd"},
    {"wheres", "where's"},
    {"whereve", "where've"},
    {"whod", "who'd"},
    {"whod've", "who'd've"},
    {"who'dve", "who'd've"},
    {"wholl", "who'll"},
    {"whos", "who's"},
    {"whove", "who've"},
    {"whyll", "why'll"},
    {"whyre", "why're"},
    {"whys", "why's"},
    {"wont", "won't"},
    {"wouldve", "would've"},
    {"wouldnt", "wouldn't"},
    {"wouldnt've", "wouldn't've"},
    {"wouldn'tve", "wouldn't've"},
    {"yall", "y'all"},
    {"yall'll", "y'all'll"},
    {"y'allll", "y'all'll"},
    {"yall'd've", "y'all'd've"},
    {"y'alld've", "y'all'd've"},
    {"y'all'dve", "y'all'd've"},
    {"youd", "you'd"},
    {"youd've", "you'd've"},
    {"you'dve", "you'd've"},
    {"youll", "you'll"},
    {"youre", "you're"},
    {"youve", "you've"},
};

/* Looks a word up in vqa_words: 1 and *rep (NULL = drop) when found, else 0. */
static int vqa_word_lookup(const char *w, size_t n, const char **rep) {
    for (size_t i = 0; i < sizeof vqa_words / sizeof vqa_words[0]; i++) {
        const char *k = vqa_words[i][0];
        if (strlen(k) == n && !memcmp(k, w, n)) {
            *rep = vqa_words[i][1];
            return 1;
        }
    }
    return 0;
}

/* processPunctuation on the folded text t (modified in place, length *n). The script decides
 * per punctuation character, on the whole stripped text, between deleting it (when it touches
 * a space somewhere, or when the text holds a digit-comma-digit) and replacing it by a space;
 * then it deletes every period not followed by a digit. */
static void vqa_punctuation(char *t, size_t *n) {
    size_t lo = 0, hi = *n;
    while (lo < hi && t[lo] == ' ') lo++;
    while (hi > lo && t[hi - 1] == ' ') hi--;
    int comma_in_number = 0;
    for (size_t i = lo + 1; i + 1 < hi; i++)
        if (t[i] == ',' && is_digit(t[i - 1]) && is_digit(t[i + 1])) comma_in_number = 1;
    int delete_punct[128] = {0};
    for (size_t i = lo; i < hi; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c && c < 128 && strchr(vqa_punct, c) &&
            ((i > lo && t[i - 1] == ' ') || (i + 1 < hi && t[i + 1] == ' ')))
            delete_punct[c] = 1;
    }
    size_t o = 0;
    for (size_t i = lo; i < hi; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c && c < 128 && strchr(vqa_punct, c)) {
            if (!comma_in_number && !delete_punct[c]) t[o++] = ' ';
        } else {
            t[o++] = (char)c;
        }
    }
    /* Periods: the script's pattern "(?!<=\d)(\.)(?!\d)" misspells its look-behind, so in
     * effect a period goes unless a digit follows it ("3.5" stays, "3." and "a.m" lose it). */
    size_t m = 0;
    for (size_t i = 0; i < o; i++)
        if (t[i] != '.' || (i + 1 < o && is_digit(t[i + 1]))) t[m++] = t[i];
    t[m] = '\0';
    *n = m;
}

int trn_vqa_normalize(const char *text, char **out, char *err) {
    *out = NULL;
    if (!text) return rv_fail(err, "vqa normalize: text is NULL");
    size_t n = strlen(text);
    char *t = malloc(n + 1);
    /* Each word grows by at most 1 byte (a restored apostrophe) and the words of t are
     * separated by at least one byte, so 2n + 1 bytes hold the result. */
    char *res = malloc(2 * n + 1);
    if (!t || !res) {
        free(t);
        free(res);
        return rv_fail(err, "vqa normalize: out of memory for %zu bytes", n);
    }
    size_t tn = 0;
    if (fold_text(text, n, t, &tn, err)) {
        free(t);
        free(res);
        return rv_fail_wrap(err, "vqa normalize");
    }
    vqa_punctuation(t, &tn);
    size_t o = 0;
    for (size_t i = 0; i < tn;) {
        while (i < tn && t[i] == ' ') i++;
        size_t start = i;
        while (i < tn && t[i] != ' ') i++;
        if (i == start) break;
        const char *w = t + start, *rep = NULL;
        size_t wl = i - start;
        if (vqa_word_lookup(w, wl, &rep)) {
            if (!rep) continue; /* an article */
            w = rep;
            wl = strlen(rep);
        }
        if (o) res[o++] = ' ';
        memcpy(res + o, w, wl);
        o += wl;
    }
    res[o] = '\0';
    free(t);
    *out = res;
    return 0;
}

int trn_vqa_accuracy(const char *prediction, const char *const *answers, size_t n_answers,
                     trn_vqa_scoring scoring, double *acc, char *err) {
    if (scoring != TRN_VQA_EXACT && scoring != TRN_VQA_MIN3 && scoring != TRN_VQA_MIN3_LOO)
        return rv_fail(err, "vqa accuracy: unknown scoring %d", (int)scoring);
    if (n_answers == 0 || !answers) return rv_fail(err, "vqa accuracy: no accepted answers");
    if (scoring == TRN_VQA_MIN3_LOO && n_answers < 2)
        return rv_fail(err,
                       "vqa accuracy: leave-one-out scoring needs at least 2 annotator "
                       "answers, got %zu",
                       n_answers);
    char *pred = NULL, *ans = NULL;
    unsigned char *match = calloc(n_answers, 1);
    int rc = -1;
    if (!match) {
        rv_fail(err, "vqa accuracy: out of memory");
        goto cleanup;
    }
    if (trn_vqa_normalize(prediction, &pred, err)) {
        rv_fail_wrap(err, "vqa accuracy: prediction");
        goto cleanup;
    }
    size_t matches = 0;
    for (size_t i = 0; i < n_answers; i++) {
        if (trn_vqa_normalize(answers[i], &ans, err)) {
            rv_fail_wrap(err, "vqa accuracy: accepted answer %zu", i);
            goto cleanup;
        }
        match[i] = !strcmp(pred, ans);
        matches += match[i];
        free(ans);
        ans = NULL;
    }
    if (scoring == TRN_VQA_EXACT) {
        *acc = matches ? 1.0 : 0.0;
    } else if (scoring == TRN_VQA_MIN3) {
        *acc = matches >= 3 ? 1.0 : (double)matches / 3.0;
    } else {
        double sum = 0;
        for (size_t i = 0; i < n_answers; i++) {
            size_t others = matches - match[i];
            sum += others >= 3 ? 1.0 : (double)others / 3.0;
        }
        *acc = sum / (double)n_answers;
    }
    rc = 0;
cleanup:
    free(match);
    free(pred);
    free(ans);
    return rc;
}

/* Separators of the caption tokeniser beyond ASCII: Latin-1 punctuation and symbols (¡ « » ¿
 * · …) and General Punctuation (dashes, curly quotes, ellipsis). */
static int is_unicode_punct(unsigned cp) {
    return (cp >= 0xA1 && cp <= 0xBF && cp != 0xAA && cp != 0xBA) ||
           (cp >= 0x2010 && cp <= 0x2027) || (cp >= 0x2030 && cp <= 0x205E);
}

/* A token character of TRN_TOK_CAPTION: an ASCII letter or digit, or any non-ASCII character
 * that is not punctuation (letters of every script). */
static int caption_word_char(const unsigned char *s, size_t i, size_t n) {
    if (i >= n) return 0;
    if (s[i] < 0x80) return (s[i] >= 'a' && s[i] <= 'z') || is_digit((char)s[i]);
    size_t len;
    return !is_unicode_punct(utf8_decode(s + i, &len));
}

int trn_caption_tokens(const char *text, trn_tokenize_mode mode, char **out, char *err) {
    *out = NULL;
    if (!text) return rv_fail(err, "caption tokens: text is NULL");
    if (mode != TRN_TOK_WHITESPACE && mode != TRN_TOK_CAPTION)
        return rv_fail(err, "caption tokens: unknown tokenize mode %d", (int)mode);
    size_t n = strlen(text);
    char *t = malloc(n + 1);
    char *res = malloc(n + 1);
    if (!t || !res) {
        free(t);
        free(res);
        return rv_fail(err, "caption tokens: out of memory for %zu bytes", n);
    }
    size_t bad_at = 0;
    if (mode == TRN_TOK_WHITESPACE) {
        if (!rv_utf8_valid(text, n, &bad_at)) {
            free(t);
            free(res);
            return rv_fail(err, "caption tokens: invalid UTF-8 at byte %zu (0x%02x)", bad_at,
                           (unsigned char)text[bad_at]);
        }
        for (size_t i = 0; i < n; i++)
            t[i] = (text[i] == ' ' || (text[i] >= 0x09 && text[i] <= 0x0D)) ? ' ' : text[i];
        t[n] = '\0';
    } else {
        size_t tn = 0;
        if (fold_text(text, n, t, &tn, err)) {
            free(t);
            free(res);
            return rv_fail_wrap(err, "caption tokens");
        }
        const unsigned char *s = (const unsigned char *)t;
        for (size_t i = 0; i < tn;) {
            size_t len = 1;
            unsigned cp = utf8_decode(s + i, &len);
            int keep;
            if (cp >= 0x80) {
                keep = !is_unicode_punct(cp);
            } else if (cp == '\'') {
                size_t prev = i;
                while (prev > 0 && (s[--prev] & 0xC0) == 0x80) {
                }
                keep = i > 0 && caption_word_char(s, prev, tn) && caption_word_char(s, i + 1, tn);
            } else if (cp == '.' || cp == ',') {
                keep = i > 0 && is_digit(t[i - 1]) && i + 1 < tn && is_digit(t[i + 1]);
            } else {
                keep = caption_word_char(s, i, tn);
            }
            if (!keep) memset(t + i, ' ', len);
            i += len;
        }
    }
    size_t o = 0;
    for (size_t i = 0; t[i];) {
        while (t[i] == ' ') i++;
        if (!t[i]) break;
        if (o) res[o++] = ' ';
        while (t[i] && t[i] != ' ') res[o++] = t[i++];
    }
    res[o] = '\0';
    free(t);
    *out = res;
    return 0;
}
