/* tests/test_store_cli.c — `reveal ingest`, `stats` and `inspect` end to end, one ctest per
 * case (the case name is the argument):
 *   roundtrip   every type, with and without PNG/JPEG images, Unicode, JSONL and TSV, through
 *               ingest → store → inspect, compared field by field and pixel hash by hash
 *   idempotent  re-ingest writes nothing (the sequence number stays), an edit replaces
 *   dry_run, max_errors, usage
 *   bad_*       one bad-input case each: the `file:line: reason` message, the counts, and the
 *               store intact afterwards
 */
#include "test_store_cli.h"
#include "test_store_util.h"

#include <errno.h>
#include <inttypes.h>
#include <sys/mount.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

static char dir[256];

static void path_of(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

static void put_text(const char *name, const char *text) {
    char p[512];
    path_of(p, sizeof p, name);
    write_text(p, text);
}

/* Smooth pictures (they survive JPEG well): a PNG, a JPEG, and a PNG with alpha. */
static void make_images(void) {
    char p[512];
    path_of(p, sizeof p, "img");
    REQUIRE(mkdir(p, 0755) == 0);
    int w = 40, h = 30;
    unsigned char rgba[64 * 48 * 4];
    for (int y = 0; y < 48; y++)
        for (int x = 0; x < 64; x++) {
            unsigned char *px = rgba + (y * 64 + x) * 4;
            px[0] = (unsigned char)(200 + x / 2);
            px[1] = (unsigned char)(4 * y);
            px[2] = (unsigned char)(3 * x);
            px[3] = (unsigned char)(x * 4);
        }
    unsigned char rgb[64 * 48 * 3];
    for (int i = 0; i < 64 * 48; i++) memcpy(rgb + 3 * i, rgba + 4 * i, 3);
    path_of(p, sizeof p, "img/np.png");
    REQUIRE(stbi_write_png(p, w, h, 3, rgb, 64 * 3));
    path_of(p, sizeof p, "img/photo.jpg");
    REQUIRE(stbi_write_jpg(p, 64, 48, 3, rgb, 90));
    path_of(p, sizeof p, "img/alpha.png");
    REQUIRE(stbi_write_png(p, 64, 48, 4, rgba, 64 * 4));
}

/* ---- round trip ------------------------------------------------------------------------- */

typedef struct {
    const char *file; /* input file name in dir */
    int line;
    const char *image;        /* path relative to dir, or NULL */
    const char *fields[5][2]; /* name, value as inspect prints it (escaped) */
} expect_item;

static const expect_item expected[] = {
    {"it.jsonl",
     1,
     "img/np.png",
     {{"key", "img/np.png"},
      {"text",
       "flag of Nepal \xE2\x80\x94 \xE0\xA4\xA8\xE0\xA5\x87\xE0\xA4\xAA\xE0\xA4\xBE\xE0\xA4\xB2"}}},
    {"it.jsonl", 2, "img/photo.jpg", {{"key", "photo-1"}, {"text", "a photo, \"quoted\""}}},
    {"qa.jsonl",
     1,
     NULL,
     {{"key", "What is the capital of Nepal?"},
      {"question", "What is the capital of Nepal?"},
      {"answer", "Kathmandu"}}},
    {"qa.jsonl", 2, "img/alpha.png", {{"question", "Which flag is this?"}, {"answer", "Nepal"}}},
    {"qa.jsonl",
     4,
     NULL,
     {{"question", "\xE6\x97\xA5\xE6\x9C\xAC\xE3\x81\xAE\xE9\xA6\x96\xE9\x83\xBD\xE3\x81\xAF?"},
      {"answer", "\xE6\x9D\xB1\xE4\xBA\xAC"}}},
    {"kg.jsonl",
     1,
     NULL,
     {{"key", "Nepal\\tcapital"},
      {"subject", "Nepal"},
      {"relation", "capital"},
      {"object", "Kathmandu"}}},
    {"kg.jsonl",
     2,
     "img/photo.jpg",
     {{"key", "Nepal\\tflag"}, {"subject", "Nepal"}, {"relation", "flag"}, {"object", "img"}}},
    {"kg.tsv",
     2,
     NULL,
     {{"key", "Z\xC3\xBCrich\\tcountry"},
      {"subject", "Z\xC3\xBCrich"},
      {"relation", "country"},
      {"object", "Switzerland"}}},
    {"text.jsonl",
     1,
     NULL,
     {{"key", "Nepal \xE2\x80\x94 Climate"},
      {"title", "Nepal \xE2\x80\x94 Climate"},
      {"text", "Monsoon \xF0\x9F\x8C\xA7 June\\nto September"}}},
    {"text.jsonl", 2, "img/np.png", {{"text", "A passage without a title."}}},
};
#define N_EXPECTED (sizeof expected / sizeof expected[0])

static void write_inputs(void) {
    put_text("it.jsonl",
             "{\"image\": \"img/np.png\", \"text\": \"flag of Nepal \\u2014 "
             "\xE0\xA4\xA8\xE0\xA5\x87\xE0\xA4\xAA\xE0\xA4\xBE\xE0\xA4\xB2\"}\n"
             "{\"image\": \"img/photo.jpg\", \"text\": \"a photo, \\\"quoted\\\"\", \"key\": "
             "\"photo-1\"}\n");
    put_text("qa.jsonl",
             "{\"question\": \"What is the capital of Nepal?\", \"answer\": \"Kathmandu\"}\r\n"
             "{\"question\": \"Which flag is this?\", \"answer\": \"Nepal\", \"image\": "
             "\"img/alpha.png\"}\n"
             "\n"
             "{\"question\": "
             "\"\xE6\x97\xA5\xE6\x9C\xAC\xE3\x81\xAE\xE9\xA6\x96\xE9\x83\xBD\xE3\x81\xAF?\", "
             "\"answer\": \"\\u6771\\u4eac\", \"source\": {\"ignored\": true}}");
    put_text("kg.jsonl",
             "{\"subject\": \"Nepal\", \"relation\": \"capital\", \"object\": \"Kathmandu\"}\n"
             "{\"subject\": \"Nepal\", \"relation\": \"flag\", \"object\": \"img\", \"image\": "
             "\"img/photo.jpg\"}\n");
    put_text("kg.tsv", "# subject\trelation\tobject\n"
                       "Z\xC3\xBCrich\tcountry\tSwitzerland\n");
    put_text("text.jsonl",
             "\xEF\xBB\xBF{\"title\": \"Nepal \xE2\x80\x94 Climate\", \"text\": \"Monsoon "
             "\xF0\x9F\x8C\xA7 June\\nto September\"}\n"
             "{\"text\": \"A passage without a title.\", \"image\": \"img/np.png\"}\n");
}

/* Finds the expected item for a stored one by its provenance. */
static const expect_item *expected_for(const Reveal__KnowledgeItem *item) {
    const char *file = item->provenance ? strrchr(item->provenance->file, '/') : NULL;
    for (size_t i = 0; file && i < N_EXPECTED; i++)
        if (!strcmp(file + 1, expected[i].file) && (int)item->provenance->line == expected[i].line)
            return &expected[i];
    return NULL;
}

static void check_inspect(const char *store, uint64_t id, const expect_item *e, int by_hex) {
    const char *bin = reveal_bin();
    cli_result r = by_hex ? run_cli("%s inspect --store %s --id 0x%" PRIx64, bin, store, id)
                          : run_cli("%s inspect --store %s --id %" PRIu64, bin, store, id);
    CHECKF(r.status == 0, "inspect %s:%d: exit %d, %s", e->file, e->line, r.status, r.err);
    char want[1024];
    for (int f = 0; f < 5 && e->fields[f][0]; f++) {
        snprintf(want, sizeof want, "\n%-12s %s\n", e->fields[f][0], e->fields[f][1]);
        CHECKF(strstr(r.out, want), "inspect %s:%d lacks '%s':\n%s", e->file, e->line, want, r.out);
    }
    snprintf(want, sizeof want, "%-12s %s/%s:%d\n", "provenance", dir, e->file, e->line);
    CHECKF(strstr(r.out, want), "inspect %s:%d lacks '%s':\n%s", e->file, e->line, want, r.out);
    if (e->image) {
        char p[512], err[RV_ERR_MAX];
        unsigned char *pixels;
        path_of(p, sizeof p, e->image);
        REQUIRE(mem_image_load(p, 32, &pixels, err) == 0);
        snprintf(want, sizeof want, "32x32x3, mean RGB");
        CHECKF(strstr(r.out, want), "inspect %s:%d: no 32x32 image:\n%s", e->file, e->line, r.out);
        snprintf(want, sizeof want, "xxh3 0x%016" PRIx64 "\n", rv_hash64(pixels, 32 * 32 * 3, 0));
        CHECKF(strstr(r.out, want), "inspect %s:%d: pixels differ (want %s):\n%s", e->file, e->line,
               want, r.out);
        free(pixels);
    } else {
        CHECKF(strstr(r.out, "\nimage        none\n"), "inspect %s:%d shows an image", e->file,
               e->line);
    }
    CHECK(strstr(r.out, "\nkey vector   none\n") && strstr(r.out, "\nvalue        none\n"));
    cli_free(&r);
}

static void case_roundtrip(void) {
    make_images();
    write_inputs();
    static const struct {
        const char *type, *file, *store;
        int items;
    } runs[] = {{"image-text", "it.jsonl", "s_it", 2},
                {"qa", "qa.jsonl", "s_qa", 3},
                {"kg", "kg.jsonl", "s_kg", 2},
                {"kg", "kg.tsv", "s_kg", 1},
                {"text", "text.jsonl", "s_text", 2}};
    const char *bin = reveal_bin();
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        cli_result r = run_cli("%s ingest --type %s --input %s/%s --store %s/%s", bin, runs[i].type,
                               dir, runs[i].file, dir, runs[i].store);
        char want[256];
        snprintf(want, sizeof want, "read %d, added %d, unchanged 0, replaced 0, rejected 0,",
                 runs[i].items, runs[i].items);
        CHECKF(r.status == 0 && strstr(r.out, want), "%s: exit %d, out '%s', err '%s'",
               runs[i].file, r.status, r.out, r.err);
        cli_free(&r);
    }
    /* Every stored item is an expected one, inspect shows all of it, and --key finds it. */
    const char *stores[] = {"s_it", "s_qa", "s_kg", "s_text"};
    size_t found = 0;
    for (size_t s = 0; s < 4; s++) {
        char store[512], err[RV_ERR_MAX];
        path_of(store, sizeof store, stores[s]);
        mem_store *st;
        REQUIRE(mem_open(store, 1, &st, err) == 0);
        mem_iter *it;
        REQUIRE(mem_iter_new(st, 0, &it, err) == 0);
        uint64_t id;
        Reveal__KnowledgeItem *item;
        uint64_t ids[8];
        const expect_item *es[8];
        size_t n = 0;
        while (mem_iter_next(it, &id, &item, err) == 1) {
            const expect_item *e = expected_for(item);
            CHECKF(e != NULL, "unexpected item %" PRIx64 " in %s", id, store);
            if (e && n < 8) {
                ids[n] = id;
                es[n++] = e;
            }
            reveal__knowledge_item__free_unpacked(item, NULL);
        }
        mem_iter_free(it);
        mem_close(st);
        for (size_t i = 0; i < n; i++) {
            check_inspect(store, ids[i], es[i], (int)(i & 1));
            found++;
            if (es[i]->fields[0][0] && !strcmp(es[i]->fields[0][0], "key")) {
                /* inspect prints a tab as \t; the key itself holds a tab */
                char key[256];
                snprintf(key, sizeof key, "%s", es[i]->fields[0][1]);
                char *t = strstr(key, "\\t");
                if (t) {
                    *t = '\t';
                    memmove(t + 1, t + 2, strlen(t + 2) + 1);
                }
                cli_result r = run_cli("%s inspect --store %s --key '%s'", bin, store, key);
                char want[64];
                snprintf(want, sizeof want, "id           0x%016" PRIx64, ids[i]);
                CHECKF(r.status == 0 && strstr(r.out, want), "--key '%s': %s%s", key, r.out, r.err);
                cli_free(&r);
            }
        }
        store_check(store, NULL);
    }
    CHECKF(found == N_EXPECTED, "found %zu of %zu items", found, N_EXPECTED);

    /* stats names what the store holds. */
    cli_result r = run_cli("%s stats --store %s/s_qa", bin, dir);
    CHECKF(r.status == 0 && strstr(r.out, "type         qa\n") &&
               strstr(r.out, "name         qa\n") && strstr(r.out, "image size   32x32 RGB\n") &&
               strstr(r.out, "items        3\n") && strstr(r.out, "keys         0 of 3 items\n"),
           "stats: %s%s", r.out, r.err);
    cli_free(&r);

    /* Vectors written by two encoder versions show in stats and inspect. */
    char store[512], err[RV_ERR_MAX];
    path_of(store, sizeof store, "s_qa");
    mem_store *st;
    REQUIRE(mem_open(store, 0, &st, err) == 0);
    uint64_t ids[3];
    const char *questions[3] = {"What is the capital of Nepal?", "Which flag is this?",
                                expected[4].fields[0][1]};
    float key[8] = {1, 0, 0, 0, 0, 0, 0, 0}, value[2 * 4] = {0};
    for (int i = 0; i < 3; i++) {
        REQUIRE(mem_lookup_key(st, questions[i], &ids[i], err) == 1);
        REQUIRE(mem_put_vectors(st, ids[i], i == 0 ? 7 : 3, key, 8, i < 2 ? value : NULL, 2, 4,
                                err) == 0);
    }
    mem_close(st);
    r = run_cli("%s stats --store %s", bin, store);
    CHECKF(r.status == 0 &&
               strstr(r.out, "keys         3 of 3 items, 1x8, encoder versions 3 (2) 7 (1)\n") &&
               strstr(r.out, "values       2 of 3 items, 2x4, encoder versions 3 (1) 7 (1)\n"),
           "stats with vectors: %s%s", r.out, r.err);
    cli_free(&r);
    r = run_cli("%s inspect --store %s --id 0x%" PRIx64, bin, store, ids[0]);
    CHECKF(r.status == 0 && strstr(r.out, "key vector   1x8 floats, encoder version 7\n") &&
               strstr(r.out, "value        2x4 floats, encoder version 7\n"),
           "inspect with vectors: %s%s", r.out, r.err);
    cli_free(&r);
    r = run_cli("%s inspect --store %s --id %" PRIu64, bin, store, ids[2]);
    CHECKF(r.status == 0 && strstr(r.out, "key vector   1x8 floats, encoder version 3\n") &&
               strstr(r.out, "value        none\n"),
           "inspect with a key only: %s%s", r.out, r.err);
    cli_free(&r);
}

