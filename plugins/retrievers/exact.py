"""Exact nearest-neighbour search: the reference every approximate retriever is measured against.

Batched matmul + top-k in torch over L2-normalised embeddings. With normalised vectors, cosine and
inner product coincide and L2 ranks the same way; ``metric`` is kept explicit so that the
similarity values returned are the ones asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from rdmbench.api import Retriever
from rdmbench.hookspecs import hookimpl


class ExactRetriever(Retriever):
    """Exact search by batched matrix product (cosine, inner product or L2); the reference."""

    name = "exact"

    def __init__(self, metric: Literal["cosine", "ip", "l2"] = "cosine", batch_size: int = 1024):
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.metric, self.batch_size = metric, batch_size
        self._db = None

    def build(self, embeddings: np.ndarray) -> None:
        import torch

        db = torch.from_numpy(np.asarray(embeddings, dtype=np.float32))
        if self.metric == "cosine":
            db = torch.nn.functional.normalize(db, dim=1)
        self._db = db

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        if self._db is None:
            raise RuntimeError("build() or load() first")
        n, dim = self._db.shape
        q_all = torch.from_numpy(np.asarray(queries, dtype=np.float32))
        if q_all.ndim != 2 or q_all.shape[1] != dim:
            raise ValueError(f"queries have shape {tuple(q_all.shape)}, the index has dimension {dim}")
        k_eff = min(k, n)
        sims = np.full((len(q_all), k), -np.inf, dtype=np.float32)
        ids = np.full((len(q_all), k), -1, dtype=np.int64)
        if self.metric == "cosine":
            q_all = torch.nn.functional.normalize(q_all, dim=1)
        sq_norms = (self._db * self._db).sum(1) if self.metric == "l2" else None
        with torch.inference_mode():
            for s in range(0, len(q_all), self.batch_size):
                q = q_all[s : s + self.batch_size]
                scores = q @ self._db.T
                if sq_norms is not None:  # -||q - d||^2 up to a per-query constant
                    scores = 2 * scores - sq_norms
                top, idx = torch.topk(scores, k_eff, dim=1)
                if sq_norms is not None:
                    top = -((q * q).sum(1, keepdim=True) - top).clamp_min(0)
                sims[s : s + len(q), :k_eff] = top.numpy()
                ids[s : s + len(q), :k_eff] = idx.numpy()
        return sims, ids

    def save(self, directory: Path) -> None:
        pass  # the embeddings are the index; they are stored by the embedding stage

    def load(self, directory: Path, embeddings: np.ndarray) -> None:
        self.build(embeddings)


@hookimpl
def rdmbench_retrievers():
    return [ExactRetriever]
