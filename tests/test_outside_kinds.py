"""A task, an executor and a tracker from an outside package, found through their entry-point groups
(``rdmbench.tasks``, ``rdmbench.executors``, ``rdmbench.trackers``) exactly as the built-ins are: nothing is
installed, a folder with a module and its package metadata (a dist-info with ``entry_points.txt``) is put on
``sys.path`` and the real reader, ``importlib.metadata.entry_points``, finds it."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from conftest import write_suite
from rdmbench.cli import main
from rdmbench.errors import ConfigError
from rdmbench.execute import EXECUTORS, make_executor
from rdmbench.suite import load_suite
from rdmbench.tasks import TASKS, get_task
from rdmbench.track import TRACKERS

MODULE = '''"""An outside package's task, executor and tracker."""

from __future__ import annotations

import json
from typing import Any

from rdmbench.columns import Column
from rdmbench.schema import Section
from rdmbench.tasks import Task
from rdmbench.track import Tracker


class DoubleSpec(Section):
    task: str
    seed: int = 0
    device: str = "cpu"
    threads: int | str = 1
    data: None = None  # every run's preflight reads it; this task has no data
    value: float = 1.0


class DoubleTask(Task[DoubleSpec]):
    """Doubles a number: a task that computes nothing heavy."""

    name = "double"
    schema = DoubleSpec
    columns = (Column("doubled", "value doubled", "higher"),)

    def run(self, pipe, spec):
        return {"doubled": 2 * spec.value}, {}

    def report(self, data):
        return []


class InlineExecutor:
    """Runs each job at once, in this process."""

    capacity = None
    #: what was submitted, by function name (read by the test)
    submitted: list[str] = []

    def __init__(self, out, options):
        self.results: dict[int, Any] = {}

    def submit(self, fn, job):
        InlineExecutor.submitted.append(fn.__name__)
        self.results[len(self.results)] = fn(job)
        return len(self.results) - 1

    def finished(self, handles):
        return handles

    def result(self, handle):
        return self.results[handle]

    def close(self):
        pass


class JsonTracker(Tracker):
    """One JSON file per run: its metrics."""

    name = "json-files"

    def export(self, record, out, suite):
        folder = out / "json-files"
        folder.mkdir(exist_ok=True)
        (folder / f"{record['run_id']}.json").write_text(json.dumps({"suite": suite.name, **record["metrics"]}))
'''

ENTRY_POINTS = """\
[rdmbench.tasks]
double = outside_kinds:DoubleTask

[rdmbench.executors]
inline = outside_kinds:InlineExecutor

[rdmbench.trackers]
json-files = outside_kinds:JsonTracker
broken = outside_kinds_missing:Tracker
not-a-tracker = outside_kinds:InlineExecutor
"""

SUITE = """\
suite: outside
version: 1
task: double
base: {value: 1.5}
sweep:
  grid:
    value: [1.0, 2.5]
track: [json-files]
"""

GROUPS = (TASKS, EXECUTORS, TRACKERS)


@pytest.fixture
def outside(tmp_path, monkeypatch):
    """The outside package on sys.path, as an installed wheel would leave it: a module and a dist-info."""
    site = tmp_path / "site"
    dist = site / "rdmbench_outside-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "outside_kinds.py").write_text(MODULE)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rdmbench-outside\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    for group in GROUPS:
        group.reload()
    yield tmp_path
    monkeypatch.undo()
    sys.modules.pop("outside_kinds", None)
    for group in GROUPS:
        group.reload()


def test_the_outside_entries_are_listed_without_importing_them(outside):
    assert {"double", "generation", "retrieval"} <= set(TASKS)
    assert {"inline", "ray", "slurm"} <= set(EXECUTORS)
    assert {"json-files", "broken", "tensorboard", "mlflow"} <= set(TRACKERS)
    assert TASKS.package("double") == "rdmbench-outside 0.1"
    assert "outside_kinds" not in sys.modules


def test_unknown_names_list_the_outside_ones(outside):
    with pytest.raises(ConfigError, match=r"s.yaml: task: unknown task 'duble' \(did you mean 'double'\?.*"
                                          r"allowed: double, generation, retrieval\)"):
        get_task("duble", file="s.yaml")
    with pytest.raises(ConfigError, match=r"--executor: unknown executor 'inlin' \(did you mean 'inline'\?.*"
                                          r"allowed: local, inline, processes, ray, slurm\)"):
        make_executor("inlin", outside, {})
    path = write_suite(outside, SUITE.replace("[json-files]", "[json-file]"))
    with pytest.raises(ConfigError, match=r"track\[0\]: unknown tracker 'json-file' \(did you mean 'json-files'\?.*"
                                          r"allowed: broken, json-files, mlflow, not-a-tracker, tensorboard\)"):
        load_suite(path)


def test_a_broken_entry_point_is_named_with_its_reason(outside, capsys):
    path = write_suite(outside, SUITE.replace("[json-files]", "[broken]"))
    assert main(["run", str(path), "--results", str(outside / "out"), "--cache", str(outside / "cache"), "-q"]) == 2
    assert ("tracker 'broken' is not available: entry point 'broken = outside_kinds_missing:Tracker' "
            "(rdmbench-outside 0.1) failed to import: ModuleNotFoundError") in capsys.readouterr().err
    assert not (outside / "cache").exists()  # before any work
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "failed to load:\n  broken = outside_kinds_missing:Tracker: failed to import: ModuleNotFoundError" in out
    assert "  not-a-tracker = outside_kinds:InlineExecutor: names InlineExecutor, not a subclass of Tracker" in out
    for kind, line in (("task", "  double               Doubles a number: a task that computes nothing heavy.  "
                                "[rdmbench-outside 0.1]"),
                       ("executor", "  inline               Runs each job at once, in this process.  "
                                    "[rdmbench-outside 0.1]"),
                       ("tracker", "  json-files           One JSON file per run: its metrics.  [rdmbench-outside 0.1]")):
        assert line in out.split(f"\n{kind}:\n")[1], kind


def test_an_outside_task_executor_and_tracker_run_a_suite_end_to_end(outside):
    path = write_suite(outside, SUITE)
    suite = load_suite(path)
    assert suite.task == "double" and [r.config["value"] for r in suite.runs] == [1.0, 2.5]
    from outside_kinds import InlineExecutor

    InlineExecutor.submitted.clear()
    results = outside / "out"
    argv = ["run", str(path), "--results", str(results), "--cache", str(outside / "cache"), "-q",
            "--executor", "inline"]
    assert main(argv) == 0
    assert sorted(InlineExecutor.submitted) == ["prepare", "prepare", "work", "work"]  # a group per value
    rows = {r["run_id"]: r for r in csv.DictReader(open(results / "results.csv"))}
    assert {r["run_id"]: float(r["doubled"]) for r in rows.values()} == {"value=1.0_seed=0": 2.0,
                                                                        "value=2.5_seed=0": 5.0}
    assert all(r["status"] == "ok" for r in rows.values())
    exported = json.loads((results / "json-files" / "value=2.5_seed=0.json").read_text())
    assert exported["suite"] == "outside" and exported["doubled"] == 5.0
    assert (results / "report" / "index.html").is_file()  # the task's report: no sections of its own