/* ---- idempotence and edits ----------------------------------------------------------- */

static uint64_t stats_number(const char *store, const char *label) {
    cli_result r = run_cli("%s stats --store %s", reveal_bin(), store);
    CHECKF(r.status == 0, "stats: %s", r.err);
    char want[64];
    snprintf(want, sizeof want, "\n%-12s ", label);
    const char *p = strstr(r.out, want);
    if (!p && !strncmp(r.out, want + 1, strlen(want + 1))) p = r.out - 1;
    CHECKF(p != NULL, "stats lacks %s:\n%s", label, r.out);
    uint64_t v = p ? strtoull(p + strlen(want), NULL, 10) : 0;
    cli_free(&r);
    return v;
}

static void write_triples(const char *name, int n, int edited) {
    char p[512];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    REQUIRE(f != NULL);
    for (int i = 0; i < n; i++)
        fprintf(f, "entity %d\trelation %d\t%s %d\n", i, i % 7, i == edited ? "changed" : "value",
                i);
    REQUIRE(fclose(f) == 0);
}

static void case_idempotent(void) {
    const char *bin = reveal_bin();
    char store[512];
    path_of(store, sizeof store, "s");
    write_triples("kg.tsv", 2000, -1);
    cli_result r =
        run_cli("%s ingest --type kg --input %s/kg.tsv --store %s --batch 128", bin, dir, store);
    CHECKF(r.status == 0 && strstr(r.out, "read 2000, added 2000, unchanged 0,"), "%s%s", r.out,
           r.err);
    cli_free(&r);
    uint64_t seq = stats_number(store, "sequence");
    CHECK(seq > 0);
    for (int again = 0; again < 2; again++) {
        r = run_cli("%s ingest --type kg --input %s/kg.tsv --store %s --batch 128", bin, dir,
                    store);
        CHECKF(r.status == 0 &&
                   strstr(r.out, "read 2000, added 0, unchanged 2000, replaced 0, rejected 0"),
               "re-run: %s%s", r.out, r.err);
        cli_free(&r);
        CHECKF(stats_number(store, "sequence") == seq, "re-ingest moved the sequence");
    }
    /* An edit: the same subject and relation with another object replaces the old triple. */
    write_triples("kg2.tsv", 2000, 1234);
    r = run_cli("%s ingest --type kg --input %s/kg2.tsv --store %s", bin, dir, store);
    CHECKF(r.status == 0 &&
               strstr(r.out, "read 2000, added 0, unchanged 1999, replaced 1, rejected 0"),
           "edit: %s%s", r.out, r.err);
    cli_free(&r);
    CHECK(stats_number(store, "items") == 2000);
    CHECK(stats_number(store, "deleted") == 1);
    uint64_t seq2 = stats_number(store, "sequence");
    CHECK(seq2 > seq);
    r = run_cli("%s inspect --store %s --key 'entity 1234\trelation 2'", bin, store);
    CHECKF(r.status == 0 && strstr(r.out, "\nobject       changed 1234\n"), "%s%s", r.out, r.err);
    cli_free(&r);
    r = run_cli("%s ingest --type kg --input %s/kg2.tsv --store %s", bin, dir, store);
    CHECK(r.status == 0 && strstr(r.out, "unchanged 2000"));
    cli_free(&r);
    CHECK(stats_number(store, "sequence") == seq2);
    CHECK(store_check(store, NULL) == 2000);
}

