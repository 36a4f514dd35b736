/* cli/cmd_serve.c — `reveal refresh`, `reveal eval` and `reveal answer`: a trained checkpoint used
 * over the users' stores (trainer/serve.c), in one process or under mpirun like `reveal train`.
 * One option parser serves the three; each command accepts only its own options. */
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reveal.h"
#include "trainer.h"

enum { CMD_REFRESH, CMD_EVAL, CMD_ANSWER };

static const char *const usages[] = {
    "usage: [mpirun -np 1+W] reveal refresh --checkpoint CKPT [--layout FILE] [--stale-only]\n\n"
    "Re-encodes the memory of the layout's stores with the checkpoint's encoder and writes the\n"
    "keys and values into the stores (encoder version: a hash of the parameters). --stale-only\n"
    "encodes only items without vectors of that version: new, edited (re-ingested) or stale\n"
    "ones; a refresh killed midway is finished by running it again.\n",
    "usage: [mpirun -np 1+W] reveal eval --checkpoint CKPT --data FILE [--layout FILE]\n"
    "                        [--topk K] [--sources a,b] [--no-memory] [--json FILE]\n\n"
    "Answers every question of a task file (docs/train.md) greedily, with memory (top-K of\n"
    "every source, or of --sources only) and with memory removed; prints accuracy per question\n"
    "type (exact match after VQA answer normalisation against the accepted answers) and recall@K\n"
    "of the gold item; --json also writes the results and every prediction.\n",
    "usage: reveal answer --checkpoint CKPT --image FILE --question TEXT [--layout FILE]\n"
    "                     [--topk K] [--show N]\n\n"
    "Answers one question about an image and prints the retrieved knowledge it was answered\n"
    "from: source, retrieval probability p(m|x) and text of the best N items (default 8).\n",
};

static int serve_command(int which, int argc, char **argv) {
    static const struct option opts[] = {
        {"checkpoint", required_argument, NULL, 'c'},
        {"layout", required_argument, NULL, 'l'},
        {"stale-only", no_argument, NULL, 's'},
        {"data", required_argument, NULL, 'd'},
        {"topk", required_argument, NULL, 'k'},
        {"sources", required_argument, NULL, 'S'},
        {"no-memory", no_argument, NULL, 'n'},
        {"json", required_argument, NULL, 'j'},
        {"image", required_argument, NULL, 'i'},
        {"question", required_argument, NULL, 'q'},
        {"show", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* which options each command takes */
    static const char *const own[] = {"cls", "cldkSnj", "clikqw"};
    tr_serve_args a = {.show = 8};
    const char *name = argv[0];
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usages[which], stdout);
            return 0;
        }
        if (c == '?' || !strchr(own[which], c)) {
            if (c != '?')
                fprintf(stderr, "reveal %s: option --%s is not one of its options\n", name,
                        opts[0].name ? argv[optind - 1] + 2 : "?");
            fputs(usages[which], stderr);
            return 2;
        }
        char *end;
        switch (c) {
        case 'c':
            a.checkpoint = optarg;
            break;
        case 'l':
            a.layout = optarg;
            break;
        case 's':
            a.stale_only = 1;
            break;
        case 'd':
            a.data = optarg;
            break;
        case 'S':
            a.sources = optarg;
            break;
        case 'n':
            a.no_memory = 1;
            break;
        case 'j':
            a.json = optarg;
            break;
        case 'i':
            a.image = optarg;
            break;
        case 'q':
            a.question = optarg;
            break;
        case 'k':
        case 'w': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 4096) {
                fprintf(stderr, "reveal %s: --%s %s: expected 1 to 4096\n", name,
                        c == 'k' ? "topk" : "show", optarg);
                return 2;
            }
            if (c == 'k')
                a.topk = v;
            else
                a.show = (int)v;
            break;
        }
        }
    }
    const char *missing = !a.checkpoint                        ? "--checkpoint"
                          : which == CMD_EVAL && !a.data       ? "--data"
                          : which == CMD_ANSWER && !a.image    ? "--image"
                          : which == CMD_ANSWER && !a.question ? "--question"
                                                               : NULL;
    if (optind < argc || missing) {
        if (missing)
            fprintf(stderr, "reveal %s: %s is required\n", name, missing);
        else
            fprintf(stderr, "reveal %s: unexpected argument '%s'\n", name, argv[optind]);
        fputs(usages[which], stderr);
        return 2;
    }
    MPI_Init(&argc, &argv);
    int code = which == CMD_REFRESH ? tr_refresh_main(&a)
               : which == CMD_EVAL  ? tr_eval_main(&a)
                                    : tr_answer_main(&a);
    if (code == TR_EXIT_ABORT) MPI_Abort(MPI_COMM_WORLD, TR_EXIT_FAIL);
    MPI_Finalize();
    return code;
}

int cmd_refresh(int argc, char **argv) {
    return serve_command(CMD_REFRESH, argc, argv);
}
int cmd_eval(int argc, char **argv) {
    return serve_command(CMD_EVAL, argc, argv);
}
int cmd_answer(int argc, char **argv) {
    return serve_command(CMD_ANSWER, argc, argv);
}
