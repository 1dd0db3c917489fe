"""FAISS retriever (Johnson, Douze & Jégou, "Billion-scale similarity search with GPUs", 2019).

Flat (exact), IVF-Flat, IVF-PQ and HNSW indices over L2-normalised embeddings, on a GPU when
faiss-gpu and a CUDA device are present (the ``gpu`` extra), else on the CPU. Build-time
parameters are constructor arguments; ``nprobe`` and ``ef_search`` are query-time arguments of
``search``. A saved index records the dimension, metric and a digest of the embeddings it was
built from, and ``load`` refuses an index that does not match.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import numpy as np

from rdmbench.api import Retriever
from rdmbench.errors import MissingDependency, RdmbenchError
from rdmbench.hookspecs import hookimpl


def _faiss():
    try:
        import faiss
    except ImportError:
        raise MissingDependency("the faiss retriever needs FAISS: pip install faiss-cpu (or the `gpu` extra: "
                                "pip install 'rdmbench[gpu]'); the built-in `exact` retriever needs nothing") from None
    return faiss


def embeddings_digest(embeddings: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(embeddings, dtype=np.float32).tobytes()).hexdigest()


class FaissRetriever(Retriever):
    """FAISS Flat / IVF-Flat / IVF-PQ / HNSW index, GPU when faiss-gpu is installed."""

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
        self.cfg = {k: v for k, v in locals().items() if k != "self"}
        self.index = None
        self.dim = None

    def _metric(self):
        faiss = _faiss()
        return faiss.METRIC_L2 if self.cfg["metric"] == "l2" else faiss.METRIC_INNER_PRODUCT

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.cfg["metric"] == "cosine":
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x

    def build(self, embeddings: np.ndarray) -> None:
        faiss = _faiss()
        c = self.cfg
        x = self._prepare(embeddings)
        n, d = x.shape
        metric = self._metric()
        kind = c["index_type"]
        if kind == "flat" or n == 0:
            index = faiss.IndexFlat(d, metric)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, c["hnsw_m"], metric)
            index.hnsw.efConstruction = c["ef_construction"]
        else:
            nlist = min(c["nlist"] or max(1, int(4 * np.sqrt(n))), max(1, n // 39))  # faiss wants ~39 points per list
            quantizer = faiss.IndexFlat(d, metric)
            if kind == "ivf-flat":
                index = faiss.IndexIVFFlat(quantizer, d, nlist, metric)
            else:
                if d % c["pq_m"]:
                    raise RdmbenchError(f"faiss ivf-pq: pq_m={c['pq_m']} must divide the dimension {d}")
                index = faiss.IndexIVFPQ(quantizer, d, nlist, c["pq_m"], c["pq_bits"], metric)
            index.cp.seed = c["seed"]
            index.train(x)
        if n:
            index.add(x)
        self.index, self.dim, self.n = self._to_device(index), d, n
        self._digest = embeddings_digest(embeddings)

    def _to_device(self, index):
        faiss = _faiss()
        use_gpu = self.cfg["use_gpu"]
        gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
        if use_gpu and not gpus:
            raise MissingDependency("use_gpu: true but faiss sees no GPU (install faiss-gpu via the `gpu` extra)")
        if (use_gpu or use_gpu is None) and gpus and self.cfg["index_type"] != "hnsw":
            return faiss.index_cpu_to_all_gpus(index)
        return index

    def search(self, queries: np.ndarray, k: int, *, nprobe: int = 16, ef_search: int = 64) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        if self.index is None:
            raise RuntimeError("build() or load() first")
        q = self._prepare(queries)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries have shape {q.shape}, the index has dimension {self.dim}")
        if self.n == 0:
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        params = None
        if self.cfg["index_type"] == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(ef_search, k))
        elif self.cfg["index_type"].startswith("ivf"):
            params = faiss.SearchParametersIVF(nprobe=nprobe)
        dist, ids = self.index.search(q, k, params=params)
        if self.cfg["metric"] == "l2":
            dist = -dist  # higher is better everywhere in rdmbench
        return dist.astype(np.float32), ids.astype(np.int64)

    def save(self, directory: Path) -> None:
        faiss = _faiss()
        index = self.index
        if hasattr(faiss, "index_gpu_to_cpu") and "Gpu" in type(index).__name__:
            index = faiss.index_gpu_to_cpu(index)
        path = Path(directory) / "faiss.index"
        faiss.write_index(index, str(path))
        meta = {"dim": self.dim, "n": self.n, "config": self.cfg, "embeddings_sha256": self._digest,
                "index_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        (Path(directory) / "faiss.json").write_text(json.dumps(meta))

    def load(self, directory: Path, embeddings: np.ndarray) -> None:
        faiss = _faiss()
        path = Path(directory) / "faiss.index"
        meta = json.loads((Path(directory) / "faiss.json").read_text())
        problems = []
        if hashlib.sha256(path.read_bytes()).hexdigest() != meta["index_sha256"]:
            problems.append("the index file's checksum does not match")
        if meta["config"] != self.cfg:
            problems.append(f"it was built with {meta['config']}, not {self.cfg}")
        if meta["embeddings_sha256"] != embeddings_digest(embeddings):
            problems.append("it was built from other embeddings")
        if problems:
            raise RdmbenchError(f"refusing stale FAISS index {path}: " + "; ".join(problems))
        self.index = self._to_device(faiss.read_index(str(path)))
        self.dim, self.n, self._digest = meta["dim"], meta["n"], meta["embeddings_sha256"]


@hookimpl
def rdmbench_retrievers():
    return [FaissRetriever]
