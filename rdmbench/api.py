"""The contracts every plugin kind implements.

A plugin class sets ``name`` (what suites call it) and a docstring whose first line is its
one-line description. Its ``__init__`` keyword arguments, with type annotations and defaults, are
its configuration: the registry validates a suite's values against them before any work starts,
and the resolved values become part of every cache key the plugin touches.

Arrays cross plugin boundaries as numpy (images uint8 NHWC, embeddings float32), so that
plugins built on other frameworks fit. This module must not import torch.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator

import numpy as np

from rdmbench.cache import file_digest, write_text
from rdmbench.errors import RdmbenchError

if TYPE_CHECKING:
    from rdmbench.progress import Progress


class Plugin:
    """Base of all plugins. Subclasses set ``kind`` (via their contract) and ``name``."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    #: Bump when the plugin's output changes for the same config, so cached stages are recomputed.
    version: ClassVar[int] = 1
    #: importable module -> install hint (the command, and a built-in to use instead): the runner imports
    #: each before any work (``check_requirements``), so a missing library is one line, not a traceback
    requires: ClassVar[dict[str, str]] = {}

    def check(self, *, images: tuple[int, int, int] | None = None) -> None:
        """Cheap checks, before any work, that what this plugin will read is there and readable (weights
        load as tensors, files parse) and that it can work on the run's images: ``images`` is the (height,
        width, channels) of the run's training images X, read from one row (None where it cannot be told).
        Raise an RdmbenchError (a ConfigError with ``key=`` the argument at fault) whose one line names the
        file or argument and the fix. The runner's preflight calls it for every plugin of every run, and so
        does ``--dry-run``; a plugin whose ``check`` takes no ``images`` is called without."""

    @classmethod
    def check_requirements(cls) -> None:
        """Import every module in ``requires``; a missing one is one MissingDependency line with its hint."""
        import importlib

        from rdmbench.errors import MissingDependency

        for module, hint in cls.requires.items():
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise MissingDependency(f"{hint} ({type(exc).__name__}: {exc})") from None

    @classmethod
    def description(cls) -> str:
        doc = inspect.getdoc(cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


@dataclass
class ImageSet:
    """Images with optional labels. ``images`` is uint8 (N, H, W, C); ``labels`` int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError("labels and images differ in length")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray) -> ImageSet:
        labels = None if self.labels is None else self.labels[index]
        return ImageSet(self.images[index], labels, self.class_names)


@dataclass
class SplitView:
    """Rows ``indices`` of a dataset split, decoded only when read, a chunk at a time.

    What the pipeline stores X, the reference set and D from, so that a split larger than RAM is
    written to disk chunk by chunk and never held whole (``Database.build`` may return one too).
    """

    dataset: Dataset
    split: str
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    def chunks(self) -> Iterator[ImageSet]:
        """Consecutive rows, about ``rdmbench.chunks.CHUNK_BYTES`` of pixels each, in order.

        The first chunk is one image, which tells the image size; an empty view yields one empty chunk.
        """
        from rdmbench import chunks

        start, step = 0, 1
        while True:
            asked = self.indices[start : start + step]
            part = self.dataset.read(self.split, asked)
            if len(part) != len(asked):
                raise RdmbenchError(f"dataset {self.dataset.name!r} returned {len(part)} images of split "
                                    f"{self.split!r} for {len(asked)} indices")
            yield part
            start += len(part)
            if start >= len(self.indices):
                return
            step = chunks.rows_per_chunk(part.images[0].nbytes)

    def load(self) -> ImageSet:
        """Every row in memory at once: for small views only."""
        return self.dataset.read(self.split, self.indices)


class Dataset(Plugin):
    """Labelled image splits. ``load(split)`` returns the whole split, deterministically.

    Streaming: the pipeline never calls ``load``; it asks ``count(split)``, picks rows, and reads
    them in chunks with ``read(split, indices)``. The defaults below serve both from ``load`` (one
    split kept in memory between calls), so an in-memory dataset writes ``load`` only; a dataset
    too large for RAM (``image-folder``) overrides ``count`` and ``read`` to decode only the rows
    asked for. ``read`` must return exactly ``load(split).subset(indices)``.
    """

    kind = "dataset"
    splits: ClassVar[tuple[str, ...]] = ("train", "test")

    def load(self, split: str) -> ImageSet:
        raise NotImplementedError

    def count(self, split: str) -> int:
        """Number of images in ``split``."""
        return len(self._whole(split))

    def read(self, split: str, indices: np.ndarray) -> ImageSet:
        """Images ``indices`` (ascending or not) of ``split``, with labels and class names."""
        return self._whole(split).subset(np.asarray(indices, dtype=np.int64))

    def _whole(self, split: str) -> ImageSet:
        # plugins need not call super().__init__, hence the lookup in __dict__
        held = self.__dict__.get("_whole_split")
        if held is None or held[0] != split:
            held = self.__dict__["_whole_split"] = (split, self.load(split))
        return held[1]

    def fingerprint(self) -> dict[str, Any]:
        """Extra cache-key material beyond the constructor arguments (e.g. source file hashes)."""
        return {}


class Database(Plugin):
    """The retrieval database D, built so that it is disjoint from the training set X."""

    kind = "database"

    def size_hint(self) -> int | None:
        """Number of entries if known from the config alone (lets k be checked before any work)."""
        return None

    def image_shape(self) -> tuple[int, ...] | None:
        """(H, W, C) of the images ``build`` will give, when one image read tells it (before any build,
        for checks such as a crop size); None: not known before building."""
        return None

    def build(self, train: ImageSet, seed: int) -> ImageSet | SplitView:
        """Return D's images (labels if known), or a ``SplitView`` of a dataset's rows, which the
        pipeline stores a chunk at a time. ``train`` is X (memory-mapped), so D can exclude it."""
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        """Extra cache-key material beyond the constructor arguments (e.g. source file hashes)."""
        return {}


class Encoder(Plugin):
    """A frozen image embedder.

    ``features(images)`` returns a dict with at least ``"embedding"`` (N, dim) float32; an encoder
    that also classifies returns ``"logits"`` (N, classes), which the Inception Score needs.
    """

    kind = "encoder"
    provides: ClassVar[tuple[str, ...]] = ("embedding",)
    #: the pipeline stores embeddings L2-normalised (cosine retrieval, the paper's); False keeps raw
    #: values, for vector sets searched by L2 distance such as ann-benchmarks' fashion-mnist-784-euclidean
    normalize: ClassVar[bool] = True
    #: True for an encoder built on the run's first stage (``vqgan-pool``): the generation task fits the
    #: first stage before embedding, hands it over with ``attach_first_stage``, and keys the embeddings on it
    uses_first_stage: ClassVar[bool] = False
    #: True for an encoder with a text tower in its image space (``encode_text``): text-conditioned
    #: sampling modes need one, and so does a metric's image–text space
    encodes_text: ClassVar[bool] = False
    #: True for an encoder with parts trained on the run's labelled training set (a joint image–text space
    #: of frozen towers): the pipeline calls ``fit`` once in a cached stage, ``save``s it, and ``load``s it
    #: before every use, keyed on that stage
    trainable: ClassVar[bool] = False
    #: result columns (``rdmbench.columns.Column``) a trainable encoder adds to every row from its ``fit``
    #: report: column ``encoder_<key>`` holds the report's ``<key>``
    fit_columns: ClassVar[tuple[str, ...]] = ()
    batch_size: int = 256

    def attach_first_stage(self, first_stage: FirstStage) -> None:
        """Receive the run's fitted first stage (only called when ``uses_first_stage``)."""

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32 embeddings of ``texts`` in the image embeddings' space (``encodes_text`` only)."""
        raise NotImplementedError(f"encoder {self.name!r} has no text tower")

    def fit(self, train: ImageSet, seed: int, progress: Progress | None = None) -> dict[str, Any]:
        """Train what ``trainable`` says is trained, on the run's training set (images, labels, class names);
        returns what to report of it (e.g. held-out retrieval accuracy), numbers stored beside every row."""
        return {}

    def save(self, directory: Path) -> None:
        """Write what ``fit`` trained (tensors only: it is read back with weights_only loading)."""

    def load(self, directory: Path) -> None:
        """Read what ``save`` wrote."""

    def identity(self) -> str:
        """Human-readable name of the network and its weights, stored beside every number."""
        return self.name

    def encode_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """One batch of uint8 (B, H, W, 1 or 3) images -> {output: (B, dim)}; what subclasses write."""
        raise NotImplementedError

    def features(self, images: np.ndarray, progress: Progress | None = None) -> dict[str, np.ndarray]:
        """``encode_batch`` over all images in batches of ``batch_size``, with progress, as float32."""
        from contextlib import nullcontext

        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"expected uint8 (N, H, W, 1 or 3) images, got {images.dtype} {images.shape}")
        if len(images) == 0:  # one blank image tells the output widths
            blank = np.zeros((1, *images.shape[1:]), np.uint8)
            return {k: np.asarray(v, np.float32)[:0] for k, v in self.encode_batch(blank).items()}
        parts: dict[str, list[np.ndarray]] = {}
        with progress.task(f"{self.name} features", len(images)) if progress else nullcontext() as advance:
            for start in range(0, len(images), self.batch_size):
                batch = np.array(images[start : start + self.batch_size])  # writable, contiguous copy
                for key, value in self.encode_batch(batch).items():
                    parts.setdefault(key, []).append(np.asarray(value, dtype=np.float32))
                if advance:
                    advance(len(batch))
        return {k: np.concatenate(v) for k, v in parts.items()}

    def fingerprint(self) -> dict[str, Any]:
        return {}