/* ---- bad input ------------------------------------------------------------------------ */

/* A store of `type` holding 3 items, and the stats before a bad run. */
static void base_store(const char *type, const char *store, mem_stats *before) {
    char input[512];
    snprintf(input, sizeof input, "%s/base.jsonl", dir);
    if (!strcmp(type, "kg"))
        write_text(input, "{\"subject\":\"a\",\"relation\":\"r\",\"object\":\"1\"}\n"
                          "{\"subject\":\"b\",\"relation\":\"r\",\"object\":\"2\"}\n"
                          "{\"subject\":\"c\",\"relation\":\"r\",\"object\":\"3\"}\n");
    else
        write_text(input, "{\"image\":\"img/np.png\",\"text\":\"one\"}\n"
                          "{\"image\":\"img/photo.jpg\",\"text\":\"two\"}\n"
                          "{\"image\":\"img/alpha.png\",\"text\":\"three\"}\n");
    cli_result r =
        run_cli("%s ingest --type %s --input %s --store %s", reveal_bin(), type, input, store);
    REQUIRE(r.status == 0);
    cli_free(&r);
    REQUIRE(store_check(store, before) == 3);
}

/* Line 1 and 3 are good, line 2 is `bad`; expects `in.jsonl:2: <reason>`, two items added,
 * one rejected, exit 0, and a consistent store of 5 items. */
