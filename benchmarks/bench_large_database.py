"""A database larger than its float vectors in memory: build and search over millions of vectors, with peak memory.

The vectors are clustered synthetic float16 (``--clusters`` unit centres plus Gaussian noise, normalised),
streamed to one memory-mapped .npy the way the embeddings stage stores them. Each phase runs in a fresh
process so that its peak memory is its own (anonymous resident memory, sampled; see ``Peak``):

- build: ``faiss`` IVF-PQ through the plugin: k-means and PQ codebooks on a seeded sample
  (``train_size``), the database added a chunk at a time (``Retriever.build`` on the memory map);
- search: the neighbours stage's loop (queries in parts, answers written as they come) for ``--queries``
  queries, k = ``--k``, nprobe = ``--nprobe``;
- exact: the exact retriever by parts merged over the memory map, for ``--exact`` queries: the recall
  reference, and the flat-memory exact search itself.

Run at two sizes (``--sizes``), so that what grows with the database can be told from what does not.
The float32 copy a non-streaming build would hold is printed beside it.

    python benchmarks/bench_large_database.py --sizes 1000000 5000000 [--dim 512] [--workdir /tmp/bench_db]

Prints a markdown table to paste into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

K_NPROBE = 16


def generate(path: Path, n: int, dim: int, clusters: int, seed: int = 0) -> None:
    from rdmbench.chunks import RowWriter

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    with RowWriter(path, n) as rows:
        for start in range(0, n, 200_000):
            m = min(200_000, n - start)
            x = centres[rng.integers(0, clusters, m)] + rng.standard_normal((m, dim), dtype=np.float32) * (0.5 / np.sqrt(dim))
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            rows.append(x.astype(np.float16))


class Peak:
    """Peak anonymous resident memory of this process (RssAnon, sampled every 20 ms), and peak file-backed.

    Memory-mapped reads of the database count towards RSS as file-backed pages, which the kernel reclaims
    under pressure (they are page cache); the memory a phase needs is its anonymous memory.
    """

    def __init__(self) -> None:
        import threading

        self.anon = self.file = 0.0
        threading.Thread(target=self._watch, daemon=True).start()

    def sample(self) -> None:
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        self.anon = max(self.anon, int(fields["RssAnon"].split()[0]) / 1024)
        self.file = max(self.file, int(fields["RssFile"].split()[0]) / 1024)

    def _watch(self) -> None:
        while True:
            self.sample()
            time.sleep(0.02)

    def report(self) -> dict:
        self.sample()
        return {"peak_mib": self.anon, "file_mib": self.file}


def phase(args: argparse.Namespace) -> dict:
    from rdmbench.cache import load_array
    from rdmbench_plugins.retrievers.exact import ExactRetriever
    from rdmbench_plugins.retrievers.faiss_index import FaissRetriever

    peak = Peak()
    work = Path(args.workdir)
    db = load_array(work / f"db-{args.n}.npy", mmap=True)
    queries = load_array(work / "queries.npy", mmap=True)
    spec = dict(index_type="ivf-pq", nlist=args.nlist, pq_m=args.pq_m, train_size=args.train_size)
    index_dir = work / f"index-{args.n}"
    start = time.perf_counter()
    if args.phase == "build":
        index_dir.mkdir(exist_ok=True)
        ret = FaissRetriever(**spec)
        ret.build(db)
        ret.save(index_dir)
        size = sum(p.stat().st_size for p in index_dir.iterdir())
        return {"seconds": time.perf_counter() - start, "index_mib": size / 2**20, **peak.report()}
    if args.phase == "search":
        from rdmbench.chunks import RowWriter, row_chunks
        from rdmbench.stages import search

        ret = FaissRetriever(**spec)
        ret.load(index_dir, db)
        loaded = time.perf_counter()
        with RowWriter(work / f"ids-{args.n}.npy", len(queries)) as rows:
            for chunk in row_chunks(queries):
                rows.append(search(ret, chunk.astype(np.float32), args.k, {"nprobe": K_NPROBE}, None)[1])
        seconds = time.perf_counter() - loaded
        return {"seconds": seconds, "ms_per_query": 1000 * seconds / len(queries), "load_s": loaded - start,
                **peak.report()}
    ret = ExactRetriever()
    ret.build(db)
    exact = ret.search(np.asarray(queries[:args.exact], np.float32), args.k)[1]
    seconds = time.perf_counter() - start
    approx = load_array(work / f"ids-{args.n}.npy")[:args.exact]
    recall = np.mean([len(set(a) & set(e)) / args.k for a, e in zip(approx, exact)])
    first = np.mean([e[0] in set(a) for a, e in zip(approx, exact)])
    return {"seconds": seconds, "ms_per_query": 1000 * seconds / args.exact, "recall": float(recall),
            "first": float(first), **peak.report()}


def run_phase(args: argparse.Namespace, name: str, n: int) -> dict:
    command = [sys.executable, __file__, "--phase", name, "--n", str(n), *[
        f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("phase", "n", "sizes")]]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--clusters", type=int, default=2000)
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--exact", type=int, default=500)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--nlist", type=int, default=2048)
    p.add_argument("--pq-m", type=int, default=64)
    p.add_argument("--train-size", type=int, default=131_072)
    p.add_argument("--workdir", default="/tmp/bench_db")
    p.add_argument("--phase", choices=["build", "search", "exact"])
    p.add_argument("--n", type=int)
    args = p.parse_args()
    if args.phase:
        print(json.dumps(phase(args)))
        return
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "queries.npy").exists():
        generate(work / "queries.npy", args.queries, args.dim, args.clusters, seed=1)
    print(f"IVF-PQ nlist {args.nlist}, pq_m {args.pq_m} (8 bits), trained on {args.train_size:,} sampled vectors; "
          f"{args.queries:,} queries, k = {args.k}, nprobe {K_NPROBE}; recall@{args.k} against exact search on "
          f"{args.exact} queries (recall: share of the exact {args.k} returned; 1-NN: share of queries whose exact "
          f"nearest is among the {args.k} returned); dim {args.dim}, float16 on disk. Peak: anonymous resident "
          f"memory (the mapped database's page cache, reclaimable, is not counted)\n")
    print("| vectors | on disk (float16) | float32 copy | build s | build peak MiB | index MiB | search ms/query "
          "| search peak MiB | recall | 1-NN in top k | exact ms/query | exact peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        path = work / f"db-{n}.npy"
        if not path.exists():
            generate(path, n, args.dim, args.clusters)
        build, search, exact = (run_phase(args, name, n) for name in ("build", "search", "exact"))
        print(f"| {n:,} | {n * args.dim * 2 / 2**30:.2f} GiB | {n * args.dim * 4 / 2**30:.2f} GiB "
              f"| {build['seconds']:.0f} | {build['peak_mib']:.0f} | {build['index_mib']:.0f} "
              f"| {search['ms_per_query']:.3f} | {search['peak_mib']:.0f} | {exact['recall']:.3f} | {exact['first']:.3f} "
              f"| {exact['ms_per_query']:.1f} | {exact['peak_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
