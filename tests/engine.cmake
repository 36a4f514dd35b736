# Model engine infrastructure: parameters, AdamW, checkpoints, tokenizer, thread settings.
# Model engine infrastructure: parameters, AdamW, checkpoints, tokenizer, thread settings.
rv_add_test(NAME engine_tokenizer SOURCES test_engine_tokenizer.c LIBS rv_training TIMEOUT 120)
