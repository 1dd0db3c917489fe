"""Run a suite: every run through the pipeline, one row each in ``results.csv``.

A finished run leaves ``runs/<run_id>/row.json`` beside its resolved config, log, sample grid,
environment and stage record. Re-running the same command walks every run's stages again: each
stage whose key (config, code, library versions, input files, inputs' keys) is unchanged comes
from the cache, so a finished run costs a few checksums, and its row is kept as it was when every
stage came from the cache under the same keys it records. Anything that changed a key recomputes
that stage and those downstream and rewrites the row. There is no separate run-level hash: the
stage keys are the only record of what a number depends on.

An interrupted suite (Ctrl-C, kill -9) resumes from its finished stages and never writes a row twice.
A run that fails is recorded as a ``failed`` row with its error and the suite goes on; it is
retried on the next invocation. A full disk stops the suite with a clear error.
Rows and results.csv are written under a lock, so two processes running the same suite at once
produce neither duplicated nor torn rows (the stage cache's locks make them compute each stage once).
"""

from __future__ import annotations

import contextlib
import csv
import inspect
import io
import logging
import os
import shutil
import socket
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import yaml

from rdmbench import processes, track
from rdmbench.cache import DiskFull, StageCache, make_key, read_json, write_json, write_text
from rdmbench.device import apply_threads, resolve_device, resolve_threads
from rdmbench.envinfo import environment
from rdmbench.errors import ConfigError, RdmbenchError, one_line
from rdmbench.failpoints import failpoint
from rdmbench.progress import Progress, default_progress
from rdmbench.registry import get_registry
from rdmbench.suite import Run, Suite, SuiteInfo
from rdmbench.tasks import get_task
from rdmbench.columns import WALL_S, Role, declarations, from_declarations

if TYPE_CHECKING:
    from rdmbench.pipeline import Pipeline
    from rdmbench.schema import DataSection

log = logging.getLogger("rdmbench")

#: roles of the declared columns placed after the results, in this order (rdmbench.columns.Role)
TAIL_ROLES = (Role.PROVENANCE, Role.TIMING)
#: the runner's own columns, last: the profile a run ran under and why it failed
LAST = ("profile", "error")
#: row.json fields that are bookkeeping, not results.csv columns
#: (``tracked``: whether the run's tracker export succeeded; a kept row not tracked is exported again)
HIDDEN = ("stage_keys", "all_cached", "tracked")


def results_dir_for(suite: Suite, root: Path) -> Path:
    """``results/<suite>`` for the default cpu profile, ``results/<suite>-<profile>`` otherwise."""
    return root / (suite.name if suite.profile == "cpu" else f"{suite.name}-{suite.profile}")


def run_suite(suite: Suite, out: Path, cache_root: Path, *, use_cache: bool = True,
              progress: Progress | None = None, only: list[str] | None = None) -> list[dict[str, Any]]:
    progress = progress or default_progress()
    main = processes.is_main()  # under a launcher, the other processes only compute beside it (rdmbench.processes)
    runs = select(suite, only)
    resolve_threads(suite.runs)
    devices = {resolve_device(r.spec.device) for r in runs}
    if processes.launched():
        if len(devices) > 1:
            raise RdmbenchError(f"{suite.path}: a launch of several processes needs one device for every run; "
                                f"these runs resolve to {', '.join(sorted(devices))}")
        processes.start(next(iter(devices)))
    if not main:
        progress = Progress(interval_s=float("inf"))
    pipelines = {d: pipeline_for(cache_root, use_cache, progress, d) for d in devices}
    begin(suite, out, next(iter(pipelines.values())), write=main)
    for i, run in enumerate(runs, 1):
        log.info("[%d/%d] %s", i, len(runs), run.run_id)
        if not main:
            apply_threads(run.spec.threads)
            follow(pipelines[resolve_device(run.spec.device)], run)
            continue
        row = run_one(suite.info, run, out, pipelines[resolve_device(run.spec.device)], use_cache, table=suite)
        status = "already done (every stage cached under the keys its row records)" if row is None else \
            row["status"] if row["status"] == "ok" else f"FAILED: {row['error']}"
        log.info("[%d/%d] %s: %s%s", i, len(runs), run.run_id, status, f" ({row['wall_s']:.0f} s)" if row else "")
    if not main:
        return []
    with results_lock(out):
        return write_results_csv(out, suite)


