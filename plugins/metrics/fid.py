"""Fréchet distance between Gaussians fitted to generated and reference features (FID).

Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium" (arXiv 1706.08500). The computation is torch-fidelity's (``fid_features_to_statistics``
and ``fid_statistics_to_metric``), fed the features of whichever encoder the suite names; it is
"FID" in the published sense only with the ``inception-v3`` encoder.
"""

from __future__ import annotations

import numpy as np

from rdmbench.api import Metric, MetricInputs
from rdmbench.errors import RdmbenchError
from rdmbench.hookspecs import hookimpl

FID = "fid"


class FidMetric(Metric):
    """Fréchet distance between Gaussian fits of generated and reference embeddings (torch-fidelity)."""

    name = "fid"
    columns = (FID,)

    def compute(self, inputs: MetricInputs) -> dict[str, float]:
        import torch
        from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

        stats = []
        for role in ("generated", "reference"):
            # float64: the covariance square root loses digits that matter when FID is small
            features = np.asarray(inputs.features(role, "embedding"), dtype=np.float64)
            if features.ndim != 2 or len(features) < 2:
                raise RdmbenchError(f"fid needs at least 2 {role} feature vectors, got shape {features.shape}")
            stats.append(fid_features_to_statistics(torch.from_numpy(features)))
        return {FID: float(fid_statistics_to_metric(stats[0], stats[1], verbose=False)[KEY_METRIC_FID])}


@hookimpl
def rdmbench_metrics():
    return [FidMetric]
