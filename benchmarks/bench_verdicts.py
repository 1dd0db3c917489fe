"""Which interval over a few seeds calls effects at the rate it promises (issue 20, rdmbench.verdicts).

Synthetic suites whose true contrast is known (the model of tests/test_verdicts.py): two cells A and B that
are different trained heads, per seed a training effect per cell h ~ N(0, tau²), sample noise eps ~ N(0, sigma²)
correlated across the cells of a seed with rho, and per (cell, seed) B bootstrap replicates drawn the same way
(replicate b resamples the same indices in both runs). sigma = 1, rho = 0.5, and tau = 1 (the sample noise is a
third of the per-seed contrast's variance) or tau = 2 (a ninth: training dominates).

For each tau, on the same draws, at 3 and 5 seeds, with no effect and with an effect of 6.8 standard errors of the 3-seed
mean (where the t on 2 df has 90 % power), each method's 95 % interval for the contrast:

  t             rdmbench.verdicts.estimate: Student's t over the per-seed contrasts
  hierarchical  resample seeds, then one bootstrap replicate of each chosen seed; percentile interval
  rliable       rliable.library.get_interval_estimates on the per-seed contrasts (runs × 1 task), mean
  scipy         scipy.stats.bootstrap on the per-seed contrasts, method='percentile' (and BCa, reported apart)

"False positives" is the share of null draws whose interval excludes 0 (nominal 5 %), "power" the share of
effect draws whose interval lies above 0. Width is the median interval width over the null draws, as a
multiple of the t's.

    python benchmarks/bench_verdicts.py [--draws 1000] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import time
import warnings
from importlib import metadata

import numpy as np

SIGMA, RHO = 1.0, 0.5
TAUS = (1.0, 2.0)          # training sd: the sample noise is 1/3, then 1/9 of the contrast's variance
REPLICATES = 200            # per run, as a default run records (rdmbench.stats)
EFFECT_SE = 6.8             # 90 % power of the t on 2 df
WEIGHTS = np.array([1.0, -1.0])


def simulate(rng: np.random.Generator, draws: int, seeds: int, effect: float,
             tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed contrasts (draws, seeds) and their paired replicates (draws, seeds, REPLICATES)."""
    def correlated(shape):
        return np.sqrt(RHO) * rng.standard_normal((*shape, 1)) + np.sqrt(1 - RHO) * rng.standard_normal((*shape, 2))

    mu = effect * WEIGHTS / (WEIGHTS @ WEIGHTS)
    values = mu + tau * rng.standard_normal((draws, seeds, 2)) + SIGMA * correlated((draws, seeds))
    reps = values[:, :, None, :] + SIGMA * correlated((draws, seeds, REPLICATES))
    return values @ WEIGHTS, reps @ WEIGHTS


def t_intervals(per_seed: np.ndarray) -> np.ndarray:
    from rdmbench.verdicts import estimate

    return np.array([[e.lo, e.hi] for e in map(estimate, per_seed)])


def hierarchical(rng: np.random.Generator, reps: np.ndarray, resamples: int) -> np.ndarray:
    draws, seeds, b = reps.shape
    out = np.empty((draws, 2))
    for i in range(draws):
        chosen = rng.integers(0, seeds, (resamples, seeds))
        means = reps[i, chosen, rng.integers(0, b, (resamples, seeds))].mean(axis=1)
        out[i] = np.quantile(means, [0.025, 0.975])
    return out


def scipy_intervals(rng: np.random.Generator, per_seed: np.ndarray, resamples: int, method: str):
    from scipy import stats

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ci = stats.bootstrap((per_seed,), np.mean, axis=-1, vectorized=True, method=method,
                             n_resamples=resamples, rng=rng).confidence_interval
    return np.column_stack([ci.low, ci.high]), sorted({str(w.message).splitlines()[0][:120] for w in caught})


