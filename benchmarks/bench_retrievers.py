"""Retriever wrappers against their libraries called directly, with the same parameters, in one run.

Each plugin builds its index once; the "direct" column then calls the library on that same index
object the way a user of the library would (hnswlib ``set_ef`` + ``knn_query``, faiss ``search``
with SearchParameters, ScaNN ``search_batched_parallel`` / ``search``, torch matmul + topk for
exact), so the ratio is what the wrapper adds: argument checks, dtype and normalisation, padding
and the conversion to rdmbench's (scores, ids). Batched: all queries in one call, best of
``--rounds`` (plugin and direct alternate); single: one call per query over ``--single`` queries,
plugin and direct alternating query by query, total time best of ``--rounds``; and the per-call
time of one query repeated for about 0.3 s (best of 5), which isolates the wrapper's own microseconds
from cache effects.

Data: fashion-mnist-784-euclidean built from the Debian Fashion-MNIST files (60k base, 10k
queries, L2, k = 10), the ann-benchmarks set the issue's reference points were measured on.

    python benchmarks/bench_retrievers.py [--rounds 3] [--single 1000] [--queries 10000]

Prints a markdown table to paste into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
import timeit
from typing import Any, Callable

import numpy as np


def vectors(num_queries: int) -> tuple[np.ndarray, np.ndarray]:
    from rdmbench.registry import get_registry

    ds = get_registry().create("dataset", {"name": "fashion-mnist"})
    base = ds.load("train").images.reshape(60000, -1).astype(np.float32)
    queries = ds.load("test").images.reshape(10000, -1).astype(np.float32)[:num_queries]
    return base, queries


def direct_calls(name: str, plugin: Any, query: dict[str, Any], k: int) -> tuple[Callable, Callable]:
    """(batched(q), single(q_row)) calling the library itself on the plugin's index object."""
    if name == "hnswlib":
        index = plugin.index

        def batched(q):
            index.set_ef(query["ef"])
            return index.knn_query(q, k, num_threads=-1)
        return batched, batched
    if name == "faiss":
        import faiss

        params = (faiss.SearchParametersHNSW(efSearch=query["ef_search"]) if "ef_search" in query
                  else faiss.SearchParametersIVF(nprobe=query["nprobe"]))

        def batched(q):
            return plugin.index.search(q, k, params=params)
        return batched, batched
    if name == "scann":
        s = plugin.searcher
        return (lambda q: s.search_batched_parallel(q, k, query["reorder"], None),
                lambda q: s.search(q[0], k, query["reorder"], -1))
    if name == "usearch":
        index = plugin.index

        def batched(q):
            index.expansion_search = query["expansion_search"]
            return index.search(q, k, threads=0)
        return batched, batched
    if name == "exact":
        import torch

        db = plugin._db
        sq = (db * db).sum(1)

        def batched(q):
            with torch.inference_mode():
                out = []
                for s in range(0, len(q), plugin.batch_size):
                    qb = torch.from_numpy(q[s:s + plugin.batch_size])
                    out.append(torch.topk(2 * (qb @ db.T) - sq, k, dim=1))
                return out
        return batched, batched
    raise ValueError(name)


CASES = [  # (plugin, build args, query args): settings near recall 0.99 on this set
    ("exact", {}, {}),
    ("faiss", {"index_type": "hnsw", "hnsw_m": 32}, {"ef_search": 32}),
    ("faiss", {"index_type": "ivf-flat"}, {"nprobe": 32}),
    ("scann", {"mode": "ah"}, {"reorder": 100}),
    ("hnswlib", {"m": 32, "build_threads": -1}, {"ef": 32}),
    ("usearch", {"connectivity": 32, "build_threads": 0}, {"expansion_search": 32}),
]


def elapsed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    from rdmbench.registry import get_registry

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--single", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=10000)
    args = ap.parse_args()
    base, queries = vectors(args.queries)
    single = queries[:args.single]
    k = 10
    print(f"fashion-mnist-784-euclidean: {base.shape[0]} x {base.shape[1]}, {len(queries)} queries, L2, k = {k}; "
          f"best of {args.rounds} rounds\n")
    print("| plugin | build | query | QPS batched plugin | direct | ratio | QPS single plugin | direct | ratio "
          "| one query repeated: plugin / direct |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    registry = get_registry()
    for name, build, query in CASES:
        if name not in registry.names("retriever"):
            print(f"| {name} | — | — | not installed | | | | | | |")
            continue
        plugin = registry.create("retriever", registry.validate("retriever", {"name": name, "metric": "l2", **build}))
        plugin.build(base)
        direct_b, direct_s = direct_calls(name, plugin, query, k)
        plugin.search(queries[:100], k, **query)  # warm-up both paths
        direct_b(queries[:100])
        times = {key: [] for key in ("pb", "db", "ps", "ds")}
        for r in range(args.rounds):
            batched = [("pb", lambda: plugin.search(queries, k, **query)), ("db", lambda: direct_b(queries))]
            for key, fn in batched[::-1] if r % 2 else batched:
                times[key].append(elapsed(fn))
            # one query per call: plugin and direct alternate query by query, so drift hits both alike
            ps = ds = 0.0
            for i in range(len(single)):
                row = single[i:i + 1]
                pair = [("p", lambda: plugin.search(row, k, **query)), ("d", lambda: direct_s(row))]
                for key, fn in pair[::-1] if i % 2 else pair:
                    t = elapsed(fn)
                    if key == "p":
                        ps += t
                    else:
                        ds += t
            times["ps"].append(ps)
            times["ds"].append(ds)
        qps = {key: (len(queries) if key[1] == "b" else len(single)) / min(v) for key, v in times.items()}
        # the wrapper's own cost, free of cache effects: one query repeated for ~0.3 s, best of 5
        row, calls = single[:1], max(10, int(0.3 * qps["ds"]))
        us_p = min(timeit.repeat(lambda: plugin.search(row, k, **query), number=calls, repeat=5)) / calls * 1e6
        us_d = min(timeit.repeat(lambda: direct_s(row), number=calls, repeat=5)) / calls * 1e6
        b = " ".join(f"{a}={v}" for a, v in build.items())
        q = " ".join(f"{a}={v}" for a, v in query.items())
        print(f"| {name} | {b or '—'} | {q or '—'} | {qps['pb']:,.0f} | {qps['db']:,.0f} | {qps['pb'] / qps['db']:.3f} | "
              f"{qps['ps']:,.0f} | {qps['ds']:,.0f} | {qps['ps'] / qps['ds']:.3f} | {us_p:.1f} / {us_d:.1f} µs |",
              flush=True)


if __name__ == "__main__":
    main()
