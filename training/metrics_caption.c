/* training/metrics_caption.c — caption metrics over a corpus: BLEU-4 (Papineni et al. 2002) and
 * CIDEr-D (Vedantam et al. 2015). Tokens are interned to 32-bit ids, so n-grams are compared
 * exactly (a hash only picks the slot); counts live in small open-addressing maps.
 */
#include "metrics.h"

#include "rv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* CIDEr-D constants (Vedantam et al. 2015; the coco-caption scorer). */
#define CIDER_SIGMA 6.0  /* width of the Gaussian length penalty, in tokens */
#define CIDER_SCALE 10.0 /* the scores are reported times 10 */

/* One n-gram (n = 1..4 token ids) with two values whose meaning depends on the map's use. */
typedef struct {
    uint32_t w[TRN_NGRAM_N];
    uint32_t n; /* 0 marks an empty slot */
    double a, b;
} ngram_entry;

typedef struct {
    ngram_entry *slots; /* (cap), cap a power of two, at most half full */
    size_t cap, used;
} ngram_map;

static uint64_t ngram_hash(const uint32_t *w, uint32_t n) {
    return rv_hash64(w, n * sizeof(uint32_t), n);
}

static ngram_entry *ngram_slot(const ngram_map *m, const uint32_t *w, uint32_t n) {
    size_t i = (size_t)ngram_hash(w, n) & (m->cap - 1);
    for (;;) {
        ngram_entry *e = &m->slots[i];
        if (!e->n || (e->n == n && !memcmp(e->w, w, n * sizeof(uint32_t)))) return e;
        i = (i + 1) & (m->cap - 1);
    }
}

/* The entry of w[0..n), or NULL when absent (or the map is empty). */
static ngram_entry *ngram_find(const ngram_map *m, const uint32_t *w, uint32_t n) {
    if (!m->cap) return NULL;
    ngram_entry *e = ngram_slot(m, w, n);
    return e->n ? e : NULL;
}

/* The entry of w[0..n), inserted with zero values when absent; NULL only when out of memory. */
static ngram_entry *ngram_upsert(ngram_map *m, const uint32_t *w, uint32_t n) {
    if (2 * (m->used + 1) > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        ngram_entry *slots = calloc(cap, sizeof *slots);
        if (!slots) return NULL;
        ngram_map grown = {slots, cap, m->used};
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].n) *ngram_slot(&grown, m->slots[i].w, m->slots[i].n) = m->slots[i];
        free(m->slots);
        *m = grown;
    }
    ngram_entry *e = ngram_slot(m, w, n);
    if (!e->n) {
        memset(e, 0, sizeof *e);
        memcpy(e->w, w, n * sizeof(uint32_t));
        e->n = n;
        m->used++;
    }
    return e;
}

static void ngram_clear(ngram_map *m) {
    if (m->cap) memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->used = 0;
}

static void ngram_free(ngram_map *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

typedef struct {
    size_t start, len; /* tokens ids[start .. start + len) */
} sentence;

struct trn_caption_set {
    trn_tokenize_mode mode;
    char **words; /* (n_words) interned tokens; id = index */
    size_t n_words, cap_words;
    uint32_t *word_slots; /* (cap_slots) id + 1 per slot, 0 = empty; at most half full */
    size_t cap_slots;
    uint32_t *ids; /* (n_ids) the token ids of every sentence, concatenated */
    size_t n_ids, cap_ids;
    sentence *sents; /* (n_sents) per item: its candidate, then its references */
    size_t n_sents, cap_sents;
    size_t *item_first; /* (n_items + 1) first sentence of each item, then n_sents */
    size_t n_items, cap_items;
};

/* Grows *buf (elements of size el) to hold at least want elements. */
static int grow(void **buf, size_t *cap, size_t want, size_t el) {
    if (want <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < want) c *= 2;
    void *p = realloc(*buf, c * el);
    if (!p) return -1;
    *buf = p;
    *cap = c;
    return 0;
}

static size_t word_slot(const trn_caption_set *s, const char *w, size_t len) {
    size_t i = (size_t)rv_hash64(w, len, 0) & (s->cap_slots - 1);
    while (s->word_slots[i]) {
        const char *k = s->words[s->word_slots[i] - 1];
        if (strlen(k) == len && !memcmp(k, w, len)) break;
        i = (i + 1) & (s->cap_slots - 1);
    }
    return i;
}

/* The id of the token w[0..len), interning it when new. */
static int intern(trn_caption_set *s, const char *w, size_t len, uint32_t *id) {
    if (2 * (s->n_words + 1) > s->cap_slots) {
        size_t cap = s->cap_slots ? 2 * s->cap_slots : 1024;
        uint32_t *slots = calloc(cap, sizeof *slots);
        if (!slots) return -1;
        uint32_t *old = s->word_slots;
        s->word_slots = slots;
        s->cap_slots = cap;
        for (size_t i = 0; i < s->n_words; i++)
            s->word_slots[word_slot(s, s->words[i], strlen(s->words[i]))] = (uint32_t)i + 1;
        free(old);
    }
    size_t slot = word_slot(s, w, len);
    if (s->word_slots[slot]) {
        *id = s->word_slots[slot] - 1;
        return 0;
    }
    if (s->n_words >= UINT32_MAX - 1 ||
        grow((void **)&s->words, &s->cap_words, s->n_words + 1, sizeof *s->words))
        return -1;
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, w, len);
    copy[len] = '\0';
    s->words[s->n_words] = copy;
    *id = (uint32_t)s->n_words++;
    s->word_slots[slot] = *id + 1;
    return 0;
}

