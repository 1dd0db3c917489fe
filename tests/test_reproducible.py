"""Bit-identical reruns (issue 7, item 8): the same suite run twice from empty caches, through the
command line, gives the same stage keys, the same bytes in every file of every stage entry, the same
sample grids and the same results.csv to the last digit. Only timings may differ, named field by field
(``*_s`` columns; ``seconds``/``*_s`` in ``info.json`` and ``metrics.json``; ``stage.json``'s ``written``).
"""

from __future__ import annotations

from pathlib import Path

from conftest import cache_differences, cli_args, result_table, run_cli


def test_same_suite_twice_from_empty_caches_is_bit_identical(fast_reference, tmp_path):
    ref = fast_reference
    out, cache = tmp_path / "results" / "fast", tmp_path / "results" / ".cache"
    run_cli(*cli_args(ref.suite, out, cache))

    assert result_table(out) == result_table(ref.out)
    assert any(cache.glob("samples/*/info.json")), "no sample entry was compared"
    assert cache_differences(ref.cache, cache) == []
    for run in ("k_train=0_seed=0", "k_train=2_seed=0"):
        png = Path("runs") / run / "samples.png"
        assert (ref.out / png).read_bytes() == (out / png).read_bytes(), png


def test_the_comparison_sees_a_changed_info_json(fast_reference, tmp_path):
    """The comparison above can fail: a loss curve point changed in a copy is reported, its timing is not."""
    import json
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(fast_reference.cache, cache)
    info = next(cache.glob("train/*/info.json"))
    record = json.loads(info.read_text())
    record["seconds"] += 1.0
    assert cache_differences(fast_reference.cache, cache) == []
    record["train_loss_curve"][0] += 1e-6
    info.write_text(json.dumps(record))
    assert cache_differences(fast_reference.cache, cache) == [f"train/{info.parent.name}/info.json differs beyond its timings"]
