/* training/metrics.c — retrieval metrics (recall@K, reciprocal rank) and the table of scores per
 * question type that `reveal eval` prints as text and writes as JSON.
 */
#include "metrics.h"

#include "rv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Refuses a gold list that is empty or names an id twice (recall would count it twice). */
static int check_gold(const uint64_t *ranked, size_t n_ranked, const uint64_t *gold, size_t n_gold,
                      char *err) {
    if (n_ranked && !ranked) return rv_fail(err, "ranked ids are NULL");
    if (!n_gold || !gold) return rv_fail(err, "no gold ids");
    for (size_t i = 0; i < n_gold; i++)
        for (size_t j = 0; j < i; j++)
            if (gold[i] == gold[j])
                return rv_fail(err, "gold id %llu listed twice", (unsigned long long)gold[i]);
    return 0;
}

static int is_gold(uint64_t id, const uint64_t *gold, size_t n_gold) {
    for (size_t g = 0; g < n_gold; g++)
        if (gold[g] == id) return 1;
    return 0;
}

int trn_recall_at_k(const uint64_t *ranked, size_t n_ranked, const uint64_t *gold, size_t n_gold,
                    size_t k, double *recall, char *err) {
    if (check_gold(ranked, n_ranked, gold, n_gold, err)) return rv_fail_wrap(err, "recall@k");
    if (k == 0) return rv_fail(err, "recall@k: k must be at least 1");
    size_t top = k < n_ranked ? k : n_ranked, found = 0;
    /* Each gold id counts once even if a retriever returned it twice. */
    for (size_t g = 0; g < n_gold; g++)
        if (is_gold(gold[g], ranked, top)) found++;
    *recall = (double)found / (double)n_gold;
    return 0;
}

int trn_reciprocal_rank(const uint64_t *ranked, size_t n_ranked, const uint64_t *gold,
                        size_t n_gold, double *rr, char *err) {
    if (check_gold(ranked, n_ranked, gold, n_gold, err))
        return rv_fail_wrap(err, "reciprocal rank");
    *rr = 0.0;
    for (size_t i = 0; i < n_ranked; i++)
        if (is_gold(ranked[i], gold, n_gold)) {
            *rr = 1.0 / (double)(i + 1);
            break;
        }
    return 0;
}

/* Index of type in t's sorted rows, or where it would go (*found = 0). */
static size_t row_search(const trn_score_table *t, const char *type, int *found) {
    size_t lo = 0, hi = t->n_rows;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->rows[mid].type, type);
        if (!c) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

int trn_score_table_add(trn_score_table *t, const char *type, double score, char *err) {
    if (!t || !type) return rv_fail(err, "score table: table or type is NULL");
    if (!*type) return rv_fail(err, "score table: empty question type");
    size_t bad_at = 0;
    if (!rv_utf8_valid(type, strlen(type), &bad_at))
        return rv_fail(err, "score table: question type has invalid UTF-8 at byte %zu", bad_at);
    if (!isfinite(score) || score < 0.0 || score > 1.0)
        return rv_fail(err, "score table: score %g of type \"%s\" is outside [0, 1]", score, type);
    int found;
    size_t at = row_search(t, type, &found);
    if (!found) {
        if (t->n_rows == t->cap_rows) {
            size_t cap = t->cap_rows ? 2 * t->cap_rows : 16;
            trn_score_row *rows = realloc(t->rows, cap * sizeof *rows);
            if (!rows) return rv_fail(err, "score table: out of memory");
            t->rows = rows;
            t->cap_rows = cap;
        }
        char *name = strdup(type);
        if (!name) return rv_fail(err, "score table: out of memory");
        memmove(t->rows + at + 1, t->rows + at, (t->n_rows - at) * sizeof *t->rows);
        t->rows[at].type = name;
        t->rows[at].count = 0;
        t->rows[at].sum = 0.0;
        t->n_rows++;
    }
    t->rows[at].count++;
    t->rows[at].sum += score;
    t->count++;
    t->sum += score;
    return 0;
}

