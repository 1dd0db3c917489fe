"""Paired differences between runs, their intervals, and a verdict per claim (docs/statistics.md).

A comparison is a contrast: a weighted sum of cells' values (A − B; a least-squares slope along an axis; the
slope of A − B). Runs of one seed share the initialisation, batches, queries and noise, so the contrast is
taken within each seed, where most of the noise cancels, and the seeds are what is averaged:

* two or more seeds: Student's t over the per-seed contrasts (scipy.stats.ttest_1samp). Each seed's contrast
  is one draw of the whole pipeline (training and sampling), so the interval covers the training-seed and the
  sample variance. With 3 seeds it is wide (t = 4.30), and that is the point: the hierarchical bootstrap and
  rliable's stratified bootstrap are narrower because they undercount seed variance, and call an effect that
  does not exist more often than the nominal rate (benchmarks/bench_verdicts.py measures both).
* one seed: the paired bootstrap over the generated samples. Every run of one seed and sample count resamples
  the same indices (rdmbench.stats), so replicate b of the contrast is the contrast of replicates b. It covers
  the sample variance only: a verdict on it is about these trained heads, never about the training recipe.

Verdicts use Holm's correction within a family of tests (statsmodels' multipletests): the scorecard's family is
one study, the claims of one suite (benchmarks/bench_families.py measured the choice against one family for the
whole card). "no effect" is two one-sided tests (TOST) against a declared margin.

A claim left unresolved may get more seeds, and testing it again is another look at the same question: at α
each time, a claim with no effect would get a verdict at one of the looks 3, 5 and 8 seeds 11.7 % of the time
(bench_families.py). So the scorecard tests at fixed looks (``LOOKS``) and at ``ALPHA_PER_LOOK`` each, Pocock's
constant level for those looks: the chance of a false verdict at some look is α.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

Expect = Literal["increase", "decrease", "none"]
VERDICTS = ("agrees", "contradicts", "no effect", "unresolved")
ALPHA = 0.05
POWER = 0.8
#: the seed counts a claim is tested at: a claim left unresolved at one gets seeds up to the next, none after the last
LOOKS = (3, 5, 8)
#: the level of each look such that a contrast of 0 (Student's t, normal per-seed values) gets a verdict at some
#: look with probability ALPHA: Pocock's constant boundary, found by simulation (tests/test_verdicts.py re-derives it)
ALPHA_PER_LOOK = 0.0197
SEEDS_AND_SAMPLES = "seeds and samples"
SAMPLES_ONLY = "samples (one seed)"


@dataclass(frozen=True)
class Estimate:
    """A contrast's estimate, its interval at ``level`` and the p-values a verdict is read from."""

    value: float
    lo: float
    hi: float
    p: float                     # two-sided, of "the contrast is 0"
    p_equivalent: float | None   # TOST, of "the contrast lies outside ±margin" (None: no margin declared)
    seeds: int
    covers: str                  # SEEDS_AND_SAMPLES or SAMPLES_ONLY
    detectable: float            # the smallest |contrast| found with POWER at ALPHA_PER_LOOK by this design
    level: float = 0.95

    @property
    def excludes_zero(self) -> bool:
        return bool(self.lo > 0 or self.hi < 0)


def estimate(per_seed: Sequence[float], replicates: np.ndarray | None = None, *, margin: float | None = None,
             level: float = 0.95) -> Estimate:
    """The contrast from its per-seed values (and, for one seed, its bootstrap replicates)."""
    d = np.asarray(per_seed, dtype=np.float64)
    if len(d) >= 2:
        return _over_seeds(d, margin, level)
    # a NaN point would centre every replicate on NaN, and NaN compares false both ways: p = 0, a verdict from
    # nothing. Under half the replicates finite is where rdmbench.stats.interval gives up on a run's interval
    if (len(d) == 1 and np.isfinite(d[0]) and replicates is not None
            and np.isfinite(replicates).sum() >= max(2, np.size(replicates) / 2)):
        return _over_samples(float(d[0]), np.asarray(replicates, dtype=np.float64), margin, level)
    nan = float("nan")
    return Estimate(float(d[0]) if len(d) else nan, nan, nan, nan, None, len(d), SAMPLES_ONLY, nan, level)


