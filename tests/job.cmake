# The run-directory library (job/, docs/run.md): config, run directory, checkpoints, signals.
rv_add_test(NAME job_config SOURCES test_job_config.c LIBS rv_job TIMEOUT 60)
rv_add_test(NAME job_run SOURCES test_job_run.c LIBS rv_job TIMEOUT 60)
rv_add_test(NAME job_signals SOURCES test_job_signals.c LIBS rv_job TIMEOUT 60)
rv_add_test(NAME job_ckpt SOURCES test_job_ckpt.c LIBS rv_job TIMEOUT 60)
rv_add_test(NAME job_resume SOURCES test_job_resume.c LIBS rv_job TIMEOUT 60)
# The config and manifest parsers under libFuzzer (clang builds with REVEAL_FUZZ): a bounded run
# from a copy of the committed seeds (tests/fuzz/corpus_job: a config file, --set arguments, a
# sound manifest); the tests above cover the same promises by example in every build.
if(REVEAL_FUZZ)
  add_executable(fuzz_job test_job_fuzz.c ${CMAKE_SOURCE_DIR}/job/config.c
    ${CMAKE_SOURCE_DIR}/job/run.c ${CMAKE_SOURCE_DIR}/job/ckpt.c ${CMAKE_SOURCE_DIR}/job/process.c)
  target_compile_options(fuzz_job PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_job PRIVATE -fsanitize=fuzzer,address,undefined)
  target_include_directories(fuzz_job PRIVATE ${CMAKE_SOURCE_DIR}/job)
  target_link_libraries(fuzz_job PRIVATE rv_common PkgConfig::CJSON PkgConfig::XXHASH m)
  rv_add_test(NAME job_fuzz LABELS fuzz TIMEOUT 120 COMMAND sh -c
    "rm -rf corpus_job_run && cp -r ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus_job corpus_job_run && $<TARGET_FILE:fuzz_job> -max_total_time=15 -seed=1 -max_len=1024 corpus_job_run")
endif()
