# Evaluation metrics (training/metrics.h) against hand-computed values: one executable per
# source file, one ctest per part.
foreach(exe text scores)
  add_executable(test_metrics_${exe} test_metrics_${exe}.c)
  target_include_directories(test_metrics_${exe} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(test_metrics_${exe} PRIVATE rv_training rv_common m)
endforeach()
foreach(part normalize accuracy tokens errors random)
  rv_add_test(NAME metrics_${part} COMMAND test_metrics_text ${part} TIMEOUT 60)
endforeach()
foreach(part bleu cider retrieval table)
  rv_add_test(NAME metrics_${part} COMMAND test_metrics_scores ${part} TIMEOUT 60)
endforeach()
# The metrics' text input under libFuzzer (clang builds with REVEAL_FUZZ): a bounded run from an
# empty corpus; test_metrics_text random covers the same promises in every other build.
if(REVEAL_FUZZ)
  add_executable(fuzz_metrics test_metrics_fuzz.c ${CMAKE_SOURCE_DIR}/training/metrics.c
    ${CMAKE_SOURCE_DIR}/training/metrics_text.c ${CMAKE_SOURCE_DIR}/training/metrics_caption.c)
  target_compile_options(fuzz_metrics PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_metrics PRIVATE -fsanitize=fuzzer,address,undefined)
  target_include_directories(fuzz_metrics PRIVATE ${CMAKE_SOURCE_DIR}/training)
  target_link_libraries(fuzz_metrics PRIVATE rv_common PkgConfig::CJSON m)
  rv_add_test(NAME metrics_fuzz LABELS fuzz TIMEOUT 120 COMMAND sh -c
    "mkdir -p corpus_metrics_run && $<TARGET_FILE:fuzz_metrics> -max_total_time=15 -seed=1 -max_len=512 corpus_metrics_run")
endif()
