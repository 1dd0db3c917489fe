"""FAISS retriever (Johnson, Douze & Jégou, "Billion-scale similarity search with GPUs", 2019).

Flat (exact), IVF-Flat, IVF-PQ and HNSW indices, on a GPU when faiss-gpu and a CUDA device are
present (the ``gpu`` extra; HNSW has no GPU version and stays on the CPU), else on the CPU.
Build-time parameters are constructor arguments; ``nprobe`` (IVF) and ``ef_search`` (HNSW) are
query-time arguments passed with every search through faiss' SearchParameters, never set on the
index beforehand.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np

from rdmbench.api import Retriever
from rdmbench.errors import MissingDependency, RdmbenchError, require
from rdmbench.hookspecs import hookimpl

log = logging.getLogger("rdmbench")
INSTALL = ("the faiss retriever needs FAISS: pip install faiss-cpu (on a CUDA machine: pip install "
           "'rdmbench[gpu]'); the built-in `exact` retriever needs nothing, `hnswlib` is another HNSW")



class FaissRetriever(Retriever):
    """FAISS Flat / IVF-Flat / IVF-PQ / HNSW index, on a GPU when faiss-gpu sees one."""

    name = "faiss"

    def __init__(
        self,
        index_type: Literal["flat", "ivf-flat", "ivf-pq", "hnsw"] = "hnsw",
        metric: Literal["cosine", "ip", "l2"] = "cosine",
        nlist: int | None = None,
        pq_m: int = 16,
        pq_bits: int = 8,
        hnsw_m: int = 32,
        ef_construction: int = 200,
        use_gpu: bool | None = None,
        seed: int = 0,
    ):
        if nlist is not None and nlist < 1:
            raise ValueError("nlist must be >= 1")
        self.index_type, self.metric, self.nlist = index_type, metric, nlist
        self.pq_m, self.pq_bits, self.hnsw_m, self.ef_construction = pq_m, pq_bits, hnsw_m, ef_construction
        self.use_gpu, self.seed = use_gpu, seed
        self.index = None
        self._params: dict = {}

    def build_index(self, x: np.ndarray) -> None:
        faiss = require("faiss", INSTALL)
        n, d = x.shape
        metric = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        kind = self.index_type
        if kind == "ivf-pq" and n < 2 ** self.pq_bits:
            log.warning("faiss: %d points cannot train %d PQ centroids; using ivf-flat", n, 2 ** self.pq_bits)
            kind = "ivf-flat"
        if kind == "flat":
            index = faiss.IndexFlat(d, metric)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, metric)
            index.hnsw.efConstruction = self.ef_construction
        else:
            # 4·sqrt(n) lists by default (the FAISS wiki's guideline), at most n/39: k-means wants ~39 points per list
            nlist = max(1, min(self.nlist or int(4 * np.sqrt(n)), n // 39))
            quantizer = faiss.IndexFlat(d, metric)
            if kind == "ivf-flat":
                index = faiss.IndexIVFFlat(quantizer, d, nlist, metric)
            else:
                if d % self.pq_m:
                    raise RdmbenchError(f"faiss ivf-pq: pq_m={self.pq_m} must divide the dimension {d}")
                index = faiss.IndexIVFPQ(quantizer, d, nlist, self.pq_m, self.pq_bits, metric)
            index.cp.seed = self.seed
            index.train(x)
        index.add(x)
        self.index = self._to_device(index)

    def _to_device(self, index):
        faiss = require("faiss", INSTALL)
        gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
        if self.use_gpu and not gpus:
            raise MissingDependency("use_gpu: true but faiss sees no GPU; install faiss-gpu (pip install "
                                    "'rdmbench[gpu]') on a CUDA machine, or set use_gpu: null")
        if (self.use_gpu or self.use_gpu is None) and gpus and self.index_type != "hnsw":
            return faiss.index_cpu_to_all_gpus(index)
        return index

    def search_index(self, q: np.ndarray, k: int, *, nprobe: int = 16,
                     ef_search: int = 64) -> tuple[np.ndarray, np.ndarray]:
        key = (max(ef_search, k), nprobe)
        params = self._params.get(key)
        if params is None:  # built once per value: a SWIG object per call costs microseconds per query
            faiss = require("faiss", INSTALL)
            if self.index_type == "hnsw":
                params = faiss.SearchParametersHNSW(efSearch=key[0])
            elif self.index_type.startswith("ivf"):
                params = faiss.SearchParametersIVF(nprobe=nprobe)
            self._params[key] = params
        dist, ids = self.index.search(q, k, params=params)
        return (-dist if self.metric == "l2" else dist), ids  # faiss' L2 is squared distance, lower is better

    def save_index(self, directory: Path) -> None:
        faiss = require("faiss", INSTALL)
        index = self.index
        if "Gpu" in type(index).__name__:
            index = faiss.index_gpu_to_cpu(index)
        faiss.write_index(index, str(Path(directory) / "faiss.index"))

    def load_index(self, directory: Path) -> None:
        self.index = self._to_device(require("faiss", INSTALL).read_index(str(Path(directory) / "faiss.index")))


@hookimpl
def rdmbench_retrievers():
    return [FaissRetriever]