static void bad_line(const char *type, const char *bad, const char *reason) {
    char store[512], input[512];
    path_of(store, sizeof store, "s");
    path_of(input, sizeof input, "in.jsonl");
    mem_stats before, after;
    base_store(type, store, &before);
    FILE *f = fopen(input, "w");
    REQUIRE(f != NULL);
    if (!strcmp(type, "kg"))
        fprintf(f,
                "{\"subject\":\"x\",\"relation\":\"r\",\"object\":\"1\"}\n%s\n"
                "{\"subject\":\"y\",\"relation\":\"r\",\"object\":\"2\"}\n",
                bad);
    else
        fprintf(f,
                "{\"image\":\"img/np.png\",\"text\":\"four\",\"key\":\"4\"}\n%s\n"
                "{\"image\":\"img/np.png\",\"text\":\"five\",\"key\":\"5\"}\n",
                bad);
    REQUIRE(fclose(f) == 0);
    cli_result r =
        run_cli("%s ingest --type %s --input %s --store %s", reveal_bin(), type, input, store);
    char want[1024];
    snprintf(want, sizeof want, "%s:2: %s", input, reason);
    CHECKF(r.status == 0, "exit %d: %s", r.status, r.err);
    CHECKF(strstr(r.err, want), "stderr lacks '%s':\n%s", want, r.err);
    CHECKF(strstr(r.out, "read 3, added 2, unchanged 0, replaced 0, rejected 1,"), "out: %s",
           r.out);
    CHECKF(!strstr(r.err, ":1: ") && !strstr(r.err, ":3: "), "good lines rejected: %s", r.err);
    cli_free(&r);
    CHECK(store_check(store, &after) == 5);
    CHECK(after.sequence > before.sequence);
}

