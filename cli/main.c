/* cli/main.c — `reveal <subcommand> [options]`: dispatch to the subcommand table. */
#include "reveal.h"
#include "rv.h"

#include <stdio.h>
#include <string.h>

#ifndef REVEAL_GIT_REV
#define REVEAL_GIT_REV "unknown"
#endif

static void usage(FILE *out) {
    fprintf(out, "usage: reveal <command> [options]\n\ncommands:\n");
    for (const rv_command *c = rv_commands; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    fprintf(out, "\n`reveal <command> --help` describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return RV_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return RV_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("reveal %s\n", REVEAL_GIT_REV);
        return RV_EXIT_OK;
    }
    for (const rv_command *c = rv_commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->run(argc - 1, argv + 1);
    fprintf(stderr, "reveal: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return RV_EXIT_USAGE;
}
