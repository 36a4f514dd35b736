/* cli/cmd_inspect.c — `reveal inspect --store DIR --id N | --key K`: one item as stored — its
 * fields, image, provenance, and whether it has a key vector and a value matrix, with the
 * encoder versions that produced them. Text is printed with control characters escaped so
 * that every field stays on one line. */
#include "memstore.h"
#include "reveal.h"
#include "rv.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out, "usage: reveal inspect --store DIR (--id N | --key K)\n\n"
                 "Prints one item: its fields, image, provenance, key and value status.\n"
                 "  --id N    the item's id, decimal or 0x hex (as `reveal inspect` prints it)\n"
                 "  --key K   the item's logical key (docs/formats.md: a kg triple's key is\n"
                 "            subject<TAB>relation, e.g. --key $'Nepal\\tcapital')\n");
}

/* Prints s with backslash escapes for '\\' and control characters. */
static void print_escaped(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", stdout);
        else if (*p == '\t')
            fputs("\\t", stdout);
        else if (*p == '\n')
            fputs("\\n", stdout);
        else if (*p == '\r')
            fputs("\\r", stdout);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
}

static void print_field(const char *name, const char *value) {
    if (!value || !value[0]) return;
    printf("%-12s ", name);
    print_escaped(value);
    putchar('\n');
}

static void print_vector(const char *name, const mem_vector_info *v) {
    if (v->present)
        printf("%-12s %ux%u floats, encoder version %u\n", name, v->rows, v->cols, v->version);
    else
        printf("%-12s none\n", name);
}

static int parse_id(const char *s, uint64_t *id) {
    char *end;
    int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    const char *digits = hex ? s + 2 : s;
    if (!((digits[0] >= '0' && digits[0] <= '9') ||
          (hex && ((digits[0] | 32) >= 'a' && (digits[0] | 32) <= 'f'))))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(digits, &end, hex ? 16 : 10);
    if (*end || errno) return -1;
    *id = v;
    return 0;
}

int cmd_inspect(int argc, char **argv) {
    static const struct option opts[] = {{"store", required_argument, 0, 's'},
                                         {"id", required_argument, 0, 'i'},
                                         {"key", required_argument, 0, 'k'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *dir = NULL, *id_text = NULL, *key = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 's')
            dir = optarg;
        else if (c == 'i')
            id_text = optarg;
        else if (c == 'k')
            key = optarg;
        else if (c == 'h') {
            usage(stdout);
            return RV_EXIT_OK;
        } else {
            fprintf(stderr, "reveal inspect: %s '%s'\n",
                    c == ':' ? "missing argument for" : "unknown option", argv[optind - 1]);
            usage(stderr);
            return RV_EXIT_USAGE;
        }
    }
    if (!dir || !id_text == !key || optind < argc) {
        fprintf(stderr, "reveal inspect: --store and one of --id or --key are required\n");
        usage(stderr);
        return RV_EXIT_USAGE;
    }
    uint64_t id = 0;
    if (id_text && parse_id(id_text, &id) != 0) {
        fprintf(stderr, "reveal inspect: --id '%s' is not a decimal or 0x hex number\n", id_text);
        return RV_EXIT_USAGE;
    }

    char err[RV_ERR_MAX] = "";
    mem_store *s = NULL;
    Reveal__KnowledgeItem *item = NULL;
    int rc = RV_EXIT_FAIL, got;
    if (mem_open(dir, 1, &s, err) != 0) goto cleanup;
    if (key) {
        if ((got = mem_lookup_key(s, key, &id, err)) < 0) goto cleanup;
        if (got == 0) {
            snprintf(err, sizeof err, "%s: no item has the key '%s'", dir, key);
            goto cleanup;
        }
    }
    if ((got = mem_get_item(s, id, &item, err)) < 0) goto cleanup;
    if (got == 0) {
        snprintf(err, sizeof err, "%s: no live item has the id 0x%016" PRIx64, dir, id);
        goto cleanup;
    }
    mem_vector_info kv, vv;
    if (mem_get_vector_info(s, id, &kv, &vv, err) != 0) goto cleanup;

    printf("%-12s 0x%016" PRIx64 " (%" PRIu64 ")\n", "id", id, id);
    printf("%-12s %s\n", "type", mem_type_name(item->type));
    print_field("key", item->key);
    print_field("title", item->title);
    print_field("text", item->text);
    print_field("question", item->question);
    print_field("answer", item->answer);
    print_field("subject", item->subject);
    print_field("relation", item->relation);
    print_field("object", item->object);
    if (item->image) {
        const Reveal__Image *im = item->image;
        double mean[3] = {0, 0, 0};
        size_t np = im->channels == 3 ? im->pixels.len / 3 : 0;
        for (size_t i = 0; i < np * 3; i++) mean[i % 3] += im->pixels.data[i];
        printf("%-12s %ux%ux%u, mean RGB %.1f %.1f %.1f, xxh3 0x%016" PRIx64 "\n", "image",
               im->width, im->height, im->channels, np ? mean[0] / np : 0, np ? mean[1] / np : 0,
               np ? mean[2] / np : 0, rv_hash64(im->pixels.data, im->pixels.len, 0));
    } else {
        printf("%-12s none\n", "image");
    }
    if (item->provenance && item->provenance->file && item->provenance->file[0]) {
        printf("%-12s ", "provenance");
        print_escaped(item->provenance->file);
        printf(":%" PRIu64 "\n", item->provenance->line);
    }
    print_vector("key vector", &kv);
    print_vector("value", &vv);
    rc = RV_EXIT_OK;
cleanup:
    if (rc != RV_EXIT_OK) fprintf(stderr, "reveal inspect: %s\n", err);
    if (item) reveal__knowledge_item__free_unpacked(item, NULL);
    if (s) mem_close(s);
    return rc;
}
