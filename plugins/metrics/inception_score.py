"""Inception Score: exp E_x KL(p(y|x) || p(y)) over the encoder's class logits, in splits.

Salimans et al. 2016, "Improved Techniques for Training GANs" (arXiv 1606.03498). The computation
is torch-fidelity's ``isc_features_to_metric`` (samples shuffled with the run's seed, then split).
It uses only the generated images. With the ``efficientnet-lite`` encoder the classes are
ImageNet's 1000, as with Inception-v3, but the numbers are not comparable with published IS.

``splits`` is clamped to the number of samples so that tiny runs produce a number rather than NaN.

Bootstrap resamples (rdmbench.stats) repeat torch-fidelity's computation in numpy on the resampled
softmax outputs, in the same shuffled order, without re-running the softmax.
"""

from __future__ import annotations

import numpy as np

from rdmbench.api import Metric, MetricInputs
from rdmbench.columns import Column
from rdmbench.errors import RdmbenchError
from rdmbench.hookspecs import hookimpl

IS = Column("is", "IS", "higher", space_dependent=True)
IS_STD = Column("is_std", "IS std over splits")


class InceptionScoreMetric(Metric):
    """Inception Score of the generated images from the encoder's logits (torch-fidelity)."""

    name = "inception-score"
    columns = (IS, IS_STD)
    interval_columns = (IS,)  # is_std is torch-fidelity's spread over splits, not a score
    needs = ("logits",)

    def __init__(self, splits: int = 10):
        if splits <= 0:
            raise ValueError("splits must be positive")
        self.splits = splits

    def compute(self, inputs: MetricInputs) -> dict[str, float]:
        import torch
        from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

        logits = np.asarray(inputs.features("generated", "logits"), dtype=np.float64)
        if logits.ndim != 2 or len(logits) == 0:
            raise RdmbenchError(f"inception-score needs generated logits, got shape {logits.shape}")
        out = isc_features_to_metric(torch.from_numpy(logits), splits=min(self.splits, len(logits)),
                                     shuffle=True, rng_seed=inputs.seed)
        return {IS: float(out[KEY_METRIC_ISC_MEAN]), IS_STD: float(out[KEY_METRIC_ISC_STD])}

    def resampler(self, inputs: MetricInputs):
        logits = np.asarray(inputs.features("generated", "logits"), dtype=np.float64)
        n = len(logits)
        log_p = logits - logits.max(1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
        order = np.random.RandomState(inputs.seed).permutation(n)  # torch-fidelity's shuffle
        splits = min(self.splits, n)
        bounds = [(i * n // splits, (i + 1) * n // splits) for i in range(splits)]

        def run(indices: np.ndarray) -> dict[str, np.ndarray]:
            out = np.empty(len(indices))
            for b, idx in enumerate(indices):
                lp = log_p[idx[order]]
                scores = []
                for lo, hi in bounds:
                    chunk = lp[lo:hi]
                    q = np.exp(chunk).mean(0)
                    scores.append(np.exp((np.exp(chunk) * (chunk - np.log(q))).sum(1).mean()))
                out[b] = np.mean(scores)
            return {IS: out}

        return run


@hookimpl
def rdmbench_metrics():
    return [InceptionScoreMetric]
