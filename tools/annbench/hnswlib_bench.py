#!/usr/bin/python3
"""Measure hnswlib on the vectors internal/ann's TestANNReport wrote.

Usage: hnswlib_bench.py DIR   (DIR holds vectors.f32, queries.f32, truth.i32
as written by `TOWERRECALL_ANN_REPORT=DIR go test -run TestANNReport
./internal/ann`). Builds an inner-product index with M 16, efConstruction
200 on one thread (Debian's python3-hnswlib), then reports, per ef, the
top-10 and top-100 latency (one query per knn_query call, the C++ search
plus the Python call; and all queries in one call on one thread, the C++
search alone) and recall@K against the exact top-100 ids. Times are
process CPU (time.process_time), as in TestANNReport: on a shared machine
they count what a query costs, not the time other processes hold the
cores. Prints Markdown rows in the shape of TestANNReport's table.

hnswlib_bench.py DIR --build-only [--threads T] builds the same index with
T threads (default 1) and prints the build's wall time, process CPU time
and RSS growth only, to compare with TestBuildScale (docs/ann.md).
"""
import os
import sys
import time

import hnswlib
import numpy as np


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def recall(labels, truth, k):
    hits = 0
    for got, want in zip(labels, truth):
        hits += len(set(got[:k].tolist()) & set(want[:k].tolist()))
    return hits / (len(truth) * k)


def timed(index, queries, k, reps=5):
    """Median over passes of the mean per-query CPU time, one call per query."""
    per = []
    for _ in range(reps):
        t = time.process_time()
        for q in queries:
            index.knn_query(q, k=k, num_threads=1)
        per.append((time.process_time() - t) / len(queries))
    return sorted(per)[reps // 2]


def timed_batch(index, queries, k, reps=5):
    """Median over passes of the mean per-query CPU time, all queries in one call."""
    per = []
    for _ in range(reps):
        t = time.process_time()
        labels, _ = index.knn_query(queries, k=k, num_threads=1)
        per.append((time.process_time() - t) / len(queries))
    return sorted(per)[reps // 2], labels


def build_only(d, threads):
    data = np.fromfile(os.path.join(d, "vectors.f32"), dtype="<f4").reshape(-1, 8)
    n = len(data)
    rss0 = rss_mb()
    index = hnswlib.Index(space="ip", dim=8)
    w, c = time.perf_counter(), time.process_time()
    index.init_index(max_elements=n, M=16, ef_construction=200, random_seed=100)
    index.add_items(data, np.arange(n), num_threads=threads)
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    print(f"hnswlib build n={n} M=16 efC=200 threads={threads}: wall {wall:.1f} s, "
          f"cpu {cpu:.1f} s, RSS +{rss_mb() - rss0:.0f} MB, load avg {os.getloadavg()[0]:.1f}", flush=True)


def main():
    d = sys.argv[1]
    if "--build-only" in sys.argv:
        threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
        build_only(d, threads)
        return
    data = np.fromfile(os.path.join(d, "vectors.f32"), dtype="<f4").reshape(-1, 8)
    queries = np.fromfile(os.path.join(d, "queries.f32"), dtype="<f4").reshape(-1, 8)
    truth = np.fromfile(os.path.join(d, "truth.i32"), dtype="<i4").reshape(len(queries), -1)
    n = len(data)
    rss0 = rss_mb()
    index = hnswlib.Index(space="ip", dim=8)
    t = time.process_time()
    index.init_index(max_elements=n, M=16, ef_construction=200, random_seed=100)
    index.add_items(data, np.arange(n), num_threads=1)
    build = time.process_time() - t
    mem = rss_mb() - rss0
    print(f"n = {n}, {len(queries)} queries, hnswlib {getattr(hnswlib, '__version__', '0.6.2 (Debian)')}, one thread")
    print("| index | build | memory | setting | top-10 latency (per call / batch) | recall@10 | top-100 latency (per call / batch) | recall@100 |")
    print("|---|--:|--:|---|--:|--:|--:|--:|")
    first = True
    for ef in (10, 16, 20, 32, 50, 100):
        index.set_ef(ef)
        l10 = timed(index, queries, 10)
        b10, lab10 = timed_batch(index, queries, 10)
        index.set_ef(max(ef, 100) if ef < 100 else 2 * ef)
        ef100 = index.ef
        l100 = timed(index, queries, 100)
        b100, lab100 = timed_batch(index, queries, 100)
        cols = (f"{build:.1f} s", f"{mem:.0f} MB RSS") if first else ("", "")
        first = False
        print(f"| hnswlib (M 16, efC 200) | {cols[0]} | {cols[1]} | ef {ef} (k=100: ef {ef100}) "
              f"| {l10*1e6:.1f} / {b10*1e6:.1f} µs | {recall(lab10, truth, 10):.4f} "
              f"| {l100*1e6:.1f} / {b100*1e6:.1f} µs | {recall(lab100, truth, 100):.4f} |", flush=True)


if __name__ == "__main__":
    main()
