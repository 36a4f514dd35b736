# Model engine infrastructure: parameters, AdamW, checkpoints, tokenizer, thread settings.
rv_add_test(NAME engine_params SOURCES test_engine_params.c LIBS rv_training TIMEOUT 60)
rv_add_test(NAME engine_optim SOURCES test_engine_optim.c LIBS rv_training TIMEOUT 60)
rv_add_test(NAME engine_ckpt SOURCES test_engine_ckpt.c LIBS rv_training TIMEOUT 60)
rv_add_test(NAME engine_tokenizer SOURCES test_engine_tokenizer.c LIBS rv_training TIMEOUT 300)
rv_add_test(NAME engine_threads SOURCES test_engine_threads.c LIBS rv_training TIMEOUT 60)
rv_add_test(NAME engine_load_mutations SOURCES test_engine_load_mutations.c LIBS rv_training TIMEOUT 300)
rv_add_test(NAME engine_team SOURCES test_engine_team.c LIBS rv_training TIMEOUT 120)
