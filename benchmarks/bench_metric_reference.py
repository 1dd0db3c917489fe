"""What the runs of one reference pay for its metrics, with and without sharing the values of the reference alone.

Class agreement fits a classifier on the reference features, and FID's bootstrap takes the square root of their
covariance; neither depends on the generated samples. ``MetricInputs.of_reference`` keeps them for the runs of one
reference (and seed) in one process: a suite's runs one after another, a test's smoke suite. Here: ``--runs`` runs
of the default metrics with their bootstrap at the default study's sizes (500 samples, 5,000 reference features
of EfficientNet-Lite2's 1,280 dimensions; synthetic, ten classes), unnamed (each run computes everything) and
named (the reference's values shared), interleaved; the rows must be identical.

    python benchmarks/bench_metric_reference.py [--runs 4] [--reference 5000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import numpy as np

METRICS = {"fid": {}, "kid": {"subset_size": 250}, "precision-recall": {}, "inception-score": {}, "class-agreement": {}}


def runs(n_runs: int, n_reference: int, dim: int, key: str | None) -> tuple[float, list[dict]]:
    from rdmbench.api import MetricInputs
    from rdmbench.registry import get_registry
    from rdmbench.stats import bootstrap

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (10, dim))
    ref_labels = np.arange(n_reference) % 10
    reference = (centres[ref_labels] + rng.normal(0, 3, (n_reference, dim))).astype(np.float32)
    registry = get_registry()
    rows, start = [], time.perf_counter()
    for r in range(n_runs):  # each run: its own samples, the same reference and seed
        query = np.random.default_rng(r + 1).integers(0, 10, 500)
        generated = (centres[query] + np.random.default_rng(r + 1).normal(0, 3, (500, dim))).astype(np.float32)
        logits = np.random.default_rng(r + 1).normal(0, 3, (500, 10)).astype(np.float32)
        table = {("generated", "embedding"): generated, ("reference", "embedding"): reference,
                 ("generated", "logits"): logits}
        inputs = replace(MetricInputs(lambda role, out: table[(role, out)], "synthetic", ref_labels, query, 0),
                         reference_key=key)
        used = [registry.create("metric", {"name": name, **kw}) for name, kw in METRICS.items()]
        values: dict = {}
        for metric in used:
            values.update(metric.compute(inputs))
        values.update(bootstrap(used, inputs, values, resamples=200, level=0.95, seed=0))
        rows.append(values)
    return time.perf_counter() - start, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--reference", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"each run alone": [], "reference shared": []}
    for rep in range(args.repeats):  # interleaved, so a busy moment falls on both
        alone, rows_alone = runs(args.runs, args.reference, args.dim, None)
        shared, rows_shared = runs(args.runs, args.reference, args.dim, f"bench-{rep}")
        assert rows_alone == rows_shared, "sharing the reference's values changed a row"
        times["each run alone"].append(alone)
        times["reference shared"].append(shared)
    for name, ts in times.items():
        print(f"{name:>17}: {statistics.median(ts):6.1f} s for {args.runs} runs (median of {args.repeats})")
    a, s = (statistics.median(ts) for ts in times.values())
    print(f"ratio: {a / s:.2f}x ({args.runs} runs of one reference: {args.reference} x {args.dim} features, "
          f"500 samples, 200 resamples); rows identical")


if __name__ == "__main__":
    main()
