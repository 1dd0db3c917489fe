"""The schema of a generation run: train a head on retrieved neighbours, sample, measure."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rdmbench.schema import DataSection, PluginSpec, RetrieverSection, Section, Threads


class TrainSection(Section):
    """The shared training loop's settings (``rdmbench.api.TrainSettings``, ``rdmbench.training``). Each one left
    out is the run's head's own default (``rdmbench plugins head`` lists them), filled in before any work; a run
    whose sweep switches the head to another plugin starts again from that head's defaults."""

    #: optimisation steps; 0: untrained weights, the floor every metric should beat
    steps: int | None = Field(default=None, ge=0)
    #: the effective batch, split over the launch's processes × grad_accumulation
    batch_size: int | None = Field(default=None, ge=1)
    lr: float | None = Field(default=None, gt=0.0)
    #: steps of linear warm-up to ``lr``
    warmup_steps: int | None = Field(default=None, ge=0)
    weight_decay: float | None = Field(default=None, ge=0.0)
    #: max gradient norm; 0 disables clipping
    grad_clip: float | None = Field(default=None, ge=0.0)
    #: 0 disables the EMA (the last weights are kept)
    ema_decay: float | None = Field(default=None, ge=0.0, lt=1.0)
    ema_power: float | None = Field(default=None, gt=0.0)
    #: autocast in the forward pass; the weights and the EMA stay float32
    mixed_precision: Literal["no", "bf16", "fp16"] | None = None
    #: micro-batches per optimisation step (must divide batch_size)
    grad_accumulation: int | None = Field(default=None, ge=1)


class SampleSection(Section):
    #: a sampling-mode plugin: how queries are chosen and which neighbours condition each sample
    #: (``rdmbench plugins sampling_mode``): ``unconditional`` (pseudo-queries from p_D with top-m),
    #: ``held-out`` (held-out query images)
    mode: PluginSpec = Field(default_factory=lambda: {"name": "unconditional"})
    num: int = Field(default=500, gt=0)
    #: neighbours at sampling time; None: the run's k_train
    k: int | None = Field(default=None, ge=0)
    guidance_scale: float = Field(default=1.0, ge=0.0)
    #: the head's own sampler settings: the keyword-only arguments of its ``sample`` (``rdmbench plugins head``
    #: lists them), e.g. rdm: ``{solver: ddim, steps: 50, eta: 0.0}``, rarm: ``{top_k: null, temperature: 1.0}``;
    #: validated against the run's head before any work, defaults filled in
    head: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = Field(default=250, gt=0)
    #: classifier-free guidance as one batched forward or two (they differ in the last bits);
    #: auto: batched on CUDA, split elsewhere, by device type only. The resolved value is keyed.
    guidance_batching: Literal["auto", "batched", "split"] = "auto"
    #: a database given at sampling time (a database plugin spec), embedded and indexed like the
    #: training one and cached alike; None: the training database
    database: PluginSpec | None = None
    #: the encoder that embeds the sampling database; None: the run's encoder. Any other encoder is
    #: refused: the head was trained on the run's encoder's vectors
    encoder: PluginSpec | None = None
    #: how the sampling database is indexed and searched; None: the run's retriever section
    retriever: RetrieverSection | None = None


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
    #: an encoder with a text tower that grades text-conditioned samples against their prompts
    #: (``text-agreement``): not the run's encoder, so a head is not graded only by the space that steered it
    text_space: PluginSpec | None = None
    #: bootstrap resamples of the generated samples behind each metric's ``<col>_lo``/``<col>_hi``
    #: confidence interval (rdmbench.stats); 0: no intervals
    bootstrap: int = Field(default=200, ge=0)
    #: coverage of those intervals
    ci_level: float = Field(default=0.95, gt=0.0, lt=1.0)
    #: novelty: a sample is a near-copy when its nearest training image (in the feature extractor's
    #: space, relative to its 10th nearest) is nearer than for this quantile of held-out images, so
    #: samples as novel as held-out images give near_copies ≈ this value
    near_copy_quantile: float = Field(default=0.05, gt=0.0, lt=0.5)


class RunConfig(Section):
    """A generation run: train a head on retrieved neighbours, sample, measure (task ``generation``)."""

    task: Literal["generation"] = "generation"
    seed: int = 0
    #: names the configuration in run ids and the report where a swept value is a whole section
    #: (a database): sweep it in a zip beside that section
    label: str | None = None
    #: neighbours per training example; 0 is the fully parametric baseline (same head, no retrieval)
    k_train: int = Field(default=4, ge=0)
    #: auto: cuda if available, else cpu. Not part of cache keys.
    device: str = "auto"
    #: float sums reduce in another order with another count, so it can change the numbers (docs/scaling.md)
    threads: Threads = "auto"
    data: DataSection
    database: PluginSpec
    first_stage: PluginSpec = Field(default_factory=lambda: {"name": "identity"})
    encoder: PluginSpec
    retriever: RetrieverSection
    head: PluginSpec
    train: TrainSection = Field(default_factory=TrainSection)
    sample: SampleSection = Field(default_factory=SampleSection)
    metrics: MetricsSection