def select(suite: Suite, only: list[str] | None) -> list[Run]:
    return [r for r in suite.runs if not only or r.run_id in only]


def pipeline_for(cache_root: Path, use_cache: bool, progress: Progress, device: str) -> Pipeline:
    """A pipeline on the stage cache at ``cache_root``, in a process that runs suites (sets torch up)."""
    import torch

    from rdmbench.pipeline import Pipeline

    # oneDNN doubles CPU convolution throughput once planned but spends seconds planning each new shape:
    # tiny runs (smoke profiles, the test suite's subprocesses) never repay it; RDMBENCH_ONEDNN=0 turns it off
    if os.environ.get("RDMBENCH_ONEDNN") == "0":
        torch.backends.mkldnn.enabled = False
    return Pipeline(StageCache(cache_root, use_cache), get_registry(), progress, device)


def begin(suite: Suite, out: Path, pipeline: Pipeline, write: bool = True) -> None:
    """Before any run: the preflight (every problem at once, before any work) and ``suite.json``."""
    problems = preflight(suite, pipeline)
    if problems:
        raise RdmbenchError("\n".join(problems))
    if write:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "suite.json", {"suite": suite.name, "version": suite.version, "task": suite.task,
                                        "profile": suite.profile,
                                        "description": suite.description, "file": str(suite.path),
                                        "swept_keys": swept_keys(suite), "report": suite.report,
                                        "columns": suite_columns(suite)})


def run_one(suite: SuiteInfo, run: Run, out: Path, pipeline: Pipeline, use_cache: bool = True,
            table: Suite | None = None) -> dict[str, Any] | None:
    """One run, in whichever process executes it (the local loop, a Ray or SLURM worker): its stages, then
    its row under the results lock, and ``table``'s results.csv rewritten when given (a scheduler's driver
    rewrites it as each run ends). None when its row already stands (nothing changed)."""
    import torch

    run_dir = out / "runs" / run.run_id
    device = resolve_device(run.spec.device)
    apply_threads(run.spec.threads)  # the driver's resolved count, whichever process this is
    torch.manual_seed(run.spec.seed)
    row, stage_log = execute(pipeline, run, run_dir, suite.profile, device)
    with results_lock(out):
        previous = _read_row(run_dir)
        if (use_cache and row["all_cached"] and previous and previous.get("status") == "ok"
                and row["status"] == "ok" and previous.get("stage_keys") == row["stage_keys"]):
            if suite.track and previous.get("tracked") is not True:  # its export failed or was interrupted
                _export(suite, run_dir, previous, read_json(run_dir / "stages.json"), pipeline.cache.root)
            return None
        if suite.track:
            row["tracked"] = False  # until the export below succeeds: a kill before then leaves it to retry
        write_json(run_dir / "stages.json", stage_log)
        write_json(run_dir / "row.json", row)
        failpoint("row.written", run.run_id)
        if table is not None:
            write_results_csv(out, table)
        if suite.track:
            _export(suite, run_dir, row, stage_log, pipeline.cache.root)
    return row


def _export(suite: SuiteInfo, run_dir: Path, row: dict[str, Any], stage_log: list, cache_root: Path) -> None:
    """Export a run to the suite's trackers and record in its row whether that succeeded. A tracker's trouble
    must not cost the row: it is a warning in the run's log, and the export is retried while the row is kept."""
    try:
        track.export(suite.track, suite, run_dir, row, stage_log, cache_root)
        row["tracked"] = True
    except Exception as exc:
        row["tracked"] = False
        with run_log(run_dir):
            log.warning("run %s: export to %s failed (retried by the next invocation): %s: %s", row["run_id"],
                        ", ".join(suite.track), type(exc).__name__, exc)
    write_json(run_dir / "row.json", row)


