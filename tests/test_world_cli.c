/* tests/test_world_cli.c — `reveal world`: writes the same files as the library for the same
 * settings, writes an edited world with edits.jsonl, keeps an existing directory unless
 * --force, and answers bad options with exit code 2 and a message naming the option. */
#include "check.h"
#include "world.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char root[] = "/tmp/rv_world_cli_XXXXXX";
static const char *bin;

/* Runs `reveal world ARGS`, returns its exit code; its stderr is left in root/stderr. */
static int run(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' world %s >%s/stdout 2>%s/stderr", bin, args, root, root);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int output_has(const char *stream, const char *needle) {
    char path[512], err[RV_ERR_MAX];
    void *data;
    size_t n;
    snprintf(path, sizeof path, "%s/%s", root, stream);
    if (rv_read_file(path, 1 << 20, &data, &n, err)) return 0;
    int found = strstr(data, needle) != NULL;
    if (!found) fprintf(stderr, "%s: no '%s' in: %s\n", stream, needle, (char *)data);
    free(data);
    return found;
}

static int same_file(const char *a, const char *b) {
    char err[RV_ERR_MAX];
    void *da = NULL, *db = NULL;
    size_t na = 0, nb = 0;
    int same = !rv_read_file(a, 1 << 26, &da, &na, err) &&
               !rv_read_file(b, 1 << 26, &db, &nb, err) && na == nb && !memcmp(da, db, na);
    free(da);
    free(db);
    return same;
}

static int count_lines(const char *path) {
    char err[RV_ERR_MAX];
    void *data;
    size_t n;
    if (rv_read_file(path, 1 << 26, &data, &n, err)) return -1;
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += ((char *)data)[i] == '\n';
    free(data);
    return lines;
}

int main(void) {
    bin = getenv("REVEAL_BIN");
    REQUIRE(bin != NULL);
    REQUIRE(mkdtemp(root));
    char args[1024], a[512], b[512], err[RV_ERR_MAX];

    /* the command writes what the library writes */
    snprintf(args, sizeof args,
             "--out %s/cli --seed 3 --entities 10 --relations 4 --objects 20 "
             "--image-size 12 --unasked 1 --passage-facts 2",
             root);
    CHECK(run(args) == 0);
    CHECK(output_has("stdout", "10 entities, 4 relations") &&
          output_has("stdout", "30 train / 10 test"));
    world_config cfg;
    world_config_default(&cfg);
    cfg.seed = 3, cfg.entities = 10, cfg.relations = 4, cfg.objects = 20, cfg.image_size = 12,
    cfg.unasked = 1, cfg.passage_facts = 2;
    world *w = NULL;
    REQUIRE(world_create(&cfg, &w, err) == 0);
    snprintf(a, sizeof a, "%s/lib", root);
    REQUIRE(world_write(w, NULL, a, 0, err) == 0);
    static const char *const files[] = {
        "world.json",           "kg.jsonl",         "qa.jsonl",
        "text.jsonl",           "image_text.jsonl", "questions_train.jsonl",
        "questions_test.jsonl", "img/e9.png"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(a, sizeof a, "%s/lib/%s", root, files[i]);
        snprintf(b, sizeof b, "%s/cli/%s", root, files[i]);
        CHECKF(same_file(a, b), "%s differs between the command and the library", files[i]);
    }

    /* an existing directory is kept without --force and replaced with it */
    CHECK(run(args) == 1 && output_has("stderr", "already exists"));
    strncat(args, " --force --seed 4", sizeof args - strlen(args) - 1);
    CHECK(run(args) == 0);
    snprintf(a, sizeof a, "%s/lib/kg.jsonl", root);
    snprintf(b, sizeof b, "%s/cli/kg.jsonl", root);
    CHECK(!same_file(a, b));

    /* the edited world and its list of edits: 0.5 of 10 x 4 facts */
    snprintf(args, sizeof args,
             "--out %s/edited --seed 3 --entities 10 --relations 4 "
             "--edit-fraction 0.5 --edit-seed 9",
             root);
    CHECK(run(args) == 0 && output_has("stdout", "20 facts edited"));
    snprintf(a, sizeof a, "%s/edited/edits.jsonl", root);
    CHECK(count_lines(a) == 20);

    /* defaults: LEARNING.md's world */
    snprintf(args, sizeof args, "--out %s/default", root);
    CHECK(run(args) == 0);
    snprintf(a, sizeof a, "%s/default/kg.jsonl", root);
    CHECK(count_lines(a) == 64 * 6);
    snprintf(a, sizeof a, "%s/default/questions_test.jsonl", root);
    CHECK(count_lines(a) == 64 * 2);

    /* usage errors: exit code 2 and the option named */
    static const struct {
        const char *args, *message;
    } bad[] = {
        {"--seed 1", "--out DIR is required"},
        {"--out X --entities 0", "entities"},
        {"--out X --seed abc", "--seed: 'abc'"},
        {"--out X --seed -1", "--seed: '-1'"},
        {"--out X --relations 99", "relations"},
        {"--out X --image-size 99999999999", "--image-size"},
        {"--out X --edit-fraction 0.5", "go together"},
        {"--out X --edit-fraction 2 --edit-seed 1", "--edit-fraction"},
        {"--out X --min-distance zz", "--min-distance"},
        {"--out X --no-such-option", "no-such-option"},
        {"--out X extra", "unexpected argument 'extra'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = run(bad[i].args);
        CHECKF(rc == 2, "'%s' exited %d", bad[i].args, rc);
        CHECKF(output_has("stderr", bad[i].message), "'%s'", bad[i].args);
    }
    CHECK(run("--help") == 0 && output_has("stdout", "--edit-fraction"));

    world_free(w);
    CHECK(rv_remove_tree(root, err) == 0);
    return check_report("world_cli");
}
