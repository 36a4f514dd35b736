/* trainer/eval.c — evaluation on rank 0 with the workers serving memory: every question is
 * answered greedily from its own top-K (stored keys and values, no gradient) or with memory
 * removed, scored by exact match after VQA answer normalisation against its accepted answers,
 * per question type; recall@K of the gold item when the task names one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rv.h"
#include "tr_impl.h"

void tr_utf8_repair(char *s, size_t n) {
    size_t at = 0, bad;
    /* a generated answer may end inside a character spelled in byte pieces */
    while (at < n && !rv_utf8_valid(s + at, n - at, &bad)) {
        s[at + bad] = '?';
        at += bad + 1;
    }
}

int tr_task_tokenize(const tr_job *j, const tr_task *t, int32_t **q_ids, rvm_input **queries,
                     int32_t **a_ids, rvm_text **answers, char *err) {
    int qc = j->mcfg.text_max - 1, ac = j->mcfg.answer_max - 1;
    size_t n = t->n, cut = 0;
    *q_ids = calloc(n * (size_t)qc, sizeof **q_ids);
    *queries = calloc(n, sizeof **queries);
    if (a_ids) {
        *a_ids = calloc(n * (size_t)ac, sizeof **a_ids);
        *answers = calloc(n, sizeof **answers);
    }
    if (!*q_ids || !*queries || (a_ids && (!*a_ids || !*answers)))
        return rv_fail(err, "out of memory for %zu questions", n);
    for (size_t i = 0; i < n; i++) {
        const tr_row *r = &t->rows[i];
        int nq = 0, full = 0;
        int32_t *q = *q_ids + i * qc;
        if (trn_tok_encode(j->tok, r->question, strlen(r->question), 0, qc, q, &nq, &full, err))
            return rv_fail_wrap(err, "%s: question", r->id);
        cut += full > nq;
        (*queries)[i] = (rvm_input){{q, nq}, r->pixels};
        if (!a_ids) continue;
        int32_t *a = *a_ids + i * ac;
        if (trn_tok_encode(j->tok, r->answer, strlen(r->answer), 0, ac, a, &nq, &full, err))
            return rv_fail_wrap(err, "%s: answer", r->id);
        cut += full > nq;
        (*answers)[i] = (rvm_text){a, nq};
    }
    if (cut)
        rv_warn("%zu questions or answers were longer than model.text_max / answer_max allow and "
                "were cut",
                cut);
    return 0;
}

void tr_eval_free(tr_eval *ev) {
    for (size_t i = 0; ev->pred && i < ev->n; i++) free(ev->pred[i]);
    free(ev->pred);
    trn_score_table_free(&ev->by_type);
    memset(ev, 0, sizeof *ev);
}

/* BLEU-4 (corpus) and CIDEr-D of the captioning rows' predictions against their captions. */
static int score_captions(const tr_task *t, tr_eval *ev, char *err) {
    trn_caption_set *cs = NULL;
    int rc = -1;
    if (trn_caption_set_create(TRN_TOK_CAPTION, &cs, err)) return -1;
    for (size_t i = 0; i < t->n; i++) {
        const tr_row *r = &t->rows[i];
        if (strcmp(r->type, TR_CAPTION_TYPE)) continue;
        if (trn_caption_set_add(cs, ev->pred[i], (const char *const *)r->answers,
                                (size_t)r->n_answers, err))
            goto cleanup;
        ev->n_captions++;
    }
    if (ev->n_captions) {
        trn_bleu_result b;
        if (trn_bleu_corpus(cs, &b, err) || trn_cider_d(cs, &ev->cider, NULL, err)) goto cleanup;
        ev->bleu4 = b.bleu;
    }
    rc = 0;
cleanup:
    trn_caption_set_free(cs);
    return rc;
}

