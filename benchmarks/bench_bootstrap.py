"""Cost of the metrics' bootstrap intervals at the default profile's sizes (rdmbench.stats).

Features are real: EfficientNet-Lite2 (64 px, 1280-d) of Fashion-MNIST, 500 training images
standing in for the generated samples against 5,000 test images as the reference, i.e. the
shapes and value ranges a default run produces. Times each metric's point estimate (as the
metrics stage computes it) and its bootstrap, and prints the intervals.

    python benchmarks/bench_bootstrap.py [--resamples 200] [--features /tmp/lite2.npz]

Prints a markdown table to paste into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np

FASHION = Path("/usr/share/datasets/fashion-mnist")


def _idx(name: str, offset: int) -> np.ndarray:
    return np.frombuffer(gzip.open(FASHION / name).read(), np.uint8, offset=offset)


def features(cache: Path, n_generated: int, n_reference: int) -> dict[str, np.ndarray]:
    if cache.is_file():
        return dict(np.load(cache))
    from rdmbench_plugins.encoders.efficientnet_lite import EfficientNetLiteEncoder

    enc = EfficientNetLiteEncoder(variant="lite2", image_size=64)
    train = _idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)[:n_generated]
    test = _idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)[:n_reference]
    gen, ref = enc.features(train), enc.features(test)
    out = {"gen": gen["embedding"], "gen_logits": gen["logits"], "ref": ref["embedding"],
           "gen_labels": _idx("train-labels-idx1-ubyte.gz", 8)[:n_generated].astype(np.int64),
           "ref_labels": _idx("t10k-labels-idx1-ubyte.gz", 8)[:n_reference].astype(np.int64)}
    np.savez(cache, **out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--features", type=Path, default=Path("/tmp/rdmbench_bootstrap_lite2.npz"))
    parser.add_argument("--generated", type=int, default=500)
    parser.add_argument("--reference", type=int, default=5000)
    args = parser.parse_args()

    from rdmbench.api import MetricInputs
    from rdmbench.registry import get_registry
    from rdmbench.stats import interval, resample_indices

    f = features(args.features, args.generated, args.reference)
    table = {("generated", "embedding"): f["gen"][:args.generated], ("reference", "embedding"): f["ref"][:args.reference],
             ("generated", "logits"): f["gen_logits"][:args.generated]}
    inputs = MetricInputs(lambda role, out: table[(role, out)].astype(np.float32), "efficientnet-lite2",
                          f["ref_labels"][:args.reference], f["gen_labels"][:args.generated], 0)
    registry = get_registry()
    indices = resample_indices(args.generated, args.resamples, 0)
    print(f"{args.generated} generated x {args.reference} reference, {f['gen'].shape[1]}-d, "
          f"{args.resamples} resamples\n")
    print("| metric | point estimate s | bootstrap s | value [95% interval] |\n|---|---|---|---|")
    totals = [0.0, 0.0]
    for name, kwargs in (("fid", {}), ("kid", {"subset_size": 250}), ("inception-score", {}),
                         ("precision-recall", {}), ("class-agreement", {})):
        metric = registry.create("metric", registry.validate("metric", {"name": name, **kwargs}))
        start = time.perf_counter()
        values = metric.compute(inputs)
        point_s = time.perf_counter() - start
        start = time.perf_counter()
        reps = metric.resampler(inputs)(indices)
        boot_s = time.perf_counter() - start
        totals[0] += point_s
        totals[1] += boot_s
        cells = []
        for col in metric.interval_columns or metric.columns:
            lo, hi = interval(values[col], reps[col], 0.95)
            shift = np.median(reps[col]) - values[col]
            cells.append(f"{col} {values[col]:.4g} [{lo:.4g}, {hi:.4g}] (bootstrap median shift {shift:+.3g})")
        print(f"| {name} | {point_s:.2f} | {boot_s:.2f} | {'; '.join(cells)} |")
    print(f"| all | {totals[0]:.2f} | {totals[1]:.2f} | |")


if __name__ == "__main__":
    main()