/* A run refused as a whole: expected exit code and message, and the store untouched. */
static void refused(const char *type, const char *args, int exit_code, const char *message) {
    char store[512];
    path_of(store, sizeof store, "s");
    mem_stats before, after;
    base_store(type, store, &before);
    cli_result r =
        run_cli("%s ingest --input %s/base.jsonl --store %s %s", reveal_bin(), dir, store, args);
    CHECKF(r.status == exit_code, "exit %d, expected %d: %s", r.status, exit_code, r.err);
    CHECKF(strstr(r.err, message), "stderr lacks '%s':\n%s", message, r.err);
    cli_free(&r);
    CHECK(store_check(store, &after) == 3);
    CHECKF(after.sequence == before.sequence, "the refused run wrote to the store");
}

static void case_bad_json(void) {
    bad_line("kg", "{\"subject\": \"Nepal\", \"relation\": \"capital\"", "malformed JSON at byte");
}

static void case_bad_missing_field(void) {
    bad_line("kg", "{\"subject\": \"Nepal\", \"relation\": \"capital\"}",
             "missing field \"object\" (a kg item needs it)");
}

static void case_bad_field_type(void) {
    bad_line("kg", "{\"subject\": \"Nepal\", \"relation\": \"population\", \"object\": 30000000}",
             "field \"object\" must be a string, not a number");
}

static void case_bad_type(void) {
    refused("kg", "--type triples", 2, "unknown --type 'triples' (image-text, qa, kg or text)");
}

static void case_bad_missing_image(void) {
    make_images();
    char want[600];
    snprintf(want, sizeof want, "image: %s/img/none.png: cannot open: No such file", dir);
    bad_line("image-text", "{\"image\": \"img/none.png\", \"text\": \"gone\"}", want);
}

