"""Exact nearest-neighbour search: the reference every approximate retriever is measured against.

Batched matmul + top-k in torch. Cosine is the inner product of L2-normalised vectors (the paper's
retrieval, Blattmann et al. 2022, Sec. 3.1); L2 ranks by -||q - d||^2, computed as
2 q·d - ||d||^2 so that it stays one matmul.

A database larger than ``rdmbench.chunks.CHUNK_BYTES`` as float32 is not copied into memory: it stays
memory-mapped, each batch of queries is searched against it a part at a time, and the parts' top-k
lists are merged (a part's top k hold every one of the whole top k it contains), so memory stays flat as
the database grows and the answer is the same as one product over the whole.
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
        self._db = self._mapped = None

    streams = True

    def build_streamed(self, embeddings: np.ndarray) -> None:
        import torch

        from rdmbench.chunks import rows_per_chunk

        self._parts = rows_per_chunk(embeddings.shape[1] * 4)
        if len(embeddings) <= self._parts:  # the usual case: one float32 copy, one product per batch
            self._db = torch.from_numpy(self._vectors(np.asarray(embeddings)))
            self._sq_norms = (self._db * self._db).sum(1) if self.metric == "l2" else None
        else:
            self._mapped, self._db = embeddings, None

    def search_index(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        sims = np.empty((len(q), k), np.float32)
        ids = np.empty((len(q), k), np.int64)
        q_all = torch.from_numpy(q)
        with torch.inference_mode():
            if self._db is None:  # a database larger than memory should hold: by parts, merged
                return self._search_parts(q_all, k)
            for s in range(0, len(q_all), self.batch_size):
                top, idx = self._top(q_all[s : s + self.batch_size], self._db, self._sq_norms, k)
                sims[s : s + len(top)] = top.numpy()
                ids[s : s + len(top)] = idx.numpy()
        return sims, ids

    def _top(self, qb, db, sq_norms, k):
        import torch

        scores = qb @ db.T
        if sq_norms is not None:  # -||q - d||^2 up to a per-query constant
            scores = 2 * scores - sq_norms
        top, idx = torch.topk(scores, min(k, len(db)), dim=1)
        if sq_norms is not None:
            top = -((qb * qb).sum(1, keepdim=True) - top).clamp_min(0)
        return top, idx

    def _search_parts(self, q_all, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Every query against each part of the database in turn, keeping the best k seen so far."""
        import torch

        best = torch.full((len(q_all), k), -torch.inf)
        best_ids = torch.full((len(q_all), k), -1, dtype=torch.int64)
        for start in range(0, len(self._mapped), self._parts):
            part = torch.from_numpy(self._vectors(np.asarray(self._mapped[start : start + self._parts])))
            norms = (part * part).sum(1) if self.metric == "l2" else None
            for s in range(0, len(q_all), self.batch_size):
                top, idx = self._top(q_all[s : s + self.batch_size], part, norms, k)
                merged = torch.cat([best[s : s + len(top)], top], 1)
                merged_ids = torch.cat([best_ids[s : s + len(top)], idx + start], 1)
                keep = torch.topk(merged, k, dim=1)
                best[s : s + len(top)] = keep.values
                best_ids[s : s + len(top)] = torch.gather(merged_ids, 1, keep.indices)
        return best.numpy(), best_ids.numpy()

    def save_index(self, directory: Path) -> None:
        pass  # the embeddings are the index; the embedding stage stores them

    def load_index(self, directory: Path) -> None:
        pass  # load() below rebuilds from the embeddings once the manifest has checked them

    def load(self, directory: Path, embeddings: np.ndarray) -> None:
        super().load(directory, embeddings)
        if self.n:
            self.build_streamed(embeddings)

    def index_bytes(self) -> int:
        return 0 if self._db is None else self._db.numel() * 4  # float32 copy held in memory (none: mapped)


@hookimpl
def rdmbench_retrievers():
    return [ExactRetriever]
