/* training/params.c — layout, allocation and lookup of a model's flat parameter buffers. */
#include "params.h"

#include "rv.h"
#include "threads.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZERO_PAR_MIN 262144 /* floats below which zeroing the gradients stays on one thread */

static float *alloc_floats(size_t n) {
    /* aligned_alloc wants a size that is a multiple of the alignment; total is. */
    float *b = aligned_alloc(TRN_PARAMS_ALIGN * sizeof(float), n * sizeof(float));
    if (b) memset(b, 0, n * sizeof(float));
    return b;
}

static int check_spec(const trn_tensor_spec *s, int i, char *err) {
    if (!s->name || !s->name[0]) return rv_fail(err, "tensor %d has no name", i);
    size_t len = strnlen(s->name, TRN_NAME_MAX);
    if (len >= TRN_NAME_MAX)
        return rv_fail(err, "tensor %d: name '%.40s...' is longer than %d bytes", i, s->name,
                       TRN_NAME_MAX - 1);
    if (s->ndim < 1 || s->ndim > TRN_MAX_DIMS)
        return rv_fail(err, "tensor '%s': %d dimensions, expected 1 to %d", s->name, s->ndim,
                       TRN_MAX_DIMS);
    for (int d = 0; d < s->ndim; d++)
        if (s->shape[d] < 1)
            return rv_fail(err, "tensor '%s': dimension %d is %d, expected >= 1", s->name, d,
                           s->shape[d]);
    if (!isfinite(s->lr_mult) || s->lr_mult < 0)
        return rv_fail(err,
                       "tensor '%s': learning-rate multiplier %g, expected a finite value >= 0",
                       s->name, (double)s->lr_mult);
    if (s->decay != 0 && s->decay != 1)
        return rv_fail(err, "tensor '%s': decay is %d, expected 0 or 1", s->name, s->decay);
    return 0;
}

int trn_params_init(trn_params *p, const trn_tensor_spec *specs, int n, char *err) {
    memset(p, 0, sizeof *p);
    if (n < 1) return rv_fail(err, "tensor table is empty");
    p->specs = calloc((size_t)n, sizeof *p->specs);
    p->offset = calloc((size_t)n, sizeof *p->offset);
    p->numel = calloc((size_t)n, sizeof *p->numel);
    if (!p->specs || !p->offset || !p->numel) {
        rv_fail(err, "out of memory for a table of %d tensors", n);
        goto fail;
    }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        if (check_spec(&specs[i], i, err) != 0) goto fail;
        for (int j = 0; j < i; j++)
            if (strcmp(specs[j].name, specs[i].name) == 0) {
                rv_fail(err, "tensor name '%s' appears twice (entries %d and %d)", specs[i].name, j,
                        i);
                goto fail;
            }
        size_t numel = 1;
        for (int d = 0; d < specs[i].ndim; d++) {
            if (numel > SIZE_MAX / 4 / (size_t)specs[i].shape[d]) {
                rv_fail(err, "tensor '%s' is too large", specs[i].name);
                goto fail;
            }
            numel *= (size_t)specs[i].shape[d];
        }
        p->specs[i] = specs[i];
        p->specs[i].name = strdup(specs[i].name);
        p->n = i + 1; /* names 0..i are owned now, so trn_params_free releases them */
        if (!p->specs[i].name) {
            rv_fail(err, "out of memory");
            goto fail;
        }
        p->offset[i] = at;
        p->numel[i] = numel;
        p->n_elements += numel;
        size_t padded = (numel + TRN_PARAMS_ALIGN - 1) / TRN_PARAMS_ALIGN * TRN_PARAMS_ALIGN;
        if (at > SIZE_MAX / 4 / sizeof(float) - padded) {
            rv_fail(err, "model is too large at tensor '%s'", specs[i].name);
            goto fail;
        }
        at += padded;
    }
    p->total = at;
    p->params = alloc_floats(at);
    p->grads = alloc_floats(at);
    p->m = alloc_floats(at);
    p->v = alloc_floats(at);
    if (!p->params || !p->grads || !p->m || !p->v) {
        rv_fail(err, "out of memory: 4 buffers of %zu floats (%.1f MiB each)", at,
                (double)at * sizeof(float) / (1 << 20));
        goto fail;
    }
    return 0;
