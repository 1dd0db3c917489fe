"""Per-class Fréchet distance: torch-fidelity's d x d matrix square root vs the exact few-sample path.

Why ``per-class`` does not call torch-fidelity: a class holds fewer samples (50 of 500 over 10 classes)
than the features have dimensions (1280), and torch-fidelity takes the square root of a 1280 x 1280
product for each class. ``fid.frechet_distance_few`` gets the same trace from the singular values of the
n_g x n_r cross matrix of the centred sets. Times both over the same per-class sets, one thread, checks
they agree, and prints the ratio.

    python benchmarks/bench_per_class_fd.py [--classes 10] [--samples 50] [--reference 500] [--dim 1280]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--samples", type=int, default=50, help="generated samples per class")
    parser.add_argument("--reference", type=int, default=500, help="reference images per class")
    parser.add_argument("--dim", type=int, default=1280)
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    from rdmbench_plugins.metrics.fid import frechet_distance_few

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    # features shaped like pooled CNN activations: non-negative, correlated, a few strong directions
    mix = rng.normal(size=(64, args.dim)) / 8
    sets = [(np.maximum(rng.normal(size=(args.samples, 64)) @ mix + 0.3 * c, 0),
             np.maximum(rng.normal(size=(args.reference, 64)) @ mix + 0.3 * c + 0.05, 0)) for c in range(args.classes)]

    def theirs(g: np.ndarray, r: np.ndarray) -> float:
        stats = [fid_features_to_statistics(torch.from_numpy(x)) for x in (g, r)]
        return float(fid_statistics_to_metric(stats[0], stats[1], verbose=False)[KEY_METRIC_FID])

    with threadpool_limits(1):
        start = time.perf_counter()
        a = [theirs(g, r) for g, r in sets]
        t_theirs = time.perf_counter() - start
        start = time.perf_counter()
        b = [frechet_distance_few(g, r) for g, r in sets]
        t_ours = time.perf_counter() - start
    worst = max(abs(x - y) / max(abs(x), 1e-12) for x, y in zip(a, b))
    print(f"{args.classes} classes, {args.samples} samples and {args.reference} reference vectors each, d = {args.dim}, 1 thread")
    print(f"torch-fidelity (d x d sqrtm): {t_theirs:.2f} s   few-sample path: {t_ours:.3f} s   "
          f"ratio {t_theirs / t_ours:.0f}x   largest relative difference {worst:.1e}")


if __name__ == "__main__":
    main()
