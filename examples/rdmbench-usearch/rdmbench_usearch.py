"""USearch retriever for rdmbench: an example of a plugin that lives in its own package.

USearch (Vardanian, Unum, https://github.com/unum-cloud/usearch) is a compact HNSW implementation
with SIMD distance kernels and quantised storage; no rdmbench built-in uses it. The whole plugin is
this file plus one entry-point line in pyproject.toml; docs/writing-a-plugin.md walks through it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from rdmbench.api import Retriever
from rdmbench.errors import require
from rdmbench.hookspecs import hookimpl

INSTALL = "the usearch retriever needs USearch: pip install usearch; the built-in `hnswlib` is the closest built-in"
METRICS = {"cosine": "ip", "ip": "ip", "l2": "l2sq"}  # cosine arrives L2-normalised, where ip is cosine


class USearchRetriever(Retriever):
    """USearch HNSW (Unum): connectivity, expansion_add at build time, expansion_search per query.

    Args:
        metric: cosine (vectors arrive L2-normalised), ip or l2 (squared distance).
        connectivity: graph degree (HNSW's M).
        expansion_add: candidate list while building (HNSW's ef_construction).
        dtype: storage precision: f32, f16 or i8.
        build_threads: 1 builds the same graph every time; 0 uses all cores.
        search_threads: 0 uses all cores.
    """

    name = "usearch"
    requires = {"usearch.index": INSTALL}  # checked before any work, so a missing library is one line

    def __init__(self, metric: Literal["cosine", "ip", "l2"] = "cosine", connectivity: int = 32,
                 expansion_add: int = 200, dtype: Literal["f32", "f16", "i8"] = "f32", build_threads: int = 1,
                 search_threads: int = 0):
        if connectivity < 2 or expansion_add < 1:
            raise ValueError("connectivity must be >= 2 and expansion_add >= 1")
        self.connectivity, self.expansion_add, self.dtype = connectivity, expansion_add, dtype  # the base sets metric
        self.build_threads, self.search_threads = build_threads, search_threads  # one build thread: reproducible graph
        self.index = None

    def _new(self, dim: int):
        return require("usearch.index", INSTALL).Index(ndim=dim, metric=METRICS[self.metric], dtype=self.dtype,
                                connectivity=self.connectivity, expansion_add=self.expansion_add)

    def build_index(self, x: np.ndarray) -> None:
        self.index = self._new(x.shape[1])
        self.index.add(np.arange(len(x), dtype=np.uint64), x, threads=self.build_threads)

    def search_index(self, q: np.ndarray, k: int, *, expansion_search: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Args:
            expansion_search: candidate list per query (HNSW's ef), at least k.
        """
        self.index.expansion_search = max(expansion_search, k)  # USearch keeps it on the index: set on every call
        found = self.index.search(q, k, threads=self.search_threads)
        if len(q) == 1:  # one query gives Matches, trimmed to what was found; the base pads the rest
            return (-found.distances if self.metric == "l2" else 1.0 - found.distances)[None], found.keys[None]
        ids = found.keys.astype(np.int64)
        dist = found.distances
        ids[np.arange(k)[None, :] >= found.counts[:, None]] = -1  # slots past each query's count hold 0
        # USearch returns 1 - q·d for "ip" and the squared distance for "l2sq"; rdmbench wants higher = better
        return (-dist if self.metric == "l2" else 1.0 - dist), ids

    def save_index(self, directory: Path) -> None:
        self.index.save(str(Path(directory) / "usearch.index"))

    def load_index(self, directory: Path) -> None:
        self.index = self._new(self.dim)
        self.index.load(str(Path(directory) / "usearch.index"))


@hookimpl
def rdmbench_retrievers():
    return [USearchRetriever]
