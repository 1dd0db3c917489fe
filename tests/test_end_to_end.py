"""Whole suites end to end: rows, per-run files, resume after an interrupt, failed rows, report."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from conftest import REPO, needs_fashion_mnist, result_table
from rdmbench import runner
from rdmbench.cache import read_json
from rdmbench.cache_tools import run_config_keys
from rdmbench.tasks.generation import stages as gen
from rdmbench.suite import load_suite


def read_rows(out):
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The tiny two-run suite (baseline k=0 and k=2), run once for the tests below."""
    tmp = tmp_path_factory.mktemp("e2e")
    (tmp / "tiny.yaml").write_text(__import__("conftest").TINY_BASE)
    suite = load_suite(tmp / "tiny.yaml")
    out, cache = tmp / "results" / "tiny", tmp / "results" / ".cache"
    runner.run_suite(suite, out, cache)
    return suite, out, cache


def test_rows_and_run_files(finished):
    suite, out, _ = finished
    rows = read_rows(out)
    assert [r["run_id"] for r in rows] == ["k_train=0_seed=0", "k_train=2_seed=0"]
    assert all(r["status"] == "ok" for r in rows)
    for col in ("k_train", "seed", "fid", "kid", "precision", "recall", "class_agreement", "feature_extractor",
                "encoder", "wall_s"):
        assert col in rows[0], col
    assert "efficientnet-lite2" in rows[0]["feature_extractor"]
    assert float(rows[1]["fid"]) > 0
    assert rows[0]["retrieval_recall"] == "" and float(rows[1]["retrieval_recall"]) == 1.0  # exact search
    run_dir = out / "runs" / "k_train=2_seed=0"
    for name in ("config.yaml", "samples.png", "run.log", "env.json", "row.json", "stages.json"):
        assert (run_dir / name).exists(), name
    env = json.loads((run_dir / "env.json").read_text())
    assert env["versions"]["torch"] and env["device"] == "cpu"


def test_runs_share_stages(finished):
    _, out, _ = finished
    stages = json.loads((out / "runs" / "k_train=2_seed=0" / "stages.json").read_text())
    cached = {s["stage"] for s in stages if s["cached"]}
    assert {"data", "database", "first_stage", "features"} <= cached
    assert not any(s["cached"] for s in stages if s["stage"] in ("train", "samples", "metrics"))


def test_rerun_skips_finished_runs_without_duplicates(finished):
    suite, out, cache = finished
    before = (out / "results.csv").read_text()
    runner.run_suite(suite, out, cache)
    assert (out / "results.csv").read_text() == before


def test_interrupted_run_resumes_from_cached_stages(fast_reference, tmp_path, monkeypatch, request):
    """Interrupted in a fresh cache at the second run's metrics stage, the same command resumes: the
    stages finished before the interrupt come from the cache, the rest are computed, and the rows are
    those of an uninterrupted run."""
    import torch

    suite = load_suite(fast_reference.suite)
    out, cache = tmp_path / "results", tmp_path / "cache"
    original = gen.metrics
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the reference ran (conftest.cli_env); toy models gain nothing from more
    request.addfinalizer(lambda: torch.set_num_threads(threads))

    def interrupt_second_run(pipe, metrics, seed, generated, reference, samples, *a, **kw):
        if read_json(samples / "info.json")["k"] == 2:  # the run at k_train = 2 samples with its k
            raise KeyboardInterrupt
        return original(pipe, metrics, seed, generated, reference, samples, *a, **kw)

    monkeypatch.setattr(gen, "metrics", interrupt_second_run)
    with pytest.raises(KeyboardInterrupt):
        runner.run_suite(suite, out, cache)
    monkeypatch.setattr(gen, "metrics", original)
    finished = {f"{p.parent.parent.name}/{p.parent.name}" for p in cache.glob("*/*/stage.json")}
    assert [r["run_id"] for r in read_rows(out)] == ["k_train=0_seed=0"]
    row_before = (out / "runs" / "k_train=0_seed=0" / "row.json").read_text()

    runner.run_suite(suite, out, cache)
    stages = json.loads((out / "runs" / "k_train=2_seed=0" / "stages.json").read_text())
    reused = {f"{s['stage']}/{s['key']}" for s in stages if s["cached"]}
    computed = [s["stage"] for s in stages if not s["cached"]]
    assert {"train", "samples"} <= {name.split("/")[0] for name in reused}
    assert reused <= finished and computed[0] == "metrics" and not {"train", "samples"} & set(computed)
    assert (out / "runs" / "k_train=0_seed=0" / "row.json").read_text() == row_before  # kept, not redone
    assert result_table(out) == result_table(fast_reference.out)


def test_failed_run_is_a_row_and_the_suite_goes_on(finished, tmp_path, monkeypatch):
    suite, _, cache = finished
    original = gen.train

    def fail_baseline(pipe, head, settings, k_train, *a, **kw):
        if k_train == 0:
            raise RuntimeError("boom")
        return original(pipe, head, settings, k_train, *a, **kw)

    monkeypatch.setattr(gen, "train", fail_baseline)
    out = tmp_path / "failing"
    rows = runner.run_suite(suite, out, cache)
    assert [r["status"] for r in rows] == ["failed", "ok"]
    assert "RuntimeError: boom" in read_rows(out)[0]["error"]
    assert "boom" in (out / "runs" / "k_train=0_seed=0" / "run.log").read_text()


