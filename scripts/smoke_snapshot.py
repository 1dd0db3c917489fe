"""Every suite's smoke profile, run once: its rows and the config part of every stage key, as JSON.

    python scripts/smoke_snapshot.py --out before.json            # on one commit
    python scripts/smoke_snapshot.py --out after.json --compare before.json   # on another
    python scripts/smoke_snapshot.py --out now.json --write-keys tests/data/smoke_config_keys.json

A refactor that should change no number shows the same rows (timings aside) and the same config keys: a stage
key's material without the code hashes and library versions (which any edit of the code moves), with each input
named by its own config key (rdmbench.cache_tools.config_key). Differences are printed; exit 1 when there are any.
``--write-keys`` records the config keys that tests/test_end_to_end.py holds every suite's smoke run to: write
it when a change of config is meant (a new key in a stage's material), and say so in the commit.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timing(column: str) -> bool:
    """A column measured in time (the only values two runs of one config may disagree on)."""
    return column == "seconds" or column.endswith("_s") or column.startswith(("qps", "latency_"))


def snapshot(suites: list[Path]) -> dict:
    from rdmbench.cache_tools import run_config_keys
    from rdmbench.runner import run_suite
    from rdmbench.suite import load_suite

    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="rdmbench-snapshot-") as tmp:
        cache = Path(tmp) / "cache"
        for path in suites:
            suite = load_suite(path, "smoke")
            results = Path(tmp) / suite.name
            run_suite(suite, results, cache)
            with open(results / "results.csv", newline="") as f:
                rows = {r["run_id"]: {k: v for k, v in r.items() if not timing(k)} for r in csv.DictReader(f)}
            keys = sorted({tuple(k) for run in suite.runs if (results / "runs" / run.run_id / "row.json").is_file()
                           for k in run_config_keys(cache, results / "runs" / run.run_id)})
            out[str(path.relative_to(REPO))] = {"rows": rows, "stages": [list(k) for k in keys]}
            print(f"{path.name}: {len(rows)} rows, {len(keys)} distinct stages", file=sys.stderr, flush=True)
    return out


def compare(before: dict, after: dict) -> list[str]:
    problems = []
    for suite in sorted(before.keys() | after.keys()):
        a, b = before.get(suite), after.get(suite)
        if a is None or b is None:
            problems.append(f"{suite}: only {'after' if a is None else 'before'}")
            continue
        for run in sorted(a["rows"].keys() | b["rows"].keys()):
            ra, rb = ({k: v for k, v in rows.get(run, {}).items() if not timing(k)} for rows in (a["rows"], b["rows"]))
            diff = sorted(k for k in ra.keys() | rb.keys() if ra.get(k) != rb.get(k))
            if diff:
                problems.append(f"{suite} {run}: " + ", ".join(f"{k} {ra.get(k)!r} -> {rb.get(k)!r}" for k in diff))
        sa, sb = {tuple(s) for s in a["stages"]}, {tuple(s) for s in b["stages"]}
        if sa != sb:
            problems.append(f"{suite}: stage keys only before {sorted(sa - sb)}, only after {sorted(sb - sa)}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--compare", type=Path)
    ap.add_argument("--write-keys", type=Path, help="also write {suite: [[stage, config key], ...]} here")
    ap.add_argument("suites", nargs="*", type=Path)
    args = ap.parse_args()
    suites = [p.resolve() for p in args.suites] or sorted([*(REPO / "suites").glob("*.yaml"),
                                                          *(REPO / "examples").glob("*/*.yaml")])
    result = snapshot(suites)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True))
    if args.write_keys:
        args.write_keys.parent.mkdir(parents=True, exist_ok=True)
        args.write_keys.write_text(json.dumps({s: v["stages"] for s, v in result.items()}, indent=1, sort_keys=True)
                                   + "\n")
    if args.compare:
        problems = compare(json.loads(args.compare.read_text()), result)
        print("\n".join(problems) or f"same rows and config keys in {len(result)} suites")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
