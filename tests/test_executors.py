"""Suite fan-out: the same rows through a local Ray instance and through submitit as through the local loop;
a worker killed mid-run leaves a suite the same command resumes; bad executor setups stop before any work."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TINY_BASE

#: one worker runs them all: the serial fixture is computed once, not once per xdist worker
pytestmark = pytest.mark.xdist_group("fan-out")

SUITE = TINY_BASE
#: timings differ between any two runs; everything else in a row must not
TIMINGS = {"wall_s", "train_s", "sample_s", "bootstrap_s"}


def _rdmbench(*args: str, env: dict | None = None, cwd: Path | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rdmbench", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, **kw)


def _run(tmp: Path, name: str, *extra: str, suite: str = "suite.yaml") -> subprocess.CompletedProcess:
    p = _rdmbench("run", str(tmp / suite), "--results", str(tmp / name), "--cache", str(tmp / f"cache-{name}"),
                  "--no-report", *extra)
    out, err = p.communicate(timeout=400)
    assert p.returncode == 0, err[-4000:]
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def _rows(folder: Path) -> dict[str, dict]:
    return {r["run_id"]: {k: v for k, v in r.items() if k not in TIMINGS}
            for r in csv.DictReader(open(folder / "results.csv"))}


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fanout")
    (tmp / "suite.yaml").write_text(SUITE)
    _run(tmp, "serial")
    return tmp


def test_ray_gives_the_rows_of_the_local_loop(serial):
    done = _run(serial, "ray", "--executor", "ray", "--executor-option", "local_cpus=2")
    rows = _rows(serial / "ray")
    assert rows == _rows(serial / "serial") and len(rows) == 2
    assert all(r["status"] == "ok" for r in rows.values())
    # the group's shared stages were computed once, before its runs: every run found them cached
    for run_id in rows:
        stages = json.loads((serial / "ray" / "runs" / run_id / "stages.json").read_text())
        assert all(s["cached"] for s in stages if s["stage"] in ("data", "database", "first_stage", "embeddings"))
    assert "2 runs in 1 groups" in done.stderr
    assert not list((serial / "cache-ray").glob(".rdmbench-probe-*"))  # the driver cleans up after itself


def test_submitit_gives_the_rows_of_the_local_loop(serial):
    _run(serial, "submitit", "--executor", "slurm", "--executor-option", "cluster=local",
         "--executor-option", "parallel=2")
    assert _rows(serial / "submitit") == _rows(serial / "serial")


def test_a_worker_killed_mid_run_leaves_a_suite_the_same_command_resumes(serial, tmp_path):
    # one run trains long enough to be killed while training; no retry, so the kill shows in its row. The
    # serial run's cache holds the stages before training: shared with it, they are not computed again
    suite = SUITE.replace("train_steps: 3", "train_steps: 3000").replace("k_train: [0, 2]", "k_train: [2]")
    (tmp_path / "suite.yaml").write_text(suite)
    cache = serial / "cache-serial"
    args = ("run", str(tmp_path / "suite.yaml"), "--results", str(tmp_path / "out"), "--cache",
            str(cache), "--no-report", "--executor", "ray")
    heads = {e.name for e in (cache / "train").iterdir() if not e.name.startswith(".")}
    driver = _rdmbench(*args, "--executor-option", "max_retries=0")
    log = tmp_path / "out" / "runs" / "k_train=2_seed=0" / "run.log"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and "stage train" in log.read_text()):
        time.sleep(0.2)
    text = log.read_text()
    assert "stage train" in text, text
    pid = int(text.split("in process ")[1].split()[0])
    os.kill(pid, signal.SIGKILL)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 1, err[-3000:]  # a failed row, not a crash
    row = _rows(tmp_path / "out")["k_train=2_seed=0"]
    assert row["status"] == "failed" and "worker lost" in row["error"], row
    # nothing half-written was published: every entry is complete and intact
    from rdmbench.cache import verify_entry

    entries = [e for stage in cache.iterdir() if not stage.name.startswith(".")
               for e in stage.iterdir() if not e.name.startswith(".")]
    assert entries and all(verify_entry(e) == [] for e in entries)
    assert {e.name for e in (cache / "train").iterdir() if not e.name.startswith(".")} == heads  # none torn
    # the same command, with training shortened to the serial run's (so its head is cached too): it resumes
    (tmp_path / "suite.yaml").write_text(suite.replace("train_steps: 3000", "train_steps: 3"))
    again = _rdmbench(*args)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    assert _rows(tmp_path / "out")["k_train=2_seed=0"]["status"] == "ok"
    stages = json.loads((tmp_path / "out" / "runs" / "k_train=2_seed=0" / "stages.json").read_text())
    assert all(s["cached"] for s in stages if s["stage"] in ("data", "database", "first_stage", "embeddings",
                                                              "index", "neighbours"))


def test_a_worker_that_does_not_see_the_drivers_cache_stops_with_one_line(tmp_path):
    from rdmbench.errors import RdmbenchError
    from rdmbench.execute.work import Job, check_shared

    (tmp_path / "out").mkdir()
    job = Job(suite=None, run_id="r", out=str(tmp_path / "out"), cache=str(tmp_path / "cache"), use_cache=True,
              token="abc")
    with pytest.raises(RdmbenchError, match=r"does not see the driver's folder .*cache.*filesystem every worker"):
        check_shared(job)


def _error_before_work(tmp_path: Path, *extra: str, env: dict | None = None) -> str:
    (tmp_path / "suite.yaml").write_text(SUITE)
    p = _rdmbench("run", str(tmp_path / "suite.yaml"), "--results", str(tmp_path / "out"), "--cache",
                  str(tmp_path / "cache"), *extra, env=env)
    _, err = p.communicate(timeout=120)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert p.returncode == 2 and len(errors) == 1, err[-3000:]
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()  # nothing started
    return errors[0]


def test_an_unreachable_ray_address_stops_before_any_work(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    start = time.time()
    error = _error_before_work(tmp_path, "--executor", "ray", env={"RAY_ADDRESS": f"127.0.0.1:{port}"})
    assert f"RAY_ADDRESS='127.0.0.1:{port}': nothing answers" in error and "ray start --head" in error
    assert time.time() - start < 60


@pytest.mark.parametrize("package,executor", [("ray", "ray"), ("submitit", "slurm")])
def test_a_missing_executor_package_names_its_install(tmp_path, package, executor):
    # the package hidden from this interpreter only (a module set to None cannot be imported)
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(f"import sys\nsys.modules[{package!r}] = None\n")
    env = {"PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")])}
    error = _error_before_work(tmp_path, "--executor", executor, env=env)
    assert f"pip install '{package}>=" in error
