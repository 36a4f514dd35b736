/* cli/cmd_world.c — `reveal world`: write a generated knowledge world (docs/world.md), or an
 * edited version of the same world for the knowledge-edit demo. */
#include "reveal.h"
#include "rv.h"
#include "world.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void world_usage(FILE *out) {
    world_config d;
    world_config_default(&d);
    fprintf(out,
            "usage: reveal world --out DIR [options]\n"
            "Writes a generated knowledge world: four knowledge sources as JSONL with PNG\n"
            "pictures, train/test questions and world.json (docs/world.md).\n\n"
            "  --out DIR            where to write (must not exist unless --force)\n"
            "  --seed N             world seed (default %llu)\n"
            "  --entities N         entities (default %d, at most %d)\n"
            "  --relations N        relations per entity (default %d, at most %d)\n"
            "  --objects N          object words facts draw from (default %d)\n"
            "  --image-size N       picture side in pixels (default %d)\n"
            "  --unasked N          relations per entity never asked in training (default %d)\n"
            "  --passage-facts N    facts per text passage (default %d)\n"
            "  --min-distance F     least RMS distance between pictures (default %g)\n"
            "  --edit-fraction F    write the world after re-drawing this fraction of facts\n"
            "  --edit-seed N        seed choosing and re-drawing them (with --edit-fraction)\n"
            "  --force              replace DIR if it holds a world (or nothing)\n",
            (unsigned long long)d.seed, d.entities, WORLD_MAX_ENTITIES, d.relations,
            WORLD_MAX_RELATIONS, d.objects, d.image_size, d.unasked, d.passage_facts,
            d.min_image_distance);
}

static int parse_u64(const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *s == '-' || *end || errno) {
        fprintf(stderr, "reveal world: %s: '%s' is not a non-negative integer\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_int(const char *opt, const char *s, int *out) {
    uint64_t v;
    if (parse_u64(opt, s, &v)) return -1;
    if (v > INT_MAX) {
        fprintf(stderr, "reveal world: %s: %s is too large\n", opt, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_double(const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) {
        fprintf(stderr, "reveal world: %s: '%s' is not a number\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cmd_world(int argc, char **argv) {
    enum {
        O_OUT = 1,
        O_SEED,
        O_ENT,
        O_REL,
        O_OBJ,
        O_IMG,
        O_UNASKED,
        O_PASSAGE,
        O_DIST,
        O_EFRAC,
        O_ESEED,
        O_FORCE,
        O_HELP
    };
    static const struct option options[] = {
        {"out", required_argument, NULL, O_OUT},
        {"seed", required_argument, NULL, O_SEED},
        {"entities", required_argument, NULL, O_ENT},
        {"relations", required_argument, NULL, O_REL},
        {"objects", required_argument, NULL, O_OBJ},
        {"image-size", required_argument, NULL, O_IMG},
        {"unasked", required_argument, NULL, O_UNASKED},
        {"passage-facts", required_argument, NULL, O_PASSAGE},
        {"min-distance", required_argument, NULL, O_DIST},
        {"edit-fraction", required_argument, NULL, O_EFRAC},
        {"edit-seed", required_argument, NULL, O_ESEED},
        {"force", no_argument, NULL, O_FORCE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    world_config cfg;
    world_config_default(&cfg);
    const char *out = NULL;
    double edit_fraction = -1.0;
    uint64_t edit_seed = 0;
    int have_edit_seed = 0, force = 0, opt, index = 0, bad = 0;
    optind = 1;
    while (!bad && (opt = getopt_long(argc, argv, "", options, &index)) != -1) {
        char name[32];
        snprintf(name, sizeof name, "--%s", options[index].name);
        switch (opt) {
        case O_OUT:
            out = optarg;
            break;
        case O_SEED:
            bad = parse_u64(name, optarg, &cfg.seed);
            break;
        case O_ENT:
            bad = parse_int(name, optarg, &cfg.entities);
            break;
        case O_REL:
            bad = parse_int(name, optarg, &cfg.relations);
            break;
        case O_OBJ:
            bad = parse_int(name, optarg, &cfg.objects);
            break;
        case O_IMG:
            bad = parse_int(name, optarg, &cfg.image_size);
            break;
        case O_UNASKED:
            bad = parse_int(name, optarg, &cfg.unasked);
            break;
        case O_PASSAGE:
            bad = parse_int(name, optarg, &cfg.passage_facts);
            break;
        case O_DIST:
            bad = parse_double(name, optarg, &cfg.min_image_distance);
            break;
        case O_EFRAC:
            bad = parse_double(name, optarg, &edit_fraction);
            break;
        case O_ESEED:
            bad = parse_u64(name, optarg, &edit_seed);
            have_edit_seed = 1;
            break;
        case O_FORCE:
            force = 1;
            break;
        case O_HELP:
            world_usage(stdout);
            return RV_EXIT_OK;
        default:
            bad = 1;
            break; /* getopt_long has named the problem */
        }
    }
    if (!bad && optind < argc) {
        fprintf(stderr, "reveal world: unexpected argument '%s'\n", argv[optind]);
        bad = 1;
    }
    if (!bad && !out) {
        fprintf(stderr, "reveal world: --out DIR is required\n");
        bad = 1;
    }
    if (!bad && (edit_fraction >= 0.0) != have_edit_seed) {
        fprintf(stderr, "reveal world: --edit-fraction and --edit-seed go together\n");
        bad = 1;
    }
    char err[RV_ERR_MAX];
    if (!bad && world_config_check(&cfg, err)) {
        fprintf(stderr, "reveal world: %s\n", err);
        bad = 1;
    }
    if (!bad && have_edit_seed && !(edit_fraction >= 0.0 && edit_fraction <= 1.0)) {
        fprintf(stderr, "reveal world: --edit-fraction: %g is outside [0, 1]\n", edit_fraction);
        bad = 1;
    }
    if (bad) {
        fprintf(stderr, "`reveal world --help` lists the options\n");
        return RV_EXIT_USAGE;
    }

    world *w = NULL;
    world_edit edit = {0};
    int rc = RV_EXIT_FAIL;
    if (world_create(&cfg, &w, err)) goto cleanup;
    if (have_edit_seed && world_edit_fraction(w, edit_fraction, edit_seed, &edit, err))
        goto cleanup;
    if (world_write(w, have_edit_seed ? &edit : NULL, out, force, err)) goto cleanup;
    printf("world: %d entities, %d relations, %d objects, %dx%d pictures; %zu items; "
           "%zu train / %zu test questions",
           cfg.entities, cfg.relations, cfg.objects, cfg.image_size, cfg.image_size, w->n_items,
           w->n_train, w->n_test);
    if (have_edit_seed) printf("; %zu facts edited, %zu items changed", edit.n_facts, edit.n_items);
    printf(" -> %s\n", out);
    rc = RV_EXIT_OK;
cleanup:
    if (rc != RV_EXIT_OK) fprintf(stderr, "reveal world: %s\n", err);
    world_edit_free(&edit);
    world_free(w);
    return rc;
}
