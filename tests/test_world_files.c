/* tests/test_world_files.c — a world on disk.
 *
 * The same seed writes byte-identical files (every file hashed), another seed different ones;
 * every JSONL line parses back (cJSON) into an object with exactly its format's fields and
 * the world's values; every picture path resolves relative to the JSONL file and decodes
 * (stb_image) to the world's pixels; questions name a gold key that exists in kg.jsonl with
 * the answer as its object; an existing directory is kept unless replacing; no temporary
 * directory is left behind; the default world matches pinned digests, so a change to the
 * generator (which makes results measured on the old world incomparable) cannot go unnoticed. */
#include "check.h"
#include "world.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

#define MAX_FILES 4096

typedef struct {
    char name[64];
    uint64_t hash;
} file_hash;

static int compare_file(const void *a, const void *b) {
    return strcmp(((const file_hash *)a)->name, ((const file_hash *)b)->name);
}

/* Hashes every file under dir and dir/img; returns the file count. */
static int hash_world_files(const char *dir, file_hash *out) {
    static const char *const subdirs[] = {"", "img/"};
    int n = 0;
    for (int s = 0; s < 2; s++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, subdirs[s]);
        DIR *d = opendir(path);
        REQUIRE(d);
        for (struct dirent *de; (de = readdir(d));) {
            char full[1024];
            struct stat st;
            snprintf(full, sizeof full, "%s%s", path, de->d_name);
            if (stat(full, &st) || !S_ISREG(st.st_mode)) continue;
            REQUIRE(n < MAX_FILES);
            void *data;
            size_t len;
            char err[RV_ERR_MAX];
            REQUIRE(rv_read_file(full, 1 << 26, &data, &len, err) == 0);
            snprintf(out[n].name, sizeof out[n].name, "%s%s", subdirs[s], de->d_name);
            out[n++].hash = rv_hash64(data, len, 0);
            free(data);
        }
        closedir(d);
    }
    qsort(out, (size_t)n, sizeof *out, compare_file);
    return n;
}

static int same_files(const char *a, const char *b, int *n_out) {
    static file_hash ha[MAX_FILES], hb[MAX_FILES];
    int na = hash_world_files(a, ha), nb = hash_world_files(b, hb), same = na == nb;
    for (int i = 0; same && i < na; i++)
        same = !strcmp(ha[i].name, hb[i].name) && ha[i].hash == hb[i].hash;
    if (n_out) *n_out = na;
    return same;
}

static int file_differs(const char *a, const char *b, const char *name) {
    char pa[512], pb[512], err[RV_ERR_MAX];
    void *da, *db;
    size_t na, nb;
    snprintf(pa, sizeof pa, "%s/%s", a, name);
    snprintf(pb, sizeof pb, "%s/%s", b, name);
    REQUIRE(rv_read_file(pa, 1 << 26, &da, &na, err) == 0);
    REQUIRE(rv_read_file(pb, 1 << 26, &db, &nb, err) == 0);
    int differs = na != nb || memcmp(da, db, na);
    free(da);
    free(db);
    return differs;
}

static world *make(uint64_t seed, double edit_fraction, world_edit *edit) {
    char err[RV_ERR_MAX];
    world_config cfg;
    world_config_default(&cfg);
    cfg.seed = seed;
    world *w = NULL;
    REQUIRE(world_create(&cfg, &w, err) == 0);
    if (edit) REQUIRE(world_edit_fraction(w, edit_fraction, 9, edit, err) == 0);
    return w;
}

static void write_world(uint64_t seed, double edit_fraction, const char *dir) {
    char err[RV_ERR_MAX];
    world_edit edit;
    world *w = make(seed, edit_fraction, edit_fraction > 0 ? &edit : NULL);
    CHECKF(world_write(w, edit_fraction > 0 ? &edit : NULL, dir, 0, err) == 0, "%s", err);
    if (edit_fraction > 0) world_edit_free(&edit);
    world_free(w);
}