int tr_evaluate(tr_job *j, const tr_task *t, const rvm_input *queries, const tr_eval_opts *o,
                tr_eval *ev, char *err) {
    memset(ev, 0, sizeof *ev);
    int B = (int)j->cfg.batch, S = (int)j->l->n_sources, dk = j->mcfg.key_dim;
    int cd = j->mcfg.latents * j->mcfg.width, amax = j->mcfg.answer_max - 1, rc = -1;
    size_t Mmax = (size_t)o->topk * S;
    float *q = malloc((size_t)B * dk * sizeof *q);
    uint32_t *k = calloc((size_t)S, sizeof *k), *gsrc = calloc((size_t)B, sizeof *gsrc);
    int *ks = calloc((size_t)S, sizeof *ks), *len = calloc((size_t)B, sizeof *len);
    char **gkeys = calloc((size_t)B, sizeof *gkeys);
    rvm_candidate *cand = calloc((size_t)B * (Mmax ? Mmax : 1), sizeof *cand);
    tr_hit *hits = malloc(((size_t)o->topk * j->l->n_stores + 1) * sizeof *hits);
    int32_t *out = malloc((size_t)B * amax * sizeof *out);
    ev->pred = calloc(t->n, sizeof *ev->pred);
    double hit_sum = 0;
    if (!q || !k || !gsrc || !ks || !len || !gkeys || !cand || !hits || !out || !ev->pred) {
        rv_fail(err, "out of memory for the evaluation");
        goto cleanup;
    }
    ev->n = t->n;
    for (int s = 0; s < S; s++) k[s] = o->use_source && !o->use_source[s] ? 0 : (uint32_t)o->topk;
    for (size_t r0 = 0; r0 < t->n; r0 += (size_t)B) {
        int n = (int)(t->n - r0 < (size_t)B ? t->n - r0 : (size_t)B);
        rvm_candidates cands = {S, ks, 0, cand}, *cp = NULL;
        if (o->memory) {
            for (int b = 0; b < n; b++) {
                const tr_row *row = &t->rows[r0 + b];
                gkeys[b] = row->gold_key;
                gsrc[b] = row->gold_source < 0 ? 0 : (uint32_t)row->gold_source;
            }
            if (rvm_encode_queries(&j->model, queries + r0, n, q, err)) goto cleanup;
            Reveal__QueryBatch qb = REVEAL__QUERY_BATCH__INIT;
            qb.step = (uint64_t)j->step;
            qb.batch = (uint32_t)n;
            qb.dk = (uint32_t)dk;
            qb.n_queries = (size_t)n * dk;
            qb.queries = q;
            qb.n_k = (size_t)S;
            qb.k = k;
            qb.n_gold_keys = qb.n_gold_sources = (size_t)n;
            qb.gold_keys = gkeys;
            qb.gold_sources = gsrc;
            if (tr_exchange(j, &qb, err)) goto cleanup;
            int M = tr_source_counts(j, k, ks);
            for (int b = 0, off = 0; b < n; b++, off = 0)
                for (int s = 0; s < S; s++) {
                    tr_merge_hits(j, s, b, hits);
                    for (int x = 0; x < ks[s]; x++) {
                        const Reveal__TopKReply *r = j->replies[hits[x].store];
                        cand[(size_t)b * M + off + x] = (rvm_candidate){
                            .key = r->keys + hits[x].at * dk, .value = r->values + hits[x].at * cd};
                        if ((uint32_t)s == gsrc[b] && gkeys[b][0] && r->n_gold_ids &&
                            r->gold_ids[b] == hits[x].id)
                            hit_sum += 1;
                    }
                    if ((uint32_t)s == gsrc[b] && gkeys[b][0] && k[s]) ev->n_gold++;
                    off += ks[s];
                }
            cp = &cands;
        }
        if (rvm_answer(&j->model, queries + r0, n, cp, amax, out, len, NULL, err)) goto cleanup;
        tr_exchange_release(j);
        for (int b = 0; b < n; b++) {
            const tr_row *row = &t->rows[r0 + b];
            size_t plen;
            double acc;
            if (trn_tok_decode(j->tok, out + (size_t)b * amax, len[b], &ev->pred[r0 + b], &plen,
                               err))
                goto cleanup;
            tr_utf8_repair(ev->pred[r0 + b], plen);
            if (trn_vqa_accuracy(ev->pred[r0 + b], (const char *const *)row->answers,
                                 (size_t)row->n_answers, TRN_VQA_EXACT, &acc, err) ||
                trn_score_table_add(&ev->by_type, row->type[0] ? row->type : "(none)", acc, err))
                goto cleanup;
            ev->acc += acc;
        }
    }
    ev->acc /= (double)t->n;
    if (score_captions(t, ev, err)) goto cleanup;
    ev->recall = ev->n_gold ? hit_sum / (double)ev->n_gold : 0;
    rc = 0;
cleanup:
    tr_exchange_release(j);
    free(q);
    free(k);
    free(gsrc);
    free(ks);
    free(len);
    free(gkeys);
    free(cand);
    free(hits);
    free(out);
    if (rc) tr_eval_free(ev);
    return rc;
}

/* Accuracy per question type, with memory (on may be NULL) and memory removed, in percent. */
void tr_print_table(const trn_score_table *on, const trn_score_table *off) {
    printf("%-16s %7s %12s %15s\n", "type", "count", on ? "with memory" : "", "memory removed");
    for (size_t i = 0; i < off->n_rows; i++) {
        const trn_score_row *r = &off->rows[i];
        printf("%-16s %7ld ", r->type, r->count);
        if (on)
            printf("%12.2f ", 100 * on->rows[i].sum / (double)on->rows[i].count);
        else
            printf("%12s ", "");
        printf("%15.2f\n", 100 * r->sum / (double)r->count);
    }
    printf("%-16s %7ld ", "all", off->count);
    if (on)
        printf("%12.2f ", 100 * on->sum / (double)on->count);
    else
        printf("%12s ", "");
    printf("%15.2f\n", 100 * off->sum / (double)off->count);
}
