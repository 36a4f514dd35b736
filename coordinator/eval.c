/* coordinator/eval.c — what the trained model knows: greedy answers over the stored memory
 * (real top-K, no re-encoding, no injection) compared as text with the current facts (and, after
 * an edit, with the replaced ones); the same model with memory removed; recall@K of the gold
 * item; p(gold|x) in retrieval and when fused with other questions' gold items. */
#include <stdlib.h>
#include <string.h>

#include "coord_impl.h"
#include "rv.h"

size_t *coord_test_questions(const world *w, size_t n, size_t *count) {
    size_t *qs = malloc((w->n_test ? w->n_test : 1) * sizeof *qs), k = 0;
    if (!qs) return NULL;
    for (size_t q = 0; q < w->n_questions && (n == 0 || k < n); q++)
        if (w->questions[q].is_test) qs[k++] = q;
    *count = k;
    return qs;
}

/* Decodes the greedy answers of rows [0, n) and counts those equal to want[row] (NULL: skip). */
static int count_equal(coord_trainer *t, const struct coord_scratch *s, int n,
                       const char *const *want, double *hits, char *err) {
    int cap = t->cfg.model.answer_max - 1; /* the max_len of rvm_answer */
    for (int b = 0; b < n; b++) {
        char *text = NULL;
        size_t len = 0;
        if (!want[b]) continue;
        if (trn_tok_decode(t->tok, s->answer_out + (size_t)b * cap, s->answer_len[b], &text, &len,
                           err))
            return rv_fail_wrap(err, "decoding an answer");
        *hits += strcmp(text, want[b]) == 0;
        free(text);
    }
    return 0;
}

int coord_evaluate(coord_trainer *t, const size_t *qs, size_t n, const char *const *old_answer,
                   coord_eval *ev, char *err) {
    struct coord_scratch *s = t->scratch;
    const coord_config *c = &t->cfg;
    int max_len = c->model.answer_max - 1, cap = s->cap, warm_rows = 0;
    const char *want[cap];
    memset(ev, 0, sizeof *ev);
    ev->n = n;
    for (size_t at = 0; at < n; at += (size_t)cap) {
        int B = n - at < (size_t)cap ? (int)(n - at) : cap;
        for (int b = 0; b < B; b++) {
            s->rows[b] = qs[at + b];
            want[b] = t->w->questions[qs[at + b]].answer;
        }
        coord_batch_rows(t, s, B);
        const rvm_candidates *cands = NULL;
        if (!c->memory_off) {
            double recall = 0.0;
            if (coord_batch_memory(t, s, B, 0, 0, &recall, err)) return -1;
            ev->recall += recall * B;
            cands = &s->cands;
        }
        if (rvm_answer(&t->model, s->queries, B, cands, max_len, s->answer_out, s->answer_len, s->p,
                       err))
            return rv_fail_wrap(err, "answering with memory");
        if (cands) ev->p_gold += coord_p_gold(s, B, s->p, s->cands.n_sources * c->topk) * B;
        if (count_equal(t, s, B, want, &ev->acc, err)) return -1;
        if (old_answer) {
            for (int b = 0; b < B; b++) want[b] = old_answer[at + b];
            if (count_equal(t, s, B, want, &ev->acc_old, err)) return -1;
            for (int b = 0; b < B; b++) want[b] = t->w->questions[qs[at + b]].answer;
        }
        if (rvm_answer(&t->model, s->queries, B, NULL, max_len, s->answer_out, s->answer_len, NULL,
                       err))
            return rv_fail_wrap(err, "answering with memory removed");
        if (count_equal(t, s, B, want, &ev->acc_nomem, err)) return -1;
        if (B > c->warm_others && c->warm_others > 0) {
            coord_batch_warm(t, s, B, c->warm_others, (uint64_t)at);
            rvm_batch batch = {
                .B = B, .queries = s->queries, .cands = &s->cands, .answers = s->answers};
            rvm_step_out out;
            rvm_config mc = t->model.cfg;
            t->model.cfg.con_weight = 0.0f; /* no gold items passed: only p is wanted */
            int rc = rvm_forward(&t->model, &batch, &out, err);
            t->model.cfg = mc;
            if (rc) return rv_fail_wrap(err, "fusion over gold items");
            ev->p_gold_warm += coord_p_gold(s, B, out.p, out.M) * B;
            warm_rows += B;
        }
    }
    if (n) {
        ev->acc /= n;
        ev->acc_old /= n;
        ev->acc_nomem /= n;
        ev->recall /= n;
        ev->p_gold /= n;
    }
    if (warm_rows) ev->p_gold_warm /= warm_rows;
    return 0;
}
