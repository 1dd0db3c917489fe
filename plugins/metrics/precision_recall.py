"""Improved precision and recall of generated against reference features (k-NN manifolds).

Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing Generative Models"
(arXiv 1904.06991). Precision: fraction of generated samples inside the reference manifold (the
union of balls reaching each reference sample's k-th neighbour); recall: fraction of reference
samples inside the generated manifold. The computation is torch-fidelity's
``prc_features_to_metric``, whose first argument is the GENERATED set and second the REAL one.
"""

from __future__ import annotations

import numpy as np

from rdmbench.api import Metric, MetricInputs
from rdmbench.errors import RdmbenchError
from rdmbench.hookspecs import hookimpl

PRECISION = "precision"
RECALL = "recall"
F_SCORE = "f_score"


class PrecisionRecallMetric(Metric):
    """Improved precision / recall / F-score of generated vs reference embeddings (torch-fidelity)."""

    name = "precision-recall"
    columns = (PRECISION, RECALL, F_SCORE)

    def __init__(self, neighborhood: int = 3):
        if neighborhood <= 0:
            raise ValueError("neighborhood must be positive")
        self.neighborhood = neighborhood

    def compute(self, inputs: MetricInputs) -> dict[str, float]:
        import torch
        from torch_fidelity.metric_prc import (KEY_METRIC_F_SCORE, KEY_METRIC_PRECISION, KEY_METRIC_RECALL,
                                               prc_features_to_metric)

        generated = np.asarray(inputs.features("generated", "embedding"), dtype=np.float32)
        reference = np.asarray(inputs.features("reference", "embedding"), dtype=np.float32)
        for role, features in (("generated", generated), ("reference", reference)):
            if len(features) <= self.neighborhood:  # each sample's ball reaches its k-th *other* neighbour
                raise RdmbenchError(f"precision-recall with neighborhood {self.neighborhood} needs more than "
                                    f"{self.neighborhood} {role} samples, got {len(features)}")
        # save_cpu_ram: distances in row blocks, never the full N x N matrix at once (50k samples = 10 GB)
        out = prc_features_to_metric(torch.from_numpy(generated), torch.from_numpy(reference),
                                     prc_neighborhood=self.neighborhood, save_cpu_ram=True, verbose=False)
        return {PRECISION: float(out[KEY_METRIC_PRECISION]), RECALL: float(out[KEY_METRIC_RECALL]),
                F_SCORE: float(out[KEY_METRIC_F_SCORE])}


@hookimpl
def rdmbench_metrics():
    return [PrecisionRecallMetric]