int trn_caption_set_create(trn_tokenize_mode mode, trn_caption_set **out, char *err) {
    *out = NULL;
    if (mode != TRN_TOK_WHITESPACE && mode != TRN_TOK_CAPTION)
        return rv_fail(err, "caption set: unknown tokenize mode %d", (int)mode);
    trn_caption_set *s = calloc(1, sizeof *s);
    if (!s || grow((void **)&s->item_first, &s->cap_items, 1, sizeof *s->item_first)) {
        free(s);
        return rv_fail(err, "caption set: out of memory");
    }
    s->mode = mode;
    s->item_first[0] = 0;
    *out = s;
    return 0;
}

void trn_caption_set_free(trn_caption_set *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_words; i++) free(s->words[i]);
    free(s->words);
    free(s->word_slots);
    free(s->ids);
    free(s->sents);
    free(s->item_first);
    free(s);
}

size_t trn_caption_set_count(const trn_caption_set *s) {
    return s ? s->n_items : 0;
}

/* Tokenises text and appends it as a sentence. Interned words stay if a later step fails (they
 * change no score); ids and sentences are rolled back by the caller. */
static int add_sentence(trn_caption_set *s, const char *text, int allow_empty, char *err) {
    char *toks = NULL;
    if (trn_caption_tokens(text, s->mode, &toks, err)) return -1;
    int rc = -1;
    if (!*toks && !allow_empty) {
        rv_fail(err, "has no tokens");
        goto cleanup;
    }
    if (grow((void **)&s->sents, &s->cap_sents, s->n_sents + 1, sizeof *s->sents)) {
        rv_fail(err, "out of memory");
        goto cleanup;
    }
    sentence st = {s->n_ids, 0};
    for (char *p = toks; *p;) {
        char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        uint32_t id;
        if (intern(s, p, len, &id) ||
            grow((void **)&s->ids, &s->cap_ids, s->n_ids + 1, sizeof *s->ids)) {
            rv_fail(err, "out of memory");
            goto cleanup;
        }
        s->ids[s->n_ids++] = id;
        st.len++;
        p += len;
        if (*p) p++;
    }
    s->sents[s->n_sents++] = st;
    rc = 0;
cleanup:
    free(toks);
    return rc;
}

int trn_caption_set_add(trn_caption_set *s, const char *candidate, const char *const *refs,
                        size_t n_refs, char *err) {
    if (!s) return rv_fail(err, "caption set add: set is NULL");
    if (n_refs == 0 || !refs)
        return rv_fail(err, "caption set add: item %zu has no references", s->n_items);
    size_t ids0 = s->n_ids, sents0 = s->n_sents;
    if (!candidate) {
        rv_fail(err, "candidate is NULL");
        goto fail;
    }
    if (add_sentence(s, candidate, 1, err)) {
        rv_fail_wrap(err, "candidate");
        goto fail;
    }
    for (size_t r = 0; r < n_refs; r++) {
        if (!refs[r]) {
            rv_fail(err, "reference %zu is NULL", r);
            goto fail;
        }
        if (add_sentence(s, refs[r], 0, err)) {
            rv_fail_wrap(err, "reference %zu", r);
            goto fail;
        }
    }
    if (grow((void **)&s->item_first, &s->cap_items, s->n_items + 2, sizeof *s->item_first)) {
        rv_fail(err, "out of memory");
        goto fail;
    }
    s->item_first[++s->n_items] = s->n_sents;
    return 0;
fail:
    s->n_ids = ids0;
    s->n_sents = sents0;
    return rv_fail_wrap(err, "caption set add: item %zu", s->n_items);
}

