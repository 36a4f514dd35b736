/* tests/test_common.c — durable file replacement and bounded reads from common/. */
#include "check.h"
#include "rv.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    char err[RV_ERR_MAX], dir[] = "/tmp/rv_common_XXXXXX", path[256], nested[256];
    REQUIRE(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/file.bin", dir);
    snprintf(nested, sizeof nested, "%s/a/b/c", dir);

    CHECK(rv_mkdirs(nested, err) == 0);
    struct stat st;
    CHECK(stat(nested, &st) == 0 && S_ISDIR(st.st_mode));

    CHECK(rv_write_file_atomic(path, "first", 5, err) == 0);
    CHECK(rv_write_file_atomic(path, "second!", 7, err) == 0);
    void *data;
    size_t n;
    CHECK(rv_read_file(path, 100, &data, &n, err) == 0);
    CHECK(n == 7 && !memcmp(data, "second!", 7) && ((char *)data)[7] == 0);
    free(data);

    /* a size limit is enforced and named */
    CHECK(rv_read_file(path, 3, &data, &n, err) == -1);
    CHECKF(strstr(err, "more than the 3 allowed") != NULL, "got '%s'", err);
    /* a missing file is named */
    CHECK(rv_read_file("/nonexistent/x", 100, &data, &n, err) == -1);
    CHECKF(strstr(err, "/nonexistent/x") != NULL, "got '%s'", err);
    /* no temp file is left behind */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    CHECK(access(tmp, F_OK) != 0);
    /* writing into a missing directory fails cleanly */
    CHECK(rv_write_file_atomic("/nonexistent/dir/f", "x", 1, err) == -1);

    /* error wrapping keeps the reason */
    rv_fail(err, "disk full");
    rv_fail_wrap(err, "store %s", "kg");
    CHECK(!strcmp(err, "store kg: disk full"));

    CHECK(rv_hash64("abc", 3, 0) == rv_hash64("abc", 3, 0));
    CHECK(rv_hash64("abc", 3, 0) != rv_hash64("abd", 3, 0));

    /* UTF-8: accepted and rejected forms, with the offset of the first bad byte */
    size_t at = 99;
    CHECK(rv_utf8_valid("Kathmandu \xe0\xa4\x95 \xf0\x9f\x87\xb3", 18, &at));
    CHECK(!rv_utf8_valid("ab\xc0\xaf", 4, &at) && at == 2);        /* overlong '/' */
    CHECK(!rv_utf8_valid("\xed\xa0\x80", 3, &at) && at == 0);      /* surrogate */
    CHECK(!rv_utf8_valid("x\xf4\x90\x80\x80", 5, &at) && at == 1); /* > U+10FFFF */
    CHECK(!rv_utf8_valid("abc\xe2\x82", 5, &at) && at == 3);       /* truncated */
    CHECK(!rv_utf8_valid("\xff", 1, &at) && at == 0);

    CHECK(rv_remove_tree(dir, err) == 0);
    CHECK(access(dir, F_OK) != 0);
    return check_report("common_files");
}