static void case_bad_corrupt_image(void) {
    make_images();
    /* A PNG signature followed by garbage, and a JPEG cut short after its header. */
    char p[512];
    path_of(p, sizeof p, "img/corrupt.png");
    write_text(p, "\x89PNG\r\n\x1a\nthis is not a PNG image at all");
    char want[600];
    snprintf(want, sizeof want, "image: %s/img/corrupt.png: cannot read the image header", dir);
    bad_line("image-text", "{\"image\": \"img/corrupt.png\", \"text\": \"broken\"}", want);

    char *jpg = NULL;
    path_of(p, sizeof p, "img/photo.jpg");
    jpg = slurp(p);
    path_of(p, sizeof p, "img/cut.jpg");
    write_file(p, jpg, 300);
    free(jpg);
    snprintf(want, sizeof want, "image: %s/img/cut.jpg: cannot decode the image", dir);
    char store[512];
    path_of(store, sizeof store, "s");
    tmp_dir_remove(store);
    bad_line("image-text", "{\"image\": \"img/cut.jpg\", \"text\": \"cut\"}", want);
}

static void case_bad_long_line(void) {
    size_t n = MEM_LINE_MAX + 100;
    char *line = malloc(n + 1);
    REQUIRE(line != NULL);
    int head = snprintf(line, n, "{\"subject\": \"x\", \"relation\": \"r\", \"object\": \"");
    memset(line + head, 'o', n - (size_t)head - 2);
    memcpy(line + n - 2, "\"}", 3);
    char want[64];
    snprintf(want, sizeof want, "line is longer than %u bytes", MEM_LINE_MAX);
    bad_line("kg", line, want);
    free(line);
}

static void case_bad_long_field(void) {
    size_t n = MEM_FIELD_MAX + 1000;
    char *line = malloc(n + 100);
    REQUIRE(line != NULL);
    int head = snprintf(line, 100, "{\"subject\": \"x\", \"relation\": \"r\", \"object\": \"");
    memset(line + head, 'o', n);
    memcpy(line + head + n, "\"}", 3);
    char want[128];
    snprintf(want, sizeof want, "field \"object\" is %zu bytes, more than the %u allowed", n,
             MEM_FIELD_MAX);
    bad_line("kg", line, want);
    free(line);
}

static void case_bad_utf8(void) {
    bad_line("kg", "{\"subject\": \"Z\xFCrich\", \"relation\": \"country\", \"object\": \"CH\"}",
             "line is not valid UTF-8 (byte 15)");
}

static void case_bad_store_type(void) {
    refused("kg", "--type qa", 1, "the store holds kg items, not qa");
}

static void case_bad_image_size(void) {
    make_images();
    refused("image-text", "--type image-text --image-size 64", 1,
            "the store was created with --image-size 32, not 64");
}

/* Prints why a mount-based case cannot run here; returns 0 then. */
static int try_mount(const char *src, const char *target, const char *type, unsigned long flags,
                     const char *data) {
    if (mount(src, target, type, flags, data) == 0) return 1;
    printf("note: cannot mount %s here (%s); that part of the case is skipped\n", target,
           strerror(errno));
    return 0;
}

static void case_bad_unwritable(void) {
    const char *bin = reveal_bin();
    /* A store path under a regular file: works for every user, root included. */
    char file[512];
    path_of(file, sizeof file, "plain-file");
    write_text(file, "not a directory");
    put_text("more.jsonl", "{\"subject\":\"q\",\"relation\":\"r\",\"object\":\"1\"}\n");
    cli_result r =
        run_cli("%s ingest --type kg --input %s/more.jsonl --store %s/store", bin, dir, file);
    CHECKF(r.status == 1 && strstr(r.err, "Not a directory"), "exit %d: %s", r.status, r.err);
    cli_free(&r);
    char *after = slurp(file);
    CHECK(!strcmp(after, "not a directory"));
    free(after);

    /* A store on a read-only bind mount, where that is allowed (root, no seccomp). */
    char store[512], ro[512];
    mem_stats before, now;
    path_of(store, sizeof store, "s");
    path_of(ro, sizeof ro, "ro");
    base_store("kg", store, &before);
    REQUIRE(mkdir(ro, 0755) == 0);
    if (try_mount(store, ro, NULL, MS_BIND, NULL)) {
        if (mount(NULL, ro, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) == 0) {
            r = run_cli("%s ingest --type kg --input %s/more.jsonl --store %s", bin, dir, ro);
            CHECKF(r.status == 1 && strstr(r.err, "Read-only file system"), "exit %d: %s", r.status,
                   r.err);
            cli_free(&r);
        } else {
            printf("note: cannot remount read-only (%s); skipped\n", strerror(errno));
        }
        CHECK(umount(ro) == 0);
        CHECK(store_check(store, &now) == 3);
        CHECK(now.sequence == before.sequence);
    }
}

