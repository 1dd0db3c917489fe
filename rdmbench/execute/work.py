"""What a worker of a scheduler runs: the shared stages of a group of runs, or one whole run.

Both are plain functions of a picklable ``Job`` (Ray and submitit ship them to the worker), and both
begin by checking that the worker sees the driver's stage cache and results folder, so a cache on a
disk private to the driver's machine is one clear error instead of every stage computed again apart.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdmbench.errors import RdmbenchError
from rdmbench.suite import Run, SuiteInfo

#: prefix of the file the driver leaves in the cache and results folders for workers to find
PROBE = ".rdmbench-probe-"


@dataclass(frozen=True)
class Job:
    """One run's resolved spec and what it needs of its suite; the driver writes the suite's results.csv."""
    suite: SuiteInfo
    run: Run
    out: str
    cache: str
    use_cache: bool
    token: str


def worker_name() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


def check_shared(job: Job) -> None:
    for folder in (job.cache, job.out):
        probe = Path(folder) / f"{PROBE}{job.token}"
        if not probe.is_file() or probe.read_text() != job.token:
            raise RdmbenchError(
                f"worker {worker_name()} does not see the driver's folder {folder} (no {probe.name} there): the "
                "stage cache (--cache) and the results (--results) must be on a filesystem every worker mounts "
                "at the same path, or each worker would compute every stage again and write rows nobody reads")


def _setup(job: Job) -> tuple[Any, Any]:
    from rdmbench.device import apply_threads
    from rdmbench.progress import Progress
    from rdmbench.runner import pipeline_for, resolve_device

    check_shared(job)
    logging.getLogger("rdmbench").setLevel(logging.INFO)  # a worker has no CLI to set it; run.log wants INFO
    run = job.run
    apply_threads(run.spec.threads)  # the driver's count, not the worker's own default (Ray's is 1)
    return run, pipeline_for(Path(job.cache), job.use_cache, Progress(), resolve_device(run.spec.device))


def prepare(jobs: list[Job]) -> str:
    """The stages before the first training stage of every run of a group: the first run computes what
    they share, the others add what is theirs alone (the neighbours at their k) and find the rest cached."""
    from rdmbench.pipeline import SharedStagesDone

    computed: list[str] = []
    for job in jobs:
        run, pipe = _setup(job)
        pipe.until_collective = True
        try:
            pipe.run(run.spec)
        except SharedStagesDone:
            pass
        computed += [s["stage"] for s in pipe.stage_log if not s["cached"] and s["stage"] not in computed]
    return _outcome(computed)


def _outcome(computed: list[str]) -> str:
    """What a job that computes shared stages reports: the stages it computed, on which worker."""
    return f"computed {', '.join(computed)} on {worker_name()}" if computed else f"cached ({worker_name()})"


def warm(job: Job) -> str:
    """Beside a group's ``prepare``: the stages its runs read that do not wait for the first stage (Task.warm)."""
    from rdmbench.tasks import get_task

    run, pipe = _setup(job)
    get_task(run.spec.task).warm(pipe, run.spec)
    return _outcome(list(dict.fromkeys(s["stage"] for s in pipe.stage_log if not s["cached"])))


def work(job: Job) -> dict[str, Any]:
    """One run, as the local loop runs it: stages and row (rdmbench.runner.run_one); the driver writes results.csv."""
    from rdmbench.runner import run_one

    run, pipe = _setup(job)
    row = run_one(job.suite, run, Path(job.out), pipe, job.use_cache)
    status = "already done" if row is None else row["status"] if row["status"] == "ok" else f"FAILED: {row['error']}"
    return {"status": status, "worker": worker_name()}
