# Gradient checks of the model engine's layers (gradcheck.h): finite differences on the double
# build, accumulation, and the float build against the double build.
foreach(topic layers attention blocks losses rng)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_grad_${topic}.c)
    rv_add_test(NAME grad_${topic} SOURCES test_grad_${topic}.c LIBS rv_training TIMEOUT 120)
  endif()
endforeach()
