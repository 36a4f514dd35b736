# tests/fuzz_ingest.cmake — the JSONL/TSV reader and line parsing of `reveal ingest` under
# libFuzzer (REVEAL_FUZZ, clang), or their committed corpus replayed through the same target in
# every other build. The target compiles reader.c itself so libFuzzer's coverage reaches it.
set(fuzz_reader_corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus_reader)
set(fuzz_reader_sources fuzz/fuzz_reader.c ${CMAKE_SOURCE_DIR}/memstore/reader.c)
if(REVEAL_FUZZ)
  add_executable(fuzz_reader ${fuzz_reader_sources})
  target_compile_options(fuzz_reader PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_reader PRIVATE -fsanitize=fuzzer,address,undefined)
  target_include_directories(fuzz_reader PRIVATE ${CMAKE_SOURCE_DIR}/memstore)
  target_link_libraries(fuzz_reader PRIVATE rv_proto rv_common PkgConfig::CJSON)
  # A bounded run on a copy of the corpus, so the committed one is never modified.
  rv_add_test(NAME store_fuzz_reader LABELS fuzz TIMEOUT 120 COMMAND sh -c
    "rm -rf corpus_reader_run && cp -r ${fuzz_reader_corpus} corpus_reader_run && $<TARGET_FILE:fuzz_reader> -max_total_time=15 -seed=1 -max_len=8192 corpus_reader_run")
else()
  rv_add_test(NAME store_fuzz_reader_replay SOURCES ${fuzz_reader_sources} fuzz/replay_main.c
    LIBS rv_proto PkgConfig::CJSON ARGS ${fuzz_reader_corpus} TIMEOUT 60)
  target_include_directories(store_fuzz_reader_replay PRIVATE ${CMAKE_SOURCE_DIR}/memstore)
endif()
