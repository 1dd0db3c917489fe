"""hnswlib retriever (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search
using Hierarchical Navigable Small World graphs", TPAMI 2018), the authors' own library.

Build-time: ``m`` (graph degree), ``ef_construction``; query-time: ``ef`` (the candidate list,
at least k), passed with every search. Insertion with several threads makes the graph depend on
thread timing, so ``build_threads`` defaults to 1 (reproducible); searches are multi-threaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from rdmbench.api import Retriever
from rdmbench.errors import require
from rdmbench.hookspecs import hookimpl

INSTALL = ("the hnswlib retriever needs hnswlib: pip install hnswlib (builds from source with a C++ compiler); "
           "the built-in `faiss` retriever (index_type: hnsw) is the same algorithm")



class HnswlibRetriever(Retriever):
    """hnswlib HNSW graph: M, ef_construction at build time, ef per query.

    Args:
        metric: cosine (vectors L2-normalised, inner product), ip or l2 (squared distance).
        m: graph degree M.
        ef_construction: candidate list while building.
        build_threads: insertion threads; 1 builds the same graph every time, -1 all cores.
        search_threads: query threads; -1 all cores.
        seed: seed of the level assignment.
    """

    name = "hnswlib"
    requires = {"hnswlib": INSTALL}

    def __init__(self, metric: Literal["cosine", "ip", "l2"] = "cosine", m: int = 32, ef_construction: int = 200,
                 build_threads: int = 1, search_threads: int = -1, seed: int = 100):
        if m < 2 or ef_construction < 1:
            raise ValueError("m must be >= 2 and ef_construction >= 1")
        self.metric, self.m, self.ef_construction = metric, m, ef_construction
        self.build_threads, self.search_threads, self.seed = build_threads, search_threads, seed
        self.index = None

    def _space(self) -> str:
        return "l2" if self.metric == "l2" else "ip"  # cosine arrives normalised: ip is cosine then

    # inserted a chunk at a time: the graph holds its own copy of the vectors, so no second float32 copy of
    # the database is made; with one build thread the points go in in the same order, giving the same graph
    streams = True

    def build_streamed(self, embeddings: np.ndarray) -> None:
        index = require("hnswlib", INSTALL).Index(space=self._space(), dim=embeddings.shape[1])
        index.init_index(max_elements=len(embeddings), ef_construction=self.ef_construction, M=self.m,
                         random_seed=self.seed)
        start = 0
        for chunk in self.vector_chunks(embeddings):
            index.add_items(chunk, np.arange(start, start + len(chunk)), num_threads=self.build_threads)
            start += len(chunk)
        self.index = index

    def search_index(self, q: np.ndarray, k: int, *, ef: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Args:
            ef: candidate list per query (at least k).
        """
        self.index.set_ef(max(ef, k))  # hnswlib keeps ef on the index; it is set from this call's argument every time
        ids, dist = self.index.knn_query(q, k, num_threads=self.search_threads)
        # hnswlib returns 1 - q·d for "ip" and the squared distance for "l2"; rdmbench wants higher = better
        return (-dist if self.metric == "l2" else 1.0 - dist), ids

    def save_index(self, directory: Path) -> None:
        self.index.save_index(str(Path(directory) / "hnswlib.bin"))

    def load_index(self, directory: Path) -> None:
        index = require("hnswlib", INSTALL).Index(space=self._space(), dim=self.dim)
        index.load_index(str(Path(directory) / "hnswlib.bin"), max_elements=self.n)
        self.index = index


@hookimpl
def rdmbench_retrievers():
    return [HnswlibRetriever]