def rliable_method():
    """(interval function or None, a note on how rliable ran or why it did not)."""
    try:
        from rliable import library as rly
    except Exception as exc:  # noqa: BLE001 - any import failure is a reason to skip the column, printed
        return None, f"skipped: import rliable failed ({type(exc).__name__}: {exc})"

    def mean(x):
        return np.array([np.mean(x)])

    def interval(d: np.ndarray, resamples: int) -> tuple[float, float]:
        ci = rly.get_interval_estimates({"c": d[:, None]}, mean, reps=resamples)[1]["c"]
        return float(ci[0, 0]), float(ci[1, 0])

    note = "as installed"
    try:
        interval(np.array([0.0, 1.0, 2.0]), 10)
    except TypeError as exc:
        if "random_state" not in str(exc):
            return None, f"skipped: rliable failed ({exc})"
        # rliable 1.2 hands random_state= to arch's IIDBootstrap; arch 7 renamed it seed and arch 8 dropped
        # the old name. rliable draws its indices from np.random either way, so passing it on as seed loses
        # nothing
        from arch.bootstrap import IIDBootstrap

        original = IIDBootstrap.__init__

        def init(self, *args, random_state=None, **kwargs):
            if random_state is not None:
                kwargs.setdefault("seed", random_state)
            original(self, *args, **kwargs)

        IIDBootstrap.__init__ = init
        try:
            interval(np.array([0.0, 1.0, 2.0]), 10)
        except Exception as exc2:  # noqa: BLE001
            return None, f"skipped: rliable failed even with random_state passed on as seed ({exc2})"
        note = ("rliable's call fails under arch 8 (TypeError: random_state is no longer an arch keyword); "
                "ran with random_state passed on to arch as seed")
    return interval, note


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per interval")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()

    import arch
    import scipy

    rly_interval, rly_note = rliable_method()
    try:
        versions = f"rliable {metadata.version('rliable')}, arch {arch.__version__}, "
    except metadata.PackageNotFoundError:
        versions = f"arch {arch.__version__}, "
    print(f"{versions}scipy {scipy.__version__}, numpy {np.__version__}; rliable: {rly_note}")
    print(f"{args.draws} draws per cell of the table, {args.resamples} resamples per bootstrap interval, "
          f"{REPLICATES} replicates per run, sigma {SIGMA}, rho {RHO}; the effect is {EFFECT_SE} standard errors "
          "of the 3-seed mean")

    rng = np.random.default_rng(args.seed)
    np.random.seed(args.seed)  # rliable draws its resamples from the global generator
    methods = ["t", "hierarchical", "rliable", "scipy percentile", "scipy BCa"]
    rows: dict[tuple[float, str, int], dict[str, float]] = {}
    bca_notes: dict[int, set[str]] = {3: set(), 5: set()}
    started = time.perf_counter()
    for tau in TAUS:
        sd = np.sqrt(WEIGHTS @ WEIGHTS * (tau**2 + SIGMA**2 * (1 - RHO)))
        effect = EFFECT_SE * sd / np.sqrt(3)
        print(f"tau {tau}: per-seed contrast sd {sd:.3f}, effect {effect:.2f}")
        for seeds in (3, 5):
            for kind, eff in (("null", 0.0), ("effect", effect)):
                per_seed, reps = simulate(rng, args.draws, seeds, eff, tau)
                got = {"t": t_intervals(per_seed), "hierarchical": hierarchical(rng, reps, args.resamples),
                       "scipy percentile": scipy_intervals(rng, per_seed, args.resamples, "percentile")[0]}
                got["scipy BCa"], notes = scipy_intervals(rng, per_seed, args.resamples, "BCa")
                bca_notes[seeds].update(notes)
                if rly_interval is not None:
                    got["rliable"] = np.array([rly_interval(d, args.resamples) for d in per_seed])
                for name, ci in got.items():
                    row = rows.setdefault((tau, name, seeds), {})
                    finite = np.isfinite(ci).all(axis=1)
                    row[f"{kind} finite"] = float(finite.mean())
                    if kind == "null":
                        row["fpr"] = float(np.mean((ci[finite, 0] > 0) | (ci[finite, 1] < 0)))
                        row["width"] = float(np.median(ci[finite, 1] - ci[finite, 0]))
                    else:
                        row["power"] = float(np.mean(ci[finite, 0] > 0))
                        row["wrong"] = float(np.mean(ci[finite, 1] < 0))

    se = np.sqrt(0.05 * 0.95 / args.draws)
    print("\n| tau | method | seeds | false positives (nominal 5 %) | × nominal | power | width / t's |")
    print("|---|---|---|---|---|---|---|")
    for tau in TAUS:
        for seeds in (3, 5):
            for name in methods:
                row = rows.get((tau, name, seeds))
                if row is None:
                    print(f"| {tau:g} | {name} | {seeds} | skipped | | | |")
                    continue
                width = row["width"] / rows[(tau, "t", seeds)]["width"]
                print(f"| {tau:g} | {name} | {seeds} | {row['fpr']:.1%} | {row['fpr'] / 0.05:.1f}× | "
                      f"{row['power']:.1%} | {width:.2f} |")
    print(f"\nbinomial SE of a 5 % rate over {args.draws} draws: {se:.2%}")
    for seeds in (3, 5):
        finite = min(r[k] for (_, name, n), r in rows.items() if name == "scipy BCa" and n == seeds
                     for k in ("null finite", "effect finite"))
        print(f"scipy BCa at {seeds} seeds: finite intervals in {finite:.1%} of draws; warnings: "
              f"{sorted(bca_notes[seeds]) or 'none'}")
    wrong = max(r.get("wrong", 0.0) for r in rows.values())
    print(f"largest share of effect draws with an interval below 0 (any method): {wrong:.1%}")
    # any bootstrap over the seeds alone stays within [min, max] of the per-seed contrasts, which excludes 0
    # whenever all seeds share a sign: 2 · 0.5^n under a symmetric null
    print(f"all seeds of one sign under the null: 3 seeds {2 * 0.5**3:.1%}, 5 seeds {2 * 0.5**5:.1%}")
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
