# tests/store_core.cmake — the protocol library and the RocksDB knowledge store (issue 2).
foreach(t api reput edit open checkpoint corrupt proto kill)
  rv_add_test(NAME store_${t} SOURCES test_store_${t}.c LIBS rv_memstore TIMEOUT 60)
endforeach()
