"""Exact nearest-neighbour search: the reference every approximate retriever is measured against.

Batched matmul + top-k in torch. Cosine is the inner product of L2-normalised vectors (the paper's
retrieval, Blattmann et al. 2022, Sec. 3.1); L2 ranks by -||q - d||^2, computed as
2 q·d - ||d||^2 so that it stays one matmul.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from rdmbench.api import Retriever
from rdmbench.hookspecs import hookimpl


class ExactRetriever(Retriever):
    """Exact search by batched matrix product (cosine, inner product or L2); the reference.

    Args:
        metric: cosine (vectors L2-normalised), ip or l2 (ranked by squared distance).
        batch_size: queries per matrix product.
    """

    name = "exact"

    def __init__(self, metric: Literal["cosine", "ip", "l2"] = "cosine", batch_size: int = 1024):
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.metric, self.batch_size = metric, batch_size
        self._db = None

    def build_index(self, x: np.ndarray) -> None:
        import torch

        self._db = torch.from_numpy(x)
        self._sq_norms = (self._db * self._db).sum(1) if self.metric == "l2" else None

    def search_index(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        sims = np.empty((len(q), k), np.float32)
        ids = np.empty((len(q), k), np.int64)
        q_all = torch.from_numpy(q)
        with torch.inference_mode():
            for s in range(0, len(q_all), self.batch_size):
                qb = q_all[s : s + self.batch_size]
                scores = qb @ self._db.T
                if self._sq_norms is not None:  # -||q - d||^2 up to a per-query constant
                    scores = 2 * scores - self._sq_norms
                top, idx = torch.topk(scores, k, dim=1)
                if self._sq_norms is not None:
                    top = -((qb * qb).sum(1, keepdim=True) - top).clamp_min(0)
                sims[s : s + len(qb)] = top.numpy()
                ids[s : s + len(qb)] = idx.numpy()
        return sims, ids

    def save_index(self, directory: Path) -> None:
        pass  # the embeddings are the index; the embedding stage stores them

    def load_index(self, directory: Path) -> None:
        pass  # load() below rebuilds from the embeddings once the manifest has checked them

    def load(self, directory: Path, embeddings: np.ndarray) -> None:
        super().load(directory, embeddings)
        if self.n:
            self.build_index(self._vectors(embeddings))

    def index_bytes(self) -> int:
        return 0 if self._db is None else self._db.numel() * 4  # float32 copy held in memory


@hookimpl
def rdmbench_retrievers():
    return [ExactRetriever]
