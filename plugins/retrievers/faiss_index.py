"""FAISS retriever (Johnson, Douze & Jégou, "Billion-scale similarity search with GPUs", 2019).

Flat (exact), IVF-Flat, IVF-PQ and HNSW indices, on a GPU when faiss-gpu and a CUDA device are
present (the ``gpu`` extra; HNSW has no GPU version and stays on the CPU), else on the CPU.
Build-time parameters are constructor arguments; ``nprobe`` (IVF) and ``ef_search`` (HNSW) are
query-time arguments passed with every search through faiss' SearchParameters, never set on the
index beforehand. What cannot be built as asked is an error naming the setting, never a quiet
substitute: a database too small to train IVF-PQ's codebooks is searched exactly only when
``small_database: flat`` says so (and the manifest records ``built: flat``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from rdmbench.api import Retriever
from rdmbench.errors import MissingDependency, RdmbenchError, require
from rdmbench.hookspecs import hookimpl

INSTALL = ("the faiss retriever needs FAISS: pip install faiss-cpu (on a CUDA machine: pip install "
           "'rdmbench[gpu]'); the built-in `exact` retriever needs nothing, `hnswlib` is another HNSW")



class FaissRetriever(Retriever):
    """FAISS Flat / IVF-Flat / IVF-PQ / HNSW index, on a GPU when faiss-gpu sees one.

    Args:
        index_type: flat (exact), ivf-flat, ivf-pq (compressed codes) or hnsw (graph, CPU only).
        metric: cosine (vectors L2-normalised, inner product), ip or l2 (squared distance).
        nlist: IVF lists; null: 4·sqrt(n), at most n/39 (k-means wants ~39 points per list).
            A given value larger than the database is an error.
        pq_m: IVF-PQ sub-quantizers; must divide the dimension (bytes per code at pq_bits 8).
        pq_bits: bits per sub-quantizer code; training needs at least 2**pq_bits vectors.
        hnsw_m: HNSW graph degree M.
        ef_construction: HNSW candidate list while building.
        use_gpu: true: require a GPU; null: use one if faiss-gpu sees it; false: CPU.
        seed: seed of the IVF k-means.
        small_database: error: refuse a database too small to train ivf-pq's codebooks; flat:
            search such a database exactly instead (recorded as `built: flat` in the manifest).
        train_size: vectors the IVF k-means and PQ codebooks train on, a seeded sample; null: 256 per
            list (FAISS' guideline is 30-256), at least 64 per PQ centroid, at most the database.
            The database is then added a chunk at a time, so building an IVF-PQ index holds the
            sample and the compressed codes, never the float vectors of the whole database.
    """

    name = "faiss"
    requires = {"faiss": INSTALL}

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
        small_database: Literal["error", "flat"] = "error",
        train_size: int | None = None,
    ):
        if nlist is not None and nlist < 1:
            raise ValueError("nlist must be >= 1")
        self.index_type, self.metric, self.nlist = index_type, metric, nlist
        self.pq_m, self.pq_bits, self.hnsw_m, self.ef_construction = pq_m, pq_bits, hnsw_m, ef_construction
        if train_size is not None and train_size < 1:
            raise ValueError("train_size must be >= 1 (or null)")
        self.use_gpu, self.seed, self.small_database, self.train_size = use_gpu, seed, small_database, train_size
        self.index = None
        self.built = index_type  # what was built: index_type, or flat where small_database allowed it
        self._params: dict = {}

    def build_info(self) -> dict:
        return {"built": self.built}

    streams = True

    def build_streamed(self, embeddings: np.ndarray) -> None:
        faiss = require("faiss", INSTALL)
        n, d = embeddings.shape
        metric = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        kind = self.index_type
        if kind == "ivf-pq" and n < 2 ** self.pq_bits:
            if self.small_database != "flat":
                raise RdmbenchError(
                    f"faiss ivf-pq: {n} vectors cannot train 2**pq_bits = {2 ** self.pq_bits} codebook centroids; "
                    f"lower pq_bits (at most {max(n.bit_length() - 1, 1)}), use index_type: ivf-flat or flat, "
                    "or set small_database: flat to search such a database exactly")
            kind = "flat"
        if self.nlist is not None and kind.startswith("ivf") and self.nlist > n:
            raise RdmbenchError(f"faiss {kind}: nlist = {self.nlist} lists for {n} vectors; set nlist <= {n} "
                                "or null (4·sqrt(n))")
        self.built = kind
        if kind == "flat":
            index = faiss.IndexFlat(d, metric)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, metric)
            index.hnsw.efConstruction = self.ef_construction
        else:
            # 4·sqrt(n) lists by default (the FAISS wiki's guideline), at most n/39: k-means wants ~39 points per list
            nlist = self.nlist or max(1, min(int(4 * np.sqrt(n)), n // 39))
            quantizer = faiss.IndexFlat(d, metric)
            if kind == "ivf-flat":
                index = faiss.IndexIVFFlat(quantizer, d, nlist, metric)
            else:
                if d % self.pq_m:
                    raise RdmbenchError(f"faiss ivf-pq: pq_m={self.pq_m} must divide the dimension {d}")
                index = faiss.IndexIVFPQ(quantizer, d, nlist, self.pq_m, self.pq_bits, metric)
            index.cp.seed = self.seed
            size = self.train_size or max(256 * nlist, 64 * 2 ** self.pq_bits if kind == "ivf-pq" else 0)
            index.train(self.vector_sample(embeddings, size, self.seed))
        for chunk in self.vector_chunks(embeddings):
            index.add(chunk)
        self.index = self._to_device(index)

    def _to_device(self, index):
        faiss = require("faiss", INSTALL)
        gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
        if self.use_gpu and not gpus:
            raise MissingDependency("use_gpu: true but faiss sees no GPU; install faiss-gpu (pip install "
                                    "'rdmbench[gpu]') on a CUDA machine, or set use_gpu: null")
        if (self.use_gpu or self.use_gpu is None) and gpus and self.built != "hnsw":
            return faiss.index_cpu_to_all_gpus(index)
        return index

    def search_index(self, q: np.ndarray, k: int, *, nprobe: int = 16,
                     ef_search: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Args:
            nprobe: IVF lists visited per query.
            ef_search: HNSW candidate list per query (at least k).
        """
        key = (max(ef_search, k), nprobe)
        params = self._params.get(key)
        if params is None:  # built once per value: a SWIG object per call costs microseconds per query
            faiss = require("faiss", INSTALL)
            if self.built == "hnsw":
                params = faiss.SearchParametersHNSW(efSearch=key[0])
            elif self.built.startswith("ivf"):
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
        index = require("faiss", INSTALL).read_index(str(Path(directory) / "faiss.index"))
        self.built = "flat" if type(index).__name__.startswith("IndexFlat") else self.index_type
        self.index = self._to_device(index)


@hookimpl
def rdmbench_retrievers():
    return [FaissRetriever]
