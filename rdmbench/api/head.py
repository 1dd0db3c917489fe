"""The head contract and what crosses it: ``TrainingData`` (what a head trains on), ``HeadInputs`` (what it is
built for), ``TrainSettings`` (the shared training loop's settings), ``SampleRequest`` (what it samples
from) and ``Head`` (the trained decoding head theta: a network and a loss)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rdmbench.api.plugin import Plugin

if TYPE_CHECKING:
    from rdmbench.progress import Progress


class Space(str, Enum):
    """The first stage's space a head generates in."""

    #: float latents (``FirstStage.encode``/``decode``)
    LATENTS = "latents"
    #: codebook ids of a first stage with a codebook (``encode_tokens``/``decode_tokens``)
    TOKENS = "tokens"


@dataclass
class TrainingData:
    """What a head trains on: X in the head's space and, per item, the ids of its neighbours in D.

    ``latents`` are the first stage's float latents (N, C, H, W), or its int64 token ids (N, h, w)
    for a head that generates tokens. ``context(index)`` gathers the embeddings of the first ``k``
    neighbours of the given items, (B, k, dim) float32; with ``k == 0`` (the fully parametric
    baseline) it returns None.
    """

    latents: np.ndarray
    neighbour_ids: np.ndarray | None
    database_embeddings: np.ndarray | None
    k: int

    def context(self, index: np.ndarray) -> np.ndarray | None:
        if self.k == 0:
            return None
        assert self.neighbour_ids is not None and self.database_embeddings is not None  # k > 0 has them
        ids = self.neighbour_ids[index, : self.k]
        return np.asarray(self.database_embeddings[ids.reshape(-1)], dtype=np.float32).reshape(*ids.shape, -1)


@dataclass(frozen=True)
class HeadInputs:
    """What a head is built for, known once the first stage is fitted and the database embedded.

    ``shape`` is (C, H, W) of the first stage's latents, or (h, w) of its token grid for a head that
    generates tokens, whose vocabulary is ``codebook_size``. ``context_dim`` is the width of the
    database embeddings; the parametric baseline (``k == 0``) is built at the width of the retrieval
    head it is compared with, so both have the same parameters.
    """

    shape: tuple[int, ...]
    context_dim: int
    k: int
    codebook_size: int | None = None


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """The shared training loop's settings (``rdmbench.training``). A run sets them in its ``train:`` section;
    each one it leaves out is the head's own (``Head.train_defaults``), resolved before any work."""

    steps: int = 1000  # 0: untrained weights, the floor every metric should beat
    batch_size: int = 64
    lr: float = 1e-4
    warmup_steps: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # max gradient norm; 0 disables clipping
    ema_decay: float = 0.999  # 0 disables the EMA (the last weights are kept)
    ema_power: float = 0.75
    #: autocast in the forward pass ("no", "bf16", "fp16"); the weights and the EMA stay float32
    mixed_precision: str = "no"
    #: micro-batches per optimisation step: ``batch_size`` is the effective batch, split over the
    #: launch's processes (rdmbench.processes) × these
    grad_accumulation: int = 1

    def resolve(self, written: dict[str, Any]) -> TrainSettings:
        """These settings (a head's defaults) with the ones a run wrote (None: left to the head) in their place,
        checked: the first out of range is a ConfigError keyed ``train.<field>``, before any work."""
        from rdmbench.errors import ConfigError

        out = replace(self, **{k: v for k, v in written.items() if v is not None})
        for ok, key, message in (
                (out.steps >= 0, "steps", f"must be at least 0, got {out.steps}"),
                (out.batch_size >= 1, "batch_size", f"must be at least 1, got {out.batch_size}"),
                (out.grad_accumulation >= 1 and out.batch_size % out.grad_accumulation == 0, "grad_accumulation",
                 f"must be at least 1 and divide batch_size={out.batch_size}, got {out.grad_accumulation}"),
                (out.lr > 0, "lr", f"must be > 0, got {out.lr}"),
                (out.warmup_steps >= 0, "warmup_steps", f"must be at least 0, got {out.warmup_steps}"),
                (out.weight_decay >= 0, "weight_decay", f"must be at least 0, got {out.weight_decay}"),
                (out.grad_clip >= 0, "grad_clip", f"must be at least 0 (0 disables clipping), got {out.grad_clip}"),
                (0.0 <= out.ema_decay < 1.0, "ema_decay", f"must be in [0, 1) (0 disables the EMA), got {out.ema_decay}"),
                (out.ema_power > 0, "ema_power", f"must be > 0, got {out.ema_power}"),
                (out.mixed_precision in ("no", "bf16", "fp16"), "mixed_precision",
                 f"must be one of no, bf16, fp16, got {out.mixed_precision!r}")):
            if not ok:
                raise ConfigError(message, key=f"train.{key}")
        return out


@dataclass(kw_only=True)
class SampleRequest:
    """What every head samples from: one context per sample (None for the baseline), how many, the seed, the
    batch size and classifier-free guidance (``guidance_scale`` mixes predictions, or logits). A head's own
    sampler settings (a diffusion solver and its steps, top-k and temperature, ...) are not here: they are the
    keyword-only arguments of its ``sample``."""

    context: np.ndarray | None
    num: int
    seed: int = 0
    batch_size: int = 250
    guidance_scale: float = 1.0
    #: classifier-free guidance as one batched forward ("batched") or two ("split"); they differ in the
    #: last bits, so the pipeline resolves it per device and keys it (rdmbench.schema.resolve_guidance_batching)
    guidance_batching: str = "split"


