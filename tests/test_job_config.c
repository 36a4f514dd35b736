/* tests/test_job_config.c — job_config_load: defaults, the file, --set overrides, nested keys,
 * each refusal with its message, the resolved JSON read back to the same struct, the help. */
#include "check.h"
#include "job.h"
#include "rv.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    long batch;
    long steps;
    double lr;
    double warmup;
    int shuffle;
    char name[8];
    char tokenizer[64];
} test_cfg;

static const job_field fields[] = {
    {"train.batch", JOB_INT, offsetof(test_cfg, batch), 1, 4096, 0, "examples per step"},
    {"train.steps", JOB_INT, offsetof(test_cfg, steps), 0, 1e12, 0, "updates to run"},
    {"train.optim.lr", JOB_FLOAT, offsetof(test_cfg, lr), 0, 1, 0, "peak learning rate"},
    {"train.optim.warmup", JOB_FLOAT, offsetof(test_cfg, warmup), 0, 1, 0, "warm-up fraction"},
    {"data.shuffle", JOB_BOOL, offsetof(test_cfg, shuffle), 0, 0, 0, "shuffle each epoch"},
    {"name", JOB_STRING, offsetof(test_cfg, name), 0, 0, 8, "run name"},
    {"data.tokenizer", JOB_STRING, offsetof(test_cfg, tokenizer), 0, 0, 64, "model file"},
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

static const test_cfg defaults = {32, 1000, 3e-4, 0.05, 1, "run", "tok.model"};
static char dir[] = "/tmp/rv_job_config_XXXXXX";

static const char *write_cfg(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads and expects a refusal whose message holds every given fragment. */
static void expect_refusal(const char *path, char **sets, int n_sets, const char *a,
                           const char *b) {
    char err[RV_ERR_MAX] = "";
    test_cfg c = defaults;
    int rc = job_config_load(fields, N_FIELDS, &c, path, sets, n_sets, err);
    CHECKF(rc == -1, "accepted, expected a refusal with '%s'", a);
    CHECKF(strstr(err, a) != NULL, "message '%s' lacks '%s'", err, a);
    if (b) CHECKF(strstr(err, b) != NULL, "message '%s' lacks '%s'", err, b);
}

int main(void) {
    char err[RV_ERR_MAX];
    REQUIRE(mkdtemp(dir));

    /* no file, no --set: the defaults stand */
    test_cfg c = defaults;
    CHECK(job_config_load(fields, N_FIELDS, &c, NULL, NULL, 0, err) == 0);
    CHECK(memcmp(&c, &defaults, sizeof c) == 0);

    /* the file sets nested keys and leaves the others at their defaults */
    char path[256];
    snprintf(path, sizeof path, "%s",
             write_cfg("a.json", "{\"train\": {\"batch\": 16, \"optim\": {\"lr\": 0.01}},"
                                 " \"data\": {\"shuffle\": false}, \"name\": \"abc\"}"));
    c = defaults;
    CHECKF(job_config_load(fields, N_FIELDS, &c, path, NULL, 0, err) == 0, "%s", err);
    CHECK(c.batch == 16 && c.lr == 0.01 && c.shuffle == 0 && !strcmp(c.name, "abc"));
    CHECK(c.steps == 1000 && c.warmup == 0.05 && !strcmp(c.tokenizer, "tok.model"));

    /* --set overrides the file; JSON values are JSON, anything else is a string */
    char *sets[] = {"train.batch=64", "data.tokenizer=/x/sp.model", "name=\"007\"",
                    "train.optim={\"warmup\": 0.1}", "data.shuffle=true"};
    c = defaults;
    CHECKF(job_config_load(fields, N_FIELDS, &c, path, sets, 5, err) == 0, "%s", err);
    CHECK(c.batch == 64 && !strcmp(c.tokenizer, "/x/sp.model") && !strcmp(c.name, "007"));
    CHECK(c.warmup == 0.1 && c.lr == 0.01 && c.shuffle == 1);

    /* the file: not JSON, not an object, a key twice */
    expect_refusal(write_cfg("bad.json", "{\"train\": "), NULL, 0, "bad.json: not valid JSON",
                   "line 1");
    expect_refusal(write_cfg("arr.json", "[1, 2]"), NULL, 0, "arr.json: not a JSON object",
                   "an array");
    expect_refusal(write_cfg("twice.json", "{\"train\": {\"batch\": 1, \"batch\": 2}}"), NULL, 0,
                   "twice.json: train.batch given twice", NULL);
    char nul_path[256];
    snprintf(nul_path, sizeof nul_path, "%s/nul.json", dir);
    FILE *nf = fopen(nul_path, "w");
    REQUIRE(nf);
    fwrite("{}\0{\"x\": 1}", 1, 11, nf);
    fclose(nf);
    expect_refusal(nul_path, NULL, 0, "nul.json: holds a NUL byte at offset 2", NULL);
    expect_refusal("/nonexistent/cfg.json", NULL, 0, "/nonexistent/cfg.json", "cannot open");

    /* unknown keys: the full dotted path, and the key meant when it is close */
    expect_refusal(write_cfg("typo.json", "{\"train\": {\"bacth\": 1}}"), NULL, 0,
                   "typo.json: unknown key \"train.bacth\"", "did you mean \"train.batch\"?");
    expect_refusal(write_cfg("far.json", "{\"train\": {\"optim\": {\"momentum\": 1}}}"), NULL, 0,
                   "unknown key \"train.optim.momentum\"", NULL);
    expect_refusal(write_cfg("moved.json", "{\"batch\": 3}"), NULL, 0, "unknown key \"batch\"",
                   "did you mean \"train.batch\"?");
    char far_msg[RV_ERR_MAX];
    test_cfg d = defaults;
    job_config_load(fields, N_FIELDS, &d, write_cfg("far2.json", "{\"zzzzzz\": 1}"), NULL, 0,
                    far_msg);
    CHECKF(strstr(far_msg, "did you mean") == NULL, "no key is close, yet: %s", far_msg);

    /* wrong types, sections given a value, ranges, fractional integers, long strings */
    expect_refusal(write_cfg("type.json", "{\"train\": {\"batch\": \"16\"}}"), NULL, 0,
                   "type.json: train.batch must be an integer, not a string", NULL);
    expect_refusal(write_cfg("sec.json", "{\"train\": 5}"), NULL, 0,
                   "train is a section (it holds train.batch), so it must be an object, not a "
                   "number",
                   NULL);
    expect_refusal(write_cfg("bool.json", "{\"data\": {\"shuffle\": 1}}"), NULL, 0,
                   "data.shuffle must be a boolean, not a number", NULL);
    expect_refusal(write_cfg("range.json", "{\"train\": {\"batch\": 0}}"), NULL, 0,
                   "train.batch = 0 is out of range [1, 4096]", NULL);
    expect_refusal(write_cfg("frange.json", "{\"train\": {\"optim\": {\"lr\": 2.5}}}"), NULL, 0,
                   "train.optim.lr = 2.5 is out of range [0, 1]", NULL);
    expect_refusal(write_cfg("frac.json", "{\"train\": {\"batch\": 1.5}}"), NULL, 0,
                   "train.batch must be an integer, not 1.5", NULL);
    expect_refusal(write_cfg("big.json", "{\"train\": {\"steps\": 1e300}}"), NULL, 0, "train.steps",
                   "past 2^53");
    expect_refusal(write_cfg("long.json", "{\"name\": \"abcdefgh\"}"), NULL, 0,
                   "long.json: name is 8 bytes long, more than the 7 allowed", NULL);
    expect_refusal(write_cfg("utf8.json", "{\"name\": \"a\xff\"}"), NULL, 0,
                   "name is not valid UTF-8", NULL);
    /* a string of exactly cap-1 bytes fits */
    c = defaults;
    CHECK(job_config_load(fields, N_FIELDS, &c, write_cfg("fit.json", "{\"name\": \"abcdefg\"}"),
                          NULL, 0, err) == 0 &&
          !strcmp(c.name, "abcdefg"));

    /* --set refusals name the --set argument */
    char *no_eq[] = {"train.batch"};
    expect_refusal(NULL, no_eq, 1, "--set train.batch: expected key=value", NULL);
    char *empty_key[] = {"=3"};
    expect_refusal(NULL, empty_key, 1, "--set =3: the key before '=' is empty", NULL);
    char *twice[] = {"train.batch=2", "train.steps=5", "train.batch=3"};
    expect_refusal(NULL, twice, 3, "--set train.batch=3: train.batch given twice in --set",
                   "first in --set train.batch=2");
    char *twice_obj[] = {"train.batch=2", "train={\"batch\": 4}"};
    expect_refusal(NULL, twice_obj, 2, "train.batch given twice in --set", NULL);
    char *set_type[] = {"train.batch=abc"};
    expect_refusal(NULL, set_type, 1,
                   "--set train.batch=abc: train.batch must be an integer, "
                   "not a string",
                   NULL);
    char *set_range[] = {"train.batch=5000"};
    expect_refusal(NULL, set_range, 1,
                   "--set train.batch=5000: train.batch = 5000 is out of "
                   "range [1, 4096]",
                   NULL);
    char *set_unknown[] = {"train.batchh=5"};
    expect_refusal(NULL, set_unknown, 1, "--set train.batchh=5: unknown key \"train.batchh\"",
                   "did you mean \"train.batch\"?");
    char *set_num_string[] = {"name=42"};
    expect_refusal(NULL, set_num_string, 1, "name must be a string, not a number",
                   "quote it: --set name='\"...\"'");
    char *set_long[] = {"name=abcdefghij"};
    expect_refusal(NULL, set_long, 1, "--set name=abcdefghij: name is 10 bytes long", NULL);

    /* the resolved config reads back to the same struct */
    c = defaults;
    char *sets2[] = {"train.batch=7", "train.optim.lr=0.1234567890123", "data.shuffle=false",
                     "name=q\"\\x"};
    CHECKF(job_config_load(fields, N_FIELDS, &c, path, sets2, 4, err) == 0, "%s", err);
    char *json = job_config_json(fields, N_FIELDS, &c);
    REQUIRE(json);
    const char *resolved = write_cfg("resolved.json", json);
    test_cfg back = {-1, -1, -1, -1, 7, "x", "y"};
    CHECKF(job_config_load(fields, N_FIELDS, &back, resolved, NULL, 0, err) == 0, "%s", err);
    CHECK(back.batch == c.batch && back.steps == c.steps && back.lr == c.lr);
    CHECK(back.warmup == c.warmup && back.shuffle == c.shuffle);
    CHECK(!strcmp(back.name, c.name) && !strcmp(back.tokenizer, c.tokenizer));
    CHECKF(strstr(json, "\"optim\"") != NULL, "not nested: %s", json);
    free(json);

    /* the help lists every key with its default */
    char help_path[300];
    snprintf(help_path, sizeof help_path, "%s/help.txt", dir);
    FILE *hf = fopen(help_path, "w+");
    REQUIRE(hf);
    c = defaults;
    job_config_help(fields, N_FIELDS, &c, hf);
    rewind(hf);
    char help[4096];
    size_t got = fread(help, 1, sizeof help - 1, hf);
    help[got] = 0;
    fclose(hf);
    for (size_t i = 0; i < N_FIELDS; i++) {
        CHECKF(strstr(help, fields[i].key) != NULL, "help lacks %s", fields[i].key);
        CHECKF(strstr(help, fields[i].help) != NULL, "help lacks '%s'", fields[i].help);
    }
    CHECK(strstr(help, "[1, 4096]") != NULL && strstr(help, "default 32") != NULL);
    CHECK(strstr(help, "default \"tok.model\"") != NULL && strstr(help, "default true") != NULL);

    /* a broken field table is named before any input is blamed */
    job_field dup[2] = {fields[0], fields[0]};
    CHECK(job_config_load(dup, 2, &c, NULL, NULL, 0, err) == -1);
    CHECKF(strstr(err, "config table: key train.batch appears twice") != NULL, "%s", err);
    job_field nest[2] = {fields[0], fields[0]};
    nest[1].key = "train";
    CHECK(job_config_load(nest, 2, &c, NULL, NULL, 0, err) == -1);
    CHECKF(strstr(err, "train is both a key and the section of train.batch") != NULL, "%s", err);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return check_report("job_config");
}