/* Reads a JSONL file into parsed lines; every line must end with a newline. */
static int read_jsonl(const char *dir, const char *name, cJSON **lines, int cap) {
    char path[512], err[RV_ERR_MAX];
    void *data;
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    REQUIRE(rv_read_file(path, 1 << 26, &data, &len, err) == 0);
    CHECKF(len > 0 && ((char *)data)[len - 1] == '\n', "%s does not end with a newline", name);
    int n = 0;
    for (char *save, *line = strtok_r(data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        REQUIRE(n < cap);
        lines[n] = cJSON_Parse(line);
        CHECKF(lines[n] != NULL, "%s:%d does not parse", name, n + 1);
        n++;
    }
    free(data);
    return n;
}

static void free_lines(cJSON **lines, int n) {
    for (int i = 0; i < n; i++) cJSON_Delete(lines[i]);
}

/* The line holds exactly these string fields with these values (NULL value: any string). */
static int has_exactly(const cJSON *obj, const char *const *fields, const char *const *values,
                       int n) {
    if (!cJSON_IsObject(obj) || cJSON_GetArraySize(obj) != n) return 0;
    for (int i = 0; i < n; i++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, fields[i]);
        if (!cJSON_IsString(f) || (values[i] && strcmp(f->valuestring, values[i]))) return 0;
    }
    return 1;
}

static void check_picture(const world *w, const char *dir, const cJSON *line, int entity) {
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(line, "image");
    char path[512], expect[64];
    world_image_path(entity, expect, sizeof expect);
    if (!cJSON_IsString(img) || strcmp(img->valuestring, expect)) {
        CHECKF(0, "image of entity %d is not %s", entity, expect);
        return;
    }
    snprintf(path, sizeof path, "%s/%s", dir, img->valuestring);
    int x, y, c, S = w->cfg.image_size;
    uint8_t *pixels = stbi_load(path, &x, &y, &c, 0);
    CHECKF(pixels != NULL, "%s does not decode", path);
    if (!pixels) return;
    CHECK(x == S && y == S && c == 3);
    CHECKF(x == S && y == S && c == 3 &&
               !memcmp(pixels, w->pictures + (size_t)entity * S * S * 3, (size_t)S * S * 3),
           "%s decodes to other pixels", path);
    stbi_image_free(pixels);
}

