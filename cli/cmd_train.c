/* cli/cmd_train.c — `reveal train`: REVEAL trained end to end over the stores of a layout, in
 * one process or as an MPI job (`mpirun -np 1+W reveal train ...`). The work is in trainer/;
 * this is option parsing, MPI set-up and the exit code. A rank that fails after set-up aborts
 * the job (MPI_Abort) so no rank is left waiting. */
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reveal.h"
#include "trainer.h"

enum { MAX_SETS = 256 };

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: [mpirun -np 1+W] reveal train --config FILE --run-dir DIR [--set key=value ...]\n"
        "                        [--resume auto|never|PATH] [--keep-last N]\n"
        "       reveal train --help-config [--config FILE] [--set key=value ...]\n\n"
        "Trains the model over the stores of the config's layout (data.layout) on the\n"
        "questions of data.train. Rank 0 coordinates; ranks 1..W each own stores of the\n"
        "layout (store i on rank 1 + i mod W); with one process rank 0 owns them all.\n"
        "DIR receives config.json (the resolved config), metrics.jsonl (one line per update),\n"
        "stores/ (working copies: the stores named in the layout are never written) and\n"
        "checkpoints/step-N/ (model.ckpt, stores/, manifest.json, DONE).\n"
        "--resume auto continues from the newest complete checkpoint of DIR (the default),\n"
        "never starts over, PATH continues from that checkpoint. SIGTERM or SIGUSR1: a\n"
        "checkpoint at the next update, then exit 75. Exit codes: 0 done, 1 failure, 2 usage,\n"
        "75 stopped by a signal. docs/train.md lists every config key.\n");
}

int cmd_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"run-dir", required_argument, NULL, 'r'},
        {"resume", required_argument, NULL, 'R'},
        {"keep-last", required_argument, NULL, 'k'},
        {"help-config", no_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *sets[MAX_SETS];
    tr_train_args a = {.resume = "auto", .keep_last = -1, .sets = sets};
    int help_config = 0, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a.config_path = optarg;
            break;
        case 's':
            if (a.n_sets == MAX_SETS) {
                fprintf(stderr, "reveal train: more than %d --set options\n", MAX_SETS);
                return 2;
            }
            sets[a.n_sets++] = optarg;
            break;
        case 'r':
            a.run_dir = optarg;
            break;
        case 'R':
            a.resume = optarg;
            break;
        case 'k': {
            char *end;
            a.keep_last = strtol(optarg, &end, 10);
            if (*end || a.keep_last < 0) {
                fprintf(stderr, "reveal train: --keep-last %s: expected a count >= 0\n", optarg);
                return 2;
            }
            break;
        }
        case 'H':
            help_config = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "reveal train: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (help_config) {
        tr_config cfg;
        char err[512];
        tr_config_default(&cfg);
        if (a.config_path || a.n_sets) {
            /* show what the file and overrides resolve to; missing data paths are fine here */
            if (tr_config_load(&cfg, a.config_path, sets, a.n_sets, err) &&
                !strstr(err, "is required")) {
                fprintf(stderr, "reveal train: %s\n", err);
                return 1;
            }
        }
        tr_config_help(&cfg, stdout);
        return 0;
    }
    if (!a.run_dir) {
        fprintf(stderr, "reveal train: --run-dir is required\n");
        usage(stderr);
        return 2;
    }
    if (!a.config_path && !a.n_sets) {
        fprintf(stderr, "reveal train: --config (or --set data.layout=... --set data.train=...) "
                        "is required\n");
        return 2;
    }
    MPI_Init(&argc, &argv);
    int code = tr_train_main(&a);
    if (code == TR_EXIT_ABORT) MPI_Abort(MPI_COMM_WORLD, TR_EXIT_FAIL);
    MPI_Finalize();
    return code;
}
