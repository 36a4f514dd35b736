/* tests/test_world_items.c — the knowledge items state exactly the facts they should.
 *
 * Each item is parsed back into the (entity, relation, object) statements it makes, with a
 * strict grammar per source: any word the grammar does not expect (a stray object word, a
 * second name) fails the test. Then every item must state exactly its expected facts (KG and
 * QA: one, a passage: its relations, image-text: none) and every fact must be stated by
 * exactly three items (its triple, its QA pair, its passage). Also: the made-up vocabulary is
 * unique, pronounceable and disjoint from the template words; keys are unique;
 * world_fact_items names a fact's three items. */
#include "check.h"
#include "world.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int entity, relation, object;
} statement;

static int find_name(const world *w, const char *s) {
    for (int e = 0; e < w->cfg.entities; e++)
        if (!strcmp(w->entity_names[e], s)) return e;
    return -1;
}

static int find_object(const world *w, const char *s) {
    for (int o = 0; o < w->cfg.objects; o++)
        if (!strcmp(w->object_words[o], s)) return o;
    return -1;
}

static int find_relation(const world *w, const char *s) {
    for (int r = 0; r < w->cfg.relations; r++)
        if (!strcmp(w->relation_names[r], s)) return r;
    return -1;
}

static int split_words(char *s, char **tok, int cap) {
    int n = 0;
    for (char *save, *t = strtok_r(s, " ", &save); t && n < cap; t = strtok_r(NULL, " ", &save))
        tok[n++] = t;
    return n;
}

/* Parses the statements an item makes; returns their count, or -1 on a word out of place. */
static int item_statements(const world *w, const world_item *it, statement *out, int cap) {
    char buf[1024], *tok[128];
    int n = 0;
    switch (it->type) {
    case WORLD_IMAGE_TEXT:
        return find_name(w, it->text) == it->entity ? 0 : -1;
    case WORLD_KG:
        out[0].entity = find_name(w, it->subject);
        out[0].relation = find_relation(w, it->relation);
        out[0].object = find_object(w, it->object);
        return out[0].entity < 0 || out[0].relation < 0 || out[0].object < 0 ? -1 : 1;
    case WORLD_QA: {
        snprintf(buf, sizeof buf, "%s", it->question);
        int k = split_words(buf, tok, 128);
        if (k != 7 || strcmp(tok[0], "what") || strcmp(tok[1], "is") || strcmp(tok[2], "the") ||
            strcmp(tok[4], "of") || strcmp(tok[6], "?"))
            return -1;
        out[0].entity = find_name(w, tok[5]);
        out[0].relation = find_relation(w, tok[3]);
        out[0].object = find_object(w, it->answer);
        return out[0].entity < 0 || out[0].relation < 0 || out[0].object < 0 ? -1 : 1;
    }
    default: { /* "the R of NAME is O , its R is O and its R is O ." */
        if (find_name(w, it->title) != it->entity) return -1;
        snprintf(buf, sizeof buf, "%s", it->text);
        int k = split_words(buf, tok, 128), subject = -1;
        for (int i = 0; i < k;) {
            if (!strcmp(tok[i], ",") || !strcmp(tok[i], "and") || !strcmp(tok[i], ".")) {
                i++;
            } else if (!strcmp(tok[i], "the") && i + 5 < k && !strcmp(tok[i + 2], "of") &&
                       !strcmp(tok[i + 4], "is") && n < cap) {
                subject = find_name(w, tok[i + 3]);
                out[n++] =
                    (statement){subject, find_relation(w, tok[i + 1]), find_object(w, tok[i + 5])};
                i += 6;
            } else if (!strcmp(tok[i], "its") && i + 3 < k && !strcmp(tok[i + 2], "is") &&
                       subject >= 0 && n < cap) {
                out[n++] =
                    (statement){subject, find_relation(w, tok[i + 1]), find_object(w, tok[i + 3])};
                i += 4;
            } else {
                return -1;
            }
        }
        for (int i = 0; i < n; i++)
            if (out[i].entity < 0 || out[i].relation < 0 || out[i].object < 0) return -1;
        return n;
    }
    }
}

static int valid_made_up_word(const char *s) {
    size_t n = strlen(s);
    if (n < 4 || n > 7) return 0;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i])) return 0;
    /* consonant-vowel syllables, then maybe one final consonant */
    for (size_t i = 0; i + 1 < n; i += 2)
        if (strchr("aeiou", s[i]) || !strchr("aeiou", s[i + 1])) return 0;
    return n % 2 == 0 || !strchr("aeiou", s[n - 1]);
}

