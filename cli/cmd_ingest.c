/* cli/cmd_ingest.c — `reveal ingest`: a knowledge source from a JSONL/TSV file (and its
 * images) into a store. Bad lines are printed as `file:line: reason` on stderr; a summary line
 * goes to stdout; progress is a live line on a terminal and a plain line every few seconds
 * otherwise. The work itself is mem_ingest (memstore/ingest.c). */
#include "memstore.h"
#include "reveal.h"
#include "rv.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRESS_PLAIN_SECONDS 5.0

static void usage(FILE *out) {
    fprintf(out,
            "usage: reveal ingest --type TYPE --input FILE --store DIR [options]\n"
            "\n"
            "Reads knowledge items from FILE into the store in DIR, creating the store on first\n"
            "use. Formats and keys: docs/formats.md.\n"
            "\n"
            "  --type TYPE       image-text, qa, kg or text (a store holds one type)\n"
            "  --input FILE      JSONL, or TSV for kg (subject<TAB>relation<TAB>object);\n"
            "                    image paths are relative to FILE's folder\n"
            "  --store DIR       the store\n"
            "  --name NAME       name of a new store (default: the type)\n"
            "  --image-size N    side of a new store's square images (default %u, at most %u)\n"
            "  --format F        jsonl or tsv (default: tsv for a .tsv file, else jsonl)\n"
            "  --dry-run         check every line and image, write nothing\n"
            "  --max-errors N    stop once more than N lines are bad (default %u)\n"
            "  --batch N         items per write batch (default %u)\n"
            "  --quiet           no progress lines\n"
            "  -h, --help        this text\n"
            "\n"
            "Exit status: 0 when the whole file was read (bad lines within --max-errors),\n"
            "1 when ingest stopped early, 2 on a usage error.\n",
            MEM_IMAGE_SIZE_DEFAULT, MEM_IMAGE_SIZE_MAX, MEM_MAX_ERRORS_DEFAULT, MEM_BATCH_DEFAULT);
}

/* Parses a whole decimal number in [lo, hi]; prints a usage error and returns -1 otherwise. */
static int parse_count(const char *opt, const char *s, unsigned long long lo, unsigned long long hi,
                       unsigned long long *out) {
    char *end;
    if (s[0] < '0' || s[0] > '9') goto bad;
    *out = strtoull(s, &end, 10);
    if (*end || *out < lo || *out > hi) goto bad;
    return 0;
bad:
    fprintf(stderr, "reveal ingest: %s needs a whole number from %llu to %llu, not '%s'\n", opt, lo,
            hi, s);
    return -1;
}

typedef struct {
    int tty;
    int quiet;
    double last_plain;
    int live_shown;
} progress_state;

static void on_bad_line(void *ctx, const char *message) {
    progress_state *p = ctx;
    if (p->live_shown) { /* keep the live line from being glued to the message */
        fputs("\r\033[K", stderr);
        p->live_shown = 0;
    }
    fprintf(stderr, "%s\n", message);
}

static void on_progress(void *ctx, const mem_ingest_counts *c) {
    progress_state *p = ctx;
    if (p->quiet) return;
    if (!p->tty && c->seconds - p->last_plain < PROGRESS_PLAIN_SECONDS) return;
    p->last_plain = c->seconds;
    char share[32] = "";
    if (c->bytes_total)
        snprintf(share, sizeof share, " (%.0f%%)",
                 100.0 * (double)c->bytes_read / (double)c->bytes_total);
    fprintf(stderr, "%singest: %llu lines%s, %llu added, %llu rejected, %.0f items/s%s",
            p->tty ? "\r\033[K" : "", (unsigned long long)c->read, share,
            (unsigned long long)c->added, (unsigned long long)c->rejected,
            c->seconds > 0 ? (double)c->read / c->seconds : 0.0, p->tty ? "" : "\n");
    p->live_shown = p->tty;
}

