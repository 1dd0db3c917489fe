"""The retriever contract: what a nearest-neighbour plugin writes (``build_index``, ``search_index``,
``save_index``, ``load_index``) and declares (``metric``, ``streams``). What every retriever gets on top of
it — checked build and search, padding, the manifest and its checksums — is rdmbench.api.retriever_runtime."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rdmbench.api.plugin import Plugin
from rdmbench.api.retriever_runtime import RetrieverRuntime


class Retriever(Plugin, RetrieverRuntime):
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
    ``build``/``search``/``save``/``load`` (rdmbench.api.retriever_runtime) check dimensions, pad k > n
    with -1, handle an empty database, and save a manifest (config, dimension, metric, a digest of the
    embeddings, a checksum per index file) that ``load`` checks, so a stale or corrupted index is
    refused, never silently used.

    ``requires`` (every kind has it, rdmbench.api.Plugin) is checked again by ``build``/``load``.
    """

    kind = "retriever"
    METRICS: ClassVar[tuple[str, ...]] = ("cosine", "ip", "l2")
    metric: str
    #: the resolved constructor arguments: what a saved index must have been built with
    config: dict[str, Any]
    #: the size and dimension of what was built (None before a build)
    n: int
    dim: int | None

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
        self.config = dict(list(bound.arguments.items())[1:])
        self.metric = self.config.get("metric", "cosine")
        self.dim = None
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
