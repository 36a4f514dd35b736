# The REVEAL model (training/model.h): whole-model gradient check, shapes and switches, errors,
# the split encoding of distributed training.
rv_add_test(NAME model_gradcheck SOURCES test_model_gradcheck.c LIBS rv_training TIMEOUT 300)
foreach(topic shapes errors copy split)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_model_${topic}.c)
    rv_add_test(NAME model_${topic} SOURCES test_model_${topic}.c LIBS rv_training TIMEOUT 120)
  endif()
endforeach()