def _over_seeds(d: np.ndarray, margin: float | None, level: float) -> Estimate:
    from scipy import stats

    n, mean = len(d), float(d.mean())
    se = float(d.std(ddof=1) / np.sqrt(n))
    df = n - 1
    detectable = (stats.t.ppf(1 - ALPHA_PER_LOOK / 2, df) + stats.t.ppf(POWER, df)) * se
    if se <= 1e-12 * max(1.0, abs(mean)):  # every seed gave the same contrast (to float noise): nothing varies
        p = 1.0 if mean == 0 else 0.0
        p_eq = None if margin is None else (0.0 if abs(mean) < margin else 1.0)
        return Estimate(mean, mean, mean, p, p_eq, n, SEEDS_AND_SAMPLES, 0.0, level)
    with warnings.catch_warnings():  # nearly equal seeds: scipy warns of precision it does not need here
        warnings.simplefilter("ignore", RuntimeWarning)
        test = stats.ttest_1samp(d, 0.0)
        ci = test.confidence_interval(level)
        p_eq = None
        if margin is not None:
            above = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
            below = stats.ttest_1samp(d, margin, alternative="less").pvalue
            p_eq = float(max(above, below))
    return Estimate(mean, float(ci.low), float(ci.high), float(test.pvalue), p_eq, n, SEEDS_AND_SAMPLES,
                    float(detectable), level)


def _over_samples(point: float, reps: np.ndarray, margin: float | None, level: float) -> Estimate:
    from scipy import stats as sps

    from rdmbench.stats import interval

    reps = reps[np.isfinite(reps)]
    lo, hi = interval(point, reps, level)
    # the replicates, centred like the interval (rdmbench.stats): the distribution of the contrast around it
    centred = reps - np.median(reps) + point
    p = float(min(1.0, 2 * min(np.mean(centred <= 0), np.mean(centred >= 0))))
    p_eq = None
    if margin is not None:
        p_eq = float(max(np.mean(centred <= -margin), np.mean(centred >= margin)))
    detectable = (sps.norm.ppf(1 - ALPHA_PER_LOOK / 2) + sps.norm.ppf(POWER)) * float(reps.std(ddof=1))
    return Estimate(point, lo, hi, p, p_eq, 1, SAMPLES_ONLY, detectable, level)


def holm(pvalues: Sequence[float], alpha: float = ALPHA) -> np.ndarray:
    """Holm-adjusted p-values (NaN stays NaN and is not counted in the family)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(len(p), np.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = multipletests(p[finite], alpha=alpha, method="holm")[1]
    return out


def verdict(est: Estimate, expect: Expect, p: float, p_equivalent: float | None, alpha: float = ALPHA) -> str:
    """agrees / contradicts / no effect / unresolved, from (Holm-adjusted) p-values.

    ``expect`` is the paper's direction of the contrast; "none" is the paper saying there is no effect."""
    shown = np.isfinite(p) and p < alpha
    equivalent = p_equivalent is not None and np.isfinite(p_equivalent) and p_equivalent < alpha
    if expect == "none":
        return "no effect" if equivalent else ("contradicts" if shown else "unresolved")
    if shown:
        return "agrees" if (est.value > 0) == (expect == "increase") else "contradicts"
    return "no effect" if equivalent else "unresolved"


def decide(estimates: Sequence[Estimate], expects: Sequence[Expect], alpha: float = ALPHA,
           families: Sequence[object] | None = None) -> list[tuple[str, float]]:
    """Verdicts for claims, with Holm's correction across every test of a family that can yield one (each
    claim's difference test, and its equivalence test where it declares a margin); (verdict, adjusted p).
    ``families`` labels each claim's family (default: all of them one)."""
    labels = list(families) if families is not None else [None] * len(estimates)
    p_adj: dict[int, float] = {i: float("nan") for i in range(len(estimates))}
    eq_adj: dict[int, float | None] = {i: None for i in range(len(estimates))}
    for label in dict.fromkeys(labels):
        tests, owner = [], []
        for i, e in enumerate(estimates):
            if labels[i] != label:
                continue
            tests.append(e.p)
            owner.append((i, "p"))
            if e.p_equivalent is not None:
                tests.append(e.p_equivalent)
                owner.append((i, "eq"))
        for (i, kind), value in zip(owner, holm(tests, alpha)):
            if kind == "p":
                p_adj[i] = float(value)
            else:
                eq_adj[i] = float(value)
    return [(verdict(e, x, p_adj[i], eq_adj[i], alpha), p_adj[i])
            for i, (e, x) in enumerate(zip(estimates, expects))]


def look(seeds: int) -> int | None:
    """The last look ``seeds`` complete seeds reach (the seeds a verdict is read from); None before the first."""
    reached = [n for n in LOOKS if n <= seeds]
    return reached[-1] if reached else None


def next_look(seeds: int) -> int | None:
    """The look after the one ``seeds`` reach; None after the last."""
    return next((n for n in LOOKS if n > seeds), None)