class Retriever(Plugin):
    """Nearest-neighbour search over embeddings, with the behaviour every retriever shares.

    A plugin writes four methods over plain float32 arrays and this base does the rest:

    - ``build_index(x)``: x is (n >= 1, dim) float32, C-contiguous, L2-normalised when ``metric``
      is ``cosine``;
    - ``search_index(q, k, *, <query args>)``: 1 <= k <= n; returns (scores, ids), best first,
      scores where higher is better (similarity, or minus the squared L2 distance); ids may hold
      -1 where the library found fewer than k. Query-time parameters are its keyword-only
      arguments, so a suite's ``retriever.query`` is validated against them before any work;
    - ``save_index(directory)`` / ``load_index(directory)``: the library's own files.

    Constructor keyword arguments are the build-time parameters and must include ``metric``
    (``cosine``, ``ip`` or ``l2``); the base sets ``self.metric`` from the resolved arguments before
    ``__init__`` runs, so a plugin need not (``super().__init__(metric=metric)`` works too).
    ``build``/``search``/``save``/``load`` check dimensions, pad k > n with -1, handle an empty
    database, and save a manifest (config, dimension, metric, a digest of the embeddings, a checksum
    per index file) that ``load`` checks, so a stale or corrupted index is refused, never silently used.

    ``requires`` (every kind has it, rdmbench.api.Plugin) is checked again by ``build``/``load``.
    """

    kind = "retriever"
    METRICS: ClassVar[tuple[str, ...]] = ("cosine", "ip", "l2")
    MANIFEST: ClassVar[str] = "retriever.json"
    metric: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # a class-level default metric once made a plugin that forgot it normalise l2 vectors silently
        if cls.name and "metric" not in inspect.signature(cls.__init__).parameters:
            raise TypeError(f"retriever {cls.name!r}: __init__ must take a `metric` argument "
                            f"({', '.join(cls.METRICS)}); the base class sets self.metric from it")

    def __new__(cls, *args: Any, **kwargs: Any) -> Retriever:
        self = super().__new__(cls)
        bound = inspect.signature(cls.__init__).bind(self, *args, **kwargs)
        bound.apply_defaults()
        #: the resolved constructor arguments: what a saved index must have been built with
        self.config = dict(list(bound.arguments.items())[1:])
        self.metric = self.config.get("metric", "cosine")
        self.dim: int | None = None
        self.n = 0
        return self

    def __init__(self, metric: str = "cosine") -> None:
        self.metric = metric


    #: True when the plugin builds with ``build_streamed`` (a training sample, then the database added a
    #: chunk at a time) rather than ``build_index`` (one float32 copy of the whole database in memory)
    streams: ClassVar[bool] = False

    # -- what a plugin writes -------------------------------------------------------------------------
    def build_index(self, x: np.ndarray) -> None:
        raise NotImplementedError

    def build_streamed(self, embeddings: np.ndarray) -> None:
        """Build from the raw (memory-mapped) embeddings, reading them with ``vector_sample`` and
        ``vector_chunks``; only for a plugin that sets ``streams``."""
        raise NotImplementedError

    def search_index(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def save_index(self, directory: Path) -> None:
        raise NotImplementedError

    def load_index(self, directory: Path) -> None:
        raise NotImplementedError

    def index_bytes(self) -> int | None:
        """Size of the index when it is not what ``save_index`` writes (e.g. held in memory only)."""
        return None

    def build_info(self) -> dict[str, Any]:
        """What was built where an opt-in let it differ from what was asked (e.g. ``{"built": "flat"}``);
        saved in the manifest, so a row can name it."""
        return {}

    # -- what every retriever gets --------------------------------------------------------------------
    def build(self, embeddings: np.ndarray) -> None:
        """Build over ``embeddings`` (memory-mapped from the cache). A retriever that ``streams`` is handed
        them as they are and reads them a chunk at a time (``vector_chunks``, ``vector_sample``); any other
        gets one float32 copy (``build_index``)."""
        if self.metric not in self.METRICS:
            raise ValueError(f"metric must be one of {', '.join(self.METRICS)}, got {self.metric!r}")
        self.check_requirements()
        if embeddings.ndim != 2:
            raise ValueError(f"expected a (n, dim) array, got shape {embeddings.shape}")
        self.n, self.dim = embeddings.shape
        self._digest = array_digest(embeddings)
        if self.n and self.streams:
            self.build_streamed(embeddings)
        elif self.n:
            self.build_index(self._vectors(embeddings))

    def vector_chunks(self, embeddings: np.ndarray) -> Iterator[np.ndarray]:
        """Consecutive rows of ``embeddings`` as ``build_index`` would see them (float32, normalised for
        cosine), about ``rdmbench.chunks.CHUNK_BYTES`` at a time."""
        from rdmbench.chunks import row_chunks

        for chunk in row_chunks(embeddings):
            yield self._vectors(chunk)

    def vector_sample(self, embeddings: np.ndarray, size: int, seed: int) -> np.ndarray:
        """A seeded sample of ``size`` rows (all rows when the database is no larger), in ascending order:
        what an index trains its quantisers on."""
        if size >= len(embeddings):
            return self._vectors(np.asarray(embeddings))
        rows = np.sort(np.random.default_rng(seed).choice(len(embeddings), size, replace=False))
        return self._vectors(np.asarray(embeddings[rows]))

    def search(self, queries: np.ndarray, k: int, **query: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores float32 (Q, k), ids int64 (Q, k)), best first; -1 / -inf pad missing results.

        Kept lean: one query per call is a benchmarked mode, where every microsecond here shows.
        """
        if self.dim is None:
            raise RuntimeError("build() or load() first")
        q = queries if type(queries) is np.ndarray and queries.dtype == np.float32 else np.asarray(queries, np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries have shape {q.shape}, the index has dimension {self.dim}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        k_eff = min(k, self.n)
        if k_eff == 0:
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        scores, ids = self.search_index(self._vectors(q), k_eff, **query)
        if scores.dtype != np.float32:
            scores = scores.astype(np.float32)
        if ids.dtype != np.int64:
            ids = ids.astype(np.int64)
        # libraries put sentinels (e.g. +-FLT_MAX) beside ids they could not fill; a ScaNN tree whose
        # searched leaves hold nothing returns no column at all
        if ids.size and ids.min() < 0:
            scores = np.where(ids < 0, np.float32(-np.inf), scores)
        if ids.shape[1] < k:
            scores = np.pad(scores, ((0, 0), (0, k - ids.shape[1])), constant_values=-np.inf)
            ids = np.pad(ids, ((0, 0), (0, k - ids.shape[1])), constant_values=-1)
        return scores, ids

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        if self.n:
            self.save_index(directory)
        files = {p.name: file_digest(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != self.MANIFEST}
        manifest = {"retriever": self.name, "version": self.version, "config": self.config, "dim": self.dim,
                    "n": self.n, "metric": self.metric, "embeddings_sha256": self._digest, "files": files,
                    **self.build_info()}
        write_text(directory / self.MANIFEST, json.dumps(manifest, indent=1, default=str))

    def load(self, directory: Path, embeddings: np.ndarray) -> None:
        self.check_requirements()
        directory = Path(directory)
        path = directory / self.MANIFEST
        if not path.exists():
            raise RdmbenchError(f"no saved {self.name!r} index in {directory} ({self.MANIFEST} missing); rebuild it")
        meta = json.loads(path.read_text())
        problems = []
        if meta["retriever"] != self.name or meta["version"] != self.version:
            problems.append(f"it was saved by {meta['retriever']!r} v{meta['version']}, not {self.name!r} v{self.version}")
        if json.loads(json.dumps(self.config, default=str)) != meta["config"]:
            problems.append(f"it was built with {meta['config']}, not {self.config}")
        if embeddings.ndim != 2 or embeddings.shape[1] != meta["dim"] or len(embeddings) != meta["n"]:
            problems.append(f"it holds {meta['n']} x {meta['dim']} vectors, the embeddings are {embeddings.shape}")
        elif array_digest(embeddings) != meta["embeddings_sha256"]:
            problems.append("it was built from other embeddings")
        for name, digest in meta["files"].items():
            if not (directory / name).exists() or file_digest(directory / name) != digest:
                problems.append(f"{name} is missing or its checksum does not match")
        if problems:
            raise RdmbenchError(f"refusing stale {self.name!r} index in {directory}: " + "; ".join(problems)
                                + " (delete it to rebuild)")
        self.n, self.dim, self._digest = meta["n"], meta["dim"], meta["embeddings_sha256"]
        if self.n:
            self.load_index(directory)

    def _vectors(self, x: np.ndarray) -> np.ndarray:
        """float32, C-contiguous, L2-normalised for cosine: what build_index receives."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"expected a (n, dim) array, got shape {x.shape}")
        if self.metric == "cosine":
            x = x / np.maximum(np.sqrt(np.einsum("ij,ij->i", x, x)), 1e-12)[:, None]
        return np.ascontiguousarray(x)


def array_digest(x: np.ndarray) -> str:
    """sha256 of an array's float32 values and shape: what an index was built from. Read a chunk of rows at a
    time, so a memory-mapped database of any size is hashed in flat memory (the digest is the whole array's)."""
    from rdmbench.chunks import row_chunks

    h = hashlib.sha256(repr(tuple(x.shape)).encode())
    for chunk in row_chunks(x):
        h.update(np.ascontiguousarray(chunk, dtype=np.float32).tobytes())
    return h.hexdigest()


class FirstStage(Plugin):
    """The space a head generates in: ``encode`` images to latents, ``decode`` back to uint8 images.

    A first stage that quantises to a codebook (a VQ autoencoder) also exposes token ids: it returns
    the number of codes from ``codebook_size`` (None: no tokens, the default), ``encode_tokens``
    gives int64 (N, h, w) code ids and ``decode_tokens`` images from them. Heads that generate
    tokens (``Head.generates == "tokens"``, e.g. RARM) need one.
    """

    kind = "first_stage"
    trainable: ClassVar[bool] = False

    def fit(self, images: np.ndarray, seed: int, progress: Progress | None = None) -> dict[str, float]:
        return {}

    def latent_shape(self, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        raise NotImplementedError

    def encode(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def decode(self, latents: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def codebook_size(self) -> int | None:
        """Number of codebook entries when this first stage (as configured, before any fit) has tokens."""
        return None

    def encode_tokens(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, C) images -> int64 (N, h, w) codebook ids, h x w = ``latent_shape``'s grid."""
        raise NotImplementedError(f"first stage {self.name!r} has no codebook")

    def decode_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """int (N, h, w) codebook ids -> uint8 (N, H, W, C) images."""
        raise NotImplementedError(f"first stage {self.name!r} has no codebook")

    def save(self, directory: Path) -> None:
        pass

    def load(self, directory: Path) -> None:
        pass


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


@dataclass(frozen=True)
class TrainSettings:
    """The shared training loop's settings (``rdmbench.training``); heads take them as constructor arguments."""

    steps: int
    batch_size: int
    lr: float
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

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TrainSettings:
        """From a head's resolved constructor arguments, named as every built-in head names them
        (``train_steps``, ``batch_size``, ``lr``, ``warmup_steps``, ``weight_decay``, ``grad_clip``,
        ``ema_decay``, ``ema_power``, and optionally ``mixed_precision``, ``grad_accumulation``)."""
        return cls(cfg["train_steps"], cfg["batch_size"], cfg["lr"], cfg["warmup_steps"], cfg["weight_decay"],
                   cfg["grad_clip"], cfg["ema_decay"], cfg["ema_power"], cfg.get("mixed_precision", "no"),
                   cfg.get("grad_accumulation", 1))


@dataclass
class SampleRequest:
    """What a head samples from: one context per sample (None for the baseline) and the sampler settings.

    Diffusion heads read ``solver`` ("ddim", "dpm++"), ``steps`` and ``eta``; token heads ``top_k`` (None:
    the whole codebook) and ``temperature``. Classifier-free guidance (``guidance_scale``) mixes predictions, or logits.
    """

    context: np.ndarray | None
    num: int
    guidance_scale: float = 1.0
    steps: int = 50
    eta: float = 0.0
    seed: int = 0
    batch_size: int = 250
    #: classifier-free guidance as one batched forward ("batched") or two ("split"); they differ in the
    #: last bits, so the pipeline resolves it per device and keys it (rdmbench.schema.resolve_guidance_batching)
    guidance_batching: str = "split"
    top_k: int | None = None
    temperature: float = 1.0
    solver: str = "ddim"


class Head(Plugin):
    """The trained decoding head theta, conditioned on k neighbour embeddings.

    A head is a model and a loss: ``network()`` returns the torch module, ``loss(model, data, index,
    generator)`` the scalar loss of a batch, and ``train_settings()`` the loop's settings; the default
    ``fit`` trains it with the one loop every head shares (``rdmbench.training``: AdamW, warm-up,
    clipping, EMA, progress, on accelerate). A head with a loop of its own overrides ``fit``.
    """

    kind = "head"
    #: the first stage's space it generates in: "latents" (float) or "tokens" (codebook ids)
    generates: ClassVar[str] = "latents"

    def setup(self, inputs: HeadInputs, device: str, seed: int = 0) -> None:
        """Build the network (weights initialised from ``seed``) for these inputs."""
        raise NotImplementedError

    def network(self) -> Any:
        """The torch module the shared loop trains, saves and samples with."""
        raise NotImplementedError

    def train_settings(self) -> TrainSettings:
        raise NotImplementedError

    def loss(self, model: Any, data: TrainingData, index: Any, generator: Any) -> Any:
        """Scalar loss tensor of the items ``index`` (a torch int64 tensor) of ``data``; ``model`` is
        ``network()`` as the loop prepared it; draw all randomness from ``generator`` (CPU)."""
        raise NotImplementedError

    def fit(self, data: TrainingData, seed: int, progress: Progress | None = None) -> dict[str, float]:
        from rdmbench.training import fit

        return fit(self, data, seed, progress)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.network().parameters())

    def supports_guidance(self) -> bool:
        """Whether classifier-free guidance means anything for this head as configured: it must have
        learned an unconditional (null) prediction. Checked before any work when a run asks for a
        guidance scale other than 1; a head opts in."""
        return False

    def check_sampler(self, request: SampleRequest, codebook_size: int | None) -> str | None:
        """A problem with these sampler settings as one line (None: fine), reported before any work."""
        return None

    def sample(self, request: SampleRequest, progress: Progress | None = None) -> np.ndarray:
        """(num, *shape) float32 latents, or int64 token ids for a head that generates tokens."""
        raise NotImplementedError

    def save(self, directory: Path) -> None:
        raise NotImplementedError

    def load(self, directory: Path) -> None:
        raise NotImplementedError


@dataclass
class MetricInputs:
    """Features of the generated and the reference images, with the roles named.

    ``features(role, output)`` returns the feature extractor's output (``"embedding"`` or
    ``"logits"``) for ``role`` in {"generated", "reference"}, computed once and shared by metrics.
    """

    features: Callable[[str, str], np.ndarray]
    feature_extractor: str
    reference_labels: np.ndarray | None
    query_labels: np.ndarray | None
    seed: int = 0
    #: the samples and their prompts in an image–text space (``metrics.text_space``), for text-conditioned runs
    text: TextInputs | None = None


@dataclass
class TextInputs:
    """Text-conditioned samples, their prompts and the held-out images, embedded in an image–text space
    (``metrics.text_space``, never the retrieval encoder alone), for image–text metrics.

    ``features(role)`` gives L2-normalised embeddings: "generated" (num, d), "reference" (held-out images),
    "prompts" (P, d), one per distinct prompt; ``prompt_of_sample`` (num,) indexes ``prompts``;
    ``prompt_labels`` (P,) the class each prompt names (None: unlabelled). ``space`` names the space, and
    ``space_report`` holds its own held-out quality when it was trained (``Encoder.fit``'s report).
    """

    features: Callable[[str], np.ndarray]
    prompts: tuple[str, ...]
    prompt_of_sample: np.ndarray
    prompt_labels: np.ndarray | None
    space: str
    space_report: dict[str, Any]


class Metric(Plugin):
    """A score of generated images against a held-out reference. ``columns`` are its result keys."""

    kind = "metric"
    columns: ClassVar[tuple[str, ...]] = ()
    #: feature extractor outputs it needs; a metric needing "logits" fails early on an encoder without them.
    needs: ClassVar[tuple[str, ...]] = ("embedding",)
    #: True for metrics of the queries' classes (class agreement): skipped, and said so in the row's
    #: ``skipped_metrics``, when the queries' labels are not the reference set's classes (queries from a
    #: database of other classes swapped in at sampling time)
    needs_query_labels: ClassVar[bool] = False
    #: True for metrics of samples against their prompts (``MetricInputs.text``): skipped, and said so, in a
    #: run whose queries are not prompts; a suite using one must name ``metrics.text_space``
    needs_text: ClassVar[bool] = False
    #: columns that get a bootstrap confidence interval (``<col>_lo``, ``<col>_hi``); None: all of them.
    #: Leave out spreads (``kid_std``) and values the generated samples do not change.
    interval_columns: ClassVar[tuple[str, ...] | None] = None

    def compute(self, inputs: MetricInputs) -> dict[str, float]:
        raise NotImplementedError

    def resampler(self, inputs: MetricInputs) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
        """For the bootstrap (rdmbench.stats): a function of resampled generated-sample indices,
        shape (resamples, n), returning each interval column's value per resample.

        This default recomputes the metric on each resample, which is right for any metric but as
        slow as ``compute`` times the resamples; override it to reuse what the resample does not change.
        """
        from rdmbench.stats import recompute_on_resamples

        return recompute_on_resamples(self, inputs)


@dataclass
class Queries:
    """What a sampling mode chose: one query per sample, each with the vector searched for its neighbours.

    ``embeddings`` (num, dim) float32 live in the retrieval encoder's space (None: the mode builds the
    context itself). ``images`` are shown beside the samples; ``labels`` (with ``class_names``) let class
    agreement be measured when they name the reference set's classes. ``omit`` (num,) holds, per query, a
    sampling-database id that must not condition its own sample (the pseudo-query itself), or -1.

    ``condition`` says what conditions each sample (the paper's text-to-image variants): ``"neighbours"``,
    the query's k nearest neighbours in the sampling database; ``"query"``, the query's own embedding
    alone (k = 1); ``"query+neighbours"``, the query's embedding then its k - 1 nearest neighbours. With
    ``pool`` = l >= k, each sample's k neighbours are drawn at random (seeded) from its query's l nearest
    (a class pool). ``texts`` are the prompts behind text queries, one per sample, shown with the samples
    and graded by image–text metrics.
    """

    ids: np.ndarray
    embeddings: np.ndarray | None
    images: np.ndarray | None
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    omit: np.ndarray | None = None
    #: where the queries come from, for the row ("sampling database", "reference set", "prompts")
    source: str = ""
    condition: str = "neighbours"
    pool: int | None = None
    texts: tuple[str, ...] | None = None

    CONDITIONS: ClassVar[tuple[str, ...]] = ("neighbours", "query", "query+neighbours")

    def __post_init__(self) -> None:
        if self.condition not in self.CONDITIONS:
            raise ValueError(f"condition must be one of {', '.join(self.CONDITIONS)}, got {self.condition!r}")
        if self.condition != "neighbours" and self.embeddings is None:
            raise ValueError(f"condition {self.condition!r} conditions on the query embeddings, and there are none")
        if self.texts is not None and len(self.texts) != len(self.ids):
            raise ValueError(f"{len(self.texts)} texts for {len(self.ids)} queries")


class SamplingSource:
    """What a sampling mode may draw from (built by the generation task; arrays memory-mapped).

    ``database_*``: the sampling database D' (the training one unless the run swaps it); ``proposal_ids()``:
    the first neighbours of every training image in D', searched once and cached (for p_D); ``reference_*``:
    the held-out set. Accessors load lazily, so a mode pays only for what it reads; ``needs`` on the mode
    tells the task which of the cached stages to compute.
    """

    def __init__(self, load: Callable[[str], Any], embed_text: Callable[[list[str]], np.ndarray] | None = None):
        self._load = load
        self._embed_text = embed_text

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32 embeddings of ``texts`` by the run's encoder, L2-normalised like the database's
        (a cached stage); only for modes whose ``needs`` name "text"."""
        if self._embed_text is None:
            raise RuntimeError("this source embeds no text: name \"text\" in the sampling mode's needs")
        return self._embed_text(list(texts))

    def pick(self, where: str, ids: np.ndarray, omit: np.ndarray | None = None) -> Queries:
        """Queries of rows ``ids`` of the sampling database (``where="database"``) or of the held-out set
        (``"reference"``): their embeddings, images, labels and class names."""
        labels = getattr(self, f"{where}_labels")
        return Queries(ids, np.asarray(getattr(self, f"{where}_embeddings")[ids], dtype=np.float32),
                       np.asarray(getattr(self, f"{where}_images")[ids]),
                       None if labels is None else np.asarray(labels)[ids], getattr(self, f"{where}_class_names"),
                       omit, {"database": "sampling database", "reference": "reference set"}[where])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._load(name)


class SamplingMode(Plugin):
    """How samples are conditioned at sampling time: which queries, which neighbours, from which database.

    Modes are plugins like any other (constructor keyword arguments are their configuration, validated
    before any work). ``needs`` names what ``queries`` reads from the ``SamplingSource``: "proposal" (the
    training set's neighbours in the sampling database), "reference" (embeddings of the held-out set) or
    "text" (``embed_text``: the run's encoder must have a text tower). The task searches each query's
    neighbours in the sampling database as the queries' ``condition`` and ``pool`` say, dropping ``omit``.
    """

    kind = "sampling_mode"
    needs: ClassVar[tuple[str, ...]] = ()

    def default_k(self, k_train: int) -> int:
        """The sampling k when ``sample.k`` is not given: the head's k_train, unless the mode conditions on a
        fixed number of embeddings (text alone: 1)."""
        return k_train

    def check_k(self, k: int, k_train: int) -> str | None:
        """A problem with these k values as one line (None: fine); the suite loader reports it at ``sample.k``."""
        return None

    def check_classes(self, class_names: tuple[str, ...] | None) -> str | None:
        """A problem with the classes this mode names, against the dataset's (None: it has no names), as one
        line (None: fine); reported at ``sample.mode`` before any work."""
        return None

    def extra_neighbours(self) -> int:
        """Neighbours searched beyond k so that ``omit`` can drop one and still leave k."""
        return 0

    def searched(self, k: int) -> int:
        """How many neighbours of each query are searched for k per sample (k + extra; a pool's size)."""
        return k + self.extra_neighbours()

    def queries(self, source: SamplingSource, num: int, k: int, seed: int) -> Queries:
        raise NotImplementedError


CONTRACTS: dict[str, type[Plugin]] = {
    c.kind: c for c in (Dataset, Database, Encoder, Retriever, FirstStage, Head, Metric, SamplingMode)
}
