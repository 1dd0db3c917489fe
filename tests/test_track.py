"""Experiment-tracker export: what TensorBoard and MLflow hold after a suite is what its rows hold."""

from __future__ import annotations

import csv
import os

import pytest

from conftest import TINY_BASE
from rdmbench.cli import main


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("track")
    (tmp / "suite.yaml").write_text(TINY_BASE + "track: [tensorboard]\n")
    argv = ["run", str(tmp / "suite.yaml"), "--results", str(tmp / "out"), "--cache", str(tmp / "cache"),
            "--no-report", "--track", "mlflow", "-q"]
    assert main(argv) == 0
    return tmp, argv


def _rows(tmp):
    return {r["run_id"]: r for r in csv.DictReader(open(tmp / "out" / "results.csv"))}


def _tensorboard(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0}).Reload()
    return {t: acc.Scalars(t) for t in acc.Tags()["scalars"]}, acc.Tags()["images"]


def test_tensorboard_holds_each_runs_results_intervals_timings_and_grid(tracked):
    tmp, _ = tracked
    for run_id, row in _rows(tmp).items():
        scalars, images = _tensorboard(tmp / "out" / "tensorboard" / run_id)
        for column in ("fid", "fid_lo", "fid_hi", "precision", "class_agreement"):
            assert scalars[f"result/{column}"][0].value == pytest.approx(float(row[column]), rel=1e-6)
        assert {"stage_s/train", "stage_s/samples", "stage_s/data"} <= set(scalars)
        assert len(scalars["train/loss_curve"]) == 3  # the head's 3 steps
        assert "images/samples" in images and "images/panel" in images


def test_mlflow_holds_one_run_per_rdmbench_run_with_params_metrics_and_artifacts(tracked):
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow.tracking import MlflowClient

    tmp, _ = tracked
    client = MlflowClient(tracking_uri=(tmp / "out" / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("tiny-cpu")
    runs = {r.data.tags["rdmbench.run_id"]: r for r in client.search_runs([experiment.experiment_id])}
    rows = _rows(tmp)
    assert set(runs) == set(rows)
    for run_id, r in runs.items():
        assert r.info.status == "FINISHED" and r.info.run_name == run_id
        assert r.data.metrics["fid_hi"] == pytest.approx(float(rows[run_id]["fid_hi"]), rel=1e-6)
        assert r.data.params["head.name"] == "rdm" and r.data.params["k_train"] == run_id.split("_")[1][-1]
        artifacts = {a.path for a in client.list_artifacts(r.info.run_id)}
        assert {"samples.png", "config.yaml", "row.json"} <= artifacts


def test_a_run_exported_again_replaces_its_earlier_export(tracked):
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow.tracking import MlflowClient

    tmp, argv = tracked
    run_dir = tmp / "out" / "runs" / "k_train=2_seed=0"
    (run_dir / "row.json").unlink()  # its row is written again (every stage cached), so it is exported again
    assert main(argv) == 0
    client = MlflowClient(tracking_uri=(tmp / "out" / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("tiny-cpu")
    again = client.search_runs([experiment.experiment_id], "tags.`rdmbench.run_id` = 'k_train=2_seed=0'")
    assert len(again) == 1  # the earlier one was deleted, not shown beside it
    scalars, _ = _tensorboard(tmp / "out" / "tensorboard" / "k_train=2_seed=0")
    assert len(scalars["result/fid"]) == 1  # one folder, rewritten whole


def test_a_failed_export_is_a_warning_and_is_retried_on_the_kept_row(tmp_path, monkeypatch):
    """An export that fails leaves the row written with ``tracked: false`` and a warning in the run's log;
    the next invocation keeps the row (every stage cached) and exports it again, until it succeeds."""
    import json

    from conftest import FAST_BASE
    from rdmbench import track

    (tmp_path / "suite.yaml").write_text(FAST_BASE + "track: [tensorboard]\n")
    argv = ["run", str(tmp_path / "suite.yaml"), "--results", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"),
            "--no-report", "-q", "--only", "k_train=0_seed=0"]
    run_dir = tmp_path / "out" / "runs" / "k_train=0_seed=0"
    real = track._tensorboard

    def unreachable(folder, record):
        raise ConnectionError("tracker down")

    monkeypatch.setattr(track, "_tensorboard", unreachable)
    assert main(argv) == 0
    row = json.loads((run_dir / "row.json").read_text())
    assert row["status"] == "ok" and row["tracked"] is False
    assert "WARNING run k_train=0_seed=0: export to tensorboard failed" in (run_dir / "run.log").read_text()
    assert "tracked" not in (tmp_path / "out" / "results.csv").read_text().splitlines()[0]  # bookkeeping
    written = (run_dir / "row.json").stat().st_mtime_ns

    assert main(argv) == 0  # still down: retried, still a warning, the row kept otherwise
    assert (run_dir / "run.log").read_text().count("export to tensorboard failed") == 2
    monkeypatch.setattr(track, "_tensorboard", real)
    assert main(argv) == 0
    row = json.loads((run_dir / "row.json").read_text())
    assert row["tracked"] is True and (tmp_path / "out" / "tensorboard" / "k_train=0_seed=0").is_dir()
    assert json.loads((run_dir / "stages.json").read_text())[0]["cached"] is False  # kept: not walked anew
    assert (run_dir / "row.json").stat().st_mtime_ns > written

    exported = (tmp_path / "out" / "tensorboard" / "k_train=0_seed=0").stat().st_mtime_ns
    assert main(argv) == 0  # exported once: not again
    assert (tmp_path / "out" / "tensorboard" / "k_train=0_seed=0").stat().st_mtime_ns == exported
