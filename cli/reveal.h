/* cli/reveal.h — the subcommands of the `reveal` command. Each is a thin `main` over the
 * libraries: it parses options, calls library functions, prints one clear line on failure
 * and returns an exit code (RV_EXIT_*). */
#ifndef REVEAL_CLI_H
#define REVEAL_CLI_H

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} rv_command;

extern const rv_command rv_commands[];

#endif