@contextlib.contextmanager
def run_log(run_dir: Path) -> Iterator[None]:
    """What rdmbench logs meanwhile also goes to the run's ``run.log``."""
    handler = logging.FileHandler(run_dir / "run.log", mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


def follow(pipeline: Pipeline, run: Run) -> None:
    """Another process of a launch walks a run beside the main one: trains with it, waits for the rest.
    The main process records the run; a failure the main process also meets is its to record."""
    try:
        pipeline.run(run.spec)
    except (processes.CollectiveFailed, KeyboardInterrupt, DiskFull):
        raise
    except Exception as exc:
        log.debug("process %d: run %s: %s", processes.rank(), run.run_id, exc)


def results_lock(out: Path) -> Any:
    """The lock under which rows and results.csv are written (by any process of any machine sharing ``out``)."""
    from filelock import FileLock

    return FileLock(str(out / ".results.lock"))


def execute(pipeline: Pipeline, run: Run, run_dir: Path, profile: str, device: str) -> tuple[dict[str, Any], list]:
    """Walk one run's stages (computing what is not cached); return its row and stage record."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", yaml.safe_dump(run.config, sort_keys=False))
    write_json(run_dir / "env.json", {**environment(device), "processes": processes.world()})
    start = time.perf_counter()
    row: dict[str, Any] = {"run_id": run.run_id, **run.shown, "profile": profile}
    with run_log(run_dir):
        _walk(pipeline, run, run_dir, row)
    row["wall_s"] = round(time.perf_counter() - start, 2)
    stage_log = list(pipeline.stage_log)
    row["stage_keys"] = [f"{s['stage']}/{s['key']}" for s in stage_log]
    row["all_cached"] = all(s["cached"] for s in stage_log)
    return row, stage_log


def _walk(pipeline: Pipeline, run: Run, run_dir: Path, row: dict[str, Any]) -> None:
    """The run's stages into ``row``: its values and status ``ok``, or ``failed`` with its error."""
    log.info("run %s in process %d on %s", run.run_id, os.getpid(), socket.gethostname())
    try:
        values, keep = pipeline.run(run.spec)
        row.update(values)
        row["status"] = "ok"
        for name, source in keep.items():
            shutil.copyfile(source, run_dir / name)
    except KeyboardInterrupt:
        log.warning("interrupted: finished stages are cached; run the same command again to resume")
        raise
    except DiskFull as exc:  # every later stage would fail alike: stop, keep what is finished
        log.error("%s", exc)
        raise RdmbenchError(str(exc)) from None
    except processes.CollectiveFailed:  # the launch's other processes cannot go on without this one
        raise
    except Exception as exc:  # one failed run must not stop the suite
        row["status"] = "failed"
        row["error"] = one_line(exc)
        log.error("run %s failed:\n%s", run.run_id, traceback.format_exc())


def preflight(suite: Suite, pipeline: Pipeline) -> list[str]:
    """Cheap checks that need the disk or the environment for every run, before any work.

    Every plugin's ``requires`` (the libraries it imports) is imported here, so a missing library
    is one line with its install hint, not a traceback after the shared stages. A plugin's
    fingerprint locates and hashes what it will read, and its ``check()`` opens it (weights load as
    tensors), so a missing, unofficial, corrupted or pickle-bearing file is a one-line error
    instead of a failed row per run.
    """
    problems: dict[str, None] = {}
    task = get_task(suite.task)
    shapes: dict[str, tuple[int, int, int] | None] = {}
    for run in suite.runs:
        data = run.spec.data
        for kind, key, spec, fingerprint in task.plugin_specs(run.spec):
            key = f"base.{key}"
            try:
                pipeline.registry.info(kind, spec["name"]).cls.check_requirements()
                if fingerprint:
                    pipeline.fingerprint(kind, spec)
                plugin = pipeline.plugin(kind, spec)
                if "images" in inspect.signature(plugin.check).parameters:  # a check written before it had none
                    memo = make_key("shape", data.model_dump())  # one row read per dataset, not per plugin and run
                    if memo not in shapes:
                        shapes[memo] = image_shape(pipeline, data)
                    plugin.check(images=shapes[memo])
                else:
                    plugin.check()
            except ConfigError as exc:  # a plugin's own key joins the section's: base.database.size
                problems[f"{suite.path}: {key}{'.' + exc.key if exc.key else ''}: {exc.detail}"] = None
            except RdmbenchError as exc:
                problems[f"{suite.path}: {key}: {exc}"] = None
    return list(problems)


def image_shape(pipeline: Pipeline, data: DataSection) -> tuple[int, int, int] | None:
    """(height, width, channels) of a run's training images, from one row; None where it cannot be read (the
    dataset's own check reports why)."""
    import numpy as np

    try:
        rows = pipeline.plugin("dataset", data.dataset).read(data.train_split, np.zeros(1, np.int64))
        return tuple(int(n) for n in rows.images.shape[1:])
    except (RdmbenchError, OSError, IndexError, KeyError, ValueError):
        return None


def suite_columns(suite: Suite) -> dict[str, dict[str, Any]]:
    """Declarations (label, better direction) of every column the suite's runs can write, in results.csv
    order: the task's and its plugins' columns, from the code that produces them (rdmbench.columns)."""
    task, registry = get_task(suite.task), get_registry()
    columns: list[Any] = []
    for run in suite.runs:
        columns += task.result_columns(run.spec, registry)
    return declarations([WALL_S, *columns])


def swept_keys(suite: Suite) -> list[str]:
    keys: list[str] = []
    for r in suite.runs:
        keys += [k for k in r.shown if k not in keys]
    return keys


def _read_row(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "row.json"
    return read_json(path) if path.exists() else None


def write_results_csv(out: Path, suite: Suite) -> list[dict[str, Any]]:
    """Rewrite results.csv from the rows of the suite's current runs, in suite order (atomic)."""
    rows = [r for r in (_read_row(out / "runs" / run.run_id) for run in suite.runs) if r]
    swept = swept_keys(suite)
    present = {k for r in rows for k in r}
    declared = from_declarations(suite_columns(suite))
    tail = [*(n for role in TAIL_ROLES for n, c in declared.items() if c.role is role), *LAST]
    ordered = [c for d in declared if d not in tail for c in (d, f"{d}_lo", f"{d}_hi")]
    columns = ["run_id", *swept, "status", *[c for c in ordered if c in present and c not in swept]]
    extra = sorted(present - set(columns) - set(tail) - set(HIDDEN))
    columns += extra + [t for t in tail if t in present]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    failpoint("results.write")
    write_text(out / "results.csv", buf.getvalue())
    return rows


def dry_run(suite: Suite, out: Path) -> str:
    from rdmbench.pipeline import Pipeline

    lines = [f"suite {suite.name} ({suite.path}), profile {suite.profile}: {len(suite.runs)} runs -> {out}"]
    pipeline = Pipeline(StageCache(out, False), get_registry(), Progress(), "cpu")
    for problem in preflight(suite, pipeline):
        lines.append(f"warning, a real run would stop here: {problem}")
    task = get_task(suite.task)
    for r in suite.runs:
        lines.append(f"  {r.run_id}: {task.describe(r.spec)}")
    return "\n".join(lines)


def require_results(path: Path) -> None:
    if not (path / "results.csv").exists():
        raise RdmbenchError(f"{path / 'results.csv'} not found: `rdmbench run SUITE` writes it")
