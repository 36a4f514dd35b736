rv_add_test(NAME common_files SOURCES test_common.c)
