# The workers' exact top-K index (worker/topk.c): one executable, one ctest per part.
add_executable(test_topk test_topk.c)
target_include_directories(test_topk PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_topk PRIVATE rv_worker rv_common m)
foreach(part random ties update threads bf16 errors)
  rv_add_test(NAME topk_${part} COMMAND test_topk ${part} TIMEOUT 120)
endforeach()
