# The layers against PyTorch fixtures (tests/golden/*.bin, made by tools/golden/make_fixtures.py;
# CI needs no torch). One executable; each ctest test runs some of its cases.
rv_add_test(NAME golden_attention SOURCES test_golden.c LIBS rv_training TIMEOUT 60
            ARGS attention_self attention_causal attention_cross)
foreach(case rmsnorm mlp perceiver crossentropy)
  rv_add_test(NAME golden_${case} COMMAND golden_attention ${case} TIMEOUT 60)
endforeach()
