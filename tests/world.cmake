# The generated knowledge world (world/, docs/world.md).
rv_add_test(NAME world_pictures SOURCES test_world_pictures.c LIBS rv_world TIMEOUT 60)
rv_add_test(NAME world_split SOURCES test_world_split.c LIBS rv_world TIMEOUT 60)
rv_add_test(NAME world_items SOURCES test_world_items.c LIBS rv_world TIMEOUT 60)
