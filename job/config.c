/* job/config.c — the job's config: a JSON object file of known dotted keys, then --set overrides.
 * Every value is checked for type, range and length against the caller's field table, and every
 * refusal names where the value came from (the file path or the --set argument), so a typo in a
 * long config is found from one line. */
#define _GNU_SOURCE
#include "job.h"
#include "rv.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_FILE_MAX (16u << 20)
#define CONFIG_KEY_MAX  256
/* Integers arrive as JSON numbers (doubles): past 2^53 neighbouring integers collapse, so such a
 * value would be changed silently; it is refused instead. */
#define CONFIG_EXACT_INT 9007199254740992.0

/* Where a field got its value: not given, the file, or the index of the --set. */
enum { CONFIG_UNSET = -2, CONFIG_FROM_FILE = -1 };

typedef struct {
    const job_field *fields;
    size_t n;
    char *cfg;
    int *set_by;        // (n) CONFIG_UNSET, CONFIG_FROM_FILE or a --set index
    char *const *sets;  // the --set arguments, to name the first of a duplicate
    const char *source; // "cfg.json" or "--set train.batch=16"
    int origin;         // CONFIG_FROM_FILE or the index of the --set being applied
} config_loader;

static const char *config_kind_noun(job_kind kind) {
    switch (kind) {
    case JOB_INT:
        return "an integer";
    case JOB_FLOAT:
        return "a number";
    case JOB_BOOL:
        return "a boolean";
    case JOB_STRING:
        return "a string";
    }
    return "?";
}

static const char *config_json_noun(const cJSON *item) {
    if (cJSON_IsString(item)) return "a string";
    if (cJSON_IsNumber(item)) return "a number";
    if (cJSON_IsBool(item)) return "a boolean";
    if (cJSON_IsNull(item)) return "null";
    if (cJSON_IsObject(item)) return "an object";
    if (cJSON_IsArray(item)) return "an array";
    return "an unknown JSON value";
}

static long config_find(const job_field *fields, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i].key, key) == 0) return (long)i;
    return -1;
}

/* The first field inside section `key` ("train" holds "train.batch"), or NULL. The empty key is
 * the top level, which holds every field. */
static const char *config_section_member(const job_field *fields, size_t n, const char *key) {
    size_t len = strlen(key);
    for (size_t i = 0; i < n; i++) {
        if (len == 0) return fields[i].key;
        if (strncmp(fields[i].key, key, len) == 0 && fields[i].key[len] == '.')
            return fields[i].key;
    }
    return NULL;
}

/* Optimal-string-alignment distance: edits, with a swap of neighbours counting as one edit.
 * Three rolling rows: the one being filled and the two before it. */
static size_t config_distance(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na >= CONFIG_KEY_MAX || nb >= CONFIG_KEY_MAX) return (size_t)-1;
    size_t rows[3][CONFIG_KEY_MAX + 1];
    for (size_t j = 0; j <= nb; j++) rows[0][j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t *cur = rows[i % 3], *up = rows[(i + 2) % 3], *up2 = rows[(i + 1) % 3];
        cur[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t best = up[j - 1] + (a[i - 1] != b[j - 1]);
            if (up[j] + 1 < best) best = up[j] + 1;
            if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                up2[j - 2] + 1 < best)
                best = up2[j - 2] + 1;
            cur[j] = best;
        }
    }
    return rows[na % 3][nb];
}

static const char *config_last_part(const char *key) {
    const char *dot = strrchr(key, '.');
    return dot ? dot + 1 : key;
}

/* The known key an unknown one most likely meant: a few typing edits away (about one per three
 * characters), or the same last component in another section ("batch" for "train.batch"). */
static const char *config_suggest(const job_field *fields, size_t n, const char *key) {
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = config_distance(key, fields[i].key);
        size_t allowed = strlen(fields[i].key) / 3;
        if (allowed < 1) allowed = 1;
        if (d <= allowed && d < best_d) {
            best = fields[i].key;
            best_d = d;
        }
    }
    if (best) return best;
    for (size_t i = 0; i < n; i++)
        if (strcmp(config_last_part(key), config_last_part(fields[i].key)) == 0)
            return fields[i].key;
    return NULL;
}