static void check_parse_back(const world *w, const world_edit *edit, const char *dir) {
    enum { CAP = 4096 };
    static cJSON *lines[CAP];
    static const char *const files[] = {"image_text.jsonl", "qa.jsonl", "kg.jsonl", "text.jsonl"};
    char image[64];
    for (int s = 0; s < 4; s++) {
        world_source type = (world_source)(s + 1);
        int n = read_jsonl(dir, files[s], lines, CAP), k = 0;
        for (size_t i = 0; i < w->n_items; i++) {
            const world_item *it = &w->items[i];
            if (it->type != type) continue;
            if (k >= n) {
                k++;
                continue;
            }
            world_image_path(it->entity, image, sizeof image);
            int ok = 0;
            if (type == WORLD_IMAGE_TEXT) {
                const char *f[] = {"image", "text", "key"}, *v[] = {image, it->text, it->key};
                ok = has_exactly(lines[k], f, v, 3);
            } else if (type == WORLD_QA) {
                const char *f[] = {"question", "answer", "image", "key"};
                const char *v[] = {it->question, it->answer, image, it->key};
                ok = has_exactly(lines[k], f, v, 4);
            } else if (type == WORLD_KG) {
                const char *f[] = {"subject", "relation", "object", "image", "key"};
                const char *v[] = {it->subject, it->relation, it->object, image, it->key};
                ok = has_exactly(lines[k], f, v, 5);
            } else {
                const char *f[] = {"title", "text", "image", "key"};
                const char *v[] = {it->title, it->text, image, it->key};
                ok = has_exactly(lines[k], f, v, 4);
            }
            CHECKF(ok, "%s:%d does not match item %s", files[s], k + 1, it->key);
            check_picture(w, dir, lines[k], it->entity);
            k++;
        }
        CHECKF(k == n, "%s has %d lines, the world %d items", files[s], n, k);
        free_lines(lines, n);
    }

    /* questions: their gold key is a line of kg.jsonl whose object is the answer */
    static cJSON *kg[CAP];
    int n_kg = read_jsonl(dir, "kg.jsonl", kg, CAP);
    for (int test = 0; test <= 1; test++) {
        const char *name = test ? "questions_test.jsonl" : "questions_train.jsonl";
        int n = read_jsonl(dir, name, lines, CAP), k = 0;
        for (size_t i = 0; i < w->n_questions; i++) {
            const world_question *q = &w->questions[i];
            if (q->is_test != test || k >= n) continue;
            world_image_path(q->entity, image, sizeof image);
            const char *f[] = {"image", "question", "answer", "gold", "type", "entity"};
            const char *v[] = {image,
                               q->question,
                               q->answer,
                               NULL,
                               w->relation_names[q->relation],
                               w->entity_names[q->entity]};
            CHECKF(has_exactly(lines[k], f, v, 6), "%s:%d does not match", name, k + 1);
            const cJSON *gold = cJSON_GetObjectItemCaseSensitive(lines[k], "gold");
            int found = 0;
            for (int j = 0; cJSON_IsString(gold) && j < n_kg; j++) {
                const cJSON *key = cJSON_GetObjectItemCaseSensitive(kg[j], "key");
                const cJSON *obj = cJSON_GetObjectItemCaseSensitive(kg[j], "object");
                if (cJSON_IsString(key) && !strcmp(key->valuestring, gold->valuestring)) {
                    found++;
                    CHECK(cJSON_IsString(obj) && !strcmp(obj->valuestring, q->answer));
                }
            }
            CHECKF(found == 1, "%s:%d: gold key found %d times in kg.jsonl", name, k + 1, found);
            check_picture(w, dir, lines[k], q->entity);
            k++;
        }
        CHECK(k == n && (size_t)n == (test ? w->n_test : w->n_train));
        free_lines(lines, n);
    }
    free_lines(kg, n_kg);

    /* the manifest */
    char path[512], err[RV_ERR_MAX];
    void *data;
    size_t len;
    snprintf(path, sizeof path, "%s/world.json", dir);
    REQUIRE(rv_read_file(path, 1 << 26, &data, &len, err) == 0);
    cJSON *m = cJSON_Parse(data);
    free(data);
    REQUIRE(m);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)w->cfg.seed);
    const cJSON *j_seed = cJSON_GetObjectItemCaseSensitive(m, "seed");
    CHECK(cJSON_IsString(j_seed) && !strcmp(j_seed->valuestring, seed));
    CHECK(cJSON_GetObjectItemCaseSensitive(m, "entities")->valueint == w->cfg.entities);
    const cJSON *rel = cJSON_GetObjectItemCaseSensitive(m, "relations");
    CHECK(cJSON_GetArraySize(rel) == w->cfg.relations);
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(m, "entity_names");
    CHECK(cJSON_GetArraySize(names) == w->cfg.entities &&
          !strcmp(cJSON_GetArrayItem(names, 3)->valuestring, w->entity_names[3]));
    const cJSON *files_obj = cJSON_GetObjectItemCaseSensitive(m, "files");
    CHECK(cJSON_GetObjectItemCaseSensitive(files_obj, "kg.jsonl")->valueint ==
          w->cfg.entities * w->cfg.relations);
    CHECK((cJSON_GetObjectItemCaseSensitive(m, "edit") != NULL) == (edit != NULL));
    cJSON_Delete(m);

    if (!edit) return;
    int n = read_jsonl(dir, "edits.jsonl", lines, CAP);
    CHECK((size_t)n == edit->n_facts);
    for (int i = 0; i < n && (size_t)i < edit->n_facts; i++) {
        const world_fact_change *c = &edit->facts[i];
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(lines[i], "items");
        CHECK(cJSON_GetArraySize(items) == 3);
        cJSON *copy = cJSON_Duplicate(lines[i], 1);
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "items");
        const char *f[] = {"entity", "relation", "old", "new"};
        const char *v[] = {w->entity_names[c->entity], w->relation_names[c->relation],
                           w->object_words[c->old_object], w->object_words[c->new_object]};
        CHECKF(has_exactly(copy, f, v, 4), "edits.jsonl:%d does not match", i + 1);
        cJSON_Delete(copy);
        const cJSON *kg_key = cJSON_GetArrayItem(items, 0);
        CHECK(cJSON_IsString(kg_key) &&
              !strcmp(kg_key->valuestring, w->items[world_item_kg(w, c->entity, c->relation)].key));
    }
    free_lines(lines, n);
}

/* XXH3 digests of the default world (seed 1). A deliberate change of the generator updates
 * them and says so in docs/world.md. */
