# Learning on the generated world (coordinator/, docs/learning.md).
# learn_pipeline: the machinery on a tiny world (fast; also under the sanitizers).
rv_add_test(NAME learn_pipeline SOURCES test_learn_pipeline.c LIBS rv_coordinator TIMEOUT 120)
