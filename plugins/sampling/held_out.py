"""Held-out queries: each sample is conditioned on the neighbours of an image of the reference split,
which neither the head nor the database has seen (image-conditioned sampling). With a database given
at sampling time this is the paper's database swap: the same queries, other neighbours.
"""

from __future__ import annotations

import numpy as np

from rdmbench.api import Need, Queries, SamplingMode, SamplingSource
from rdmbench.hookspecs import hookimpl


class HeldOut(SamplingMode):
    """Held-out query images (the reference split), in order, cycling when more samples than images are asked."""

    name = "held-out"
    needs = frozenset({Need.REFERENCE})

    def check_k(self, k: int, k_train: int) -> str | None:
        if k == 0 and k_train > 0:
            return "held-out queries condition through their neighbours: k must be >= 1"
        return None

    def queries(self, source: SamplingSource, num: int, k: int, seed: int) -> Queries:
        emb = source.reference_embeddings()
        ids = np.arange(num) % len(emb)
        return source.pick("reference", ids, None)


@hookimpl
def rdmbench_sampling_modes():
    return [HeldOut]