static int compare_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_vocabulary_and_keys(const world *w) {
    static const char *const template_words[] = {"what", "is", "the", "of", "this", "its", "and"};
    int E = w->cfg.entities, O = w->cfg.objects, n = 0;
    const char **all =
        malloc(((size_t)E + O + 32 > w->n_items ? (size_t)E + O + 32 : w->n_items) * sizeof *all);
    REQUIRE(all);
    for (int e = 0; e < E; e++) all[n++] = w->entity_names[e];
    for (int o = 0; o < O; o++) all[n++] = w->object_words[o];
    for (int i = 0; i < n; i++)
        CHECKF(valid_made_up_word(all[i]), "'%s' is not a made-up word", all[i]);
    for (int r = 0; r < WORLD_MAX_RELATIONS && r < w->cfg.relations; r++)
        all[n++] = w->relation_names[r];
    for (size_t i = 0; i < sizeof template_words / sizeof template_words[0]; i++)
        all[n++] = template_words[i];
    qsort(all, (size_t)n, sizeof *all, compare_str);
    for (int i = 1; i < n; i++)
        CHECKF(strcmp(all[i - 1], all[i]) != 0, "'%s' is used twice", all[i]);
    for (size_t i = 0; i < w->n_items; i++) all[i] = w->items[i].key;
    qsort(all, w->n_items, sizeof *all, compare_str);
    for (size_t i = 1; i < w->n_items; i++)
        CHECKF(strcmp(all[i - 1], all[i]) != 0, "key '%s' twice", all[i]);
    free((void *)all);
}

static void check_items(const world_config *cfg) {
    char err[RV_ERR_MAX];
    world *w = NULL;
    REQUIRE(world_create(cfg, &w, err) == 0);
    int E = cfg->entities, R = cfg->relations, P = w->passages;
    CHECK(P == (R + cfg->passage_facts - 1) / cfg->passage_facts);
    CHECK(w->n_items == (size_t)E * (1 + 2 * R + P));
    check_vocabulary_and_keys(w);

    int *stated = calloc((size_t)E * R, sizeof *stated);
    REQUIRE(stated);
    size_t per_type[5] = {0};
    for (size_t i = 0; i < w->n_items; i++) {
        const world_item *it = &w->items[i];
        per_type[it->type]++;
        statement got[WORLD_MAX_RELATIONS];
        int n = item_statements(w, it, got, WORLD_MAX_RELATIONS);
        CHECKF(n >= 0, "item %zu (%s) does not parse", i, it->key);
        if (n < 0) continue;
        /* what the item should state, in relation order */
        int first = 0, last = 0;
        if (it->type == WORLD_KG || it->type == WORLD_QA) first = it->part, last = it->part + 1;
        if (it->type == WORLD_TEXT) {
            first = it->part * cfg->passage_facts;
            last = first + cfg->passage_facts < R ? first + cfg->passage_facts : R;
        }
        CHECKF(n == last - first, "item %s states %d facts, expected %d", it->key, n, last - first);
        for (int k = 0; k < n && k < last - first; k++) {
            int r = first + k;
            CHECKF(got[k].entity == it->entity && got[k].relation == r &&
                       got[k].object == w->facts[(size_t)it->entity * R + r],
                   "item %s statement %d is wrong", it->key, k);
            if (got[k].entity >= 0 && got[k].relation >= 0)
                stated[(size_t)got[k].entity * R + got[k].relation]++;
        }
    }
    CHECK(per_type[WORLD_IMAGE_TEXT] == (size_t)E && per_type[WORLD_KG] == (size_t)E * R &&
          per_type[WORLD_QA] == (size_t)E * R && per_type[WORLD_TEXT] == (size_t)E * P);
    for (size_t f = 0; f < (size_t)E * R; f++)
        CHECKF(stated[f] == 3, "fact %zu stated by %d items, expected 3", f, stated[f]);
    /* world_fact_items names the three items that state each fact */
    for (int e = 0; e < E; e++)
        for (int r = 0; r < R; r++) {
            size_t items[3];
            world_fact_items(w, e, r, items);
            int found = 0;
            for (int k = 0; k < 3; k++) {
                statement got[WORLD_MAX_RELATIONS];
                int n = item_statements(w, &w->items[items[k]], got, WORLD_MAX_RELATIONS);
                for (int j = 0; j < n; j++) found += got[j].entity == e && got[j].relation == r;
            }
            CHECKF(found == 3, "entity %d relation %d: world_fact_items finds %d", e, r, found);
        }
    /* item positions agree with the index functions */
    for (int e = 0; e < E; e++) {
        CHECK(w->items[world_item_image_text(w, e)].type == WORLD_IMAGE_TEXT);
        for (int r = 0; r < R; r++) {
            const world_item *kg = &w->items[world_item_kg(w, e, r)];
            const world_item *qa = &w->items[world_item_qa(w, e, r)];
            CHECK(kg->type == WORLD_KG && kg->entity == e && kg->part == r);
            CHECK(qa->type == WORLD_QA && qa->entity == e && qa->part == r);
        }
        for (int p = 0; p < P; p++) {
            const world_item *t = &w->items[world_item_text(w, e, p)];
            CHECK(t->type == WORLD_TEXT && t->entity == e && t->part == p);
        }
    }
    free(stated);
    world_free(w);
}

int main(void) {
    world_config cfg;
    world_config_default(&cfg);
    check_items(&cfg);
    cfg.seed = 1234;
    cfg.relations = 7;
    cfg.passage_facts = 3; /* the last passage holds one fact */
    check_items(&cfg);
    cfg.relations = 12;
    cfg.passage_facts = 12;
    cfg.objects = 2000;
    cfg.entities = 300;
    check_items(&cfg);
    cfg.relations = 4;
    cfg.passage_facts = 1;
    cfg.objects = 2;
    check_items(&cfg);
    return check_report("world_items");
}