static int config_set_leaf(config_loader *ld, size_t i, const cJSON *item, char *err) {
    const job_field *f = &ld->fields[i];
    const char *src = ld->source;
    if (ld->origin == CONFIG_FROM_FILE && ld->set_by[i] == CONFIG_FROM_FILE)
        return rv_fail(err, "%s: %s given twice", src, f->key);
    if (ld->origin >= 0 && ld->set_by[i] >= 0)
        return rv_fail(err, "%s: %s given twice in --set (first in --set %s)", src, f->key,
                       ld->sets[ld->set_by[i]]);
    ld->set_by[i] = ld->origin;

    void *dst = ld->cfg + f->offset;
    int ok_type = (f->kind == JOB_INT || f->kind == JOB_FLOAT)
                      ? cJSON_IsNumber(item)
                      : (f->kind == JOB_BOOL ? cJSON_IsBool(item) : cJSON_IsString(item));
    if (!ok_type) {
        /* A --set value that looks like JSON is JSON; a string field then needs quotes. */
        if (f->kind == JOB_STRING && ld->origin >= 0)
            return rv_fail(err, "%s: %s must be a string, not %s (quote it: --set %s='\"...\"')",
                           src, f->key, config_json_noun(item), f->key);
        return rv_fail(err, "%s: %s must be %s, not %s", src, f->key, config_kind_noun(f->kind),
                       config_json_noun(item));
    }
    switch (f->kind) {
    case JOB_INT: {
        double v = item->valuedouble;
        if (v != floor(v)) return rv_fail(err, "%s: %s must be an integer, not %g", src, f->key, v);
        if (fabs(v) > CONFIG_EXACT_INT)
            return rv_fail(err,
                           "%s: %s = %.17g is past 2^53, where JSON numbers no longer hold every "
                           "integer",
                           src, f->key, v);
        if (v < f->min || v > f->max)
            return rv_fail(err, "%s: %s = %.0f is out of range [%.0f, %.0f]", src, f->key, v,
                           f->min, f->max);
        long l = (long)v;
        memcpy(dst, &l, sizeof l);
        break;
    }
    case JOB_FLOAT: {
        double v = item->valuedouble;
        if (!(v >= f->min && v <= f->max))
            return rv_fail(err, "%s: %s = %g is out of range [%g, %g]", src, f->key, v, f->min,
                           f->max);
        memcpy(dst, &v, sizeof v);
        break;
    }
    case JOB_BOOL: {
        int b = cJSON_IsTrue(item) ? 1 : 0;
        memcpy(dst, &b, sizeof b);
        break;
    }
    case JOB_STRING: {
        size_t len = strlen(item->valuestring), bad_at = 0;
        if (!rv_utf8_valid(item->valuestring, len, &bad_at))
            return rv_fail(err, "%s: %s is not valid UTF-8 (bad byte at offset %zu)", src, f->key,
                           bad_at);
        if (len + 1 > f->cap)
            return rv_fail(err, "%s: %s is %zu bytes long, more than the %zu allowed", src, f->key,
                           len, f->cap - 1);
        memcpy(dst, item->valuestring, len + 1);
        break;
    }
    }
    return 0;
}

/* Applies `item` at dotted path `key`: a field takes it as its value; a section takes an object
 * whose members are applied one level down. */
static int config_apply(config_loader *ld, const char *key, const cJSON *item, char *err) {
    long i = key[0] ? config_find(ld->fields, ld->n, key) : -1;
    if (i >= 0) return config_set_leaf(ld, (size_t)i, item, err);
    const char *member = config_section_member(ld->fields, ld->n, key);
    if (!member && key[0]) {
        const char *meant = config_suggest(ld->fields, ld->n, key);
        if (meant)
            return rv_fail(err, "%s: unknown key \"%s\" (did you mean \"%s\"?)", ld->source, key,
                           meant);
        return rv_fail(err, "%s: unknown key \"%s\"", ld->source, key);
    }
    if (!cJSON_IsObject(item)) {
        if (!key[0])
            return rv_fail(err, "%s: not a JSON object (the top level is %s)", ld->source,
                           config_json_noun(item));
        return rv_fail(err, "%s: %s is a section (it holds %s), so it must be an object, not %s",
                       ld->source, key, member, config_json_noun(item));
    }
    for (const cJSON *child = item->child; child; child = child->next) {
        char path[CONFIG_KEY_MAX];
        int w = key[0] ? snprintf(path, sizeof path, "%s.%s", key, child->string)
                       : snprintf(path, sizeof path, "%s", child->string);
        if (w < 0 || (size_t)w >= sizeof path)
            return rv_fail(err, "%s: key \"%.64s...\" is longer than %d bytes", ld->source,
                           child->string, CONFIG_KEY_MAX - 1);
        if (config_apply(ld, path, child, err) != 0) return -1;
    }
    return 0;
}

