/* tests/test_store_open.c — opening the wrong thing: a store created for another type, image
 * size or name, a store of another schema version, and directories that are not stores. Each
 * gives an error that names the difference, and leaves the directory as it was. */
#include "test_store_util.h"

#include <sys/stat.h>
#include <unistd.h>

static char err[RV_ERR_MAX];

static void expect_error(int rc, const char *what, const char *want) {
    CHECKF(rc == -1, "%s: opened", what);
    CHECKF(rc == -1 && strstr(err, want) != NULL, "%s: expected '%s' in '%s'", what, want, err);
}

static void test_config_mismatch(const char *root) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/kg", root);
    mem_config kg = config_of(REVEAL__SOURCE_TYPE__KG_TRIPLE, "kg", 32);
    mem_store *s = NULL;
    REQUIRE(mem_open_or_create(dir, &kg, &s, err) == 0);
    mem_close(s);

    mem_config qa = config_of(REVEAL__SOURCE_TYPE__QA, "kg", 32);
    char want[600];
    snprintf(want, sizeof want, "store %s holds kg_triple items, not qa", dir);
    expect_error(mem_open_or_create(dir, &qa, &s, err), "other type", want);
    mem_config big = config_of(REVEAL__SOURCE_TYPE__KG_TRIPLE, "kg", 64);
    expect_error(mem_open_or_create(dir, &big, &s, err), "other image size",
                 "image size is 32, not 64");
    mem_config named = config_of(REVEAL__SOURCE_TYPE__KG_TRIPLE, "wiki", 32);
    expect_error(mem_open_or_create(dir, &named, &s, err), "other name",
                 "is named \"kg\", not \"wiki\"");
    /* the same config opens, and a plain open reports it */
    CHECK(mem_open_or_create(dir, &kg, &s, err) == 0);
    mem_close(s);
    REQUIRE(mem_open(dir, 1, &s, err) == 0);
    CHECK(mem_get_config(s)->type == REVEAL__SOURCE_TYPE__KG_TRIPLE &&
          !strcmp(mem_get_config(s)->name, "kg") && mem_get_config(s)->image_size == 32);
    mem_close(s);

    /* a config that cannot be a store's */
    mem_config bad = config_of(REVEAL__SOURCE_TYPE__SOURCE_TYPE_UNSPECIFIED, "x", 32);
    snprintf(dir, sizeof dir, "%s/never", root);
    expect_error(mem_open_or_create(dir, &bad, &s, err), "unspecified type",
                 "StoreConfig: type 0 is not a SourceType");
    bad = config_of(REVEAL__SOURCE_TYPE__QA, "", 32);
    expect_error(mem_open_or_create(dir, &bad, &s, err), "empty name", "name is empty");
    bad = config_of(REVEAL__SOURCE_TYPE__QA, "qa", 0);
    expect_error(mem_open_or_create(dir, &bad, &s, err), "image size 0",
                 "image_size is 0, expected 1..1024");
    struct stat st;
    CHECK(stat(dir, &st) != 0); /* nothing was created for a refused config */
}

static void test_schema_version(const char *root) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/v2", root);
    mem_config cfg = config_of(REVEAL__SOURCE_TYPE__TEXT, "wiki", 32);
    mem_store *s = NULL;
    REQUIRE(mem_open_or_create(dir, &cfg, &s, err) == 0);
    mem_close(s);
    raw_db r;
    raw_open(&r, dir);
    raw_put(&r, 5, "schema_version", 14, "\0\0\0\2", 4);
    raw_close(&r);
    expect_error(mem_open(dir, 0, &s, err), "schema 2", "schema version 2, this build reads 1");
    expect_error(mem_open_or_create(dir, &cfg, &s, err), "schema 2 (create)",
                 "schema version 2, this build reads 1");
    raw_open(&r, dir);
    raw_put(&r, 5, "schema_version", 14, "\1", 1);
    raw_put(&r, 5, "config", 6, "\x08\x09", 2); /* type 9 */
    raw_close(&r);
    expect_error(mem_open(dir, 1, &s, err), "short schema", "schema_version is 1 bytes, not 4");
    raw_open(&r, dir);
    raw_put(&r, 5, "schema_version", 14, "\0\0\0\1", 4);
    raw_close(&r);
    expect_error(mem_open(dir, 1, &s, err), "bad config",
                 "meta config: StoreConfig: type 9 is not a SourceType");
}

