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