/* The table is the program's own: a mistake in it is reported before any input is blamed. */
static int config_check_table(const job_field *fields, size_t n, char *err) {
    for (size_t i = 0; i < n; i++) {
        const job_field *f = &fields[i];
        const char *k = f->key;
        if (!k || !k[0] || k[0] == '.' || k[strlen(k) - 1] == '.' || strstr(k, ".."))
            return rv_fail(err, "config table: field %zu has a malformed key \"%s\"", i,
                           k ? k : "(null)");
        if (strlen(k) >= CONFIG_KEY_MAX)
            return rv_fail(err, "config table: key %s is longer than %d bytes", k,
                           CONFIG_KEY_MAX - 1);
        if (f->kind == JOB_STRING && f->cap == 0)
            return rv_fail(err, "config table: string %s has no room (cap 0)", k);
        if ((f->kind == JOB_INT || f->kind == JOB_FLOAT) && !(f->min <= f->max))
            return rv_fail(err, "config table: %s has an empty range [%g, %g]", k, f->min, f->max);
        if (config_find(fields, n, k) != (long)i)
            return rv_fail(err, "config table: key %s appears twice", k);
        const char *member = config_section_member(fields, n, k);
        if (member)
            return rv_fail(err, "config table: %s is both a key and the section of %s", k, member);
    }
    return 0;
}

static int config_apply_set(config_loader *ld, int index, char *err) {
    const char *arg = ld->sets[index];
    char source[CONFIG_KEY_MAX + 32];
    snprintf(source, sizeof source, "--set %s", arg);
    ld->source = source;
    ld->origin = index;
    const char *eq = strchr(arg, '=');
    if (!eq) return rv_fail(err, "%s: expected key=value", source);
    size_t klen = (size_t)(eq - arg);
    if (klen == 0) return rv_fail(err, "%s: the key before '=' is empty", source);
    if (klen >= CONFIG_KEY_MAX)
        return rv_fail(err, "%s: the key is longer than %d bytes", source, CONFIG_KEY_MAX - 1);
    char key[CONFIG_KEY_MAX];
    memcpy(key, arg, klen);
    key[klen] = 0;
    const char *value = eq + 1;
    cJSON *item = cJSON_ParseWithOpts(value, NULL, 1);
    if (!item) item = cJSON_CreateString(value);
    if (!item) return rv_fail(err, "%s: out of memory", source);
    int rc = config_apply(ld, key, item, err);
    cJSON_Delete(item);
    return rc;
}

/* The file's text (NULL: none) named `origin` in messages, then the overrides. */
static int config_load(const job_field *fields, size_t n, void *cfg, const char *text, size_t len,
                       const char *origin, char *const *sets, int n_sets, char *err) {
    int rc = -1;
    cJSON *root = NULL;
    config_loader ld = {fields, n, cfg, NULL, sets, origin, CONFIG_FROM_FILE};
    if (config_check_table(fields, n, err) != 0) return -1;
    ld.set_by = malloc((n ? n : 1) * sizeof *ld.set_by);
    if (!ld.set_by) return rv_fail(err, "config: out of memory");
    for (size_t i = 0; i < n; i++) ld.set_by[i] = CONFIG_UNSET;

    if (text) {
        if (strlen(text) != len) {
            rv_fail(err, "%s: holds a NUL byte at offset %zu", origin, strlen(text));
            goto cleanup;
        }
        /* The length counts the NUL at the end: cJSON looks for it there. */
        const char *end = NULL;
        root = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
        if (!root) {
            size_t at = end ? (size_t)(end - text) : 0, line = 1;
            for (size_t i = 0; i < at && i < len; i++) line += text[i] == '\n';
            rv_fail(err, "%s: not valid JSON (line %zu, byte %zu)", origin, line, at);
            goto cleanup;
        }
        if (config_apply(&ld, "", root, err) != 0) goto cleanup;
    }
    for (int s = 0; s < n_sets; s++)
        if (config_apply_set(&ld, s, err) != 0) goto cleanup;
    rc = 0;
cleanup:
    cJSON_Delete(root);
    free(ld.set_by);
    return rc;
}

