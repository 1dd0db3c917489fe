"""Kernel distance (KID): unbiased MMD^2 with a polynomial kernel, averaged over random subsets.

Bińkowski et al. 2018, "Demystifying MMD GANs" (arXiv 1801.01401). Unlike FID it is unbiased in
the number of samples, so small runs can be compared with large ones. The computation is
torch-fidelity's ``kid_features_to_metric`` with kernel (x.y / dim + 1) ** degree.

``subset_size`` must be smaller than both sets (checked by the suite against ``sample.num`` and
``data.reference_size`` before any work): a subset as large as a set is the set itself every time,
so ``kid_std`` would measure only the other set's subsets.

Bootstrap resamples (rdmbench.stats) use the unbiased MMD^2 over the whole sets, which the subset
average estimates, with the resample as multiplicity weights w: the generated-generated term is
(w^T K w - sum_i w_i^2 k_ii) / (n^2 - sum_i w_i^2), so a repeated sample is never paired with
itself. The kernel matrices are computed once, in row blocks.
"""

from __future__ import annotations

import numpy as np

from rdmbench.api import Metric, MetricInputs
from rdmbench.columns import Column
from rdmbench.errors import RdmbenchError
from rdmbench.hookspecs import hookimpl

KID = Column("kid", "KID", "lower", space_dependent=True)
KID_STD = Column("kid_std", "KID std over subsets")


class KidMetric(Metric):
    """Kernel Inception-style distance: unbiased polynomial-kernel MMD^2 over subsets (torch-fidelity)."""

    name = "kid"
    columns = (KID, KID_STD)
    interval_columns = (KID,)

    def __init__(self, subsets: int = 100, subset_size: int = 1000, degree: int = 3):
        if subsets <= 0:
            raise ValueError("subsets must be positive")
        if subset_size < 2:
            raise ValueError("subset_size must be at least 2")
        if degree <= 0:
            raise ValueError("degree must be positive")
        self.subsets, self.subset_size, self.degree = subsets, subset_size, degree

    def compute(self, inputs: MetricInputs) -> dict[str, float]:
        import torch
        from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

        generated = np.asarray(inputs.features("generated", "embedding"), dtype=np.float64)
        reference = np.asarray(inputs.features("reference", "embedding"), dtype=np.float64)
        for role, features in (("generated", generated), ("reference", reference)):
            if self.subset_size >= len(features):
                raise RdmbenchError(f"kid subset_size {self.subset_size} must be smaller than the {len(features)} "
                                    f"{role} samples; allowed: 2..{len(features) - 1}")
        out = kid_features_to_metric(
            torch.from_numpy(generated), torch.from_numpy(reference),
            kid_subsets=self.subsets, kid_subset_size=self.subset_size, kid_kernel="poly",
            kid_kernel_poly_degree=self.degree,
            kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1, rng_seed=inputs.seed, verbose=False)
        return {KID: float(out[KEY_METRIC_KID_MEAN]), KID_STD: float(out[KEY_METRIC_KID_STD])}

    def resampler(self, inputs: MetricInputs):
        from rdmbench.stats import counts

        generated = np.asarray(inputs.features("generated", "embedding"), dtype=np.float64)
        reference = np.asarray(inputs.features("reference", "embedding"), dtype=np.float64)
        n, m, dim = len(generated), len(reference), generated.shape[1]

        def kernel_blocks(a: np.ndarray, b: np.ndarray):
            step = max(1, 2**25 // max(len(b), 1))  # ~256 MB of float64 per block
            for s in range(0, len(a), step):
                yield s, (a[s:s + step] @ b.T / dim + 1.0) ** self.degree

        def run(indices: np.ndarray) -> dict[str, np.ndarray]:
            w = counts(indices, n)
            quad, self_pairs = np.zeros(len(w)), np.zeros(len(w))
            for s, k in kernel_blocks(generated, generated):  # streamed: n x n never held at once
                block = w[:, s:s + len(k)]
                quad += ((block @ k) * w).sum(1)
                self_pairs += (block**2) @ np.diagonal(k, offset=s)
            gr = w @ np.concatenate([k.mean(1) for _, k in kernel_blocks(generated, reference)]) / n
            rr = sum(k.sum() - np.trace(k, offset=s) for s, k in kernel_blocks(reference, reference)) / (m * (m - 1))
            gg = (quad - self_pairs) / (n * n - (w**2).sum(1))
            return {KID: gg + rr - 2.0 * gr}

        return run


@hookimpl
def rdmbench_metrics():
    return [KidMetric]