def test_report_from_results(finished):
    from rdmbench.report import write_report

    _, out, _ = finished
    report = write_report(out)
    text = report.read_text()
    assert "efficientnet-lite2" in text and "NOT Inception" in text
    assert (out / "report" / "summary.csv").exists()


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("smoke-cache")


#: the config keys (rdmbench.cache_tools.config_key) of every suite's smoke run, written by scripts/smoke_snapshot.py
CONFIG_KEYS = REPO / "tests" / "data" / "smoke_config_keys.json"

# the built-in studies, and the outside plugin package's suite (CI installs that package)
SUITES = sorted(str(p.relative_to(REPO)) for p in [*(REPO / "suites").glob("*.yaml"), *(REPO / "examples").glob("*/*.yaml")])


@needs_fashion_mnist  # skipped without it locally, a failure in CI
@pytest.mark.parametrize("suite_file", SUITES)
def test_every_suite_smoke_profile_through_the_command_line(suite_file, tmp_path, shared_cache, capfd):
    # the command's own entry point, in this worker: a new interpreter per suite spent ~6 s importing and keying
    # before any work, and the suites of one worker share what they may (cached stages, a reference's classifier).
    # `python -m rdmbench` itself runs in the fan-out, failpoint and include tests.
    import logging

    from rdmbench.cli import main

    out, root = tmp_path / "results", logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = main(["run", str(REPO / suite_file), "--profile", "smoke", "--results", str(out), "--cache",
                     str(shared_cache)])
    finally:  # the command's handler writes to this test's captured stderr: not to the next test's
        root.handlers[:], root.level = handlers, level
    assert code == 0, capfd.readouterr().err[-3000:]
    rows = read_rows(out)
    suite = load_suite(REPO / suite_file, "smoke")
    assert [r["run_id"] for r in rows] == [r.run_id for r in suite.runs]
    assert all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
    retrieval = suite.runs[0].config["task"] == "retrieval"
    figure = "pareto_recall_qps.png" if retrieval else "metric_fid.png"
    assert (out / "report" / "report.md").exists() and (out / "report" / figure).exists()
    if retrieval:
        assert all(0 <= float(r["recall"]) <= 1 and float(r["qps"]) > 0 for r in rows)
        assert all(float(r["recall"]) == 1 for r in rows if r["retriever"] == "exact")
    if suite_file == "suites/k_train.yaml":
        assert [int(r["k_train"]) for r in rows] == [1, 4, 16]
    # every stage's key without its code (config and inputs) as recorded: a refactor keeps them all; a change of a
    # stage's config material is written anew with scripts/smoke_snapshot.py --write-keys, and named in its commit
    keys = sorted({tuple(k) for run in suite.runs for k in run_config_keys(shared_cache, out / "runs" / run.run_id)})
    recorded = json.loads(CONFIG_KEYS.read_text()).get(suite_file)
    assert recorded is not None, f"{suite_file} has no recorded config keys in {CONFIG_KEYS}"
    assert [list(k) for k in keys] == recorded, {"only now": sorted(set(keys) - {tuple(k) for k in recorded}),
                                                "only recorded": sorted({tuple(k) for k in recorded} - set(keys))}


def test_missing_dataset_files_stop_before_any_work(tmp_path, monkeypatch):
    from rdmbench import registry
    from rdmbench.errors import RdmbenchError
    from rdmbench_plugins.datasets import fashion_mnist

    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", ())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("RDMBENCH_DATA", raising=False)
    monkeypatch.setattr(registry, "_REGISTRY", None)  # fresh plugin instances
    suite = load_suite(REPO / "suites" / "k_train.yaml", "smoke")
    with pytest.raises(RdmbenchError) as exc:
        runner.run_suite(suite, tmp_path / "out", tmp_path / "cache")
    assert "k_train.yaml: base.data.dataset:" in str(exc.value)
    assert "apt-get install dataset-fashion-mnist" in str(exc.value)
    assert not (tmp_path / "cache").exists()


@needs_fashion_mnist
def test_a_suite_that_includes_a_study_and_switches_its_encoder_runs_its_smoke_profile(tmp_path, shared_cache):
    """The included smoke profile's EfficientNet arguments do not follow the user's switch to pixels."""
    suite = tmp_path / "pixels.yaml"
    suite.write_text(f"suite: pixels\ninclude: {REPO / 'suites' / 'k_train.yaml'}\nbase:\n  encoder: {{name: pixels}}\n")
    proc = subprocess.run([sys.executable, "-m", "rdmbench", "run", str(suite), "--profile", "smoke", "--set",
                           "sweep.grid.k_train=[4]", "--results", str(tmp_path / "out"), "--cache", str(shared_cache),
                           "--no-report"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_rows(tmp_path / "out")
    assert [(r["run_id"], r["status"]) for r in rows] == [("k_train=4_seed=0", "ok")]
    assert rows[0]["encoder"].startswith("pixels"), rows[0]["encoder"]
