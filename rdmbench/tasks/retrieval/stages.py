"""Stages of the retrieval benchmark task, in the manner of ann-benchmarks (Aumüller, Bernhardsson & Faithfull,
"ANN-Benchmarks", Information Systems 2020).

    data ─ database ─ embeddings(D) ─ index (build time, size) ─┐
      └─ embeddings(queries) ─ ground truth (exact, k_gt) ───────┴─ search (recall@k, QPS, latency)

Every stage is a pipeline stage, so the vector set and its exact ground truth are computed once
per suite and an index once per build configuration, shared by all of its query-parameter points.

Recall@k counts a returned neighbour when its true score is at least the k-th true score, scores
recomputed in float64 from the vectors (ann-benchmarks' distance-threshold recall, with a
tolerance of 1e-6 relative instead of its 1e-3, so that only exact ties count twice).
Batched QPS is the best of ``repeats`` passes over all queries in one call; single-query QPS and
latency come from the first ``single_queries`` queries, one call each.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rdmbench.cache import load_array, save_array, write_json
from rdmbench.schema import RetrieverSection
from rdmbench.stages import retriever, search as batched_search
from rdmbench.tasks.retrieval.schema import BenchmarkSection

if TYPE_CHECKING:
    from rdmbench.pipeline import Pipeline

#: ground truth depth, as in ann-benchmarks' files (100 neighbours per query)
GROUND_TRUTH_K = 100


def true_scores(db: np.ndarray, q: np.ndarray, ids: np.ndarray, metric: str) -> np.ndarray:
    """Scores (higher is better) of ``ids`` (Q, m) for each query, in float64; -inf where ids == -1."""
    out = np.full(ids.shape, -np.inf)
    for s in range(0, len(q), 256):
        qi = q[s:s + 256].astype(np.float64)
        idx = ids[s:s + 256]
        d = np.asarray(db[np.clip(idx, 0, None).reshape(-1)], dtype=np.float64).reshape(*idx.shape, -1)
        if metric == "cosine":
            qi = qi / np.maximum(np.linalg.norm(qi, axis=1, keepdims=True), 1e-12)
            d = d / np.maximum(np.linalg.norm(d, axis=2, keepdims=True), 1e-12)
        scores = -((qi[:, None] - d) ** 2).sum(-1) if metric == "l2" else np.einsum("qd,qmd->qm", qi, d)
        out[s:s + 256] = np.where(idx >= 0, scores, -np.inf)
    return out


def recall_at_k(db: np.ndarray, q: np.ndarray, truth: np.ndarray, found: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Per-query recall@k: the share of the k found whose true score reaches the k-th true score."""
    kth = true_scores(db, q, truth[:, k - 1:k], metric)
    got = true_scores(db, q, found[:, :k], metric)
    recall: np.ndarray = (got >= kth - 1e-6 * np.maximum(1.0, np.abs(kth))).sum(1) / k
    return recall


def ground_truth(pipe: Pipeline, metric: str, k: int, num_queries: int | None, seed: int, db_emb: Path,
                 q_emb: Path) -> Path:
    """The exact ``max(k, GROUND_TRUTH_K)`` nearest database entries (in ``metric``) of a seeded subset of
    ``num_queries`` queries (all of them when None)."""
    k_gt = max(GROUND_TRUTH_K, k)
    exact_spec = {"name": "exact", "metric": metric}
    config = {"metric": metric, "k": k_gt, "num_queries": num_queries, "seed": seed,
              "exact": pipe.fingerprint("retriever", exact_spec)}

    def compute(out: Path) -> dict[str, Any]:
        db = load_array(db_emb / "embeddings.npy")
        queries = load_array(q_emb / "embeddings.npy", mmap=True)
        n = len(queries) if num_queries is None else min(num_queries, len(queries))
        ids = np.sort(np.random.default_rng(seed).permutation(len(queries))[:n])
        exact = pipe.registry.create("retriever", exact_spec)
        exact.build(db)
        q = np.asarray(queries[ids], dtype=np.float32)
        _, found = batched_search(exact, q, min(k_gt, len(db)), {}, pipe.progress, batch=1024,
                           description="exact ground truth")
        save_array(out / "query_ids.npy", ids)
        save_array(out / "neighbours.npy", found)
        return {"queries": n, "database": len(db), "dim": db.shape[1], "k": k_gt}

    return pipe.stage("ground_truth", config, {"database": db_emb.name, "queries": q_emb.name}, compute,
                      uses=(batched_search,))


def timed_search(pipe: Pipeline, b: BenchmarkSection, r: RetrieverSection, paths: dict[str, Path]) -> Path:
    query = r.query
    config = {"query": query, "k": b.k, "single_queries": b.single_queries, "repeats": b.repeats}
    inputs = {"index": paths["index"].name, "ground_truth": paths["ground_truth"].name}

    def compute(out: Path) -> dict[str, Any]:
        ret = retriever(pipe, r, paths["index"], paths["db_embeddings"])
        db = load_array(paths["db_embeddings"] / "embeddings.npy", mmap=True)
        qids = load_array(paths["ground_truth"] / "query_ids.npy")
        q = np.asarray(load_array(paths["query_embeddings"] / "embeddings.npy", mmap=True)[qids], dtype=np.float32)
        k = b.k
        ret.search(q[:100], k, **query)  # warm-up: lazy initialisation, caches, thread pools
        best, ids = np.inf, None
        with pipe.progress.task(f"{r.name} batched search x{b.repeats}", b.repeats) as advance:
            for _ in range(b.repeats):
                start = time.perf_counter()
                _, found = ret.search(q, k, **query)
                best = min(best, time.perf_counter() - start)
                ids = found if ids is None else ids
                advance(1)
        single = q[:b.single_queries]
        latency = np.empty(len(single))
        with pipe.progress.task(f"{r.name} single queries", len(single)) as advance:
            for i in range(len(single)):
                start = time.perf_counter()
                ret.search(single[i:i + 1], k, **query)
                latency[i] = time.perf_counter() - start
                if i % 100 == 99:
                    advance(100)
        truth = load_array(paths["ground_truth"] / "neighbours.npy")
        assert ids is not None  # repeats > 0 (the schema's bound)
        recalls = recall_at_k(db, q, truth, ids, k, b.metric)
        save_array(out / "ids.npy", ids)
        save_array(out / "recall.npy", recalls.astype(np.float32))
        values = {"recall": float(recalls.mean()), "qps": len(q) / best,
                  "qps_single": (len(single) / latency.sum()) if len(single) else None,
                  "latency_p50_ms": float(np.percentile(latency, 50) * 1e3) if len(single) else None,
                  "latency_p99_ms": float(np.percentile(latency, 99) * 1e3) if len(single) else None,
                  "num_queries": len(q), "single_queries": len(single)}
        write_json(out / "search.json", values)
        return {}

    return pipe.stage("search", config, inputs, compute)
