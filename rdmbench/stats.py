"""Bootstrap confidence intervals for metric values: resample the generated samples, recompute.

Efron & Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13. The features are extracted
once; each resample draws n generated-sample indices with replacement (seeded by the run seed, one
draw shared by all metrics) and only the metric math is repeated, through each metric's
``resampler`` (rdmbench.api.Metric), which reuses what a resample does not change.

The interval is the bootstrap percentile interval translated so that the bootstrap median sits on
the point estimate: ``[x - (median - q_lo), x + (q_hi - median)]``. Resampling with replacement
repeats samples, and a repeated sample moves covariance- and neighbour-based metrics (FD rises,
recall falls) by an amount that says nothing about the model, while the spread of the replicates
is what varies from one draw of n samples to the next. The interval is therefore the uncertainty
of the metric *at this sample size*, which is what rows of equal ``num_samples`` are compared on;
it does not cover the sample-size bias of FD itself (FD at 500 samples is not FD at 50,000).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from rdmbench.api import Metric, MetricInputs

LO, HI = "_lo", "_hi"


def resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) indices drawn with replacement; the same for the same (n, resamples, seed)."""
    # a stream of its own, so the bootstrap never shares draws with the sampler seeded by the same seed
    rng = np.random.default_rng([seed, 0xB0075])
    return rng.integers(0, n, size=(resamples, n))


def counts(indices: np.ndarray, n: int) -> np.ndarray:
    """Multiplicity of each sample in each resample: (resamples, n) float64."""
    out = np.zeros((len(indices), n))
    for row, idx in zip(out, indices):
        row += np.bincount(idx, minlength=n)
    return out


def interval(point: float, replicates: np.ndarray, level: float) -> tuple[float, float]:
    """Median-centred percentile interval (see the module docstring); NaN when under half the
    replicates are finite."""
    reps = np.asarray(replicates, dtype=np.float64)
    reps = reps[np.isfinite(reps)]
    if not np.isfinite(point) or len(reps) < max(2, len(replicates) / 2):
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    q_lo, median, q_hi = np.quantile(reps, [alpha, 0.5, 1.0 - alpha])
    return float(point - (median - q_lo)), float(point + (q_hi - median))


def bootstrap(metrics: Sequence[Metric], inputs: MetricInputs, values: dict[str, float], *, resamples: int,
              level: float, seed: int, replicates: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """``<col>_lo`` and ``<col>_hi`` for every interval column of ``metrics`` (values: their point estimates).

    ``replicates``, when given, receives each column's replicate values. Runs of one seed and sample count draw
    the same indices, so replicate b of two such runs resamples the same samples: their difference is the paired
    bootstrap that rdmbench.verdicts reads from each run's replicates.csv."""
    if resamples <= 0:
        return {}
    n = len(inputs.features("generated", "embedding"))
    indices = resample_indices(n, resamples, seed)
    out: dict[str, float] = {}
    for metric in metrics:
        wanted = metric.columns if metric.interval_columns is None else metric.interval_columns
        if not wanted:
            continue
        reps = metric.resampler(inputs)(indices)
        for col in wanted:
            out[col + LO], out[col + HI] = interval(values[col], reps[col], level)
            if replicates is not None:
                replicates[col] = np.asarray(reps[col], dtype=np.float64)
    return out


def write_replicates(path: Path, replicates: dict[str, np.ndarray]) -> None:
    """One column per metric, one line per resample (CSV: small, diffable, committed beside results)."""
    from rdmbench.cache import write_text

    names = sorted(replicates)
    lines = [",".join(names)]
    for b in range(len(replicates[names[0]]) if names else 0):
        lines.append(",".join(f"{replicates[n][b]:.7g}" for n in names))
    write_text(path, "\n".join(lines) + "\n")


def read_replicates(path: Path) -> dict[str, np.ndarray]:
    """What write_replicates wrote: {column: replicate values}."""
    text = path.read_text().splitlines()
    names = text[0].split(",") if text else []
    table = np.array([[float(v) for v in line.split(",")] for line in text[1:]], dtype=np.float64)
    return {n: table[:, i] if len(table) else np.zeros(0) for i, n in enumerate(names)}


def resampled_inputs(inputs: MetricInputs, idx: np.ndarray) -> MetricInputs:
    """The same inputs with the generated samples (features and query labels) taken at ``idx``."""
    from dataclasses import replace

    def features(role: str, output: str) -> np.ndarray:
        arr = inputs.features(role, output)
        return np.asarray(arr)[idx] if role == "generated" else arr

    labels = None if inputs.query_labels is None else np.asarray(inputs.query_labels)[idx]
    return replace(inputs, features=features, query_labels=labels)


def recompute_on_resamples(metric: Metric, inputs: MetricInputs) -> Callable[[np.ndarray], dict[str, Any]]:
    """The generic resampler: ``compute`` on each resample."""

    def run(indices: np.ndarray) -> dict[str, np.ndarray]:
        rows = [metric.compute(resampled_inputs(inputs, idx)) for idx in indices]
        return {col: np.array([r[col] for r in rows], dtype=np.float64) for col in metric.columns}

    return run
