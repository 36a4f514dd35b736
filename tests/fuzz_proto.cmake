# tests/fuzz_proto.cmake — the protobuf decoders under libFuzzer (REVEAL_FUZZ, clang), or their
# committed corpus replayed through the same target in every other build.
set(fuzz_proto_corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus_proto)
add_executable(make_corpus_proto EXCLUDE_FROM_ALL fuzz/make_corpus_proto.c)
target_link_libraries(make_corpus_proto PRIVATE rv_proto)
if(REVEAL_FUZZ)
  add_executable(fuzz_proto fuzz/fuzz_proto.c)
  target_compile_options(fuzz_proto PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_proto PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_proto PRIVATE rv_proto)
  # A bounded run on a copy of the corpus, so the committed one is never modified.
  rv_add_test(NAME store_fuzz_proto LABELS fuzz TIMEOUT 120 COMMAND sh -c
    "rm -rf corpus_proto_run && cp -r ${fuzz_proto_corpus} corpus_proto_run && $<TARGET_FILE:fuzz_proto> -max_total_time=15 -seed=1 corpus_proto_run")
else()
  rv_add_test(NAME store_fuzz_proto_replay SOURCES fuzz/fuzz_proto.c fuzz/replay_main.c
    LIBS rv_proto ARGS ${fuzz_proto_corpus} TIMEOUT 60)
endif()
