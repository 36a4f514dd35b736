# The run-directory library (job/, docs/run.md): config, run directory, checkpoints, signals.
rv_add_test(NAME job_config SOURCES test_job_config.c LIBS rv_job TIMEOUT 60)
rv_add_test(NAME job_run SOURCES test_job_run.c LIBS rv_job TIMEOUT 60)
rv_add_test(NAME job_signals SOURCES test_job_signals.c LIBS rv_job TIMEOUT 60)
rv_add_test(NAME job_ckpt SOURCES test_job_ckpt.c LIBS rv_job TIMEOUT 60)
