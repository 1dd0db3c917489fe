"""The proposal p_D(x~) for unconditional sampling (Blattmann et al. 2022, sec. 3.3).

p_D(x~) = |{x in X : x~ in xi_k(x, D)}| / (k |X|): how often a database entry is among the k
nearest neighbours of a training image. It is counted from the neighbour table searched once for
the training set. Top-m truncation keeps only the fraction m of database entries with the
highest proposal mass (m = 0.01 was best for FID/IS in the paper) and renormalises.
"""

from __future__ import annotations

import math

import numpy as np


def proposal(neighbour_ids: np.ndarray, k: int, database_size: int) -> np.ndarray:
    """p_D over the database from the first ``k`` neighbours of every training image."""
    if k < 1 or k > neighbour_ids.shape[1]:
        raise ValueError(f"k must be in 1..{neighbour_ids.shape[1]}, got {k}")
    ids = np.asarray(neighbour_ids[:, :k]).reshape(-1)
    counts = np.bincount(ids[ids >= 0], minlength=database_size).astype(np.float64)
    return counts / (k * len(neighbour_ids))


def truncate_top_m(p: np.ndarray, m: float) -> np.ndarray:
    """Keep the ceil(m * |D|) most likely entries (ties broken by index), renormalised."""
    if not 0.0 < m <= 1.0:
        raise ValueError(f"top_m must be in (0, 1], got {m}")
    keep = max(1, math.ceil(m * len(p)))
    order = np.argsort(-p, kind="stable")[:keep]
    out = np.zeros_like(p)
    out[order] = p[order]
    total = out.sum()
    if total <= 0:
        raise ValueError("the proposal has no mass: no database entry is a neighbour of any training image")
    return out / total


def draw_pseudo_queries(p: np.ndarray, num: int, seed: int) -> np.ndarray:
    """Sample ``num`` database indices x~ ~ p (with replacement), reproducibly."""
    return np.random.default_rng(seed).choice(len(p), size=num, replace=True, p=p)
