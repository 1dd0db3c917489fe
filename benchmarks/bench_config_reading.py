"""What reading the runs' config.yaml costs a scorecard: PyYAML's pure-Python safe parser against libyaml's.

`rdmbench scorecard` (and `rdmbench docs`, which scores every claim) reads every committed run's resolved
config to tell which runs a claim compares. Both loaders are safe (no object construction from tags); libyaml
only parses faster. Here: the scorecard of the committed results scored with each, interleaved; the rows must
be identical.

    python benchmarks/bench_config_reading.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def score(loader_name: str) -> tuple[float, list]:
    import yaml

    from rdmbench import scorecard
    from rdmbench.claims import load_claims
    from rdmbench.report import common

    loader = getattr(yaml, loader_name)
    common.read_config = lambda path: yaml.load(path.read_text(), Loader=loader)  # what scorecard.Results calls
    start = time.perf_counter()
    rows = scorecard.score(load_claims(ROOT / "suites" / "claims"), scorecard.find_results([ROOT / "results"]))
    return time.perf_counter() - start, [(r.test, r.verdict, r.estimate, r.per_seed) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"SafeLoader": [], "CSafeLoader": []}
    seen = {}
    for _ in range(args.repeats):  # interleaved, so a busy moment falls on both
        for name in times:
            seconds, rows = score(name)
            times[name].append(seconds)
            seen[name] = rows
    assert seen["SafeLoader"] == seen["CSafeLoader"], "the two loaders scored differently"
    configs = len(list((ROOT / "results").glob("*/runs/*/config.yaml")))
    for name, ts in times.items():
        print(f"{name:>12}: {statistics.median(ts):5.2f} s to score every claim (median of {args.repeats})")
    a, b = (statistics.median(ts) for ts in times.values())
    print(f"ratio: {a / b:.2f}x over {configs} committed run configs; same rows")


if __name__ == "__main__":
    main()
