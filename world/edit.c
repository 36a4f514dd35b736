/* world/edit.c — knowledge edits: re-draw chosen facts and report what changed.
 *
 * An edited fact always gets a different object, so "the answer follows the edit" is testable
 * for every edited fact. The changed items are the ones stating an edited fact (its KG
 * triple, its QA pair, the text passage that holds it); the image-text items never change.
 * An edit either applies completely or, on failure, leaves the world as it was.
 */
#include "world_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int compare_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

void world_edit_free(world_edit *edit) {
    if (!edit) return;
    for (size_t i = 0; i < edit->n_items; i++) world_item_clear(&edit->items[i].old);
    free(edit->facts);
    free(edit->items);
    memset(edit, 0, sizeof *edit);
}

int world_edit_facts(world *w, const size_t *facts, size_t n, uint64_t seed, world_edit *edit,
                     char *err) {
    size_t R = (size_t)w->cfg.relations, n_facts = w->n_questions;
    size_t *sorted = NULL, n_changed = 0;
    uint8_t *marks = NULL;
    world_item *fresh = NULL;
    memset(edit, 0, sizeof *edit);
    edit->seed = seed;
    sorted = malloc((n ? n : 1) * sizeof *sorted);
    marks = calloc(w->n_items > n_facts ? w->n_items : n_facts, 1);
    if (!sorted || !marks) {
        rv_fail(err, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (facts[i] >= n_facts) {
            rv_fail(err, "fact %zu: past the world's %zu facts (entities x relations)", facts[i],
                    n_facts);
            goto fail;
        }
        if (marks[facts[i]]++) {
            rv_fail(err, "fact %zu (entity %zu, relation %s) listed twice", facts[i], facts[i] / R,
                    w->relation_names[facts[i] % R]);
            goto fail;
        }
        sorted[i] = facts[i];
    }
    /* Drawing in fact order makes the result independent of the order of the list. */
    qsort(sorted, n, sizeof *sorted, compare_size);
    edit->facts = calloc(n ? n : 1, sizeof *edit->facts);
    if (!edit->facts) {
        rv_fail(err, "out of memory");
        goto fail;
    }
    world_rng r = world_rng_stream(seed, WORLD_STREAM_EDIT_DRAW);
    uint64_t O = (uint64_t)w->cfg.objects;
    for (size_t i = 0; i < n; i++) {
        world_fact_change *c = &edit->facts[i];
        c->entity = (int)(sorted[i] / R);
        c->relation = (int)(sorted[i] % R);
        c->old_object = w->facts[sorted[i]];
        c->new_object = (int)(((uint64_t)c->old_object + 1 + world_rng_below(&r, O - 1)) % O);
    }
    edit->n_facts = n;

    /* the items that state an edited fact, in item order */
    memset(marks, 0, w->n_items > n_facts ? w->n_items : n_facts);
    for (size_t i = 0; i < n; i++) {
        size_t stating[3];
        world_fact_items(w, edit->facts[i].entity, edit->facts[i].relation, stating);
        for (int k = 0; k < 3; k++) marks[stating[k]] = 1;
    }
    for (size_t i = 0; i < w->n_items; i++) n_changed += marks[i];
    edit->items = calloc(n_changed ? n_changed : 1, sizeof *edit->items);
    fresh = calloc(n_changed ? n_changed : 1, sizeof *fresh);
    if (!edit->items || !fresh) {
        rv_fail(err, "out of memory");
        goto fail;
    }
    for (size_t i = 0, k = 0; i < w->n_items; i++)
        if (marks[i]) edit->items[k++].item = i;

    /* Build the new items against the new facts; only once all are built does the world
     * change, so a failure leaves it untouched. */
    for (size_t i = 0; i < n; i++) w->facts[sorted[i]] = edit->facts[i].new_object;
    for (size_t k = 0; k < n_changed; k++) {
        if (world_build_item(w, edit->items[k].item, &fresh[k], err)) {
            for (size_t j = 0; j < k; j++) world_item_clear(&fresh[j]);
            for (size_t i = 0; i < n; i++) w->facts[sorted[i]] = edit->facts[i].old_object;
            goto fail;
        }
    }
    for (size_t k = 0; k < n_changed; k++) {
        edit->items[k].old = w->items[edit->items[k].item];
        w->items[edit->items[k].item] = fresh[k];
    }
    edit->n_items = n_changed;
    for (size_t i = 0; i < n; i++) world_refresh_question(w, sorted[i]);
    w->version++;
    free(fresh);
    free(sorted);
    free(marks);
    return 0;
fail:
    free(fresh);
    free(sorted);
    free(marks);
    world_edit_free(edit);
    return -1;
}

int world_edit_fraction(world *w, double fraction, uint64_t seed, world_edit *edit, char *err) {
    memset(edit, 0, sizeof *edit);
    if (!(fraction >= 0.0 && fraction <= 1.0))
        return rv_fail(err, "edit fraction: %g is outside [0, 1]", fraction);
    size_t total = w->n_questions;
    size_t n = (size_t)llround(fraction * (double)total);
    size_t *all = malloc(total * sizeof *all);
    if (!all) return rv_fail(err, "out of memory");
    for (size_t i = 0; i < total; i++) all[i] = i;
    /* the first n of a partial Fisher-Yates shuffle */
    world_rng r = world_rng_stream(seed, WORLD_STREAM_EDIT_PICK);
    for (size_t i = 0; i < n; i++) {
        size_t j = i + (size_t)world_rng_below(&r, (uint64_t)(total - i));
        size_t t = all[i];
        all[i] = all[j];
        all[j] = t;
    }
    int rc = world_edit_facts(w, all, n, seed, edit, err);
    free(all);
    return rc;
}