/* Counts the n-grams (n = 1..4) of sentence st into m, adding 1 to field a per occurrence. */
static int count_ngrams(const trn_caption_set *s, sentence st, ngram_map *m) {
    const uint32_t *w = s->ids + st.start;
    for (uint32_t n = 1; n <= TRN_NGRAM_N; n++)
        for (size_t i = 0; i + n <= st.len; i++) {
            ngram_entry *e = ngram_upsert(m, w + i, n);
            if (!e) return -1;
            e->a += 1;
        }
    return 0;
}

/* Adds item i's clipped matches, candidate n-gram totals and lengths to r: a candidate n-gram
 * counts at most as often as it occurs in the reference that holds it most; the reference
 * length is the one closest to the candidate's (the shorter on a tie). */
static int bleu_counts(const trn_caption_set *s, size_t i, ngram_map *cand, ngram_map *ref,
                       trn_bleu_result *r) {
    sentence c = s->sents[s->item_first[i]];
    ngram_clear(cand);
    if (count_ngrams(s, c, cand)) return -1;
    long best = -1;
    for (size_t k = s->item_first[i] + 1; k < s->item_first[i + 1]; k++) {
        long rl = (long)s->sents[k].len, cl = (long)c.len;
        if (best < 0 || labs(rl - cl) < labs(best - cl) ||
            (labs(rl - cl) == labs(best - cl) && rl < best))
            best = rl;
        ngram_clear(ref);
        if (count_ngrams(s, s->sents[k], ref)) return -1;
        for (size_t j = 0; j < ref->cap; j++) {
            const ngram_entry *re = &ref->slots[j];
            ngram_entry *ce = re->n ? ngram_find(cand, re->w, re->n) : NULL;
            if (ce && re->a > ce->b) ce->b = re->a;
        }
    }
    for (size_t j = 0; j < cand->cap; j++) {
        const ngram_entry *e = &cand->slots[j];
        if (e->n) r->matches[e->n - 1] += (long)(e->a < e->b ? e->a : e->b);
    }
    for (size_t n = 1; n <= TRN_NGRAM_N; n++)
        if (c.len >= n) r->totals[n - 1] += (long)(c.len - n + 1);
    r->cand_len += (long)c.len;
    r->ref_len += best;
    return 0;
}

/* Precisions, brevity penalty and score from the counts in r. */
static void bleu_finish(trn_bleu_result *r, int smooth) {
    double log_sum = 0;
    int zero = 0;
    for (int n = 0; n < TRN_NGRAM_N; n++) {
        double m = (double)r->matches[n], t = (double)r->totals[n];
        if (smooth && n > 0) {
            m += 1;
            t += 1;
        }
        r->precision[n] = t > 0 ? m / t : 0.0;
        if (r->precision[n] > 0)
            log_sum += log(r->precision[n]);
        else
            zero = 1;
    }
    if (r->cand_len == 0)
        r->brevity_penalty = 0.0;
    else if (r->cand_len > r->ref_len)
        r->brevity_penalty = 1.0;
    else
        r->brevity_penalty = exp(1.0 - (double)r->ref_len / (double)r->cand_len);
    r->bleu = zero ? 0.0 : r->brevity_penalty * exp(log_sum / TRN_NGRAM_N);
}

static int bleu_run(const trn_caption_set *s, size_t first, size_t end, int smooth,
                    trn_bleu_result *out, char *err) {
    ngram_map cand = {0}, ref = {0};
    trn_bleu_result r;
    memset(&r, 0, sizeof r);
    int rc = -1;
    for (size_t i = first; i < end; i++)
        if (bleu_counts(s, i, &cand, &ref, &r)) {
            rv_fail(err, "bleu: out of memory");
            goto cleanup;
        }
    bleu_finish(&r, smooth);
    *out = r;
    rc = 0;
cleanup:
    ngram_free(&cand);
    ngram_free(&ref);
    return rc;
}

int trn_bleu_corpus(const trn_caption_set *s, trn_bleu_result *out, char *err) {
    if (!s || !s->n_items) return rv_fail(err, "bleu: the caption set is empty");
    return bleu_run(s, 0, s->n_items, 0, out, err);
}

int trn_bleu_sentence(const trn_caption_set *s, size_t i, trn_bleu_result *out, char *err) {
    if (!s || i >= s->n_items)
        return rv_fail(err, "bleu: item %zu out of range (%zu items)", i, s ? s->n_items : 0);
    return bleu_run(s, i, i + 1, 1, out, err);
}

