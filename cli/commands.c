/* cli/commands.c — the table of subcommands. One line per command; each lives in its own
 * cmd_*.c file. */
#include "reveal.h"

#include <stddef.h>

int cmd_ingest(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_world(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_refresh(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_answer(int argc, char **argv);

const rv_command rv_commands[] = {
    {"ingest", "read a knowledge source (JSONL/TSV + images) into a store", cmd_ingest},
    {"stats", "what a store holds: type, counts, encoder versions, disk bytes", cmd_stats},
    {"inspect", "one item of a store, by id or logical key", cmd_inspect},
    {"train", "train the model over the stores of a layout (one process or mpirun)", cmd_train},
    {"refresh", "re-encode the stores' memory with a checkpoint (all, or only stale items)",
     cmd_refresh},
    {"eval", "accuracy per question type and recall@K of a checkpoint on a task file", cmd_eval},
    {"answer", "answer one question about an image and show the knowledge retrieved", cmd_answer},
    {"world", "write a generated knowledge world (tests, examples, edit demo)", cmd_world},
    {NULL, NULL, NULL},
};
