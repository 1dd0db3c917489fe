"""ScaNN retriever (Guo et al., "Accelerating Large-Scale Inference with Anisotropic Vector
Quantization", ICML 2020): the search the paper's official code uses.

``mode: auto`` follows that code's regime by database size N: brute force below 2e4 entries;
anisotropic hashing (AH, 2 dims per block, threshold 0.2) with exact re-scoring ("reordering")
up to 1e5; above, a partitioning tree with √N leaves, N/10 training points and √N/20 leaves
searched, in front of AH + reordering. Its re-scoring depth is 2·k (the official ``reorder_k``).
Every one of these is overridable; ``leaves_to_search`` and ``reorder`` are query-time arguments.
ScaNN installs on Linux only (latent-diffusion#147, #252): elsewhere use ``faiss`` or ``hnswlib``.
Brute force and AH build reproducibly; the tree's training does not (ScaNN's Python API takes no
seed), so two tree builds may answer slightly differently; the stage cache keeps the one built.
An explicit ``mode`` that cannot be trained on a small database is an error naming the fix, unless
``small_database: brute-force`` opts into exact search there (recorded as ``built`` in the manifest).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np

from rdmbench.api import Retriever
from rdmbench.errors import RdmbenchError, require
from rdmbench.hookspecs import hookimpl

INSTALL = ("the scann retriever needs ScaNN: pip install scann (Linux x86-64/aarch64 only); elsewhere use the "
           "built-in `faiss` (index_type: ivf-pq is closest to ScaNN's partitioned quantisation) or `hnswlib`")
BRUTE_FORCE_BELOW, TREE_FROM = 20_000, 100_000
#: AH trains 16 centres per block and the tree k-means; below this they cannot be trained
MIN_QUANTIZED = 100



class ScannRetriever(Retriever):
    """Google ScaNN: brute force, AH + reordering, or tree + AH + reordering (official regime by size).

    Args:
        mode: auto (the official regime by database size), brute-force, ah or tree-ah.
        metric: cosine (vectors L2-normalised, dot product), ip or l2 (squared distance).
        num_leaves: tree leaves; null: sqrt(n). More than the database is an error.
        leaves_to_search: leaves searched per query by default; null: leaves / 20.
        training_sample_size: points the tree's k-means trains on; null: n / 10.
        dims_per_block: anisotropic hashing: dimensions per 16-centre block.
        quantization_threshold: anisotropic quantization threshold (official 0.2).
        reorder: candidates re-scored exactly by default (official 2·k).
        num_neighbors: the searcher's default k (searches pass their own).
        training_threads: 0: all cores.
        small_database: error: refuse an explicit ah / tree-ah mode on fewer than 100 vectors;
            brute-force: search such a database exactly (recorded as `built` in the manifest).
    """

    name = "scann"
    requires = {"scann": INSTALL}

    def __init__(
        self,
        mode: Literal["auto", "brute-force", "ah", "tree-ah"] = "auto",
        metric: Literal["cosine", "ip", "l2"] = "cosine",
        num_leaves: int | None = None,
        leaves_to_search: int | None = None,
        training_sample_size: int | None = None,
        dims_per_block: int = 2,
        quantization_threshold: float = 0.2,
        reorder: int = 40,
        num_neighbors: int = 20,
        training_threads: int = 0,
        small_database: Literal["error", "brute-force"] = "error",
    ):
        for key, value in (("num_leaves", num_leaves), ("leaves_to_search", leaves_to_search),
                           ("training_sample_size", training_sample_size)):
            if value is not None and value < 1:
                raise ValueError(f"{key} must be >= 1 or null (the official default)")
        self.mode, self.metric, self.num_leaves, self.leaves_to_search = mode, metric, num_leaves, leaves_to_search
        self.training_sample_size, self.dims_per_block = training_sample_size, dims_per_block
        self.quantization_threshold, self.reorder, self.num_neighbors = quantization_threshold, reorder, num_neighbors
        self.training_threads, self.small_database = training_threads, small_database
        self.searcher = None
        self.built: str | None = None

    def build_info(self) -> dict:
        return {"built": self.built}

    def resolved_mode(self, n: int) -> str:
        if self.mode != "auto":
            if n < MIN_QUANTIZED and self.mode != "brute-force":
                if self.small_database != "brute-force":
                    raise RdmbenchError(
                        f"scann mode {self.mode!r}: {n} vectors are too few to train it (needs {MIN_QUANTIZED}); "
                        "set mode: auto or brute-force, or small_database: brute-force to search such a "
                        "database exactly")
                return "brute-force"
            if self.num_leaves is not None and self.mode == "tree-ah" and self.num_leaves > n:
                raise RdmbenchError(f"scann tree-ah: num_leaves = {self.num_leaves} for {n} vectors; "
                                    f"set num_leaves <= {n} or null (sqrt(n))")
            return self.mode
        return "brute-force" if n < BRUTE_FORCE_BELOW else "ah" if n < TREE_FROM else "tree-ah"

    def build_index(self, x: np.ndarray) -> None:
        scann = require("scann", INSTALL)
        n = len(x)
        builder = scann.scann_ops_pybind.builder(x, min(self.num_neighbors, n),
                                                 "squared_l2" if self.metric == "l2" else "dot_product")
        builder.set_n_training_threads(self.training_threads)
        mode = self.built = self.resolved_mode(n)
        if mode == "brute-force":
            builder = builder.score_brute_force()
        else:
            if mode == "tree-ah":
                leaves = self.num_leaves or int(math.sqrt(n))
                sample = min(max(self.training_sample_size or n // 10, leaves), n)
                builder = builder.tree(num_leaves=leaves,
                                       num_leaves_to_search=self.leaves_to_search or max(leaves // 20, 1),
                                       training_sample_size=sample)
            builder = builder.score_ah(self.dims_per_block,
                                       anisotropic_quantization_threshold=self.quantization_threshold)
            builder = builder.reorder(self.reorder)
        self.searcher = builder.build()

    def search_index(self, q: np.ndarray, k: int, *, leaves_to_search: int | None = None,
                     reorder: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Args:
            leaves_to_search: tree leaves searched for this query; null: the build's.
            reorder: candidates re-scored exactly; null: the build's ``reorder`` (at least k).
        """
        pre = max(reorder or self.reorder, k)
        if len(q) == 1:  # one query: the single-query entry point, without the batch machinery
            ids, dist = self.searcher.search(q[0], k, pre, leaves_to_search or -1)
            ids, dist = ids[None], dist[None]
        else:
            ids, dist = self.searcher.search_batched_parallel(q, k, pre, leaves_to_search)
        return (-dist if self.metric == "l2" else dist), ids  # squared_l2: lower is better

    def save_index(self, directory: Path) -> None:
        self.searcher.serialize(str(directory), relative_path=True)  # the stage folder is renamed after writing

    def load_index(self, directory: Path) -> None:
        self.searcher = require("scann", INSTALL).scann_ops_pybind.load_searcher(str(directory))
        self.built = self.resolved_mode(self.n)


@hookimpl
def rdmbench_retrievers():
    return [ScannRetriever]