/* TF-IDF vector of one sentence into m (cleared first): field a = count, b = count * (log N -
 * log max(1, df)), with df from the map df (field a). norm[n-1] receives the L2 norm of the
 * n-gram part. */
static int cider_vector(const trn_caption_set *s, sentence st, const ngram_map *df, double log_n,
                        ngram_map *m, double norm[TRN_NGRAM_N]) {
    ngram_clear(m);
    if (count_ngrams(s, st, m)) return -1;
    for (int n = 0; n < TRN_NGRAM_N; n++) norm[n] = 0;
    for (size_t j = 0; j < m->cap; j++) {
        ngram_entry *e = &m->slots[j];
        if (!e->n) continue;
        const ngram_entry *d = ngram_find(df, e->w, e->n);
        double dfc = d && d->a > 1 ? d->a : 1.0;
        e->b = e->a * (log_n - log(dfc));
        norm[e->n - 1] += e->b * e->b;
    }
    for (int n = 0; n < TRN_NGRAM_N; n++) norm[n] = sqrt(norm[n]);
    return 0;
}

/* The scores of trn_cider_d, with its four maps passed in so the caller frees them whatever
 * happens. Returns -1 only when out of memory. */
static int cider_scores(const trn_caption_set *s, ngram_map *df, ngram_map *seen, ngram_map *cand,
                        ngram_map *ref, double *mean, double *per_item) {
    /* Document frequency: the number of items whose references hold the n-gram. */
    for (size_t i = 0; i < s->n_items; i++) {
        ngram_clear(seen);
        for (size_t k = s->item_first[i] + 1; k < s->item_first[i + 1]; k++)
            if (count_ngrams(s, s->sents[k], seen)) return -1;
        for (size_t j = 0; j < seen->cap; j++) {
            const ngram_entry *e = &seen->slots[j];
            if (!e->n) continue;
            ngram_entry *d = ngram_upsert(df, e->w, e->n);
            if (!d) return -1;
            d->a += 1;
        }
    }
    double log_n = log((double)s->n_items), total = 0;
    for (size_t i = 0; i < s->n_items; i++) {
        sentence c = s->sents[s->item_first[i]];
        double cnorm[TRN_NGRAM_N], rnorm[TRN_NGRAM_N], sum[TRN_NGRAM_N] = {0};
        if (cider_vector(s, c, df, log_n, cand, cnorm)) return -1;
        size_t n_refs = s->item_first[i + 1] - s->item_first[i] - 1;
        for (size_t k = s->item_first[i] + 1; k < s->item_first[i + 1]; k++) {
            sentence rs = s->sents[k];
            if (cider_vector(s, rs, df, log_n, ref, rnorm)) return -1;
            double dot[TRN_NGRAM_N] = {0};
            /* CIDEr-D clips the candidate's weight at the reference's. */
            for (size_t j = 0; j < cand->cap; j++) {
                const ngram_entry *ce = &cand->slots[j];
                const ngram_entry *re = ce->n ? ngram_find(ref, ce->w, ce->n) : NULL;
                if (re) dot[ce->n - 1] += (ce->b < re->b ? ce->b : re->b) * re->b;
            }
            double delta = (double)c.len - (double)rs.len;
            double penalty = exp(-delta * delta / (2.0 * CIDER_SIGMA * CIDER_SIGMA));
            for (int n = 0; n < TRN_NGRAM_N; n++) {
                double cos = cnorm[n] > 0 && rnorm[n] > 0 ? dot[n] / (cnorm[n] * rnorm[n]) : 0.0;
                sum[n] += cos * penalty;
            }
        }
        double score = 0;
        for (int n = 0; n < TRN_NGRAM_N; n++) score += sum[n];
        score = CIDER_SCALE * score / TRN_NGRAM_N / (double)n_refs;
        if (per_item) per_item[i] = score;
        total += score;
    }
    *mean = total / (double)s->n_items;
    return 0;
}

int trn_cider_d(const trn_caption_set *s, double *mean, double *per_item, char *err) {
    if (!s || !s->n_items) return rv_fail(err, "cider: the caption set is empty");
    ngram_map df = {0}, seen = {0}, cand = {0}, ref = {0};
    int rc = cider_scores(s, &df, &seen, &cand, &ref, mean, per_item);
    ngram_free(&df);
    ngram_free(&seen);
    ngram_free(&cand);
    ngram_free(&ref);
    return rc ? rv_fail(err, "cider: out of memory") : 0;
}
