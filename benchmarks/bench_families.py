"""Which family Holm's correction should span: every test of the scorecard, or the tests of one study (issue 22).

The scorecard's studies (suites/claims/*.yaml, one per suite) hold 1–12 tests each; the card holds about 60.
Each test here is Student's t over the per-seed contrasts (rdmbench.verdicts.estimate), per-seed contrast
~ N(delta, 1), drawn independently. On the same draws, Holm over the whole card and Holm within each study:

  null          every contrast 0: the chance of at least one false verdict in a study and on the card, and
                the expected number of false verdicts on the card
  one effect    one test per study has delta = EFFECT (per-seed SDs), the rest 0: the share of those effects
                found (power), and false verdicts among the nulls

EFFECT defaults to 4.4, the committed MaskGIT-vs-baseline FD contrast's mean over its per-seed SD (3 seeds);
class-conditional guidance's recall slope is at 4.9. The study sizes default to the committed claim files'
(``--sizes`` to change them).

    python benchmarks/bench_families.py [--draws 4000] [--effect 4.4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

#: tests per study as the claim files declare them (a claim's ``at`` combinations and equivalence tests count)
SIZES = {"baselines": 4, "class_conditional": 2, "databases": 4, "dataset_complexity": 8, "encoders": 2,
         "head_widths": 3, "heads": 6, "k_train": 6, "patch_size": 2, "quality_diversity": 12, "stylization": 5,
         "text_to_image": 2, "text_unseen_classes": 3}


def p_values(per_seed: np.ndarray) -> np.ndarray:
    """Two-sided p of Student's t over the last axis (what rdmbench.verdicts.estimate computes per test)."""
    from scipy import stats

    return stats.ttest_1samp(per_seed, 0.0, axis=-1).pvalue


def holm_reject(p: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Holm's step-down over the last axis, vectorised over draws (statsmodels' multipletests, one family at a
    time, agrees: checked in main)."""
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, axis=-1)
    m = p.shape[-1]
    passes = ranked <= alpha / (m - np.arange(m))
    keep = np.cumprod(passes, axis=-1).astype(bool)  # step-down: stop at the first failure
    out = np.zeros_like(keep)
    np.put_along_axis(out, order, keep, axis=-1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--effect", type=float, default=4.4, help="true contrast, in per-seed SDs")
    parser.add_argument("--seed", type=int, default=22)
    args = parser.parse_args()
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(args.seed)
    names, sizes = list(SIZES), np.array(list(SIZES.values()))
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    total = int(bounds[-1])
    first = bounds[:-1]  # the one true effect of each study sits on its first test
    check = rng.uniform(size=total)
    assert (holm_reject(check[None])[0] == multipletests(check, method="holm")[0]).all()
    print(f"{len(names)} studies, {total} tests (sizes {dict(SIZES)}); {args.draws} draws per row; "
          f"effect {args.effect} per-seed SDs")
    print("\n| seeds | scenario | family | P(≥1 false verdict in a study), largest study | P(≥1 false verdict on "
          "the card) | false verdicts per card | effects found |")
    print("|---|---|---|---|---|---|---|")
    started = time.perf_counter()
    for seeds in (3, 5, 8):
        for scenario in ("null", "one effect"):
            delta = np.zeros(total)
            if scenario == "one effect":
                delta[first] = args.effect
            p = p_values(delta[None, :, None] + rng.standard_normal((args.draws, total, seeds)))
            card = holm_reject(p)
            study = np.concatenate([holm_reject(p[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:])], axis=1)
            null = delta == 0
            largest = int(np.argmax(sizes))
            a, b = bounds[largest], bounds[largest + 1]
            for family, rejected in (("the card", card), ("one study", study)):
                false = rejected & null
                in_largest = false[:, a:b].any(axis=1).mean()
                found = rejected[:, ~null].mean() if (~null).any() else float("nan")
                print(f"| {seeds} | {scenario} | {family} | {in_largest:.1%} ({names[largest]}) | "
                      f"{false.any(axis=1).mean():.1%} | {false.sum(axis=1).mean():.3f} | "
                      + ("" if np.isnan(found) else f"{found:.1%}") + " |")
    # the plan's extra seeds are a second look at a claim the first left unresolved: how often does a null claim
    # get a verdict at one of the looks (one claim, alpha 0.05 at each look, no correction for looking twice)?
    print("\n| looks (seeds) | P(a null claim gets a verdict at some look) |\n|---|---|")
    for looks in ((3,), (3, 5), (3, 5, 8), (3, 4, 5, 6, 8, 10)):
        d = rng.standard_normal((args.draws * 4, looks[-1]))
        found = np.zeros(len(d), dtype=bool)
        for n in looks:
            found |= p_values(d[:, :n]) < 0.05
        print(f"| {', '.join(map(str, looks))} | {found.mean():.1%} |")
    print(f"\nbinomial SE of a 5 % rate over {args.draws} draws: {np.sqrt(0.05 * 0.95 / args.draws):.2%}; "
          f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
