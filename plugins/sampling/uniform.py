"""Uniform pseudo-queries: database entries drawn with equal probability, ignoring the proposal p_D.

The ablation of p_D (Blattmann et al. 2022, sec. 3.3): does drawing pseudo-queries where the training
set's neighbours concentrate matter, or would any database entry do? It also samples a database given
at sampling time evenly, where p_D, counted from the training set's neighbours, sees only its corner
nearest to X.
"""

from __future__ import annotations

import numpy as np

from rdmbench.api import Queries, SamplingMode, SamplingSource
from rdmbench.hookspecs import hookimpl


class Uniform(SamplingMode):
    """Pseudo-queries drawn uniformly from the sampling database (no proposal: the ablation of p_D)."""

    name = "uniform"

    def __init__(self, omit_query: bool = False):
        #: drop the pseudo-query itself from its own neighbours
        self.omit_query = omit_query

    def check_k(self, k: int, k_train: int) -> str | None:
        return "uniform pseudo-queries condition through their neighbours: k must be >= 1" if k == 0 < k_train else None

    def extra_neighbours(self) -> int:
        return 1 if self.omit_query else 0

    def queries(self, source: SamplingSource, num: int, k: int, seed: int) -> Queries:
        emb = source.database_embeddings()
        ids = np.random.default_rng(seed).integers(0, len(emb), num)
        return source.pick("database", ids, ids if self.omit_query else None)


@hookimpl
def rdmbench_sampling_modes():
    return [Uniform]
