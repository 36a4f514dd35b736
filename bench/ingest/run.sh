#!/usr/bin/env bash
# bench/ingest/run.sh — builds and runs bench_ingest: 1,000,000 kg triples and 100,000
# image-text pairs (32×32 PNGs) through the ingest path, each beside the raw RocksDB
# WriteBatch rate for the same bytes, three runs each, with the load average before each run.
# Extra arguments go to bench_ingest (e.g. --triples 100000 --repeat 1 --dir /dev/shm).
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target bench_ingest >/dev/null
echo "commit $(git rev-parse --short HEAD), $(nproc) cores, $(uptime)"
exec build/bench/ingest/bench_ingest "$@"
