/* bench/ingest/bench_ingest.c — items/s of the ingest path (mem_ingest: read, parse, decode,
 * validate, hash, look up, stage, commit) beside the raw RocksDB WriteBatch rate for the same
 * bytes, on the same machine in the same run.
 *
 * Workloads: N kg triples from a TSV file, and P image-text pairs from JSONL whose 32×32 PNG
 * images are decoded and resized on the way in. The raw reference writes exactly what the
 * store writes for each item — the packed KnowledgeItem under its 8-byte id and the logical
 * key → id entry — prepared in memory beforehand, in WriteBatches of the same size, the last
 * synced, into a fresh RocksDB database with two column families; it does no reading,
 * parsing, hashing or lookups. The ratio says what the ingest path costs above RocksDB.
 *
 *   bench_ingest [--triples N] [--pairs P] [--images M] [--repeat R] [--dir DIR]
 */
#define _GNU_SOURCE
#include "memstore.h"
#include "proto.h"
#include "rv.h"

#include <rocksdb/c.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#define BATCH MEM_BATCH_DEFAULT

static void die(const char *what, const char *err) {
    fprintf(stderr, "bench_ingest: %s: %s\n", what, err);
    exit(1);
}

/* CPU seconds of this process, every thread included (RocksDB's flushes and compactions run
 * in background threads): less disturbed than wall time by other work on the machine. */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static double load_average(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

/* The key/value pairs the store writes for a set of items, in one arena. */
typedef struct {
    char *arena;
    size_t used, cap;
    size_t *off; /* per pair: key offset; key length, value length follow in lens */
    uint32_t *klen, *vlen;
    int *family; /* 0 items, 1 logical */
    size_t n, n_cap;
    size_t bytes;
} raw_set;

static void raw_add(raw_set *r, int family, const void *k, size_t kn, const void *v, size_t vn) {
    if (r->used + kn + vn > r->cap) {
        r->cap = (r->cap + kn + vn) * 2;
        if (!(r->arena = realloc(r->arena, r->cap))) die("raw set", "out of memory");
    }
    if (r->n == r->n_cap) {
        r->n_cap = r->n_cap ? r->n_cap * 2 : 1024;
        r->off = realloc(r->off, r->n_cap * sizeof *r->off);
        r->klen = realloc(r->klen, r->n_cap * sizeof *r->klen);
        r->vlen = realloc(r->vlen, r->n_cap * sizeof *r->vlen);
        r->family = realloc(r->family, r->n_cap * sizeof *r->family);
        if (!r->off || !r->klen || !r->vlen || !r->family) die("raw set", "out of memory");
    }
    memcpy(r->arena + r->used, k, kn);
    memcpy(r->arena + r->used + kn, v, vn);
    r->off[r->n] = r->used;
    r->klen[r->n] = (uint32_t)kn;
    r->vlen[r->n] = (uint32_t)vn;
    r->family[r->n++] = family;
    r->used += kn + vn;
    r->bytes += kn + vn;
}

static void raw_free(raw_set *r) {
    free(r->arena);
    free(r->off);
    free(r->klen);
    free(r->vlen);
    free(r->family);
    memset(r, 0, sizeof *r);
}

/* Parses the input as ingest does (untimed) and records the pairs the store would write. */
static void raw_prepare(raw_set *r, const char *input, Reveal__SourceType type, mem_format fmt,
                        uint32_t image_size) {
    char err[RV_ERR_MAX], dir[4096], abs[4096];
    mem_reader *rd;
    if (mem_reader_open(input, MEM_LINE_MAX, &rd, err)) die("raw input", err);
    snprintf(dir, sizeof dir, "%s", input);
    *strrchr(dir, '/') = 0;
    if (!realpath(input, abs)) die("realpath", input);
    mem_line_item li;
    mem_line_item_init(&li);
    char *line;
    size_t len;
    uint64_t no;
    while (mem_reader_next(rd, &line, &len, &no, err) == MEM_LINE_OK) {
        if (mem_parse_line(&li, type, fmt, line, len, MEM_FIELD_MAX, err) != 1) continue;
        Reveal__Image image = REVEAL__IMAGE__INIT;
        Reveal__Provenance prov = REVEAL__PROVENANCE__INIT;
        unsigned char *pixels = NULL;
        if (li.image) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", dir, li.image);
            if (mem_image_load(path, image_size, &pixels, err)) die("raw image", err);
            image.width = image.height = image_size;
            image.channels = 3;
            image.pixels.data = pixels;
            image.pixels.len = (size_t)image_size * image_size * 3;
            li.item.image = &image;
        }
        prov.file = abs;
        prov.line = no;
        li.item.provenance = &prov;
        uint8_t *packed;
        size_t n;
        if (rv_pack(&li.item.base, &packed, &n, err)) die("pack", err);
        uint64_t id = mem_item_id(&li.item);
        char k[8];
        for (int i = 7; i >= 0; i--, id >>= 8) k[i] = (char)(id & 0xff);
        raw_add(r, 0, k, 8, packed, n);
        raw_add(r, 1, li.item.key, strlen(li.item.key), k, 8);
        free(packed);
        free(pixels);
        li.item.image = NULL;
        li.item.provenance = NULL;
    }
    mem_line_item_free(&li);
    mem_reader_close(rd);
}

