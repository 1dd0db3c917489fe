"""Bit-identical reruns (issue 7, item 8): the same suite run twice from empty caches, through the
command line, gives the same stage keys, the same bytes in every stage entry, the same sample
grids and the same results.csv to the last digit. Only timings may differ (``*_s`` columns and
fields, ``info.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import cli_args, result_table, run_cli

TIMINGS = {"info.json"}  # stage bookkeeping: seconds


def entry_files(cache: Path) -> dict[str, dict]:
    """``stage/key`` -> the file checksums recorded at write."""
    return {f"{p.parent.parent.name}/{p.parent.name}": json.loads(p.read_text())["files"]
            for p in cache.glob("*/*/stage.json") if not p.parent.name.startswith(".")}


def without_timings(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.endswith("_s")}


def test_same_suite_twice_from_empty_caches_is_bit_identical(fast_reference, tmp_path):
    ref = fast_reference
    out, cache = tmp_path / "results" / "fast", tmp_path / "results" / ".cache"
    run_cli(*cli_args(ref.suite, out, cache))

    assert result_table(out) == result_table(ref.out)
    first, second = entry_files(ref.cache), entry_files(cache)
    assert first.keys() == second.keys(), "stage keys differ between two runs of one config"
    assert any(name.startswith("samples/") for name in first)
    for name, files in first.items():
        assert files.keys() == second[name].keys(), name
        for file, record in files.items():
            if file in TIMINGS:
                continue
            if file == "metrics.json":  # values exact, bootstrap_s a timing
                assert without_timings(ref.cache / name / file) == without_timings(cache / name / file), name
            else:
                assert record == second[name][file], f"{name}/{file} differs"
    for run in ("k_train=0_seed=0", "k_train=2_seed=0"):
        png = Path("runs") / run / "samples.png"
        assert (ref.out / png).read_bytes() == (out / png).read_bytes(), png
