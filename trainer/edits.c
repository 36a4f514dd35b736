/* trainer/edits.c — counterfactual edit rounds during training (LEARNING.md: without them the
 * decoder memorises training answers and never reads the memory). train.edits names a
 * directory whose subdirectories are the rounds, applied in name order, one every
 * train.edit_every updates, cyclically. A round holds `<source name>.jsonl` (ingest lines whose
 * logical keys name the items whose text changes: the stores' texts are replaced in RAM, never
 * written) and a task file named like data.train with the answers that follow the round
 * (matched by "id", or by line for files without ids). After the last update the stored texts
 * and data.train's answers come back and the memory is re-encoded. `reveal world --edit-fraction`
 * and tools/flags/counterfactual.py write such rounds. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rv.h"
#include "tr_impl.h"

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int tr_edits_open(tr_job *j, char *err) {
    if (!j->cfg.edits[0]) return 0;
    DIR *d = opendir(j->cfg.edits);
    if (!d) return rv_fail(err, "train.edits: cannot open %s: %s", j->cfg.edits, strerror(errno));
    struct dirent *e;
    size_t cap = 0;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[2 * TR_PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", j->cfg.edits, e->d_name);
        if (stat(path, &st) || !S_ISDIR(st.st_mode)) continue;
        if (j->n_rounds == cap) {
            cap = cap ? 2 * cap : 16;
            char **g = realloc(j->rounds, cap * sizeof *g);
            if (!g) {
                rc = rv_fail(err, "out of memory");
                break;
            }
            j->rounds = g;
        }
        if (!(j->rounds[j->n_rounds++] = strdup(path))) rc = rv_fail(err, "out of memory");
    }
    closedir(d);
    if (rc) return rc;
    if (!j->n_rounds)
        return rv_fail(err, "train.edits: %s holds no round directories", j->cfg.edits);
    qsort(j->rounds, j->n_rounds, sizeof *j->rounds, cmp_str);
    /* the answers of data.train, to come back to after training */
    return tr_task_load(&j->orig, j->cfg.train, j->l, 0, err);
}

/* Row of task t with the given id, by binary search over ids sorted into idx. */
static long find_row(const tr_task *t, const size_t *idx, const char *id) {
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->rows[idx[mid]].id, id);
        if (c == 0) return (long)idx[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static const tr_task *sort_task;
static int cmp_row_id(const void *a, const void *b) {
    return strcmp(sort_task->rows[*(const size_t *)a].id, sort_task->rows[*(const size_t *)b].id);
}

/* Every training row takes the answers of the row with its id in `from`. */
static int take_answers(tr_job *j, const tr_task *from, char *err) {
    size_t *idx = malloc(from->n * sizeof *idx);
    int ac = j->mcfg.answer_max - 1, rc = -1;
    if (!idx) return rv_fail(err, "out of memory");
    for (size_t i = 0; i < from->n; i++) idx[i] = i;
    sort_task = from;
    qsort(idx, from->n, sizeof *idx, cmp_row_id);
    for (size_t i = 0; i < j->task.n; i++) {
        tr_row *r = &j->task.rows[i];
        long k = find_row(from, idx, r->id);
        if (k < 0) {
            rv_fail(err, "%s: no question with id \"%s\"", j->cfg.train, r->id);
            goto cleanup;
        }
        const tr_row *src = &from->rows[k];
        char *answer = strdup(src->answer);
        char **answers = calloc((size_t)src->n_answers, sizeof *answers);
        if (!answer || !answers) {
            free(answer);
            free(answers);
            rv_fail(err, "out of memory");
            goto cleanup;
        }
        for (int a = 0; a < src->n_answers; a++) answers[a] = strdup(src->answers[a]);
        free(r->answer);
        for (int a = 0; a < r->n_answers; a++) free(r->answers[a]);
        free(r->answers);
        r->answer = answer;
        r->answers = answers;
        r->n_answers = src->n_answers;
        int32_t *ids = j->a_ids + i * ac;
        int n = 0;
        if (trn_tok_encode(j->tok, answer, strlen(answer), 0, ac, ids, &n, NULL, err)) {
            rv_fail_wrap(err, "%s: answer", r->id);
            goto cleanup;
        }
        j->answers[i] = (rvm_text){ids, n};
    }
    rc = 0;
cleanup:
    free(idx);
    return rc;
}

int tr_edits_apply(tr_job *j, long at, int encode, char *err) {
    if (!j->n_rounds) return 0;
    const char *round = NULL;
    if (at > 0) round = j->rounds[(size_t)(at / j->cfg.edit_every - 1) % j->n_rounds];
    if (tr_control_ex(j, REVEAL__CONTROL_COMMAND__EDIT, (uint64_t)j->step, round ? round : "",
                      encode, err))
        return -1;
    if (!round) return take_answers(j, &j->orig, err);
    char path[3 * TR_PATH_MAX];
    const char *base = strrchr(j->cfg.train, '/');
    snprintf(path, sizeof path, "%s/%s", round, base ? base + 1 : j->cfg.train);
    tr_task t;
    if (tr_task_load(&t, path, j->l, 0, err)) return rv_fail_wrap(err, "edit round");
    int rc = take_answers(j, &t, err);
    tr_task_free(&t);
    return rc ? rv_fail_wrap(err, "edit round %s", round) : 0;
}