/* Writes the pairs into a fresh database in batches of BATCH items (2 pairs each), the last
 * synced; returns the seconds taken, open and close included as they are for ingest. */
static double raw_write(const raw_set *r, const char *path) {
    double t0 = rv_now();
    char *e = NULL;
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_set_max_background_jobs(o, 2);
    const char *names[3] = {"default", "items", "logical"};
    const rocksdb_options_t *fo[3] = {o, o, o};
    rocksdb_column_family_handle_t *cf[3];
    rocksdb_t *db = rocksdb_open_column_families(o, path, 3, names, fo, cf, &e);
    if (e) die("raw open", e);
    rocksdb_writeoptions_t *async = rocksdb_writeoptions_create(),
                           *sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(sync, 1);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (size_t i = 0; i < r->n; i++) {
        const char *k = r->arena + r->off[i];
        rocksdb_writebatch_put_cf(wb, cf[1 + r->family[i]], k, r->klen[i], k + r->klen[i],
                                  r->vlen[i]);
        int last = i + 1 == r->n;
        if (last || rocksdb_writebatch_count(wb) == 2 * BATCH) {
            rocksdb_write(db, last ? sync : async, wb, &e);
            if (e) die("raw write", e);
            rocksdb_writebatch_clear(wb);
        }
    }
    rocksdb_writebatch_destroy(wb);
    rocksdb_writeoptions_destroy(async);
    rocksdb_writeoptions_destroy(sync);
    for (int i = 0; i < 3; i++) rocksdb_column_family_handle_destroy(cf[i]);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
    return rv_now() - t0;
}

static double ingest(const char *input, const char *store, Reveal__SourceType type,
                     uint64_t expect) {
    mem_ingest_options o;
    mem_ingest_options_init(&o);
    o.type = type;
    o.input = input;
    o.store_dir = store;
    o.max_errors = 0;
    mem_ingest_counts c;
    char err[RV_ERR_MAX];
    double t0 = rv_now();
    if (mem_ingest(&o, &c, err)) die("ingest", err);
    double t = rv_now() - t0;
    if (c.added != expect || c.store_items != expect) {
        fprintf(stderr, "bench_ingest: %s: added %llu, store holds %llu, expected %llu\n", input,
                (unsigned long long)c.added, (unsigned long long)c.store_items,
                (unsigned long long)expect);
        exit(1);
    }
    return t;
}

static void write_triples(const char *path, long n) {
    FILE *f = fopen(path, "w");
    if (!f) die("create", path);
    for (long i = 0; i < n; i++)
        fprintf(f, "Q%ld entity %ld\trelation %ld\tobject number %ld of the bench\n", i * 7919, i,
                i % 97, i);
    if (fclose(f)) die("write", path);
}

