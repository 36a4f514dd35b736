# Learning on the generated world (coordinator/, docs/learning.md).
# learn_pipeline: the machinery on a tiny world (fast; also under the sanitizers).
# learn_memory trains, checks answers from memory and saves learn_memory.ckpt, the fixture
# model_edit loads to check knowledge edits without a parameter update.
# learn_mechanism: p(gold|x) learned through the fusion weights alone (ω on versus ω ≡ 1).
# The learning runs take minutes of optimised code; the sanitizer build (unoptimised, with
# ASan) would take far longer, so there they carry the label slow and the sanitizer pass
# covers the same code through learn_pipeline.
rv_add_test(NAME learn_pipeline SOURCES test_learn_pipeline.c LIBS rv_coordinator TIMEOUT 120)
if(REVEAL_SANITIZE)
  set(learn_labels slow)
endif()
rv_add_test(NAME learn_memory SOURCES test_learn_memory.c LIBS rv_coordinator TIMEOUT 900
  LABELS ${learn_labels})
rv_add_test(NAME model_edit COMMAND learn_memory edit TIMEOUT 300 LABELS ${learn_labels})
set_tests_properties(learn_memory PROPERTIES FIXTURES_SETUP learn_model)
set_tests_properties(model_edit PROPERTIES FIXTURES_REQUIRED learn_model)
rv_add_test(NAME learn_mechanism SOURCES test_learn_mechanism.c LIBS rv_coordinator TIMEOUT 600
  LABELS ${learn_labels})