fail:
    trn_params_free(p);
    return -1;
}

void trn_params_free(trn_params *p) {
    if (p->specs)
        for (int i = 0; i < p->n; i++) free((char *)p->specs[i].name);
    free(p->specs);
    free(p->offset);
    free(p->numel);
    free(p->params);
    free(p->grads);
    free(p->m);
    free(p->v);
    memset(p, 0, sizeof *p);
}

int trn_params_find(const trn_params *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->specs[i].name, name) == 0) return i;
    return -1;
}

trn_view trn_params_at(const trn_params *p, int i) {
    trn_view v = {
        .name = p->specs[i].name,
        .shape = p->specs[i].shape,
        .ndim = p->specs[i].ndim,
        .numel = p->numel[i],
        .w = p->params + p->offset[i],
        .g = p->grads + p->offset[i],
    };
    return v;
}

int trn_params_lookup(const trn_params *p, const char *name, trn_view *out, char *err) {
    int i = trn_params_find(p, name);
    if (i < 0) return rv_fail(err, "no tensor named '%s' in a table of %d", name, p->n);
    *out = trn_params_at(p, i);
    return 0;
}

void trn_params_zero_grad(trn_params *p) {
    /* one contiguous share of the buffer per thread of the team (training/threads.h) */
    int team = p->total >= ZERO_PAR_MIN ? trn_threads_team() : 1;
#pragma omp parallel num_threads(team) if (team > 1)
    {
        size_t lo, hi;
        trn_threads_share(p->total, &lo, &hi);
        memset(p->grads + lo, 0, (hi - lo) * sizeof(float));
    }
}

uint64_t trn_params_checksum(const trn_params *p) {
    return rv_hash64(p->params, p->total * sizeof(float), 0);
}

void trn_params_shape_str(const trn_tensor_spec *s, char *buf, size_t n) {
    size_t at = (size_t)snprintf(buf, n, "%s [", s->name);
    for (int d = 0; d < s->ndim && at < n; d++)
        at += (size_t)snprintf(buf + at, n - at, d ? ", %d" : "%d", s->shape[d]);
    if (at < n) snprintf(buf + at, n - at, "]");
}

static void format_bytes(double bytes, char *buf, size_t n) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) bytes /= 1024, u++;
    snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

void trn_params_log_table(const trn_params *p) {
    size_t trainable = 0;
    rv_info("%-40s %-22s %12s %8s %5s", "tensor", "shape", "elements", "lr_mult", "decay");
    for (int i = 0; i < p->n; i++) {
        const trn_tensor_spec *s = &p->specs[i];
        char shape[64];
        size_t at = 0;
        for (int d = 0; d < s->ndim && at < sizeof shape; d++)
            at += (size_t)snprintf(shape + at, sizeof shape - at, d ? "x%d" : "%d", s->shape[d]);
        rv_info("%-40s %-22s %12zu %8g %5s", s->name, shape, p->numel[i], (double)s->lr_mult,
                s->decay ? "yes" : "no");
        if (s->lr_mult > 0) trainable += p->numel[i];
    }
    char one[32], two[32];
    format_bytes((double)p->total * sizeof(float), one, sizeof one);
    format_bytes(2.0 * (double)p->total * sizeof(float), two, sizeof two);
    rv_info("%d tensors, %zu parameters (%zu trainable, %zu frozen); params %s, grads %s, "
            "AdamW m+v %s",
            p->n, p->n_elements, trainable, p->n_elements - trainable, one, one, two);
}
