"""Improved precision and recall of generated against reference features (k-NN manifolds).

Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing Generative Models"
(arXiv 1904.06991). Precision: fraction of generated samples inside the reference manifold (the
union of balls reaching each reference sample's k-th neighbour); recall: fraction of reference
samples inside the generated manifold. The computation is torch-fidelity's
``prc_features_to_metric``, whose first argument is the GENERATED set and second the REAL one.

Both manifolds are estimated from sets of equal size, as the paper requires (a k-NN ball shrinks as
its set grows, so a 5,000-image reference against 500 samples would inflate precision and deflate
recall): the larger set is cut to a seeded random subset (the run seed) of the smaller one's size,
and that size is recorded as ``pr_set_size``.

Bootstrap resamples (rdmbench.stats) keep both sets' balls as estimated from the full subsets:
precision is the resample's mean of each sample's "inside the reference manifold" indicator, recall
the fraction of the reference subset inside the balls of the samples the resample contains.
"""

from __future__ import annotations

import numpy as np

from rdmbench.api import Metric, MetricInputs
from rdmbench.columns import Column
from rdmbench.errors import RdmbenchError
from rdmbench.hookspecs import hookimpl

RECALL = Column("recall", "recall", "higher", description="share of reference images inside the samples' manifold (diversity)")
PRECISION = Column("precision", "precision", "higher", description="share of samples inside the reference manifold (quality)",
                   recall=RECALL)
F_SCORE = Column("f_score", "F-score", "higher")
PR_SET_SIZE = Column("pr_set_size", "precision/recall set size", summary=False, numeric=True)


def equal_subsets(n_generated: int, n_reference: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of the generated and reference samples compared: the larger set cut to the smaller's size."""
    size = min(n_generated, n_reference)
    rng = np.random.default_rng([seed, 0x9C])  # its own stream: never the sampler's draws

    def pick(n: int) -> np.ndarray:
        return np.arange(n) if n == size else np.sort(rng.permutation(n)[:size])

    return pick(n_generated), pick(n_reference)


class PrecisionRecallMetric(Metric):
    """Improved precision / recall / F-score of generated vs reference embeddings (torch-fidelity)."""

    name = "precision-recall"
    columns = (PRECISION, RECALL, F_SCORE, PR_SET_SIZE)
    interval_columns = (PRECISION, RECALL, F_SCORE)

    def __init__(self, neighborhood: int = 3):
        if neighborhood <= 0:
            raise ValueError("neighborhood must be positive")
        self.neighborhood = neighborhood

    def compute(self, inputs: MetricInputs) -> dict[str, float]:
        import torch
        from torch_fidelity.metric_prc import (KEY_METRIC_F_SCORE, KEY_METRIC_PRECISION, KEY_METRIC_RECALL,
                                               prc_features_to_metric)

        generated, reference = self._sets(inputs)
        # save_cpu_ram: distances in row blocks, never the full N x N matrix at once (50k samples = 10 GB)
        out = prc_features_to_metric(torch.from_numpy(generated), torch.from_numpy(reference),
                                     prc_neighborhood=self.neighborhood, save_cpu_ram=True, verbose=False)
        return {PRECISION: float(out[KEY_METRIC_PRECISION]), RECALL: float(out[KEY_METRIC_RECALL]),
                F_SCORE: float(out[KEY_METRIC_F_SCORE]), PR_SET_SIZE: float(len(generated))}

    def _sets(self, inputs: MetricInputs) -> tuple[np.ndarray, np.ndarray]:
        generated = np.asarray(inputs.features("generated", "embedding"), dtype=np.float32)
        reference = np.asarray(inputs.features("reference", "embedding"), dtype=np.float32)
        for role, features in (("generated", generated), ("reference", reference)):
            if len(features) <= self.neighborhood:  # each sample's ball reaches its k-th *other* neighbour
                raise RdmbenchError(f"precision-recall with neighborhood {self.neighborhood} needs more than "
                                    f"{self.neighborhood} {role} samples, got {len(features)}")
        gen_ids, ref_ids = equal_subsets(len(generated), len(reference), inputs.seed)
        return generated[gen_ids], reference[ref_ids]

    def resampler(self, inputs: MetricInputs):
        import torch

        from rdmbench.stats import counts

        n = len(inputs.features("generated", "embedding"))
        gen_ids, _ = equal_subsets(n, len(inputs.features("reference", "embedding")), inputs.seed)
        generated, reference = (torch.from_numpy(a) for a in self._sets(inputs))
        k = self.neighborhood + 1  # the k-th other neighbour; the sample itself is at distance 0

        def radii(x: torch.Tensor) -> torch.Tensor:
            return torch.cat([torch.cdist(b, x).kthvalue(k).values for b in x.split(4096)])

        r_gen, r_ref = radii(generated), radii(reference)
        inside = torch.cat([(torch.cdist(b, reference) <= r_ref).any(1) for b in generated.split(4096)]).double()
        covers = torch.cat([torch.cdist(b, generated) <= r_gen for b in reference.split(4096)])  # ref x gen

        def run(indices: np.ndarray) -> dict[str, np.ndarray]:
            w = torch.from_numpy(counts(indices, n)[:, gen_ids])
            precision = (w @ inside / w.sum(1).clamp_min(1)).numpy()
            present = (w > 0).float().T
            covered = sum((c.float() @ present > 0).sum(0) for c in covers.split(4096))
            recall = (covered.double() / len(reference)).numpy()
            f_score = 2 * precision * recall / np.maximum(1e-5, precision + recall)
            return {PRECISION: precision, RECALL: recall, F_SCORE: f_score}

        return run


@hookimpl
def rdmbench_metrics():
    return [PrecisionRecallMetric]