static void print_summary(const mem_ingest_options *o, const mem_ingest_counts *n) {
    double rate = n->seconds > 0 ? (double)n->read / n->seconds : 0.0;
    if (o->dry_run)
        printf("dry run: read %llu, valid %llu, rejected %llu, %.0f items/s; nothing written\n",
               (unsigned long long)n->read, (unsigned long long)n->valid,
               (unsigned long long)n->rejected, rate);
    else
        printf("read %llu, added %llu, unchanged %llu, replaced %llu, rejected %llu, %.0f "
               "items/s; the store holds %llu items\n",
               (unsigned long long)n->read, (unsigned long long)n->added,
               (unsigned long long)n->unchanged, (unsigned long long)n->replaced,
               (unsigned long long)n->rejected, rate, (unsigned long long)n->store_items);
}

int cmd_ingest(int argc, char **argv) {
    static const struct option opts[] = {{"type", required_argument, 0, 't'},
                                         {"input", required_argument, 0, 'i'},
                                         {"store", required_argument, 0, 's'},
                                         {"name", required_argument, 0, 'n'},
                                         {"image-size", required_argument, 0, 'S'},
                                         {"format", required_argument, 0, 'f'},
                                         {"dry-run", no_argument, 0, 'd'},
                                         {"max-errors", required_argument, 0, 'e'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    mem_ingest_options o;
    mem_ingest_options_init(&o);
    progress_state ps = {.tty = isatty(STDERR_FILENO)};
    const char *type = NULL;
    unsigned long long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            type = optarg;
            break;
        case 'i':
            o.input = optarg;
            break;
        case 's':
            o.store_dir = optarg;
            break;
        case 'n':
            o.name = optarg;
            break;
        case 'S':
            if (parse_count("--image-size", optarg, 1, MEM_IMAGE_SIZE_MAX, &v))
                return RV_EXIT_USAGE;
            o.image_size = (uint32_t)v;
            break;
        case 'f':
            if (!strcmp(optarg, "jsonl"))
                o.format = MEM_FORMAT_JSONL;
            else if (!strcmp(optarg, "tsv"))
                o.format = MEM_FORMAT_TSV;
            else {
                fprintf(stderr, "reveal ingest: unknown --format '%s' (jsonl or tsv)\n", optarg);
                return RV_EXIT_USAGE;
            }
            break;
        case 'd':
            o.dry_run = 1;
            break;
        case 'e':
            if (parse_count("--max-errors", optarg, 0, UINT64_MAX, &v)) return RV_EXIT_USAGE;
            o.max_errors = v;
            break;
        case 'b':
            if (parse_count("--batch", optarg, 1, 1000000, &v)) return RV_EXIT_USAGE;
            o.batch = (size_t)v;
            break;
        case 'q':
            ps.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return RV_EXIT_OK;
        case ':':
            fprintf(stderr, "reveal ingest: %s needs an argument\n", argv[optind - 1]);
            usage(stderr);
            return RV_EXIT_USAGE;
        default:
            fprintf(stderr, "reveal ingest: unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return RV_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "reveal ingest: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return RV_EXIT_USAGE;
    }
    if (!type || !o.input || !o.store_dir) {
        fprintf(stderr, "reveal ingest: --type, --input and --store are required\n");
        usage(stderr);
        return RV_EXIT_USAGE;
    }
    if (mem_type_from_name(type, &o.type) != 0) {
        fprintf(stderr, "reveal ingest: unknown --type '%s' (image-text, qa, kg or text)\n", type);
        return RV_EXIT_USAGE;
    }
    o.report = on_bad_line;
    o.progress = on_progress;
    o.ctx = &ps;

    mem_ingest_counts n;
    char err[RV_ERR_MAX];
    int rc = mem_ingest(&o, &n, err);
    if (ps.live_shown) fputs("\r\033[K", stderr);
    /* A run that failed before reading a line has no summary; its error line says it all. */
    if (rc == 0 || n.read > 0) print_summary(&o, &n);
    fflush(stdout);
    if (rc != 0) {
        fprintf(stderr, "reveal ingest: %s\n", err);
        return RV_EXIT_FAIL;
    }
    return RV_EXIT_OK;
}
