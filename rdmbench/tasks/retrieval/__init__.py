"""The retrieval benchmark task, in the manner of ann-benchmarks: recall@k against exact search,
queries per second batched and one at a time, build time and index size, through the same cached
stages as generation where they overlap.

    data ─ database ─ embeddings(D) ─ index (build time, size) ─┐
      └─ embeddings(queries) ─ ground truth (exact, k_gt) ───────┴─ search (recall@k, QPS, latency)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rdmbench import stages as shared
from rdmbench.api import Encoder
from rdmbench.cache import read_json
from rdmbench.columns import ENCODER, Column
from rdmbench.tasks import Task
from rdmbench.tasks.retrieval.schema import RetrievalRunConfig
from rdmbench.validation import Checks, data_section, k_fits, retriever_section

if TYPE_CHECKING:
    from rdmbench.pipeline import Pipeline


class RetrievalTask(Task[RetrievalRunConfig]):
    name = "retrieval"
    schema = RetrievalRunConfig
    columns = (
        Column("retriever", "retriever", summary=False),
        Column("parameters", "parameters", summary=False),
        Column("recall", "recall@k", "higher", description="share of the k found that are among the true k nearest"),
        Column("qps", "queries/s (batched)", "higher"),
        Column("qps_single", "queries/s (one per call)", "higher"),
        Column("latency_p50_ms", "latency p50 (ms)", "lower"),
        Column("latency_p99_ms", "latency p99 (ms)", "lower"),
        Column("build_s", "build time (s)", "lower"),
        Column("index_bytes", "index size (bytes)", "lower"),
        Column("vectors", "vector set", summary=False),
        Column("metric", "metric", summary=False),
        Column("k", "k", summary=False, numeric=True),
        Column("database_size", "database size", summary=False, numeric=True),
        Column("dim", "dimensions", summary=False, numeric=True),
        ENCODER,
    )

    def validate(self, run: Any, out: dict[str, Any], checks: Checks) -> None:
        for kind in ("database", "encoder"):
            out[kind] = checks.plugin(kind, getattr(run, kind), kind)
        data_section(checks, run.data.model_dump(), out["data"])
        enc = checks.registry.contract(Encoder, out["encoder"]["name"]) if out["encoder"] is not None else None
        if enc is not None and enc.uses_first_stage:
            checks.error(f"encoder {out['encoder']['name']!r} embeds with a generation run's first stage, and a "
                         "retrieval benchmark has none; choose another encoder", "encoder")
        if enc is not None and enc.trainable:
            checks.error(f"encoder {out['encoder']['name']!r} is trained in a generation run (on its labelled training "
                         "set), and a retrieval benchmark trains nothing; choose a frozen encoder", "encoder")
        # the vector set's metric, as ann-benchmarks hands a dataset's metric to every algorithm
        given = run.retriever.build.get("metric", run.benchmark.metric)
        if given != run.benchmark.metric:
            checks.error(f"metric {given!r} differs from benchmark.metric {run.benchmark.metric!r}; drop it (the "
                         "benchmark sets it)", "retriever.build.metric")
        resolved = retriever_section(checks, run.retriever, build_defaults={"metric": run.benchmark.metric})
        if resolved is not None:
            out["retriever"] = resolved
        k_fits(checks, run.benchmark.k, 1, "benchmark.k", out["database"])

    def plugin_specs(self, spec: RetrievalRunConfig) -> list[tuple[str, str, dict[str, Any], bool]]:
        return [("dataset", "data.dataset", spec.data.dataset, True), ("database", "database", spec.database, True),
                ("encoder", "encoder", spec.encoder, True),
                ("retriever", "retriever", shared.retriever_spec(spec.retriever), False)]

    def describe(self, spec: RetrievalRunConfig) -> str:
        b, r = spec.benchmark, spec.retriever
        return (f"{b.label} ({spec.data.dataset['name']}, encoder={spec.encoder['name']}, {b.metric}, "
                f"k={b.k}, queries={b.queries}) retriever={r.name} build={r.build} query={r.query}")

    def run(self, pipe: Pipeline, spec: RetrievalRunConfig) -> tuple[dict[str, Any], dict[str, Path]]:
        from rdmbench.tasks.retrieval.stages import ground_truth, timed_search

        b, r = spec.benchmark, spec.retriever
        p: dict[str, Path] = {}
        p["data"] = shared.data(pipe, spec.data)
        p["database"] = shared.database(pipe, spec.database, spec.data, p["data"])
        p["db_embeddings"] = shared.embeddings(pipe, spec.encoder, p["database"], "database")
        p["query_embeddings"] = shared.embeddings(pipe, spec.encoder, p["data"], b.queries)
        p["ground_truth"] = ground_truth(pipe, b.metric, b.k, b.num_queries, spec.data.seed, p["db_embeddings"],
                                         p["query_embeddings"])
        p["index"] = shared.index(pipe, r, p["db_embeddings"])
        p["search"] = timed_search(pipe, b, r, p)
        gt, built = read_json(p["ground_truth"] / "info.json"), read_json(p["index"] / "info.json")
        params = {**{k: v for k, v in r.build.items() if k != "metric"}, **r.query}
        row = {**read_json(p["search"] / "search.json"),
               "build_s": built["build_s"], "index_bytes": built["index_bytes"],
               "retriever": r.name, "parameters": " ".join(f"{k}={v}" for k, v in params.items()),
               "vectors": b.label, "metric": b.metric, "k": b.k, "database_size": gt["database"],
               "dim": gt["dim"], "encoder": read_json(p["db_embeddings"] / "info.json").get("encoder"),
               **shared.opt_ins(p)}
        return row, {}
