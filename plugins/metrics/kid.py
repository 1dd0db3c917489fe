"""Kernel distance (KID): unbiased MMD^2 with a polynomial kernel, averaged over random subsets.

Bińkowski et al. 2018, "Demystifying MMD GANs" (arXiv 1801.01401). Unlike FID it is unbiased in
the number of samples, so small runs can be compared with large ones. The computation is
torch-fidelity's ``kid_features_to_metric`` with kernel (x.y / dim + 1) ** degree.

``subset_size`` is clamped to the smaller of the two sets, so that small runs still produce a
number; with the clamp every subset is the whole smaller set and only the other set is resampled,
which shrinks ``kid_std``. The effective size is min(subset_size, len(generated), len(reference)).
"""

from __future__ import annotations

import numpy as np

from rdmbench.api import Metric, MetricInputs
from rdmbench.errors import RdmbenchError
from rdmbench.hookspecs import hookimpl

KID = "kid"
KID_STD = "kid_std"


class KidMetric(Metric):
    """Kernel Inception-style distance: unbiased polynomial-kernel MMD^2 over subsets (torch-fidelity)."""

    name = "kid"
    columns = (KID, KID_STD)

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
        size = min(self.subset_size, len(generated), len(reference))
        if size < 2:
            raise RdmbenchError(f"kid needs at least 2 generated and 2 reference samples, "
                                f"got {len(generated)} and {len(reference)}")
        out = kid_features_to_metric(
            torch.from_numpy(generated), torch.from_numpy(reference),
            kid_subsets=self.subsets, kid_subset_size=size, kid_kernel="poly", kid_kernel_poly_degree=self.degree,
            kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1, rng_seed=inputs.seed, verbose=False)
        return {KID: float(out[KEY_METRIC_KID_MEAN]), KID_STD: float(out[KEY_METRIC_KID_STD])}


@hookimpl
def rdmbench_metrics():
    return [KidMetric]
