"""bench/topk/faiss_topk.py — FAISS IndexFlatIP on bench_topk's data file, timed the same way
as `bench_topk search` (best and median over --repeat passes) and writing the same results
file, so run.sh can compare the two answer by answer.

Runs with Debian's interpreter, which has faiss and numpy:
  /usr/bin/python3 bench/topk/faiss_topk.py --data FILE --batch B --queries Q [--k 100]
                                            [--repeat 5] [--out RES]
Threads come from the environment (OMP_NUM_THREADS for FAISS, OPENBLAS_NUM_THREADS for its
sgemm), as for bench_topk.
"""
import argparse
import os
import statistics
import struct
import sys
import time

import faiss
import numpy as np


def load(path):
    with open(path, "rb") as f:
        head = f.read(32)
    if len(head) != 32 or head[:4] != b"RVTK" or struct.unpack("<I", head[4:8])[0] != 1:
        sys.exit(f"faiss_topk: {path}: not a bench_topk data file (version 1)")
    n, d, nq = struct.unpack("<QQQ", head[8:32])
    keys = np.fromfile(path, dtype="<f4", count=n * d, offset=32).reshape(n, d)
    queries = np.fromfile(path, dtype="<f4", count=nq * d, offset=32 + 4 * n * d).reshape(nq, d)
    if keys.shape != (n, d) or queries.shape != (nq, d):
        sys.exit(f"faiss_topk: {path}: truncated")
    return keys, queries


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.batch < 1 or a.queries < a.batch or a.queries % a.batch:
        sys.exit("faiss_topk: --queries must be a positive multiple of --batch")
    keys, queries = load(a.data)
    if a.queries > len(queries):
        sys.exit(f"faiss_topk: --queries {a.queries} but the file holds {len(queries)}")
    queries = np.ascontiguousarray(queries[: a.queries])
    t0 = time.perf_counter()
    index = faiss.IndexFlatIP(keys.shape[1])
    index.add(keys)
    build = time.perf_counter() - t0
    del keys
    scores = np.empty((a.queries, a.k), dtype=np.float32)
    ids = np.empty((a.queries, a.k), dtype=np.int64)
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        for q0 in range(0, a.queries, a.batch):
            s, i = index.search(queries[q0 : q0 + a.batch], a.k)
            scores[q0 : q0 + a.batch] = s
            ids[q0 : q0 + a.batch] = i
        times.append(time.perf_counter() - t0)
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(
        f"impl=faiss batch={a.batch} queries={a.queries} k={a.k} "
        f"qps_best={a.queries / min(times):.2f} qps_median={a.queries / statistics.median(times):.2f} "
        f"omp_threads={faiss.omp_get_max_threads()} blas_threads={blas} build_s={build:.2f} "
        f"faiss={faiss.__version__}"
    )
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "wb") as f:
            f.write(struct.pack("<QQ", a.queries, a.k))
            f.write(ids.astype("<i8").tobytes())
            f.write(scores.astype("<f4").tobytes())
        os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
