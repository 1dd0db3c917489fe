"""Every suite's smoke profile, run once: its rows and the config part of every stage key, as JSON.

    python scripts/smoke_snapshot.py --out before.json            # on one commit
    python scripts/smoke_snapshot.py --out after.json --compare before.json   # on another

A refactor that should change no number shows the same rows (timings aside) and the same config keys:
a stage key's material without the code hashes and library versions (which any edit of the code moves),
with each input named by its own config key. Differences are printed; exit 1 when there are any.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: key material that records the code rather than the inputs
CODE_FIELDS = ("code", "modules", "libraries", "distribution", "runs_on")


def timing(column: str) -> bool:
    """A column measured in time (the only values two runs of one config may disagree on)."""
    return column == "seconds" or column.endswith("_s") or column.startswith(("qps", "latency_"))


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in CODE_FIELDS}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def snapshot(suites: list[Path]) -> dict:
    from rdmbench import cache, pipeline
    from rdmbench.runner import run_suite
    from rdmbench.suite import load_suite

    config_key: dict[str, str] = {}
    log: list[list[str]] = []
    real = cache.make_key

    def recording(stage, config, inputs=None):
        key = real(stage, config, inputs)
        if isinstance(config, dict) and "code" in config and "v" in config:  # a stage, not a plugin instance
            material = {"v": config["v"], "config": strip(config["config"])}
            named = {k: config_key.get(v, "?" + v) for k, v in (inputs or {}).items()}
            config_key[key] = real(stage, material, named)
            log.append([stage, config_key[key]])
        return key

    pipeline.make_key = recording
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="rdmbench-snapshot-") as tmp:
        for path in suites:
            suite = load_suite(path, "smoke")
            results = Path(tmp) / suite.name
            start = len(log)
            run_suite(suite, results, Path(tmp) / "cache")
            with open(results / "results.csv", newline="") as f:
                rows = {r["run_id"]: {k: v for k, v in r.items() if not timing(k)} for r in csv.DictReader(f)}
            out[str(path.relative_to(REPO))] = {"rows": rows, "stages": sorted({tuple(s) for s in log[start:]})}
            print(f"{path.name}: {len(rows)} rows, {len(log) - start} stage calls", file=sys.stderr, flush=True)
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
    ap.add_argument("suites", nargs="*", type=Path)
    args = ap.parse_args()
    suites = [p.resolve() for p in args.suites] or sorted((REPO / "suites").glob("*.yaml"))
    result = snapshot(suites)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True))
    if args.compare:
        problems = compare(json.loads(args.compare.read_text()), result)
        print("\n".join(problems) or f"same rows and config keys in {len(result)} suites")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
