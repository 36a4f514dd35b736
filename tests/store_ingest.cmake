# tests/store_ingest.cmake — reading users' knowledge files: the line reader and parser, images,
# and `reveal ingest` / `stats` / `inspect` end to end, bad input case by case, crash safety.
rv_add_test(NAME store_reader SOURCES test_store_reader.c LIBS rv_memstore TIMEOUT 60)
rv_add_test(NAME store_image SOURCES test_store_image.c LIBS rv_memstore TIMEOUT 60)

# `reveal` end to end: one executable, one ctest per case.
rv_add_test(NAME store_roundtrip SOURCES test_store_cli.c LIBS rv_memstore ARGS roundtrip TIMEOUT 120)
foreach(case idempotent max_errors dry_run usage bad_json bad_missing_field bad_field_type
        bad_type bad_missing_image bad_corrupt_image bad_long_line bad_long_field bad_utf8
        bad_store_type bad_image_size bad_unwritable bad_full_disk)
  rv_add_test(NAME store_${case} COMMAND store_roundtrip ${case} TIMEOUT 120)
endforeach()
# stb_image_write's JPEG encoder shifts negative ints (in that header, not in reveal).
if(REVEAL_SANITIZE)
  set_source_files_properties(test_store_image.c test_store_cli.c PROPERTIES
    COMPILE_OPTIONS -fno-sanitize=shift)
endif()

# kill -9 during ingest of 100,000 triples, at seeded random moments (printed). Labelled slow:
# under ASan its eight 100,000-item runs take over five minutes on a shared 2-core machine, so
# the sanitizer pass of scripts/test.sh leaves it out; the main pass runs it.
rv_add_test(NAME store_crash SOURCES test_store_crash.c LIBS rv_memstore LABELS slow TIMEOUT 300)