static void check_golden(const char *root) {
    static const struct {
        const char *file;
        uint64_t hash;
    } golden[] = {
        {"kg.jsonl", 0x1153c6bf58933c98ULL},
        {"qa.jsonl", 0x50ad8960671f2eacULL},
        {"text.jsonl", 0x6e6bfd83b6abd1edULL},
        {"image_text.jsonl", 0x15a940f6a8c0c37dULL},
        {"questions_train.jsonl", 0xa7b7739505035e10ULL},
        {"questions_test.jsonl", 0x6809ba8d32d85903ULL},
    };
    char dir[300], path[400], err[RV_ERR_MAX];
    snprintf(dir, sizeof dir, "%s/golden", root);
    world *w = make(1, 0, NULL);
    CHECK(rv_hash64(w->pictures, 64 * 16 * 16 * 3, 0) == 0xeeb1d9cea8a3f5fdULL);
    REQUIRE(world_write(w, NULL, dir, 0, err) == 0);
    for (size_t i = 0; i < sizeof golden / sizeof golden[0]; i++) {
        void *data;
        size_t n;
        snprintf(path, sizeof path, "%s/%s", dir, golden[i].file);
        REQUIRE(rv_read_file(path, 1 << 26, &data, &n, err) == 0);
        uint64_t h = rv_hash64(data, n, 0);
        CHECKF(h == golden[i].hash, "%s: digest %016llx, pinned %016llx", golden[i].file,
               (unsigned long long)h, (unsigned long long)golden[i].hash);
        free(data);
    }
    world_free(w);
}

int main(void) {
    char err[RV_ERR_MAX], root[] = "/tmp/rv_world_files_XXXXXX", a[256], b[256], c[256], e1[256],
                          e2[256];
    REQUIRE(mkdtemp(root));
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/b/", root); /* a trailing slash is the same directory */
    snprintf(c, sizeof c, "%s/c", root);
    snprintf(e1, sizeof e1, "%s/e1", root);
    snprintf(e2, sizeof e2, "%s/e2", root);

    /* same seed, byte-identical files; another seed, different files */
    write_world(5, 0, a);
    write_world(5, 0, b);
    write_world(6, 0, c);
    int n_files = 0;
    CHECK(same_files(a, b, &n_files));
    CHECKF(n_files == 64 + 7, "%d files", n_files);
    CHECK(!same_files(a, c, NULL));
    CHECK(file_differs(a, c, "kg.jsonl") && file_differs(a, c, "img/e0.png") &&
          file_differs(a, c, "world.json"));

    check_golden(root);

    /* an edited world: the same edit writes the same files, and differs from the unedited */
    write_world(5, 0.3, e1);
    write_world(5, 0.3, e2);
    CHECK(same_files(e1, e2, &n_files));
    CHECK(n_files == 64 + 8);
    CHECK(file_differs(a, e1, "kg.jsonl") && !file_differs(a, e1, "image_text.jsonl") &&
          !file_differs(a, e1, "img/e7.png"));

    /* everything parses back to the world it came from */
    world *w = make(5, 0, NULL);
    check_parse_back(w, NULL, a);
    world_edit edit;
    world *we = make(5, 0.3, &edit);
    check_parse_back(we, &edit, e1);

    /* an existing world is kept unless replacing; replacing swaps in the new one whole */
    CHECK(world_write(w, NULL, c, 0, err) == -1);
    CHECKF(strstr(err, "already exists") && strstr(err, c), "got '%s'", err);
    CHECK(world_write(w, NULL, c, 1, err) == 0);
    CHECK(same_files(a, c, NULL));
    /* replacing never removes a directory that is not a world */
    char other[300], keep[340];
    snprintf(other, sizeof other, "%s/not_a_world", root);
    snprintf(keep, sizeof keep, "%s/keep.txt", other);
    REQUIRE(rv_mkdirs(other, err) == 0 && rv_write_file_atomic(keep, "x", 1, err) == 0);
    CHECK(world_write(w, NULL, other, 1, err) == -1);
    CHECKF(strstr(err, "no world.json"), "got '%s'", err);
    CHECK(access(keep, F_OK) == 0);
    /* a path that cannot be a directory is named */
    char blocker[300], inside[320];
    snprintf(blocker, sizeof blocker, "%s/plain_file", root);
    REQUIRE(rv_write_file_atomic(blocker, "x", 1, err) == 0);
    snprintf(inside, sizeof inside, "%s/world", blocker);
    CHECK(world_write(w, NULL, inside, 0, err) == -1);
    CHECKF(strstr(err, blocker) != NULL, "got '%s'", err);
    CHECK(world_write(w, NULL, blocker, 1, err) == -1);
    CHECKF(strstr(err, "not a directory"), "got '%s'", err);

    /* no temporary directory is left behind */
    DIR *d = opendir(root);
    REQUIRE(d);
    int leftovers = 0;
    for (struct dirent *de; (de = readdir(d));) leftovers += strstr(de->d_name, ".tmp.") != NULL;
    closedir(d);
    CHECK(leftovers == 0);

    world_edit_free(&edit);
    world_free(we);
    world_free(w);
    CHECK(rv_remove_tree(root, err) == 0);
    return check_report("world_files");
}