/* The input for the full-disk cases: enough triples to outgrow a small disk. */
static void big_input(const char *name, int n) {
    char p[512];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    REQUIRE(f != NULL);
    for (int i = 0; i < n; i++)
        fprintf(f,
                "subject %d\trelation\tan object long enough to fill the disk quickly, "
                "number %d, padded with text to about two hundred bytes per line .........\n",
                i, i);
    REQUIRE(fclose(f) == 0);
}

/* After a failed run: the store opens consistent; a re-run without the limit completes. */
static void full_disk_recovers(const char *store, int n) {
    uint64_t partial = store_check(store, NULL);
    CHECKF(partial < (uint64_t)n, "the full disk stopped nothing (%llu items)",
           (unsigned long long)partial);
    cli_result r =
        run_cli("%s ingest --type kg --input %s/big.tsv --store %s", reveal_bin(), dir, store);
    CHECKF(r.status == 0, "re-run: %s", r.err);
    cli_free(&r);
    CHECK(store_check(store, NULL) == (uint64_t)n);
}

static void case_bad_full_disk(void) {
    const int n = 30000;
    big_input("big.tsv", n);
    /* Files capped at 1 MB (RLIMIT_FSIZE): writes past it fail with EFBIG, for every user. */
    char store[512];
    path_of(store, sizeof store, "s");
    cli_result r = run_limited(1 << 20, "%s ingest --type kg --input %s/big.tsv --store %s",
                               reveal_bin(), dir, store);
    CHECKF(r.status == 1 && strstr(r.err, "reveal ingest: ") && strstr(r.err, "File too large"),
           "exit %d: %s", r.status, r.err);
    cli_free(&r);
    full_disk_recovers(store, n);

    /* A real ENOSPC on a small tmpfs, where mounting is allowed. */
    char mnt[512], small[600];
    path_of(mnt, sizeof mnt, "tmpfs");
    REQUIRE(mkdir(mnt, 0755) == 0);
    if (!try_mount("tmpfs", mnt, "tmpfs", 0, "size=2m")) return;
    snprintf(small, sizeof small, "%s/store", mnt);
    r = run_cli("%s ingest --type kg --input %s/big.tsv --store %s", reveal_bin(), dir, small);
    CHECKF(r.status == 1 && strstr(r.err, "No space left on device"), "exit %d: %s", r.status,
           r.err);
    cli_free(&r);
    CHECK(mount(NULL, mnt, NULL, MS_REMOUNT, "size=256m") == 0);
    full_disk_recovers(small, n);
    CHECK(umount(mnt) == 0);
}

/* ---- options ---------------------------------------------------------------------------- */

static void case_max_errors(void) {
    char store[512], input[512];
    path_of(store, sizeof store, "s");
    path_of(input, sizeof input, "in.jsonl");
    /* Lines 2, 4, 6, 8 are bad; with --max-errors 2 the run stops at line 6 having stored the
     * good lines 1, 3, 5 before it. */
    FILE *f = fopen(input, "w");
    REQUIRE(f != NULL);
    for (int i = 1; i <= 9; i++)
        if (i % 2)
            fprintf(f, "{\"subject\":\"s%d\",\"relation\":\"r\",\"object\":\"o\"}\n", i);
        else
            fprintf(f, "{\"subject\":\"s%d\"}\n", i);
    REQUIRE(fclose(f) == 0);
    cli_result r = run_cli("%s ingest --type kg --input %s --store %s --max-errors 2 --batch 1",
                           reveal_bin(), input, store);
    char want[600];
    snprintf(want, sizeof want, "stopped at %s:6 after 3 bad lines (--max-errors 2)", input);
    CHECKF(r.status == 1 && strstr(r.err, want), "exit %d: %s", r.status, r.err);
    CHECK(strstr(r.out, "read 6, added 3, unchanged 0, replaced 0, rejected 3,"));
    CHECK(!strstr(r.err, ":8: "));
    cli_free(&r);
    CHECK(store_check(store, NULL) == 3);
    /* --max-errors 0: the first bad line stops the run. */
    r = run_cli("%s ingest --type kg --input %s --store %s --max-errors 0", reveal_bin(), input,
                store);
    CHECK(r.status == 1 && strstr(r.out, "read 2, added 0, unchanged 1, replaced 0, rejected 1"));
    cli_free(&r);
}

