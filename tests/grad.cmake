# Gradient checks of the model engine's layers (gradcheck.h): finite differences on the double
# build, accumulation, and the float build against the double build.
foreach(topic layers attention blocks losses rng)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_grad_${topic}.c)
    rv_add_test(NAME grad_${topic} SOURCES test_grad_${topic}.c LIBS rv_training TIMEOUT 120)
  endif()
endforeach()
# The same checks on the baseline build of the elementwise kernels (training/layer_impl.h), on
# an emulated CPU without AVX2; qemu-user cannot host the sanitizers' shadow memory.
if(CMAKE_C_COMPILER_ID STREQUAL "GNU" AND CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64"
   AND NOT REVEAL_SANITIZE)
  rv_add_test(NAME portable_kernels COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/portable_kernels.sh
              TIMEOUT 300)
endif()