/* m distinct smooth 32×32 PNGs, and p pairs cycling through them with distinct captions. */
static void write_pairs(const char *dir, const char *path, long p, long m) {
    char img[4096];
    snprintf(img, sizeof img, "%s/img", dir);
    mkdir(img, 0755);
    unsigned char px[32 * 32 * 3];
    for (long i = 0; i < m; i++) {
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                unsigned char *q = px + (y * 32 + x) * 3;
                q[0] = (unsigned char)(i * 37 + x * 5);
                q[1] = (unsigned char)(i * 11 + y * 7);
                q[2] = (unsigned char)(i + x * y);
            }
        snprintf(img, sizeof img, "%s/img/%06ld.png", dir, i);
        if (!stbi_write_png(img, 32, 32, 3, px, 32 * 3)) die("write png", img);
    }
    FILE *f = fopen(path, "w");
    if (!f) die("create", path);
    for (long i = 0; i < p; i++)
        fprintf(f,
                "{\"image\": \"img/%06ld.png\", \"text\": \"caption %ld of image %ld\", \"key\": "
                "\"pair-%ld\"}\n",
                i % m, i, i % m, i);
    if (fclose(f)) die("write", path);
}

static void run(const char *name, const char *dir, const char *input, Reveal__SourceType type,
                mem_format fmt, long n, int repeat) {
    raw_set raw = {0};
    raw_prepare(&raw, input, type, fmt, MEM_IMAGE_SIZE_DEFAULT);
    printf("%s: %ld items, %.1f MB written per run (packed items and logical keys)\n", name, n,
           raw.bytes / 1e6);
    for (int r = 0; r < repeat; r++) {
        char store[4096], rawdir[4096], err[RV_ERR_MAX];
        snprintf(store, sizeof store, "%s/%s_store", dir, name);
        snprintf(rawdir, sizeof rawdir, "%s/%s_raw", dir, name);
        rv_remove_tree(store, err);
        rv_remove_tree(rawdir, err);
        double la = load_average();
        double c0 = cpu_seconds();
        double ti = ingest(input, store, type, (uint64_t)n);
        double c1 = cpu_seconds();
        double tr = raw_write(&raw, rawdir);
        double ci = c1 - c0, cr = cpu_seconds() - c1;
        printf("  run %d (load %.2f): wall: ingest %.0f items/s (%.2f s), raw WriteBatch %.0f "
               "items/s (%.2f s), ratio %.2f; CPU: ingest %.0f items/s, raw %.0f items/s, "
               "ratio %.2f\n",
               r + 1, la, n / ti, ti, n / tr, tr, tr / ti, n / ci, n / cr, cr / ci);
        fflush(stdout);
        rv_remove_tree(store, err);
        rv_remove_tree(rawdir, err);
    }
    raw_free(&raw);
}

int main(int argc, char **argv) {
    long triples = 1000000, pairs = 100000, images = 10000;
    int repeat = 3;
    const char *base = "/tmp";
    static const struct option opts[] = {
        {"triples", required_argument, 0, 't'}, {"pairs", required_argument, 0, 'p'},
        {"images", required_argument, 0, 'm'},  {"repeat", required_argument, 0, 'r'},
        {"dir", required_argument, 0, 'd'},     {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 't')
            triples = atol(optarg);
        else if (c == 'p')
            pairs = atol(optarg);
        else if (c == 'm')
            images = atol(optarg);
        else if (c == 'r')
            repeat = atoi(optarg);
        else if (c == 'd')
            base = optarg;
        else {
            fprintf(stderr, "usage: bench_ingest [--triples N] [--pairs P] [--images M] "
                            "[--repeat R] [--dir DIR]\n");
            return 2;
        }
    }
    if (triples < 0 || pairs < 0 || images < 1 || repeat < 1) die("options", "out of range");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/bench_ingest_XXXXXX", base);
    if (!mkdtemp(dir)) die("mkdtemp", dir);
    printf("bench_ingest: batches of %u items, last one synced; working in %s\n", BATCH, dir);
    char input[4200];
    if (triples > 0) {
        snprintf(input, sizeof input, "%s/kg.tsv", dir);
        write_triples(input, triples);
        run("kg_triples", dir, input, REVEAL__SOURCE_TYPE__KG_TRIPLE, MEM_FORMAT_TSV, triples,
            repeat);
    }
    if (pairs > 0) {
        snprintf(input, sizeof input, "%s/pairs.jsonl", dir);
        write_pairs(dir, input, pairs, images);
        run("image_text_32x32", dir, input, REVEAL__SOURCE_TYPE__IMAGE_TEXT, MEM_FORMAT_JSONL,
            pairs, repeat);
    }
    char err[RV_ERR_MAX];
    rv_remove_tree(dir, err);
    return 0;
}
