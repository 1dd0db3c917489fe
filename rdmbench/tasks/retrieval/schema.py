"""The schema of a retrieval benchmark run (task ``retrieval``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rdmbench.schema import DataSection, PluginSpec, RetrieverSection, Section, Threads


class BenchmarkSection(Section):
    #: names this vector set in run ids and the report (e.g. fashion-mnist-784-euclidean)
    label: str = "embeddings"
    #: whose embeddings query D: X ("train", the RDM workload) or the held-out reference split
    queries: Literal["train", "reference"] = "train"
    #: a seeded subset of the queries; None: all of them
    num_queries: int | None = Field(default=10_000, gt=0)
    k: int = Field(default=20, gt=0)
    #: the space searched; given to the retriever as its ``metric`` and used by the exact ground truth
    metric: Literal["cosine", "ip", "l2"] = "cosine"
    #: the first this many queries are also timed one at a time (latency, single-query QPS)
    single_queries: int = Field(default=1000, ge=0)
    #: batched timing is the best of this many passes over all queries (ann-benchmarks takes the best too)
    repeats: int = Field(default=3, gt=0)


class RetrievalRunConfig(Section):
    """A retrieval benchmark run, in the manner of ann-benchmarks (task ``retrieval``): recall@k
    against exact search, queries per second batched and one at a time, build time, index size."""

    task: Literal["retrieval"] = "retrieval"
    seed: int = 0
    device: str = "auto"
    #: compute threads, as in a generation run
    threads: Threads = "auto"
    data: DataSection
    database: PluginSpec
    encoder: PluginSpec
    retriever: RetrieverSection
    benchmark: BenchmarkSection = Field(default_factory=BenchmarkSection)


