/* cli/commands.c — the table of subcommands. One line per command; each lives in its own
 * cmd_*.c file. */
#include "reveal.h"

#include <stddef.h>

int cmd_world(int argc, char **argv);

const rv_command rv_commands[] = {
    {"world", "write a generated knowledge world (tests, examples, edit demo)", cmd_world},
    {NULL, NULL, NULL},
};
