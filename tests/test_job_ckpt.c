/* tests/test_job_ckpt.c — checkpoint directories: begin/commit seal them with a manifest and a
 * DONE marker; keep_last prunes the oldest; resume AUTO takes the newest that verifies, skipping
 * a flipped byte, a missing file, a missing DONE and an unsealed .tmp; PATH refuses a damaged
 * one naming the file; NEVER finds nothing; a commit discards checkpoints of a later step. */
#include "check.h"
#include "job.h"
#include "rv.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/rv_job_ckpt_XXXXXX";
static char cdir[300];

static void put(const char *ckpt, const char *rel, const void *data, size_t n) {
    char path[600], err[RV_ERR_MAX];
    snprintf(path, sizeof path, "%s/%s", ckpt, rel);
    char *slash = strrchr(path, '/');
    *slash = 0;
    REQUIRE(rv_mkdirs(path, err) == 0);
    *slash = '/';
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    REQUIRE(fwrite(data, 1, n, f) == n);
    fclose(f);
}

/* A checkpoint as the ranks would write it: a model file and a nested store copy. */
static void write_step(job_run *r, uint64_t step, int keep_last, char *final) {
    char tmp[600], err[RV_ERR_MAX], model[64];
    REQUIRE(job_ckpt_begin(r, step, tmp, sizeof tmp, err) == 0);
    int len = snprintf(model, sizeof model, "model weights of step %llu", (unsigned long long)step);
    put(tmp, "model.bin", model, (size_t)len);
    put(tmp, "stores/kg/000001.sst", "sst bytes", 9);
    int rc = job_ckpt_commit(r, step, keep_last, final, 600, err);
    CHECKF(rc == 0, "commit %llu: %s", (unsigned long long)step, err);
}

static int exists(const char *name) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", cdir, name);
    return access(path, F_OK) == 0;
}

static void expect_verify_error(const char *name, const char *a, const char *b) {
    char path[600], err[RV_ERR_MAX] = "";
    snprintf(path, sizeof path, "%s/%s", cdir, name);
    CHECKF(job_ckpt_verify(path, err) == -1, "%s verified, expected '%s'", name, a);
    CHECKF(strstr(err, a) != NULL, "%s: message '%s' lacks '%s'", name, err, a);
    if (b) CHECKF(strstr(err, b) != NULL, "%s: message '%s' lacks '%s'", name, err, b);
}

