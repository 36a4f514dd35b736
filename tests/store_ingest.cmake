# tests/store_ingest.cmake — reading users' knowledge files: the line reader and parser, images,
# and `reveal ingest` / `stats` / `inspect` end to end, bad input case by case, crash safety.
rv_add_test(NAME store_reader SOURCES test_store_reader.c LIBS rv_memstore TIMEOUT 60)
rv_add_test(NAME store_image SOURCES test_store_image.c LIBS rv_memstore TIMEOUT 60)
# stb_image_write's JPEG encoder shifts negative ints (in the header, not in reveal).
if(REVEAL_SANITIZE)
  set_source_files_properties(test_store_image.c PROPERTIES COMPILE_OPTIONS -fno-sanitize=shift)
endif()
