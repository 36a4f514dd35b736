/* cli/cmd_delete.c — `reveal delete --store DIR --key K [--key K ...] [--keys FILE]`: removes
 * items by logical key (a tombstone: the item, its key vector and value go in one write batch;
 * `reveal stats` counts them as deleted). All keys are looked up first: one missing key refuses
 * the whole deletion and nothing is written. The memory needs no refresh afterwards: training,
 * refresh, eval and answer load only live items. */
#include "memstore.h"
#include "reveal.h"
#include "rv.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out, "usage: reveal delete --store DIR (--key K ... | --keys FILE)\n\n"
                 "Deletes the items under the given logical keys (docs/formats.md), atomically:\n"
                 "a key that is not in the store refuses the whole deletion.\n"
                 "  --key K      a logical key (repeatable)\n"
                 "  --keys FILE  one logical key per line\n");
}

/* Appends the lines of a file to the key list. */
static int read_keys(const char *path, char ***keys, size_t *n, char **text, char *err) {
    size_t len;
    if (rv_read_file(path, 1u << 30, (void **)text, &len, err)) return -1;
    for (char *p = *text, *end; p < *text + len; p = end + 1) {
        end = memchr(p, '\n', (size_t)(*text + len - p));
        if (!end) end = *text + len;
        *end = 0;
        if (end > p && end[-1] == '\r') end[-1] = 0;
        if (!*p) continue;
        char **g = realloc(*keys, (*n + 1) * sizeof *g);
        if (!g) return rv_fail(err, "out of memory");
        *keys = g;
        (*keys)[(*n)++] = p;
    }
    return 0;
}

int cmd_delete(int argc, char **argv) {
    static const struct option opts[] = {
        {"store", required_argument, NULL, 's'},
        {"key", required_argument, NULL, 'k'},
        {"keys", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *store = NULL, *file = NULL;
    char **keys = NULL, *text = NULL, err[RV_ERR_MAX] = "";
    size_t n = 0;
    int c, code = 1;
    mem_store *s = NULL;
    mem_batch *b = NULL;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            store = optarg;
            break;
        case 'k': {
            char **g = realloc(keys, (n + 1) * sizeof *g);
            if (!g) {
                fprintf(stderr, "reveal delete: out of memory\n");
                free(keys);
                return 1;
            }
            keys = g;
            keys[n++] = optarg;
            break;
        }
        case 'f':
            file = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            free(keys);
            return 2;
        }
    }
    if (!store || optind < argc || (!n && !file)) {
        fprintf(stderr, "reveal delete: --store and at least one --key or --keys are required\n");
        usage(stderr);
        free(keys);
        return 2;
    }
    if ((file && read_keys(file, &keys, &n, &text, err)) || mem_open(store, 0, &s, err)) goto done;
    if (!(b = mem_batch_new(s))) {
        rv_fail(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t id;
        int got = mem_lookup_key(s, keys[i], &id, err);
        if (got < 0) goto done;
        if (!got) {
            rv_fail(err, "%s holds no item under the key \"%s\": nothing deleted", store, keys[i]);
            goto done;
        }
        if (mem_batch_delete(b, id, err)) {
            rv_fail_wrap(err, "key \"%s\" (listed twice?)", keys[i]);
            goto done;
        }
    }
    if (mem_batch_commit(b, 1, err)) goto done;
    printf("deleted %zu items from %s\n", n, store);
    code = 0;
done:
    if (code) fprintf(stderr, "reveal delete: %s\n", err);
    mem_batch_free(b);
    mem_close(s);
    free(keys);
    free(text);
    return code;
}
