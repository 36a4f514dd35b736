/* world/write.c — a world on disk, in the input formats `reveal ingest` reads.
 *
 * JSON is written with cJSON (escaping is its job) one object per line; pictures are PNG
 * (stb_image_write). The files go into a temporary directory beside the destination; once
 * all are written, each file and directory is fsynced and the temporary directory is renamed
 * into place (or exchanged with an existing world when replacing), so the destination holds
 * a whole world or none, at one fsync per file rather than the two (file and directory) of
 * a per-file atomic replace. The output is a pure function of the world: the same seed gives
 * byte-identical files.
 */
#define _GNU_SOURCE
#include "world_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#define PATH_CAP 4096

typedef struct {
    char *data;
    size_t n, cap;
    int oom;
} byte_buf;

static void buf_append(byte_buf *b, const void *p, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->n, p, n);
    b->n += n;
}

static void png_sink(void *ctx, void *data, int size) {
    buf_append(ctx, data, (size_t)size);
}

/* A plain write: the temporary directory is synced and renamed as a whole (see above). */
static int write_buf(const char *dir, const char *name, const byte_buf *b, char *err) {
    char path[PATH_CAP];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return rv_fail(err, "%s/%s: path too long", dir, name);
    if (b->oom) return rv_fail(err, "%s: out of memory", path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return rv_fail(err, "%s: cannot create: %s", path, strerror(errno));
    for (size_t done = 0; done < b->n;) {
        ssize_t k = write(fd, b->data + done, b->n - done);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            rv_fail(err, "%s: write failed: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        done += (size_t)k;
    }
    if (close(fd) != 0) return rv_fail(err, "%s: close failed: %s", path, strerror(errno));
    return 0;
}

/* nftw callback: fsync every file, then (FTW_DEPTH) the directory holding it. */
static int sync_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    int fd = open(path, O_RDONLY | (flag == FTW_DP ? O_DIRECTORY : 0));
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int sync_tree(const char *dir, char *err) {
    if (nftw(dir, sync_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return rv_fail(err, "%s: fsync failed: %s", dir, strerror(errno));
    return 0;
}

static int write_pictures(const world *w, const char *dir, char *err) {
    int S = w->cfg.image_size;
    for (int e = 0; e < w->cfg.entities; e++) {
        byte_buf png = {0};
        char name[64];
        world_image_path(e, name, sizeof name);
        const uint8_t *pic = w->pictures + (size_t)e * S * S * 3;
        int ok = stbi_write_png_to_func(png_sink, &png, S, S, 3, pic, S * 3);
        int rc = ok ? write_buf(dir, name, &png, err)
                    : rv_fail(err, "%s/%s: PNG encoding failed", dir, name);
        free(png.data);
        if (rc) return -1;
    }
    return 0;
}

/* Appends one JSON object as a line and frees it. */
static void append_line(byte_buf *b, cJSON *obj) {
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    if (!s) {
        b->oom = 1;
    } else {
        buf_append(b, s, strlen(s));
        buf_append(b, "\n", 1);
    }
    free(s);
    cJSON_Delete(obj);
}

/* Adds string fields by name/value pairs; a NULL cJSON result marks the object as failed. */
static cJSON *json_strings(cJSON *obj, const char *const *pairs, int n_pairs) {
    for (int i = 0; obj && i < n_pairs; i++)
        if (!cJSON_AddStringToObject(obj, pairs[2 * i], pairs[2 * i + 1])) {
            cJSON_Delete(obj);
            return NULL;
        }
    return obj;
}

static cJSON *item_json(const world_item *it) {
    char image[64];
    world_image_path(it->entity, image, sizeof image);
    switch (it->type) {
    case WORLD_IMAGE_TEXT: {
        const char *f[] = {"image", image, "text", it->text, "key", it->key};
        return json_strings(cJSON_CreateObject(), f, 3);
    }
    case WORLD_QA: {
        const char *f[] = {"question", it->question, "answer", it->answer,
                           "image",    image,        "key",    it->key};
        return json_strings(cJSON_CreateObject(), f, 4);
    }
    case WORLD_KG: {
        const char *f[] = {"subject",  it->subject, "relation", it->relation, "object",
                           it->object, "image",     image,      "key",        it->key};
        return json_strings(cJSON_CreateObject(), f, 5);
    }
    default: {
        const char *f[] = {"title", it->title, "text", it->text, "image", image, "key", it->key};
        return json_strings(cJSON_CreateObject(), f, 4);
    }
    }
}

static const struct {
    world_source type;
    const char *file;
} source_files[] = {
    {WORLD_IMAGE_TEXT, "image_text.jsonl"},
    {WORLD_KG, "kg.jsonl"},
    {WORLD_QA, "qa.jsonl"},
    {WORLD_TEXT, "text.jsonl"},
};
#define N_SOURCES 4

static int write_sources(const world *w, const char *dir, size_t counts[N_SOURCES], char *err) {
    for (int s = 0; s < N_SOURCES; s++) {
        byte_buf b = {0};
        counts[s] = 0;
        for (size_t i = 0; i < w->n_items; i++) {
            if (w->items[i].type != source_files[s].type) continue;
            append_line(&b, item_json(&w->items[i]));
            counts[s]++;
        }
        int rc = write_buf(dir, source_files[s].file, &b, err);
        free(b.data);
        if (rc) return -1;
    }
    return 0;
}

static int write_questions(const world *w, const char *dir, char *err) {
    for (int test = 0; test <= 1; test++) {
        byte_buf b = {0};
        for (size_t i = 0; i < w->n_questions; i++) {
            const world_question *q = &w->questions[i];
            if (q->is_test != test) continue;
            char image[64];
            world_image_path(q->entity, image, sizeof image);
            const char *f[] = {"image",    image,
                               "question", q->question,
                               "answer",   q->answer,
                               "gold",     w->items[q->gold_item].key,
                               "type",     w->relation_names[q->relation],
                               "entity",   w->entity_names[q->entity]};
            append_line(&b, json_strings(cJSON_CreateObject(), f, 6));
        }
        int rc = write_buf(dir, test ? "questions_test.jsonl" : "questions_train.jsonl", &b, err);
        free(b.data);
        if (rc) return -1;
    }
    return 0;
}

static int write_edits(const world *w, const world_edit *edit, const char *dir, char *err) {
    byte_buf b = {0};
    for (size_t i = 0; i < edit->n_facts; i++) {
        const world_fact_change *c = &edit->facts[i];
        const char *f[] = {
            "entity", w->entity_names[c->entity],     "relation", w->relation_names[c->relation],
            "old",    w->object_words[c->old_object], "new",      w->object_words[c->new_object]};
        cJSON *obj = json_strings(cJSON_CreateObject(), f, 4);
        cJSON *keys = obj ? cJSON_AddArrayToObject(obj, "items") : NULL;
        size_t changed[3];
        world_fact_items(w, c->entity, c->relation, changed);
        for (int k = 0; keys && k < 3; k++)
            if (!cJSON_AddItemToArray(keys, cJSON_CreateString(w->items[changed[k]].key)))
                keys = NULL;
        if (!keys) {
            cJSON_Delete(obj);
            obj = NULL;
        }
        append_line(&b, obj);
    }
    int rc = write_buf(dir, "edits.jsonl", &b, err);
    free(b.data);
    return rc;
}

/* Seeds are 64-bit; JSON numbers are doubles, so seeds are written as decimal strings. */
static cJSON *add_seed(cJSON *obj, const char *name, uint64_t seed) {
    char s[32];
    snprintf(s, sizeof s, "%llu", (unsigned long long)seed);
    return obj ? cJSON_AddStringToObject(obj, name, s) : NULL;
}

static int write_manifest(const world *w, const world_edit *edit, const char *dir,
                          const size_t counts[N_SOURCES], char *err) {
    const world_config *c = &w->cfg;
    cJSON *m = cJSON_CreateObject();
    int ok = m && cJSON_AddStringToObject(m, "format", "reveal-world 1") &&
             add_seed(m, "seed", c->seed) && cJSON_AddNumberToObject(m, "entities", c->entities) &&
             cJSON_AddNumberToObject(m, "objects", c->objects) &&
             cJSON_AddNumberToObject(m, "image_size", c->image_size) &&
             cJSON_AddNumberToObject(m, "unasked", c->unasked) &&
             cJSON_AddNumberToObject(m, "passage_facts", c->passage_facts) &&
             cJSON_AddNumberToObject(m, "min_image_distance", c->min_image_distance) &&
             cJSON_AddNumberToObject(m, "version", w->version);
    cJSON *rel = ok ? cJSON_CreateStringArray(w->relation_names, c->relations) : NULL;
    ok = ok && rel && cJSON_AddItemToObject(m, "relations", rel);
    cJSON *names = ok ? cJSON_AddArrayToObject(m, "entity_names") : NULL;
    for (int e = 0; names && e < c->entities; e++)
        if (!cJSON_AddItemToArray(names, cJSON_CreateString(w->entity_names[e]))) names = NULL;
    cJSON *objs = names ? cJSON_AddArrayToObject(m, "object_words") : NULL;
    for (int o = 0; objs && o < c->objects; o++)
        if (!cJSON_AddItemToArray(objs, cJSON_CreateString(w->object_words[o]))) objs = NULL;
    ok = ok && names && objs;
    cJSON *files = ok ? cJSON_AddObjectToObject(m, "files") : NULL;
    for (int s = 0; files && s < N_SOURCES; s++)
        if (!cJSON_AddNumberToObject(files, source_files[s].file, (double)counts[s])) files = NULL;
    ok = files && cJSON_AddNumberToObject(files, "questions_train.jsonl", (double)w->n_train) &&
         cJSON_AddNumberToObject(files, "questions_test.jsonl", (double)w->n_test);
    if (ok && edit) {
        cJSON *e = cJSON_AddObjectToObject(m, "edit");
        ok = e && add_seed(e, "seed", edit->seed) &&
             cJSON_AddNumberToObject(e, "facts", (double)edit->n_facts) &&
             cJSON_AddNumberToObject(e, "items", (double)edit->n_items) &&
             cJSON_AddNumberToObject(files, "edits.jsonl", (double)edit->n_facts);
    }
    char *text = ok ? cJSON_Print(m) : NULL;
    cJSON_Delete(m);
    if (!text) return rv_fail(err, "%s/world.json: out of memory", dir);
    byte_buf b = {0};
    buf_append(&b, text, strlen(text));
    buf_append(&b, "\n", 1);
    free(text);
    int rc = write_buf(dir, "world.json", &b, err);
    free(b.data);
    return rc;
}

/* Replacing removes the old directory: only ever one that holds a world, or nothing. */
static int holds_world_or_nothing(const char *dir) {
    char path[PATH_CAP];
    struct stat st;
    snprintf(path, sizeof path, "%s/world.json", dir);
    if (stat(path, &st) == 0) return 1;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int entries = 0;
    for (struct dirent *de; (de = readdir(d));)
        entries += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return entries == 0;
}

int world_write(const world *w, const world_edit *edit, const char *dir_arg, int replace,
                char *err) {
    char dir[PATH_CAP], tmp[PATH_CAP], img[PATH_CAP], parent[PATH_CAP];
    struct stat st;
    /* "out/" must not put the temporary directory inside "out" */
    size_t len = strlen(dir_arg);
    while (len > 1 && dir_arg[len - 1] == '/') len--;
    if (len == 0 || len >= sizeof dir || (len == 1 && dir_arg[0] == '/'))
        return rv_fail(err, "'%s': not a usable directory", dir_arg);
    memcpy(dir, dir_arg, len);
    dir[len] = 0;
    int exists = stat(dir, &st) == 0;
    if (exists && !replace) return rv_fail(err, "%s: already exists; not replacing it", dir);
    if (exists && !S_ISDIR(st.st_mode))
        return rv_fail(err, "%s: exists and is not a directory", dir);
    if (exists && !holds_world_or_nothing(dir))
        return rv_fail(err, "%s: holds files but no world.json; not replacing it", dir);
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", dir, (int)getpid()) >= (int)sizeof tmp ||
        snprintf(img, sizeof img, "%s/img", tmp) >= (int)sizeof img)
        return rv_fail(err, "%s: path too long", dir);
    snprintf(parent, sizeof parent, "%s", dir);
    if (rv_remove_tree(tmp, err) || rv_mkdirs(img, err)) return -1;
    size_t counts[N_SOURCES];
    if (write_pictures(w, tmp, err) || write_sources(w, tmp, counts, err) ||
        write_questions(w, tmp, err) || (edit && write_edits(w, edit, tmp, err)) ||
        write_manifest(w, edit, tmp, counts, err) || sync_tree(tmp, err))
        goto fail;
    if (exists) {
        /* swap atomically, then remove the old world (now under the temporary name) */
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) != 0) {
            rv_fail(err, "%s: cannot replace: %s", dir, strerror(errno));
            goto fail;
        }
    } else if (rename(tmp, dir) != 0) {
        rv_fail(err, "%s: cannot rename %s into place: %s", dir, tmp, strerror(errno));
        goto fail;
    }
    if (rv_fsync_dir(dirname(parent), err)) goto fail;
    return exists ? rv_remove_tree(tmp, err) : 0;
fail:
    rv_remove_tree(tmp, NULL);
    return -1;
}