int job_config_load(const job_field *fields, size_t n, void *cfg, const char *path,
                    char *const *sets, int n_sets, char *err) {
    char *text = NULL;
    size_t len = 0;
    if (path && rv_read_file(path, CONFIG_FILE_MAX, (void **)&text, &len, err) != 0) return -1;
    int rc = config_load(fields, n, cfg, text, len, path, sets, n_sets, err);
    free(text);
    return rc;
}

int job_config_load_text(const job_field *fields, size_t n, void *cfg, const char *text,
                         const char *origin, char *const *sets, int n_sets, char *err) {
    return config_load(fields, n, cfg, text, strlen(text), origin, sets, n_sets, err);
}

/* The object at dotted prefix `key` (all but its last part) inside root, created as needed. */
static cJSON *config_parent(cJSON *root, const char *key) {
    cJSON *obj = root;
    const char *part = key;
    for (const char *dot = strchr(part, '.'); dot; part = dot + 1, dot = strchr(part, '.')) {
        char name[CONFIG_KEY_MAX];
        snprintf(name, sizeof name, "%.*s", (int)(dot - part), part);
        cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, name);
        if (!child) child = cJSON_AddObjectToObject(obj, name);
        if (!child) return NULL;
        obj = child;
    }
    return obj;
}

char *job_config_json(const job_field *fields, size_t n, const void *cfg) {
    const char *base = cfg;
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    for (size_t i = 0; i < n; i++) {
        const job_field *f = &fields[i];
        const void *src = base + f->offset;
        cJSON *parent = config_parent(root, f->key), *item = NULL;
        if (!parent) goto cleanup;
        switch (f->kind) {
        case JOB_INT: {
            /* Raw text: a long is printed exactly, not through a double. */
            long v;
            memcpy(&v, src, sizeof v);
            char num[32];
            snprintf(num, sizeof num, "%ld", v);
            item = cJSON_CreateRaw(num);
            break;
        }
        case JOB_FLOAT: {
            double v;
            memcpy(&v, src, sizeof v);
            item = cJSON_CreateNumber(v); /* cJSON prints enough digits to read back exactly */
            break;
        }
        case JOB_BOOL: {
            int v;
            memcpy(&v, src, sizeof v);
            item = cJSON_CreateBool(v != 0);
            break;
        }
        case JOB_STRING: {
            char *s = strndup(src, f->cap ? f->cap - 1 : 0);
            if (s) item = cJSON_CreateString(s);
            free(s);
            break;
        }
        }
        if (!item || !cJSON_AddItemToObject(parent, config_last_part(f->key), item)) {
            cJSON_Delete(item);
            goto cleanup;
        }
    }
    text = cJSON_Print(root);
cleanup:
    cJSON_Delete(root);
    return text;
}

void job_config_help(const job_field *fields, size_t n, const void *cfg, FILE *f) {
    const char *base = cfg;
    for (size_t i = 0; i < n; i++) {
        const job_field *fd = &fields[i];
        const void *src = base + fd->offset;
        char range[96] = "", def[160];
        switch (fd->kind) {
        case JOB_INT: {
            long v;
            memcpy(&v, src, sizeof v);
            snprintf(range, sizeof range, "[%.0f, %.0f]", fd->min, fd->max);
            snprintf(def, sizeof def, "%ld", v);
            break;
        }
        case JOB_FLOAT: {
            double v;
            memcpy(&v, src, sizeof v);
            snprintf(range, sizeof range, "[%g, %g]", fd->min, fd->max);
            snprintf(def, sizeof def, "%g", v);
            break;
        }
        case JOB_BOOL: {
            int v;
            memcpy(&v, src, sizeof v);
            snprintf(def, sizeof def, "%s", v ? "true" : "false");
            break;
        }
        case JOB_STRING:
            snprintf(range, sizeof range, "up to %zu bytes", fd->cap ? fd->cap - 1 : 0);
            snprintf(def, sizeof def, "\"%.*s\"", (int)(fd->cap ? fd->cap - 1 : 0),
                     (const char *)src);
            break;
        }
        static const char *kinds[] = {"integer", "number", "boolean", "string"};
        fprintf(f, "  %-30s %-8s %-22s default %s\n", fd->key, kinds[fd->kind], range, def);
        if (fd->help && fd->help[0]) fprintf(f, "      %s\n", fd->help);
    }
}
