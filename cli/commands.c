/* cli/commands.c — the table of subcommands. One line per command; each lives in its own
 * cmd_*.c file. */
#include "reveal.h"

#include <stddef.h>

const rv_command rv_commands[] = {
    {NULL, NULL, NULL},
};
