"""Suite fan-out: the same rows through a local Ray instance and through submitit as through the local loop;
a worker killed mid-run leaves a suite the same command resumes; bad executor setups stop before any work."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_BASE

#: one worker runs them all: the serial fixture is computed once, not once per xdist worker
pytestmark = pytest.mark.xdist_group("fan-out")

SUITE = TINY_BASE
#: timings differ between any two runs; everything else in a row must not
TIMINGS = {"wall_s", "train_s", "sample_s", "bootstrap_s"}


def _rdmbench(*args: str, env: dict | None = None, cwd: Path | None = None, **kw) -> subprocess.Popen:
    # the test process's own thread setting (conftest: 1 per xdist worker, else 2), not one forced to match
    # what Ray gives its workers: the runs must compute with the driver's count wherever they execute
    return subprocess.Popen([sys.executable, "-m", "rdmbench", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}, **kw)


def _run(tmp: Path, name: str, *extra: str, suite: str = "suite.yaml", env: dict | None = None
         ) -> subprocess.CompletedProcess:
    p = _rdmbench("run", str(tmp / suite), "--results", str(tmp / name), "--cache", str(tmp / f"cache-{name}"),
                  "--no-report", *extra, env=env)
    out, err = p.communicate(timeout=1800)  # a hang guard, not a speed test: generous for a machine that is busy
    assert p.returncode == 0, err[-4000:]
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def _threads(folder: Path, run_id: str) -> tuple[object, dict]:
    """A run's recorded ``threads`` setting (config.yaml) and the pools its process computed with (env.json)."""
    import yaml

    run = folder / "runs" / run_id
    setting = yaml.safe_load((run / "config.yaml").read_text())["threads"]
    return setting, json.loads((run / "env.json").read_text())["threads"]


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
    # ``threads: auto`` was resolved by the driver, and the worker computed with that count
    for run_id in rows:
        (setting, pools), (serial_setting, _) = _threads(serial / "ray", run_id), _threads(serial / "serial", run_id)
        assert setting == serial_setting and type(setting) is int, (setting, serial_setting)
        assert set(pools.values()) == {setting}, pools


def test_ray_gives_the_rows_of_the_local_loop_at_two_threads(serial):
    # every process starts at one thread (Ray's workers inherit the driver's OMP_NUM_THREADS, else Ray sets 1):
    # the setting must raise the pools of the serial process and of the worker alike. Passive waits: two
    # spinning threads per process on the busy cores of a test run are slow, and waiting changes no sum
    one = ("--only", "k_train=2_seed=0", "--set", "threads=2")
    env = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "passive"}
    _run(serial, "serial-2", *one, env=env)
    _run(serial, "ray-2", *one, "--executor", "ray", "--executor-option", "local_cpus=2", env=env)
    assert _rows(serial / "ray-2") == _rows(serial / "serial-2") and len(_rows(serial / "ray-2")) == 1
    for name in ("serial-2", "ray-2"):
        setting, pools = _threads(serial / name, "k_train=2_seed=0")
        assert setting == 2 and set(pools.values()) == {2}, (name, pools)


def test_submitit_gives_the_rows_of_the_local_loop(serial):
    _run(serial, "submitit", "--executor", "slurm", "--executor-option", "cluster=local",
         "--executor-option", "parallel=2")
    rows = _rows(serial / "submitit")
    assert rows == _rows(serial / "serial") and len(rows) == 2
    for run_id in rows:
        setting, pools = _threads(serial / "submitit", run_id)
        assert setting == _threads(serial / "serial", run_id)[0] and set(pools.values()) == {setting}, pools


def _one_thread_reference(serial: Path) -> Path:
    """The serial loop's rows at one thread: the fixture's where it ran at one (make test's xdist workers)."""
    if _threads(serial / "serial", next(iter(_rows(serial / "serial"))))[0] == 1:
        return serial / "serial"
    if not (serial / "serial-1" / "results.csv").exists():
        _run(serial, "serial-1", "--set", "threads=1", env={"OMP_NUM_THREADS": "1"})
    return serial / "serial-1"


def _began_ended(folder: Path, run_id: str) -> tuple[str, str]:
    lines = (folder / "runs" / run_id / "run.log").read_text().splitlines()
    return lines[0][:23], lines[-1][:23]  # "YYYY-mm-dd HH:MM:SS,mmm": compared as strings


def test_jobs_runs_two_at_once_with_the_cores_shared_out(serial):
    # on one core --jobs 2 resolves threads: auto to 1 (never 0), so its rows are those of the serial loop at
    # one thread to the bit (the fixture's where it ran at one, as under make test's xdist workers); both runs
    # of the one group were in flight together
    one = {"OMP_NUM_THREADS": "1"}
    done = _run(serial, "jobs", "--jobs", "2", env=one)
    rows = _rows(serial / "jobs")
    assert rows == _rows(_one_thread_reference(serial)) and len(rows) == 2
    for run_id in rows:
        setting, pools = _threads(serial / "jobs", run_id)
        assert setting == 1 and set(pools.values()) == {1}, pools
    (a0, a1), (b0, b1) = (_began_ended(serial / "jobs", r) for r in rows)
    assert a0 < b1 and b0 < a1, (a0, a1, b0, b1)
    assert "processes: 2 runs in 1 groups" in done.stderr
    assert "warm-up for k_train=" in done.stderr  # a second job had work while the first stage trained


