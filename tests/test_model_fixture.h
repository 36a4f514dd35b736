/* tests/test_model_fixture.h — a small deterministic batch for the model_ tests: B queries
 * (one without a picture, one with a single text token), candidates from every source (the
 * first of each source re-encoded from a raw item, the rest stored keys and values), gold items
 * and answers of different lengths, all drawn from a seeded counter RNG.
 */
#ifndef RV_TEST_MODEL_FIXTURE_H
#define RV_TEST_MODEL_FIXTURE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "model.h"
#include "rng.h"

#define FX_MAXB   4
#define FX_MAXM   8
#define FX_MAXTOK 16
#define FX_MAXIMG (16 * 16 * 3)
#define FX_MAXKV  (8 * 64)
#define FX_NIN    (FX_MAXB * (2 + FX_MAXM))

typedef struct {
    rvm_config cfg;
    int B, M;
    int k[4];
    int32_t tok[FX_NIN + FX_MAXB][FX_MAXTOK];
    uint8_t img[FX_NIN][FX_MAXIMG];
    rvm_input queries[FX_MAXB], gold[FX_MAXB], items[FX_MAXB * FX_MAXM];
    rvm_text answers[FX_MAXB];
    rvm_candidate cand[FX_MAXB * FX_MAXM];
    float keys[FX_MAXB * FX_MAXM][FX_MAXKV], values[FX_MAXB * FX_MAXM][FX_MAXKV];
    rvm_candidates cands;
    rvm_batch batch;
} fx_batch;

/* The tiny config of the gradient check: odd sizes wherever the layers allow them. */
static inline void fx_tiny_config(rvm_config *c) {
    rvm_config_default(c);
    c->vocab = 13;
    c->width = 15;
    c->heads = 3;
    c->mlp_hidden = 7;
    c->image_size = 6;
    c->patch = 3;
    c->text_max = 6;
    c->answer_max = 4;
    c->vit_blocks = 1;
    c->text_blocks = 2;
    c->head_blocks = 1;
    c->fusion_blocks = 2;
    c->decoder_blocks = 1;
    c->latents = 3;
    c->key_dim = 5;
    c->sources = 2;
    c->con_weight = 0.3f;
    c->dis_weight = 0.5f;
    c->gap_weight = 0.5f;
    c->label_smoothing = 0.1f;
    c->seed = 7;
}

static inline uint32_t fx_rand(uint64_t stream, uint64_t i, uint32_t n) {
    return (uint32_t)(trn_rng_u64(99, stream, i) % n);
}

/* An input: n tokens in [3, V), a picture when with_image. */
static inline void fx_input(fx_batch *f, rvm_input *in, int slot, int n, int with_image) {
    const rvm_config *c = &f->cfg;
    for (int t = 0; t < n; t++)
        f->tok[slot][t] = 3 + (int32_t)fx_rand(1, (uint64_t)slot * 64 + t, (uint32_t)c->vocab - 3);
    in->text.ids = f->tok[slot];
    in->text.n = n;
    in->image = NULL;
    if (with_image) {
        size_t np = (size_t)c->image_size * c->image_size * 3;
        for (size_t i = 0; i < np; i++)
            f->img[slot][i] = (uint8_t)fx_rand(2, (uint64_t)slot * 4096 + i, 256);
        in->image = f->img[slot];
    }
}

/* B rows; k[j] candidates of source j (n_sources of them; warm: one pseudo-source). */
static inline void fx_build(fx_batch *f, const rvm_config *cfg, int B, int n_sources, const int *k,
                            int warm) {
    memset(f, 0, sizeof *f);
    f->cfg = *cfg;
    f->B = B;
    const rvm_config *c = &f->cfg;
    int maxt = c->text_max - 1, slot = 0;
    for (int b = 0; b < B; b++) {
        /* row 1: a single token, no picture; others: longer text with a picture */
        int n = b == 1 ? 1 : 2 + b % (maxt - 1);
        if (n > maxt) n = maxt;
        fx_input(f, &f->queries[b], slot++, n, b != 1);
        fx_input(f, &f->gold[b], slot++, maxt - (b % 2), b != 2);
        int na = 1 + b % (c->answer_max - 1);
        for (int t = 0; t < na; t++)
            f->tok[FX_NIN + b][t] =
                3 + (int32_t)fx_rand(3, (uint64_t)b * 64 + t, (uint32_t)c->vocab - 3);
        f->answers[b].ids = f->tok[FX_NIN + b];
        f->answers[b].n = na;
    }
    f->M = 0;
    for (int j = 0; j < n_sources; j++) {
        f->k[j] = k[j];
        f->M += k[j];
    }
    int item = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0, m = 0; j < n_sources; j++)
            for (int i = 0; i < k[j]; i++, m++) {
                rvm_candidate *cd = &f->cand[b * f->M + m];
                size_t s = (size_t)b * f->M + m;
                if (i == 0 || warm) {
                    fx_input(f, &f->items[item], slot++, 1 + (int)((b + m) % maxt),
                             (b + m) % 3 != 1);
                    cd->item = &f->items[item++];
                } else {
                    double nrm = 0;
                    for (int t = 0; t < c->key_dim; t++) {
                        f->keys[s][t] = (float)trn_rng_normal(5, s, (uint64_t)t);
                        nrm += (double)f->keys[s][t] * f->keys[s][t];
                    }
                    for (int t = 0; t < c->key_dim; t++) f->keys[s][t] /= (float)sqrt(nrm);
                    for (int t = 0; t < c->latents * c->width; t++)
                        f->values[s][t] = (float)trn_rng_normal(6, s, (uint64_t)t);
                    cd->key = f->keys[s];
                    cd->value = f->values[s];
                }
            }
    f->cands.n_sources = n_sources;
    f->cands.k = f->k;
    f->cands.warm = warm;
    f->cands.cand = f->cand;
    f->batch.B = B;
    f->batch.queries = f->queries;
    f->batch.cands = n_sources ? &f->cands : NULL;
    f->batch.answers = f->answers;
    f->batch.gold = f->gold;
}

#endif