int main(void) {
    char err[RV_ERR_MAX], run[256], final[600], found[600];
    REQUIRE(mkdtemp(dir));
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(cdir, sizeof cdir, "%s/checkpoints", run);
    job_run *r;
    REQUIRE(job_run_open(run, &r, err) == 0);
    uint64_t step = 99;

    /* nothing to resume from yet */
    CHECK(job_ckpt_find(r, JOB_RESUME_AUTO, NULL, found, sizeof found, &step, err) == 0);
    CHECK(found[0] == 0 && step == 0);

    /* begin gives an empty .tmp, even over a leftover one */
    char tmp[600];
    REQUIRE(job_ckpt_begin(r, 10, tmp, sizeof tmp, err) == 0);
    CHECK(strstr(tmp, "/checkpoints/step-00000010.tmp") != NULL);
    put(tmp, "stale", "x", 1);
    write_step(r, 10, 0, final);
    CHECK(strstr(final, "/checkpoints/step-00000010") && !strstr(final, ".tmp"));
    CHECK(!exists("step-00000010.tmp") && exists("step-00000010/DONE"));
    CHECK(!exists("step-00000010/stale"));
    CHECKF(job_ckpt_verify(final, err) == 0, "%s", err);

    /* the manifest lists every file, recursively, with its size and XXH3 */
    char mpath[700];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", final);
    void *text;
    size_t n;
    REQUIRE(rv_read_file(mpath, 1 << 20, &text, &n, err) == 0);
    cJSON *m = cJSON_Parse(text);
    free(text);
    REQUIRE(m);
    CHECK(cJSON_GetObjectItem(m, "step")->valuedouble == 10);
    CHECK(cJSON_GetObjectItem(m, "format")->valuedouble == 1);
    CHECK(cJSON_IsString(cJSON_GetObjectItem(m, "git_revision")));
    const cJSON *files = cJSON_GetObjectItem(m, "files");
    CHECK(cJSON_GetArraySize(files) == 2);
    const cJSON *sst = cJSON_GetArrayItem(files, 1);
    CHECK(!strcmp(cJSON_GetObjectItem(sst, "path")->valuestring, "stores/kg/000001.sst"));
    CHECK(cJSON_GetObjectItem(sst, "size")->valuedouble == 9);
    char hex[24];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)rv_hash64("sst bytes", 9, 0));
    CHECK(!strcmp(cJSON_GetObjectItem(sst, "xxh3")->valuestring, hex));
    cJSON_Delete(m);

    /* keep_last: 0 keeps all; 3 keeps the newest three */
    for (uint64_t s = 20; s <= 40; s += 10) write_step(r, s, 0, final);
    CHECK(exists("step-00000010") && exists("step-00000040"));
    REQUIRE(job_ckpt_begin(r, 70, tmp, sizeof tmp, err) == 0); /* a killed run's leftover */
    write_step(r, 50, 3, final);
    CHECK(!exists("step-00000010") && !exists("step-00000020"));
    CHECK(exists("step-00000030") && exists("step-00000040") && exists("step-00000050"));
    CHECK(!exists("step-00000070.tmp"));
    job_run_close(r);

    /* AUTO picks the newest that verifies: 60 is unsealed, 50 has a flipped byte, 40 lost a
     * file, 30 lost its DONE, so 20 it is (in a second run directory) */
    snprintf(run, sizeof run, "%s/run2", dir);
    snprintf(cdir, sizeof cdir, "%s/checkpoints", run);
    REQUIRE(job_run_open(run, &r, err) == 0);
    for (uint64_t s = 10; s <= 50; s += 10) write_step(r, s, 0, final);
    REQUIRE(job_ckpt_begin(r, 60, tmp, sizeof tmp, err) == 0);
    put(tmp, "model.bin", "complete but never sealed", 25);
    char path[700];
    snprintf(path, sizeof path, "%s/step-00000050/model.bin", cdir);
    FILE *f = fopen(path, "r+b");
    REQUIRE(f);
    fseek(f, 3, SEEK_SET);
    fputc('X', f);
    fclose(f);
    snprintf(path, sizeof path, "%s/step-00000040/stores/kg/000001.sst", cdir);
    CHECK(unlink(path) == 0);
    snprintf(path, sizeof path, "%s/step-00000030/DONE", cdir);
    CHECK(unlink(path) == 0);
    CHECK(job_ckpt_find(r, JOB_RESUME_AUTO, NULL, found, sizeof found, &step, err) == 0);
    CHECKF(strstr(found, "/step-00000020") && step == 20, "found '%s' step %llu", found,
           (unsigned long long)step);

    /* each damage is named */
    expect_verify_error("step-00000050", "step-00000050/model.bin: content hash",
                        "(the file is damaged)");
    expect_verify_error("step-00000040", "step-00000040/stores/kg/000001.sst: missing",
                        "listed in manifest.json");
    expect_verify_error("step-00000030", "step-00000030: no DONE marker", NULL);
    expect_verify_error("step-00000060.tmp", "no DONE marker", NULL);
    put(final, "extra.bin", "?", 1); /* final is step 50's path */
    snprintf(path, sizeof path, "%s/step-00000020/model.bin", cdir);
    f = fopen(path, "ab");
    REQUIRE(f);
    fputs("longer", f);
    fclose(f);
    expect_verify_error("step-00000020",
                        "step-00000020/model.bin: 30 bytes, manifest.json says "
                        "24",
                        NULL);
    snprintf(path, sizeof path, "%s/step-00000010/stores/kg/new.sst", cdir);
    put(cdir, "step-00000010/stores/kg/new.sst", "n", 1);
    expect_verify_error("step-00000010",
                        "step-00000010/stores/kg/new.sst: not listed in "
                        "manifest.json",
                        NULL);
    CHECK(unlink(path) == 0);
    CHECKF(job_ckpt_verify(strcat(strcpy(path, cdir), "/step-00000010"), err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/step-00000010/manifest.json", cdir);
    f = fopen(path, "ab");
    REQUIRE(f);
    fputs(" ", f);
    fclose(f);
    expect_verify_error("step-00000010", "manifest.json: content hash",
                        "DONE says"); /* even a harmless edit of the manifest is seen */

    /* nothing verifies now: AUTO finds none and says so on stderr */
    CHECK(job_ckpt_find(r, JOB_RESUME_AUTO, NULL, found, sizeof found, &step, err) == 0);
    CHECK(found[0] == 0 && step == 0);

    /* PATH: a damaged one is refused naming the file; a sound one is taken with its step */
    snprintf(path, sizeof path, "%s/step-00000050", cdir);
    CHECK(job_ckpt_find(r, JOB_RESUME_PATH, path, found, sizeof found, &step, err) == -1);
    CHECKF(strstr(err, "--resume: ") && strstr(err, "step-00000050/model.bin: content hash"),
           "got '%s'", err);
    write_step(r, 35, 0, final);
    CHECK(job_ckpt_find(r, JOB_RESUME_PATH, final, found, sizeof found, &step, err) == 0);
    CHECK(!strcmp(found, final) && step == 35);
    /* a directory renamed to another step is refused: the manifest holds the truth */
    snprintf(path, sizeof path, "%s/step-00000036", cdir);
    CHECK(rename(final, path) == 0);
    CHECK(job_ckpt_find(r, JOB_RESUME_PATH, path, found, sizeof found, &step, err) == -1);
    CHECKF(strstr(err, "says step 35, the directory is named for step 36"), "got '%s'", err);
    CHECK(rename(path, final) == 0);
    /* NEVER finds nothing even with checkpoints present */
    CHECK(job_ckpt_find(r, JOB_RESUME_NEVER, NULL, found, sizeof found, &step, err) == 0);
    CHECK(found[0] == 0 && step == 0);

    /* committing 35 discarded the later (abandoned) 40, 50 and the unsealed 60 */
    CHECK(exists("step-00000030") && exists("step-00000035"));
    CHECK(!exists("step-00000040") && !exists("step-00000050") && !exists("step-00000060.tmp"));
    CHECK(job_ckpt_find(r, JOB_RESUME_AUTO, NULL, found, sizeof found, &step, err) == 0);
    CHECK(step == 35);

    /* steps past 8 digits widen the name and still order by number, not by text */
    write_step(r, 99999999, 0, final);
    write_step(r, 100000000, 0, final);
    CHECK(exists("step-99999999") && exists("step-100000000"));
    CHECK(job_ckpt_find(r, JOB_RESUME_AUTO, NULL, found, sizeof found, &step, err) == 0);
    CHECKF(step == 100000000 && strstr(found, "/step-100000000"), "found '%s'", found);
    /* a checkpoint with no files is sealed and verifies */
    REQUIRE(job_ckpt_begin(r, 100000001, tmp, sizeof tmp, err) == 0);
    CHECKF(job_ckpt_commit(r, 100000001, 0, final, sizeof final, err) == 0, "%s", err);
    CHECKF(job_ckpt_verify(final, err) == 0, "%s", err);
    /* a buffer too small for the path is refused before anything is done */
    REQUIRE(job_ckpt_begin(r, 100000002, tmp, sizeof tmp, err) == 0);
    CHECK(job_ckpt_commit(r, 100000002, 0, found, 8, err) == -1);
    CHECKF(strstr(err, "longer than the 8 bytes given"), "got '%s'", err);
    CHECK(exists("step-100000002.tmp") && !exists("step-100000002")); /* nothing was done */
    CHECK(job_ckpt_begin(r, 100000003, tmp, 8, err) == -1 && !exists("step-100000003.tmp"));

    /* the seal's names are reserved; links are refused; commit needs a begin; keep_last >= 0 */
    REQUIRE(job_ckpt_begin(r, 80, tmp, sizeof tmp, err) == 0);
    put(tmp, "DONE", "fake", 4);
    CHECK(job_ckpt_commit(r, 80, 0, NULL, 0, err) == -1);
    CHECKF(strstr(err, "step-00000080.tmp/DONE: the name is reserved"), "got '%s'", err);
    REQUIRE(job_ckpt_begin(r, 80, tmp, sizeof tmp, err) == 0);
    snprintf(path, sizeof path, "%s/link", tmp);
    CHECK(symlink("/etc/hostname", path) == 0);
    CHECK(job_ckpt_commit(r, 80, 0, NULL, 0, err) == -1);
    CHECKF(strstr(err, "step-00000080.tmp/link: not a regular file"), "got '%s'", err);
    CHECK(job_ckpt_commit(r, 81, 0, NULL, 0, err) == -1);
    CHECKF(strstr(err, "no checkpoint begun for step 81"), "got '%s'", err);
    CHECK(job_ckpt_commit(r, 80, -1, NULL, 0, err) == -1);
    CHECKF(strstr(err, "keep_last is -1"), "got '%s'", err);

    /* --resume parsing */
    job_resume_mode mode;
    CHECK(job_resume_parse("auto", &mode, err) == 0 && mode == JOB_RESUME_AUTO);
    CHECK(job_resume_parse("never", &mode, err) == 0 && mode == JOB_RESUME_NEVER);
    CHECK(job_resume_parse("runs/a/checkpoints/step-00000010", &mode, err) == 0 &&
          mode == JOB_RESUME_PATH);
    CHECK(job_resume_parse("", &mode, err) == -1);
    CHECKF(strstr(err, "expected auto, never or a checkpoint directory"), "got '%s'", err);

    job_run_close(r);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return check_report("job_ckpt");
}
