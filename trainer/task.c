/* trainer/task.c — task files: one question per JSON line, its picture, its answers and its
 * gold item (docs/train.md "Task files"). The world's questions_*.jsonl and the flags
 * builder's vqa_*.jsonl are both task files. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memstore.h"
#include "rv.h"
#include "trainer.h"

#define TASK_FILE_MAX (1u << 30)

static const char *str_field(const cJSON *o, const char *name) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(f) ? f->valuestring : NULL;
}

/* A field that must be a string when present: 1 found, 0 absent, -1 wrong type. */
static int opt_string(const cJSON *o, const char *name, const char **out) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    *out = NULL;
    if (!f) return 0;
    if (!cJSON_IsString(f)) return -1;
    *out = f->valuestring;
    return 1;
}

static int resolve_source(const wrk_layout *l, const char *name, int *out) {
    for (size_t j = 0; j < l->n_sources; j++)
        if (!strcmp(l->sources[j].name, name)) {
            *out = (int)j;
            return 0;
        }
    Reveal__SourceType t;
    if (mem_type_from_name(name, &t) == 0)
        for (size_t j = 0; j < l->n_sources; j++)
            if (l->sources[j].type == (int)t) {
                *out = (int)j;
                return 0;
            }
    return -1;
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = 0;
        if (!n) strcpy(d, "/");
    }
    return d;
}

static int parse_row(tr_row *r, const cJSON *o, const char *dir, const wrk_layout *l,
                     uint32_t image_size, long line, char *err) {
    const char *image = str_field(o, "image"), *question = str_field(o, "question"),
               *answer = str_field(o, "answer"), *caption = str_field(o, "caption"), *type, *id,
               *gold, *gold_src;
    /* a captioning row: the image and a fixed prompt, the caption as the answer */
    if (caption && !question && !answer) {
        question = TR_CAPTION_PROMPT;
        answer = caption;
    }
    if (!image || !question || !answer)
        return rv_fail(err, "line %ld: \"%s\" is missing or not a string", line,
                       !image      ? "image"
                       : !question ? "question"
                                   : "answer");
    if (!question[0] || !answer[0])
        return rv_fail(err, "line %ld: \"%s\" is empty", line,
                       !question[0] ? "question" : "answer");
    if (opt_string(o, "type", &type) < 0 || opt_string(o, "id", &id) < 0 ||
        opt_string(o, "gold_source", &gold_src) < 0)
        return rv_fail(err, "line %ld: \"type\", \"id\" and \"gold_source\" must be strings", line);
    int gk = opt_string(o, "gold_key", &gold);
    if (gk == 0) gk = opt_string(o, "gold", &gold);
    if (gk < 0) return rv_fail(err, "line %ld: the gold key must be a string", line);
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "line %ld", line);
    r->id = strdup(id ? id : idbuf);
    r->question = strdup(question);
    r->answer = strdup(answer);
    r->type = strdup(type ? type : caption && answer == caption ? TR_CAPTION_TYPE : "");
    r->gold_key = strdup(gold ? gold : "");
    r->gold_source = -1;
    if (!r->id || !r->question || !r->answer || !r->type || !r->gold_key)
        return rv_fail(err, "line %ld: out of memory", line);
    if (gold && resolve_source(l, gold_src ? gold_src : "kg", &r->gold_source))
        return rv_fail(err, "line %ld: gold_source \"%s\" names no source of the layout", line,
                       gold_src ? gold_src : "kg (the default)");
    const cJSON *as = cJSON_GetObjectItemCaseSensitive(o, "answers");
    int na = as ? cJSON_GetArraySize(as) : 0;
    if (as && !cJSON_IsArray(as)) return rv_fail(err, "line %ld: \"answers\" must be a list", line);
    r->answers = calloc((size_t)na + 1, sizeof *r->answers);
    if (!r->answers) return rv_fail(err, "line %ld: out of memory", line);
    r->answers[r->n_answers++] = strdup(answer);
    for (int i = 0; i < na; i++) {
        const cJSON *a = cJSON_GetArrayItem(as, i);
        if (!cJSON_IsString(a))
            return rv_fail(err, "line %ld: answers[%d] must be a string", line, i);
        if (strcmp(a->valuestring, answer)) r->answers[r->n_answers++] = strdup(a->valuestring);
    }
    for (int i = 0; i < r->n_answers; i++)
        if (!r->answers[i]) return rv_fail(err, "line %ld: out of memory", line);
    if (!image_size) return 0;
    char path[2 * TR_PATH_MAX];
    if (image[0] == '/')
        snprintf(path, sizeof path, "%s", image);
    else
        snprintf(path, sizeof path, "%s/%s", dir, image);
    if (mem_image_load(path, image_size, &r->pixels, err))
        return rv_fail_wrap(err, "line %ld: image", line);
    return 0;
}

static void row_free(tr_row *r) {
    free(r->id);
    free(r->question);
    free(r->answer);
    for (int i = 0; i < r->n_answers; i++) free(r->answers[i]);
    free(r->answers);
    free(r->type);
    free(r->gold_key);
    free(r->pixels);
}

int tr_task_load(tr_task *t, const char *path, const wrk_layout *l, uint32_t image_size,
                 char *err) {
    memset(t, 0, sizeof *t);
    char *text = NULL, *dir = dir_of(path);
    size_t n = 0, cap = 0;
    long line = 0;
    int rc = -1;
    if (!dir) return rv_fail(err, "%s: out of memory", path);
    if (rv_read_file(path, TASK_FILE_MAX, (void **)&text, &n, err)) goto cleanup;
    for (char *p = text, *end; p < text + n; p = end + 1) {
        end = memchr(p, '\n', (size_t)(text + n - p));
        if (!end) end = text + n;
        *end = 0;
        line++;
        if (strspn(p, " \t\r") == (size_t)(end - p)) continue;
        cJSON *o = cJSON_Parse(p);
        if (!o || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            rv_fail(err, "%s:%ld: not a JSON object", path, line);
            goto cleanup;
        }
        if (t->n == cap) {
            cap = cap ? 2 * cap : 256;
            tr_row *g = realloc(t->rows, cap * sizeof *g);
            if (!g) {
                cJSON_Delete(o);
                rv_fail(err, "%s: out of memory", path);
                goto cleanup;
            }
            t->rows = g;
        }
        memset(&t->rows[t->n], 0, sizeof *t->rows);
        int bad = parse_row(&t->rows[t->n++], o, dir, l, image_size, line, err);
        cJSON_Delete(o);
        if (bad) {
            rv_fail_wrap(err, "%s", path);
            goto cleanup;
        }
    }
    if (!t->n) {
        rv_fail(err, "%s holds no questions", path);
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(text);
    free(dir);
    if (rc) tr_task_free(t);
    return rc;
}

void tr_task_free(tr_task *t) {
    for (size_t i = 0; i < t->n; i++) row_free(&t->rows[i]);
    free(t->rows);
    memset(t, 0, sizeof *t);
}