static void test_not_a_store(const char *root) {
    char dir[512], file[600];
    mem_store *s = NULL;
    mem_config cfg = config_of(REVEAL__SOURCE_TYPE__QA, "qa", 32);

    snprintf(dir, sizeof dir, "%s/missing", root);
    expect_error(mem_open(dir, 0, &s, err), "missing dir", "no store at");
    expect_error(mem_open(dir, 1, &s, err), "missing dir read-only", "No such file or directory");

    /* a directory with other files: not a store, and not made into one */
    snprintf(dir, sizeof dir, "%s/photos", root);
    snprintf(file, sizeof file, "%s/holiday.jpg", dir);
    REQUIRE(rv_mkdirs(dir, err) == 0);
    REQUIRE(rv_write_file_atomic(file, "jpeg", 4, err) == 0);
    expect_error(mem_open(dir, 0, &s, err), "plain dir", "is not a reveal store (no RocksDB");
    expect_error(mem_open_or_create(dir, &cfg, &s, err), "plain dir (create)",
                 "is not a reveal store (no RocksDB");
    snprintf(file, sizeof file, "%s/CURRENT", dir);
    struct stat st;
    CHECK(stat(file, &st) != 0);

    /* a file */
    snprintf(file, sizeof file, "%s/photos/holiday.jpg", root);
    expect_error(mem_open(file, 0, &s, err), "file", "is not a directory");

    /* another program's RocksDB database */
    snprintf(dir, sizeof dir, "%s/otherdb", root);
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    char *e = NULL;
    rocksdb_t *db = rocksdb_open(o, dir, &e);
    REQUIRE(e == NULL);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put(db, wo, "user", 4, "data", 4, &e);
    REQUIRE(e == NULL);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
    expect_error(mem_open(dir, 0, &s, err), "other db",
                 "is a RocksDB database but not a reveal store (no column family items)");
    expect_error(mem_open_or_create(dir, &cfg, &s, err), "other db (create)",
                 "is a RocksDB database but not a reveal store (no column family items)");
    size_t n_cf = 0;
    o = rocksdb_options_create();
    char **names = rocksdb_list_column_families(o, dir, &n_cf, &e);
    REQUIRE(e == NULL);
    CHECKF(n_cf == 1, "the refused database gained families: %zu", n_cf);
    rocksdb_list_column_families_destroy(names, n_cf);

    /* a creation cut short (empty database, some families made): finished by the next create */
    snprintf(dir, sizeof dir, "%s/half", root);
    rocksdb_options_set_create_if_missing(o, 1);
    db = rocksdb_open(o, dir, &e);
    REQUIRE(e == NULL);
    rocksdb_column_family_handle_t *items = rocksdb_create_column_family(db, o, "items", &e);
    REQUIRE(e == NULL);
    rocksdb_column_family_handle_destroy(items);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
    expect_error(mem_open(dir, 0, &s, err), "half-created", "no column family keys");
    CHECKF(mem_open_or_create(dir, &cfg, &s, err) == 0, "half-created (create): %s", err);
    mem_close(s);
    CHECKF(mem_open(dir, 1, &s, err) == 0, "half-created, finished: %s", err);
    mem_close(s);

    /* an empty directory becomes a store */
    snprintf(dir, sizeof dir, "%s/empty", root);
    REQUIRE(rv_mkdirs(dir, err) == 0);
    CHECKF(mem_open_or_create(dir, &cfg, &s, err) == 0, "empty dir: %s", err);
    mem_close(s);
}

/* RocksDB's own errors come through with the store path: a second writer is locked out. */
static void test_locked(const char *root) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/kg", root);
    mem_store *a = NULL, *b = NULL;
    REQUIRE(mem_open(dir, 0, &a, err) == 0);
    expect_error(mem_open(dir, 0, &b, err), "second writer", dir);
    CHECKF(strstr(err, "lock") != NULL, "got '%s'", err);
    /* readers may open beside the writer */
    CHECKF(mem_open(dir, 1, &b, err) == 0, "reader beside writer: %s", err);
    mem_close(b);
    mem_close(a);
}

int main(void) {
    char root[64];
    tmp_dir_make(root, sizeof root, "store_open");
    test_config_mismatch(root);
    test_schema_version(root);
    test_not_a_store(root);
    test_locked(root);
    tmp_dir_remove(root);
    return check_report("store_open");
}