def _processes_with(marker: str) -> list[int]:
    """The pids of this machine's processes whose environment holds ``marker`` (a test's own tmp path: a pid
    the OS gave to an unrelated process since cannot match)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "environ").read_bytes():
                if "zombie" not in (entry / "status").read_text():
                    found.append(int(entry.name))
        except OSError:  # it ended while we looked, or is not ours to read
            continue
    return found


def test_an_interrupted_jobs_run_stops_its_jobs_and_resumes(serial, tmp_path):
    # a job held in training by a failpoint (a pause: it is in flight by construction), then Ctrl-C to the driver
    # alone: every job stops with it, nothing half-trained is published, the same command resumes. One held job,
    # not both: when the second starts depends on how the pool hands out its slots, which a test must not assume
    import queue
    import signal
    import threading

    args = ("run", str(serial / "suite.yaml"), "--results", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"),
            "--no-report", "--jobs", "2")
    one = {"OMP_NUM_THREADS": "1"}
    pause = str(tmp_path / "never")
    # Ctrl-C as a terminal sends it: the driver starts with SIGINT at its default even where this test runs with it
    # ignored (a shell's background job inherits SIG_IGN, and Python then never installs its KeyboardInterrupt)
    driver = _rdmbench(*args, env={**one, "RDMBENCH_FAILPOINT": "train.step@2", "RDMBENCH_FAILPOINT_PAUSE": pause},
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in driver.stderr] + [lines.put("")], daemon=True).start()
    seen: list[str] = []
    while not any("failpoint train.step hit" in line for line in seen):
        try:
            line = lines.get(timeout=1800)  # a hang guard, not a speed test
        except queue.Empty:
            driver.kill()
            raise AssertionError("no job reached the failpoint:\n" + "".join(seen)[-3000:]) from None
        assert line, "".join(seen)[-3000:]  # the driver ended before a job reached the failpoint
        seen.append(line)
    driver.send_signal(signal.SIGINT)
    try:
        try:
            driver.wait(timeout=1800)  # a hang guard, not a speed test (it once took over 600 s on 2 busy cores)
        except subprocess.TimeoutExpired:
            while not lines.empty():
                seen.append(lines.get())
            raise AssertionError(f"the driver did not stop on SIGINT; jobs still there: {_processes_with(pause)}; "
                                 "its output:\n" + "".join(seen)[-3000:]) from None
        err = "".join(seen)
        while (line := lines.get(timeout=60)):
            err += line
        assert driver.returncode == 130, err[-3000:]
        assert _processes_with(pause) == [], err[-3000:]  # the held job, and any other, stopped with the driver
    finally:  # a failing check leaves nothing paused forever on the machine
        driver.kill()
        for pid in _processes_with(pause):
            os.kill(pid, signal.SIGKILL)
    assert not [e for e in (tmp_path / "cache" / "train").iterdir() if not e.name.startswith(".")]
    resumed = _rdmbench(*args, env=one)
    _, err = resumed.communicate(timeout=1800)
    assert resumed.returncode == 0, err[-3000:]
    assert _rows(tmp_path / "out") == _rows(_one_thread_reference(serial))


def test_jobs_is_the_local_machines_alone(tmp_path):
    error = _error_before_work(tmp_path, "--jobs", "2", "--executor", "ray")
    assert "--jobs runs processes of this machine: not with --executor ray" in error


def test_a_worker_killed_mid_run_leaves_a_suite_the_same_command_resumes(serial, tmp_path):
    # the serial run's suite as it is, from an empty cache; every worker that trains is killed (SIGKILL, as
    # kill -9) after its second training step by a failpoint (rdmbench.failpoints) armed in the first command's
    # environment, which Ray's workers inherit. No retry, so the kill shows in the rows
    cache, out = tmp_path / "cache", tmp_path / "out"
    args = ("run", str(serial / "suite.yaml"), "--results", str(out), "--cache", str(cache), "--no-report",
            "--executor", "ray")
    driver = _rdmbench(*args, "--executor-option", "max_retries=0", env={"RDMBENCH_FAILPOINT": "train.step@2"})
    _, err = driver.communicate(timeout=1800)
    assert driver.returncode == 1, err[-3000:]  # failed rows, not a crash
    rows = _rows(out)
    assert len(rows) == 2, rows
    assert all(r["status"] == "failed" and "worker lost" in r["error"] for r in rows.values()), rows
    # nothing half-written was published: every entry is complete and intact, and no head was
    from rdmbench.cache import verify_entry

    entries = [e for stage in cache.iterdir() if not stage.name.startswith(".")
               for e in stage.iterdir() if not e.name.startswith(".")]
    assert entries and all(verify_entry(e) == [] for e in entries)
    assert not [e for e in (cache / "train").iterdir() if not e.name.startswith(".")]
    # the very same command and suite: it resumes from the cached stages and gives the serial rows
    again = _rdmbench(*args)
    _, err = again.communicate(timeout=1800)
    assert again.returncode == 0, err[-3000:]
    assert _rows(out) == _rows(serial / "serial")
    for run_id in rows:
        stages = json.loads((out / "runs" / run_id / "stages.json").read_text())
        assert all(s["cached"] for s in stages if s["stage"] in ("data", "database", "first_stage", "embeddings"))
        assert not next(s for s in stages if s["stage"] == "train")["cached"]


def test_a_worker_that_does_not_see_the_drivers_cache_stops_with_one_line(tmp_path):
    from rdmbench.errors import RdmbenchError
    from rdmbench.execute.work import Job, check_shared

    (tmp_path / "out").mkdir()
    job = Job(suite=None, run=None, out=str(tmp_path / "out"), cache=str(tmp_path / "cache"), use_cache=True,
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
    error = _error_before_work(tmp_path, "--executor", "ray", env={"RAY_ADDRESS": f"127.0.0.1:{port}"})
    assert f"RAY_ADDRESS='127.0.0.1:{port}': nothing answers" in error and "ray start --head" in error


def test_an_unreachable_ray_address_costs_one_bounded_connection_attempt(tmp_path, monkeypatch):
    # the documented bound (docs/reliability.md: 5 s), checked by what is asked of the socket, not by a clock:
    # one attempt with that timeout, then the error, and Ray is never started (its own retries take a minute)
    import ray

    from rdmbench.errors import ConfigError
    from rdmbench.execute import on_ray

    attempts = []

    def silent(address, timeout=None):
        attempts.append((address, timeout))
        raise TimeoutError("timed out")

    monkeypatch.setattr(on_ray.socket, "create_connection", silent)
    monkeypatch.setattr(ray, "init", lambda *a, **kw: pytest.fail("ray.init was called"))
    monkeypatch.setenv("RAY_ADDRESS", "ray://10.255.255.1:10001")
    with pytest.raises(ConfigError, match=r"nothing answers at 10\.255\.255\.1:10001 \(timed out\)"):
        on_ray.RayExecutor(tmp_path, {})
    assert attempts == [(("10.255.255.1", 10001), 5.0)]


@pytest.mark.parametrize("package,executor", [("ray", "ray"), ("submitit", "slurm")])
def test_a_missing_executor_package_names_its_install(tmp_path, package, executor):
    # the package hidden from this interpreter only (a module set to None cannot be imported)
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(f"import sys\nsys.modules[{package!r}] = None\n")
    env = {"PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")])}
    error = _error_before_work(tmp_path, "--executor", executor, env=env)
    assert f"pip install '{package}>=" in error


def test_a_run_whose_head_is_in_training_waits_while_other_work_can_start():
    # A's second sampling would only wait on the lock of the head A's first run is training: B goes first
    from types import SimpleNamespace

    from rdmbench.execute import _next, work

    a1, a2, b = (SimpleNamespace(run_id=i) for i in ("a1", "a2", "b"))
    heads = {"a1": "A", "a2": "A", "b": "B"}
    queue = [(work, a2), (work, b)]
    assert _next(queue, {"A"}, heads) == 1
    assert _next(queue, set(), heads) == 0
    assert _next([(work, a2)], {"A"}, heads) == 0  # nothing else to do: it may as well wait there


def test_shared_stage_jobs_go_to_a_group_no_running_job_works_on():
    # groups sharing a first stage differ by database: two jobs on one group compute one database's embeddings
    # (the second waits on the first's lock), and two groups' shared stages both wait on one first stage
    from types import SimpleNamespace

    from rdmbench.execute import _next, prepare, warm

    a, b = SimpleNamespace(run_id="a"), SimpleNamespace(run_id="b")
    group_of = {"a": "A", "b": "B"}
    queue = [(prepare, [a]), (warm, a), (prepare, [b]), (warm, b)]
    assert _next(queue, set(), {}, set(), group_of) == 0  # nothing running: shared stages first
    assert _next(queue, set(), {}, {(prepare, "A")}, group_of) == 3  # B's warm-up: not A's, not B's shared stages
    assert _next(queue, set(), {}, {(warm, "A")}, group_of) == 2  # B's shared stages while no shared stages compute
    assert _next([(warm, a), (prepare, [b])], set(), {}, {(prepare, "A")}, group_of) == 1  # a free group first
    assert _next(queue, set(), {}, {(prepare, "A"), (warm, "B")}, group_of) == 0  # every group busy: the first
    assert _next(queue, set(), {}) == 0  # no groups given: suite order
