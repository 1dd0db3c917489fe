"""The schema of one run's configuration (the ``base:`` of a suite after profile and sweep).

Plugin sections are ``{name: ..., **constructor kwargs}`` and are checked against the plugin's
signature by the registry; everything else is checked here. Unknown keys are errors everywhere.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PluginSpec = dict[str, Any]


class Section(BaseModel):
    # strict: "64", true and 64.0 are not integers (coercing them once made "64" and 64 two runs of one
    # config); an int where a float is expected still fits, as YAML writes 1 for 1.0
    model_config = ConfigDict(extra="forbid", strict=True)


class DataSection(Section):
    dataset: PluginSpec
    train_split: str = "train"
    #: None: the whole split.
    train_size: int | None = Field(default=None, gt=0)
    #: the held-out split that metrics compare against (never seen by the head or the database)
    reference_split: str = "test"
    reference_size: int | None = Field(default=None, gt=0)
    #: X and D must be disjoint (checked by content hash) unless this is true
    allow_overlap: bool = False
    #: D and the reference set must be disjoint too (samples would be scored against images the
    #: model retrieves) unless this is true; the overlap is recorded in the database stage's info
    allow_reference_overlap: bool = False
    #: seed of the X / reference subsets; apart from the run seed so that seeds share the data stages
    seed: int = 0


class RetrieverSection(Section):
    name: str
    #: build-time parameters: the retriever's constructor arguments
    build: dict[str, Any] = Field(default_factory=dict)
    #: query-time parameters: keyword-only arguments of the retriever's ``search_index``
    query: dict[str, Any] = Field(default_factory=dict)
    #: neighbours searched once per training image: at least this many, more if a run needs more.
    #: A fixed floor lets suites with different k ranges share one neighbour table.
    train_neighbours: int = Field(default=16, ge=1)


class SampleSection(Section):
    #: unconditional: pseudo-queries drawn from the proposal p_D with top-m truncation (paper 3.3);
    #: reference-queries: neighbours of held-out reference images (image-conditioned)
    mode: Literal["unconditional", "reference-queries"] = "unconditional"
    num: int = Field(default=500, gt=0)
    #: neighbours at sampling time; None: the run's k_train
    k: int | None = Field(default=None, ge=0)
    top_m: float = Field(default=1.0, gt=0.0, le=1.0)
    guidance_scale: float = Field(default=1.0, ge=0.0)
    steps: int = Field(default=50, gt=0)
    eta: float = Field(default=0.0, ge=0.0, le=1.0)
    batch_size: int = Field(default=250, gt=0)
    #: drop the pseudo-query itself from its own neighbour set (official code's omit-query option)
    omit_query: bool = False
    #: classifier-free guidance as one batched forward or two (they differ in the last bits);
    #: auto: batched on CUDA, split elsewhere, by device type only. The resolved value is keyed.
    guidance_batching: Literal["auto", "batched", "split"] = "auto"


def resolve_guidance_batching(choice: str, device: str) -> str:
    """``auto`` by device type, never by timing: a timed choice could flip between two runs of
    one config and change their numbers (k = 2 of the k_train table did not reproduce).

    Batched was measured 0.66x as fast as split on a 2-core CPU (benchmarks/RESULTS.md); on GPUs
    one batched forward fills the device better.
    """
    if choice != "auto":
        return choice
    return "batched" if str(device).startswith("cuda") else "split"


class MetricsSection(Section):
    #: an encoder plugin that extracts the metric features (ideally not the retrieval encoder)
    feature_extractor: PluginSpec
    #: metric plugin name -> its arguments
    use: dict[str, dict[str, Any]]
    #: bootstrap resamples of the generated samples behind each metric's ``<col>_lo``/``<col>_hi``
    #: confidence interval (rdmbench.stats); 0: no intervals
    bootstrap: int = Field(default=200, ge=0)
    #: coverage of those intervals
    ci_level: float = Field(default=0.95, gt=0.0, lt=1.0)


class RunConfig(Section):
    """A generation run: train a head on retrieved neighbours, sample, measure (task ``generation``)."""

    task: Literal["generation"] = "generation"
    seed: int = 0
    #: neighbours per training example; 0 is the fully parametric baseline (same head, no retrieval)
    k_train: int = Field(default=4, ge=0)
    #: auto: cuda if available, else cpu. Not part of cache keys.
    device: str = "auto"
    data: DataSection
    database: PluginSpec
    first_stage: PluginSpec = Field(default_factory=lambda: {"name": "identity"})
    encoder: PluginSpec
    retriever: RetrieverSection
    head: PluginSpec
    sample: SampleSection = Field(default_factory=SampleSection)
    metrics: MetricsSection


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
    data: DataSection
    database: PluginSpec
    encoder: PluginSpec
    retriever: RetrieverSection
    benchmark: BenchmarkSection = Field(default_factory=BenchmarkSection)


TASKS = {"generation": RunConfig, "retrieval": RetrievalRunConfig}

SUITE_KEYS = ("suite", "version", "description", "task", "include", "base", "sweep", "seeds", "profiles",
              "default_profile", "report")
SWEEP_KEYS = ("grid", "zip", "groups")
REPORT_KEYS = ("x", "hue", "metrics", "title")