void trn_score_table_free(trn_score_table *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n_rows; i++) free(t->rows[i].type);
    free(t->rows);
    memset(t, 0, sizeof *t);
}

static double mean_of(long count, double sum) {
    return count ? sum / (double)count : 0.0;
}

/* Display width in characters (code points), so non-ASCII type names line up. */
static size_t text_width(const char *s) {
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
}

/* Appends "s" padded with spaces to width (left-aligned) to buf at *o. */
static void put_padded(char *buf, size_t *o, const char *s, size_t width) {
    size_t len = strlen(s), w = text_width(s);
    memcpy(buf + *o, s, len);
    *o += len;
    for (; w < width; w++) buf[(*o)++] = ' ';
}

int trn_score_table_text(const trn_score_table *t, const char *score_name, char **out, char *err) {
    *out = NULL;
    if (!t || !score_name || !*score_name)
        return rv_fail(err, "score table text: table or score name missing");
    static const char *const all_name = "all";
    size_t width = text_width("type");
    if (text_width(all_name) > width) width = text_width(all_name);
    size_t bytes = 0;
    for (size_t i = 0; i < t->n_rows; i++) {
        if (text_width(t->rows[i].type) > width) width = text_width(t->rows[i].type);
        bytes += strlen(t->rows[i].type);
    }
    /* Per line: the name and its padding, two spaces, the count (<= 20 digits) and the score
     * (<= 24 bytes with its column); the score's header is as long as score_name. */
    size_t line = width + 2 + 20 + 2 + 26 + strlen(score_name) + 2;
    size_t cap = bytes + (t->n_rows + 2) * line + 1;
    char *buf = malloc(cap);
    if (!buf) return rv_fail(err, "score table text: out of memory");
    size_t o = 0;
    int score_w = (int)strlen(score_name) + 2 > 9 ? (int)strlen(score_name) + 2 : 9;
    put_padded(buf, &o, "type", width);
    o += (size_t)snprintf(buf + o, cap - o, "  %10s  %*s\n", "count", score_w, score_name);
    for (size_t i = 0; i <= t->n_rows; i++) {
        int last = i == t->n_rows;
        const char *name = last ? all_name : t->rows[i].type;
        long count = last ? t->count : t->rows[i].count;
        double sum = last ? t->sum : t->rows[i].sum;
        put_padded(buf, &o, name, width);
        o += (size_t)snprintf(buf + o, cap - o, "  %10ld  %*.2f\n", count, score_w,
                              100.0 * mean_of(count, sum));
    }
    buf[o] = '\0';
    *out = buf;
    return 0;
}

/* {"count": count, score_name: mean}, added to parent under name. */
static int json_row(cJSON *parent, const char *name, const char *score_name, long count,
                    double sum) {
    cJSON *row = cJSON_CreateObject();
    if (!row) return -1;
    if (!cJSON_AddItemToObject(parent, name, row)) {
        cJSON_Delete(row);
        return -1;
    }
    if (!cJSON_AddNumberToObject(row, "count", (double)count)) return -1;
    if (!cJSON_AddNumberToObject(row, score_name, mean_of(count, sum))) return -1;
    return 0;
}

int trn_score_table_json(const trn_score_table *t, const char *score_name, cJSON **out, char *err) {
    *out = NULL;
    if (!t || !score_name || !*score_name)
        return rv_fail(err, "score table json: table or score name missing");
    cJSON *root = cJSON_CreateObject();
    cJSON *per_type = cJSON_CreateObject();
    if (!root || !per_type) goto oom;
    if (json_row(root, "all", score_name, t->count, t->sum)) goto oom;
    if (!cJSON_AddItemToObject(root, "per_type", per_type)) goto oom;
    cJSON *owned = per_type; /* now freed with root */
    per_type = NULL;
    for (size_t i = 0; i < t->n_rows; i++)
        if (json_row(owned, t->rows[i].type, score_name, t->rows[i].count, t->rows[i].sum))
            goto oom;
    *out = root;
    return 0;
oom:
    cJSON_Delete(root);
    cJSON_Delete(per_type);
    return rv_fail(err, "score table json: out of memory");
}
