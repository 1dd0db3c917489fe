"""Export of every finished run to the experiment trackers a user already reads: TensorBoard, MLflow.

Off by default; ``track: [tensorboard, mlflow]`` in a suite or ``rdmbench run --track NAME``. Each run
exports what its row holds: the resolved config (as hyper-parameters / params), every numeric result with
its ``_lo``/``_hi`` interval bounds, the stage timings (``stage_s/<stage>``, computed or cached), the
training loss curve, and the images kept beside it (sample grids) with config.yaml and row.json.

Where: ``<results>/tensorboard/<run_id>/`` (``tensorboard --logdir results/<suite>/tensorboard``), and an
MLflow store at ``<results>/mlruns`` (``mlflow ui --backend-store-uri results/<suite>/mlruns``), one
experiment per suite and profile, one MLflow run per rdmbench run, tagged ``rdmbench.run_id``; or the
store at ``MLFLOW_TRACKING_URI`` when that is set (a server, ``sqlite:///...``). MLflow 3 keeps
its local file store in maintenance mode behind ``MLFLOW_ALLOW_FILE_STORE``, which is set for that
store only; ``mlflow migrate-filestore`` moves it to a database when wanted.

A run exported again (its row changed) replaces its earlier export: its TensorBoard folder is rewritten
whole and its earlier MLflow run deleted, so a tracker never shows a stale and a fresh result side by side.
Export happens where the row is written, under the results lock, so workers of a fan-out do not race.

A tracker is a ``Tracker`` subclass named by one line of the ``rdmbench.trackers`` entry-point group
(``tensorboard = "rdmbench.track:TensorBoard"``); the built-ins are registered in rdmbench's own
pyproject.toml exactly as an outside package registers its own.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from rdmbench.errors import require
from rdmbench.failpoints import failpoint
from rdmbench.registry import EntryPointClasses


class Tracker:
    """An experiment tracker that every finished run of a suite naming it (``track: [NAME]``) is exported to.

    Built with no arguments when a run is exported. ``requires`` maps each module it imports to its install
    hint; ``rdmbench run`` imports them before any work (``check``), so a missing one is one line.
    """

    name: ClassVar[str] = ""
    #: module -> install hint
    requires: ClassVar[dict[str, str]] = {}

    def export(self, record: dict[str, Any], out: Path, suite: Any) -> None:
        """Export one run. A run exported again (its row changed) must replace its earlier export.

        Args:
            record: ``run_id``, ``status``, ``error``, ``config`` (the resolved config), ``params`` (it flattened
                to dotted keys, values as strings), ``metrics`` (every finite number of the row, interval bounds
                included), ``stages`` (seconds per stage), ``curve`` (the training loss), ``images`` and
                ``files`` (paths of the sample grids, config.yaml and row.json).
            out: the suite's results folder.
            suite: ``name`` and ``profile`` of the suite.
        """
        raise NotImplementedError


class TensorBoard(Tracker):
    """TensorBoard event files, one folder per run: ``<results>/tensorboard/<run_id>/``."""

    name = "tensorboard"
    requires = {"tensorboard": "pip install 'tensorboard>=2.14'"}

    def export(self, record: dict[str, Any], out: Path, suite: Any) -> None:
        _tensorboard(out / "tensorboard" / record["run_id"], record)


class MLflow(Tracker):
    """An MLflow store (``<results>/mlruns``, or ``MLFLOW_TRACKING_URI``), one experiment per suite and profile."""

    name = "mlflow"
    requires = {"mlflow": "pip install 'mlflow-skinny>=3'"}

    def export(self, record: dict[str, Any], out: Path, suite: Any) -> None:
        _mlflow(out, f"{suite.name}-{suite.profile}", record)


#: tracker name -> its entry point (``rdmbench.trackers`` group); a tracker's module is imported only when asked for
TRACKERS: EntryPointClasses[Tracker] = EntryPointClasses("rdmbench.trackers", "tracker", Tracker)


def check(names: list[str] | tuple[str, ...], file: str | None = None, key: str = "track") -> None:
    """Unknown or broken trackers and missing packages: one line before any work."""
    for name in names:
        for module, hint in TRACKERS.load(name, file=file, key=key).requires.items():
            require(module, f"track: {name} needs the {module} package: {hint}")


def export(names: tuple[str, ...], suite: Any, run_dir: Path, row: dict[str, Any], stage_log: list[dict],
           cache_root: Path) -> None:
    if not names:
        return
    failpoint("track.export", row["run_id"])
    record = _record(run_dir, row, stage_log, cache_root)
    for name in names:
        TRACKERS.load(name)().export(record, run_dir.parent.parent, suite)


def _record(run_dir: Path, row: dict[str, Any], stage_log: list[dict], cache_root: Path) -> dict[str, Any]:
    import yaml

    from rdmbench.cache import read_json

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    metrics = {k: float(v) for k, v in row.items() if _number(v) and k not in ("stage_keys",)}
    stages: dict[str, float] = {}
    for s in stage_log:  # a stage that runs twice (embeddings of D and of X) adds up
        stages[s["stage"]] = stages.get(s["stage"], 0.0) + float(s["seconds"])
    trained = [cache_root / "train" / s["key"] / "info.json" for s in stage_log if s["stage"] == "train"]
    curve = (read_json(trained[0]).get("train_loss_curve") or []) if trained and trained[0].is_file() else []
    images = sorted(p for p in run_dir.glob("*.png"))
    return {"run_id": row["run_id"], "status": row.get("status"), "error": row.get("error"), "config": config,
            "params": _flatten(config), "metrics": metrics, "stages": stages, "curve": curve, "images": images,
            "files": [run_dir / "config.yaml", run_dir / "row.json"]}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _flatten(d: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = json.dumps(d) if not isinstance(d, str) else d
    return out


def _tensorboard(folder: Path, r: dict[str, Any]) -> None:
    """Written into a fresh folder, then put in place of the run's earlier one."""
    import numpy as np
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        with SummaryWriter(log_dir=str(tmp)) as w:
            for name, value in r["metrics"].items():
                w.add_scalar(f"result/{name}", value, 0)
            for stage, seconds in r["stages"].items():
                w.add_scalar(f"stage_s/{stage}", seconds, 0)
            for i, loss in enumerate(r["curve"]):
                w.add_scalar("train/loss_curve", loss, i)
            for image in r["images"]:
                w.add_image(f"images/{image.stem}", np.asarray(Image.open(image).convert("RGB")), 0, dataformats="HWC")
            w.add_text("config", "```yaml\n" + (r["files"][0]).read_text() + "\n```", 0)
            w.add_text("status", f"{r['status']}" + (f": {r['error']}" if r["error"] else ""), 0)
            hparams = {k: v for k, v in r["params"].items() if len(v) <= 200}
            w.add_hparams(hparams, {f"hparam/{k}": v for k, v in r["metrics"].items()}, run_name=".")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _mlflow(out: Path, experiment: str, r: dict[str, Any]) -> None:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    uri = os.environ.get("MLFLOW_TRACKING_URI") or (out / "mlruns").resolve().as_uri()
    if uri.startswith("file:"):
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    for old in client.search_runs([experiment_id], f"tags.`rdmbench.run_id` = '{r['run_id']}'"):
        client.delete_run(old.info.run_id)
    run = client.create_run(experiment_id, run_name=r["run_id"],
                            tags={"rdmbench.run_id": r["run_id"], "rdmbench.status": str(r["status"])})
    rid = run.info.run_id
    params = [Param(k[:250], v[:6000]) for k, v in r["params"].items()]
    metrics = [Metric(k, v, 0, 0) for k, v in r["metrics"].items()]
    metrics += [Metric(f"stage_s/{k}", v, 0, 0) for k, v in r["stages"].items()]
    metrics += [Metric("train/loss_curve", v, 0, i) for i, v in enumerate(r["curve"])]
    for start in range(0, max(len(params), len(metrics)), 100):  # MLflow's batch limits: 100 params, 1000 metrics
        client.log_batch(rid, metrics=metrics[start:start + 100], params=params[start:start + 100],
                         tags=[RunTag("rdmbench.error", r["error"][:5000])] if r["error"] and not start else [])
    for path in [*r["images"], *r["files"]]:
        client.log_artifact(rid, str(path))
    client.set_terminated(rid, "FINISHED" if r["status"] == "ok" else "FAILED")