static void case_dry_run(void) {
    const char *bin = reveal_bin();
    char store[512];
    path_of(store, sizeof store, "new-store");
    put_text("in.jsonl", "{\"subject\":\"a\",\"relation\":\"r\",\"object\":\"1\"}\n"
                         "{\"subject\":\"b\"}\n"
                         "{\"subject\":\"c\",\"relation\":\"r\",\"object\":\"3\"}\n");
    cli_result r =
        run_cli("%s ingest --type kg --input %s/in.jsonl --store %s --dry-run", bin, dir, store);
    CHECKF(r.status == 0 && strstr(r.out, "dry run: read 3, valid 2, rejected 1") &&
               strstr(r.err, "in.jsonl:2: missing field"),
           "%s%s", r.out, r.err);
    cli_free(&r);
    struct stat st;
    CHECKF(stat(store, &st) != 0, "a dry run created the store");
    /* Into an existing store: validated against it, and nothing written. */
    mem_stats before, after;
    path_of(store, sizeof store, "s");
    base_store("kg", store, &before);
    r = run_cli("%s ingest --type kg --input %s/in.jsonl --store %s --dry-run", bin, dir, store);
    CHECK(r.status == 0 && strstr(r.out, "dry run: read 3, valid 2, rejected 1"));
    cli_free(&r);
    r = run_cli("%s ingest --type qa --input %s/in.jsonl --store %s --dry-run", bin, dir, store);
    CHECK(r.status == 1 && strstr(r.err, "the store holds kg items, not qa"));
    cli_free(&r);
    CHECK(store_check(store, &after) == 3 && after.sequence == before.sequence);
}

static void case_usage(void) {
    const char *bin = reveal_bin();
    static const struct {
        const char *args;
        int code;
        const char *message;
    } cases[] = {
        {"ingest --type kg --input x --store y --frobnicate", 2, "unknown option '--frobnicate'"},
        {"ingest --type kg --input x --store", 2, "--store needs an argument"},
        {"ingest --input x --store y", 2, "--type, --input and --store are required"},
        {"ingest --type kg --input x --store y --batch 0", 2, "--batch needs a whole number"},
        {"ingest --type kg --input x --store y --image-size 12x", 2, "--image-size needs"},
        {"ingest --type qa --input x.jsonl --store y --format tsv", 1, "TSV input holds kg"},
        {"ingest --type kg --input /nonexistent.jsonl --store y", 1, "cannot open"},
        {"stats", 2, "--store DIR is required"},
        {"stats --store /nonexistent/store", 1, "no store at /nonexistent/store"},
        {"inspect --store y --id 1 --key k", 2, "one of --id or --key"},
        {"inspect --store y --id 12ab", 2, "--id '12ab' is not a decimal or 0x hex number"},
        {"inspect --store y --id 0x", 2, "is not a decimal or 0x hex number"},
        {"frobnicate", 2, "unknown command 'frobnicate'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_result r = run_cli("cd %s && %s %s", dir, bin, cases[i].args);
        CHECKF(r.status == cases[i].code && strstr(r.err, cases[i].message),
               "'%s': exit %d (want %d), stderr: %s", cases[i].args, r.status, cases[i].code,
               r.err);
        cli_free(&r);
    }
    /* A missing id in a real store fails with exit 1 and says so. */
    char store[512];
    mem_stats st;
    path_of(store, sizeof store, "s");
    base_store("kg", store, &st);
    cli_result r = run_cli("%s inspect --store %s --id 0x1", bin, store);
    CHECK(r.status == 1 && strstr(r.err, "no live item has the id 0x0000000000000001"));
    cli_free(&r);
    r = run_cli("%s ingest --help", bin);
    CHECK(r.status == 0 && strstr(r.out, "usage: reveal ingest"));
    cli_free(&r);
}

static const struct {
    const char *name;
    void (*run)(void);
} cases[] = {
    {"roundtrip", case_roundtrip},
    {"idempotent", case_idempotent},
    {"max_errors", case_max_errors},
    {"dry_run", case_dry_run},
    {"usage", case_usage},
    {"bad_json", case_bad_json},
    {"bad_missing_field", case_bad_missing_field},
    {"bad_field_type", case_bad_field_type},
    {"bad_type", case_bad_type},
    {"bad_missing_image", case_bad_missing_image},
    {"bad_corrupt_image", case_bad_corrupt_image},
    {"bad_long_line", case_bad_long_line},
    {"bad_long_field", case_bad_long_field},
    {"bad_utf8", case_bad_utf8},
    {"bad_store_type", case_bad_store_type},
    {"bad_image_size", case_bad_image_size},
    {"bad_unwritable", case_bad_unwritable},
    {"bad_full_disk", case_bad_full_disk},
};

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CASE\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (strcmp(argv[1], cases[i].name)) continue;
        tmp_dir_make(dir, sizeof dir, cases[i].name);
        cases[i].run();
        tmp_dir_remove(dir);
        char name[64];
        snprintf(name, sizeof name, "store_%s", cases[i].name);
        return check_report(name);
    }
    fprintf(stderr, "unknown case %s\n", argv[1]);
    return 2;
}
