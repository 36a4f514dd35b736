# The generated knowledge world (world/, docs/world.md).
rv_add_test(NAME world_pictures SOURCES test_world_pictures.c LIBS rv_world TIMEOUT 60)
rv_add_test(NAME world_split SOURCES test_world_split.c LIBS rv_world TIMEOUT 60)
rv_add_test(NAME world_items SOURCES test_world_items.c LIBS rv_world TIMEOUT 60)
rv_add_test(NAME world_edit SOURCES test_world_edit.c LIBS rv_world TIMEOUT 60)
rv_add_test(NAME world_files SOURCES test_world_files.c LIBS rv_world PkgConfig::CJSON TIMEOUT 120)
rv_add_test(NAME world_config SOURCES test_world_config.c LIBS rv_world TIMEOUT 60)
rv_add_test(NAME world_cli SOURCES test_world_cli.c LIBS rv_world TIMEOUT 120)
