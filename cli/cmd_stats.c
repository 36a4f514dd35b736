/* cli/cmd_stats.c — `reveal stats --store DIR`: what a store holds. The configuration and
 * counters come from the store's meta; the encoder versions of keys and values are collected
 * by walking every live item, since a refresh may leave several versions side by side. */
#include "memstore.h"
#include "reveal.h"
#include "rv.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Distinct encoder versions with their item counts, kept sorted by version. */
#define VERSIONS_SHOWN 16

typedef struct {
    uint32_t version[VERSIONS_SHOWN];
    uint64_t count[VERSIONS_SHOWN];
    int n;
    uint64_t others; /* items whose version did not fit in the table */
} version_tally;

static void tally_add(version_tally *t, uint32_t v) {
    int i = 0;
    while (i < t->n && t->version[i] < v) i++;
    if (i < t->n && t->version[i] == v) {
        t->count[i]++;
        return;
    }
    if (t->n == VERSIONS_SHOWN) {
        t->others++;
        return;
    }
    memmove(t->version + i + 1, t->version + i, sizeof t->version[0] * (size_t)(t->n - i));
    memmove(t->count + i + 1, t->count + i, sizeof t->count[0] * (size_t)(t->n - i));
    t->version[i] = v;
    t->count[i] = 1;
    t->n++;
}

static void tally_print(const char *label, const version_tally *t, uint64_t with, uint64_t items,
                        uint32_t rows, uint32_t cols) {
    printf("%-12s %" PRIu64 " of %" PRIu64 " items", label, with, items);
    if (with) printf(", %ux%u", rows, cols);
    if (t->n) {
        printf(", encoder versions");
        for (int i = 0; i < t->n; i++) printf(" %u (%" PRIu64 ")", t->version[i], t->count[i]);
        if (t->others) printf(" and %" PRIu64 " items of other versions", t->others);
    }
    printf("\n");
}

static void usage(FILE *out) {
    fprintf(out, "usage: reveal stats --store DIR\n\n"
                 "Prints a store's type, name, image size, item counts, key and value counts\n"
                 "with the encoder versions that produced them, the RocksDB sequence number\n"
                 "(it moves on every write) and the bytes on disk.\n");
}

int cmd_stats(int argc, char **argv) {
    static const struct option opts[] = {
        {"store", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *dir = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 's') {
            dir = optarg;
        } else if (c == 'h') {
            usage(stdout);
            return RV_EXIT_OK;
        } else {
            fprintf(stderr, "reveal stats: %s '%s'\n",
                    c == ':' ? "missing argument for" : "unknown option", argv[optind - 1]);
            usage(stderr);
            return RV_EXIT_USAGE;
        }
    }
    if (!dir || optind < argc) {
        fprintf(stderr, "reveal stats: %s\n",
                dir ? "unexpected argument" : "--store DIR is required");
        usage(stderr);
        return RV_EXIT_USAGE;
    }

    char err[RV_ERR_MAX] = "";
    mem_store *s = NULL;
    mem_iter *it = NULL;
    int rc = RV_EXIT_FAIL;
    if (mem_open(dir, 1, &s, err) != 0) goto cleanup;
    mem_stats st;
    if (mem_get_stats(s, &st, err) != 0) goto cleanup;
    version_tally keys = {0}, values = {0};
    uint64_t walked = 0;
    mem_vector_info ki = {0}, vi = {0}, k_shape = {0}, v_shape = {0};
    if (mem_iter_new(s, 0, &it, err) != 0) goto cleanup;
    for (;;) {
        uint64_t id;
        Reveal__KnowledgeItem *item;
        int got = mem_iter_next(it, &id, &item, err);
        if (got < 0) goto cleanup;
        if (got == 0) break;
        reveal__knowledge_item__free_unpacked(item, NULL);
        walked++;
        if (mem_get_vector_info(s, id, &ki, &vi, err) != 0) goto cleanup;
        if (ki.present) tally_add(&keys, ki.version), k_shape = ki;
        if (vi.present) tally_add(&values, vi.version), v_shape = vi;
    }
    const mem_config *cfg = mem_get_config(s);
    printf("%-12s %s\n", "store", mem_path(s));
    printf("%-12s %s\n", "type", mem_type_name(cfg->type));
    printf("%-12s %s\n", "name", cfg->name);
    printf("%-12s %ux%u RGB\n", "image size", cfg->image_size, cfg->image_size);
    printf("%-12s %" PRIu64 "\n", "items", st.items);
    printf("%-12s %" PRIu64 "\n", "deleted", st.deleted);
    tally_print("keys", &keys, st.with_key, st.items, k_shape.rows, k_shape.cols);
    tally_print("values", &values, st.with_value, st.items, v_shape.rows, v_shape.cols);
    printf("%-12s %" PRIu64 "\n", "sequence", st.sequence);
    printf("%-12s %" PRIu64 " bytes (%.1f MiB)\n", "disk", st.bytes_on_disk,
           (double)st.bytes_on_disk / (1 << 20));
    rc = RV_EXIT_OK;
    if (walked != st.items) {
        fprintf(stderr,
                "reveal stats: %s: the counters say %" PRIu64 " items but %" PRIu64 " were found\n",
                dir, st.items, walked);
        rc = RV_EXIT_FAIL;
    }
cleanup:
    if (rc != RV_EXIT_OK && err[0]) fprintf(stderr, "reveal stats: %s\n", err);
    if (it) mem_iter_free(it);
    if (s) mem_close(s);
    return rc;
}