class Head(Plugin):
    """The trained decoding head theta, conditioned on k neighbour embeddings.

    A head is a model and a loss: ``network()`` returns the torch module, ``loss(model, data, index,
    generator)`` the scalar loss of a batch; the default ``fit`` trains it with the one loop every head shares
    (``rdmbench.training``: AdamW, warm-up, clipping, EMA, progress, on accelerate) under the run's ``train:``
    settings, whose defaults are the head's ``train_defaults``. A head with a loop of its own overrides ``fit``.
    """

    kind = "head"
    #: the first stage's space it generates in: latents (float) or tokens (codebook ids)
    generates: ClassVar[Space] = Space.LATENTS
    #: the shared loop's settings this head trains with where a run's ``train:`` section leaves one out
    train_defaults: ClassVar[TrainSettings] = TrainSettings()
    #: the resolved constructor arguments, bound before ``__init__`` runs: what the head is configured with
    config: dict[str, Any]
    #: neighbours per example it is built for (``setup`` sets it from ``HeadInputs.k``); 0: the parametric baseline
    k: int = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.generates = Space(cls.generates)  # "tokens" written as a string reads as Space.TOKENS

    def __new__(cls, *args: Any, **kwargs: Any) -> Head:
        self = super().__new__(cls)
        bound = inspect.signature(cls.__init__).bind(self, *args, **kwargs)
        bound.apply_defaults()
        self.config = dict(list(bound.arguments.items())[1:])
        return self

    # -- null conditioning, the baseline and guidance: the same for every head that learns a null token --------
    # A head with a ``cond_dropout`` argument trains on a learned null token in place of the neighbours with that
    # probability; it then knows an unconditional prediction, which classifier-free guidance needs, and its
    # k = 0 build (the parametric baseline, same network) only ever sees that token.

    def null_mask(self, n: int, generator: Any) -> Any:
        """Which of ``n`` training items see the null token instead of their neighbours: a CPU bool tensor drawn
        from ``generator`` (``cond_dropout``)."""
        import torch

        return torch.rand(n, generator=generator) < self.config["cond_dropout"]

    def conditioned(self, request: SampleRequest) -> SampleRequest:
        """The request as this head samples it: the baseline was never shown neighbours, so whatever context
        arrives, it sees the null token."""
        return replace(request, context=None) if self.k == 0 else request

    def guidance_path(self, request: SampleRequest) -> str:
        """"none" unguided (scale 1, or no context), else how the unconditional and conditional predictions are
        computed: one batched forward ("batched") or two ("split"). They differ in the last bits, so the
        pipeline resolves the choice per device type (never by timing) and keys the samples stage on it."""
        if request.guidance_scale == 1.0 or request.context is None:
            return "none"
        if request.guidance_batching not in ("batched", "split"):
            raise ValueError(f"guidance_batching must be 'batched' or 'split', got {request.guidance_batching!r}")
        return request.guidance_batching

    @staticmethod
    def guide(uncond: Any, cond: Any, scale: float) -> Any:
        """Classifier-free guidance (Ho & Salimans 2022) of predictions or logits."""
        return uncond + scale * (cond - uncond)

    def setup(self, inputs: HeadInputs, device: str, seed: int = 0) -> None:
        """Build the network (weights initialised from ``seed``) for these inputs."""
        raise NotImplementedError

    def network(self) -> Any:
        """The torch module the shared loop trains, saves and samples with."""
        raise NotImplementedError

    def loss(self, model: Any, data: TrainingData, index: Any, generator: Any) -> Any:
        """Scalar loss tensor of the items ``index`` (a torch int64 tensor) of ``data``; ``model`` is
        ``network()`` as the loop prepared it; draw all randomness from ``generator`` (CPU)."""
        raise NotImplementedError

    def fit(self, data: TrainingData, seed: int, progress: Progress | None = None,
            settings: TrainSettings | None = None) -> dict[str, float]:
        """Train under ``settings`` (None: ``train_defaults``); returns what the training stage records."""
        from rdmbench.training import fit

        return fit(self, data, seed, settings or self.train_defaults, progress)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.network().parameters())

    def supports_guidance(self) -> bool:
        """Whether classifier-free guidance means anything for this head as configured: it must have
        learned an unconditional (null) prediction (``cond_dropout`` > 0). Checked before any work when a
        run asks for a guidance scale other than 1."""
        return float(self.config.get("cond_dropout", 0.0)) > 0

    def check_sampler(self, codebook_size: int | None, **options: Any) -> str | None:
        """A problem with these sampler settings (``sample``'s keyword-only arguments, resolved) beyond their
        types, as one line (None: fine); reported at ``sample.head`` before any work."""
        return None

    def sample(self, request: SampleRequest, progress: Progress | None = None) -> np.ndarray:
        """(num, *shape) float32 latents, or int64 token ids for a head that generates tokens.

        The head's sampler settings are keyword-only arguments after ``progress`` (with defaults): a suite sets
        them under ``sample.head``, validated against this signature before any work (defaults filled in, and
        keyed into the samples stage), as a retriever's ``search_index`` arguments are under ``retriever.query``.
        """
        raise NotImplementedError

    def save(self, directory: Path) -> None:
        raise NotImplementedError

    def load(self, directory: Path) -> None:
        raise NotImplementedError
