"""Several runs at once as processes of this machine (``rdmbench run SUITE --jobs N``).

On a CPU, one run at a time leaves throughput on the table: a small head's training steps do not keep two
cores busy (benchmarks/bench_cpu_levers.py measured two one-thread runs side by side at 1.45x the training
throughput of one two-thread run). So ``--jobs N`` runs N at once, each computing with ``threads: auto`` =
the machine's count divided by N (at least 1). The count is a setting of the run, in its config and in the
keys of its thread-dependent stages (docs/scaling.md), so ``--jobs 2`` rows are those of a serial run at
``--set threads=1``, not of the serial default.

Options (``--executor processes --executor-option KEY=VALUE``): ``jobs`` (runs at once, default 2). Each job
is a fresh spawned process (no torch state is inherited; its memory is returned when it ends). A process that
dies takes the pool with it: the runs then in flight are recorded as failed rows, the pool is started again
for the rest, and running the same command again resumes the failed ones from their cached stages.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from rdmbench.errors import ConfigError
from rdmbench.execute.work import Job


def _log_like_the_cli(level: int) -> None:
    """A spawned process has no logging set up; its stage lines go to the terminal as the local loop's do."""
    logging.basicConfig(level=level, format=f"%(asctime)s [job {os.getpid()}] %(message)s", datefmt="%H:%M:%S")


class ProcessesExecutor:
    def __init__(self, out: Path, options: dict[str, Any]):
        unknown = sorted(set(options) - {"jobs"})
        if unknown:
            raise ConfigError(f"unknown option {unknown[0]!r} for --executor processes (allowed: jobs)",
                              key="--executor-option")
        jobs = options.get("jobs", 2)
        if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
            raise ConfigError(f"jobs must be a positive integer, got {jobs!r}", key="--jobs")
        self.capacity: int | None = jobs
        from rdmbench.device import auto_threads

        #: what ``threads: auto`` means for the runs of this pool: the machine's count shared among the jobs
        self.threads = max(1, auto_threads() // jobs)
        self._level = logging.getLogger("rdmbench").getEffectiveLevel()
        self.pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.capacity, mp_context=multiprocessing.get_context("spawn"),
                                   max_tasks_per_child=1, initializer=_log_like_the_cli, initargs=(self._level,))

    def submit(self, fn: Any, job: Job | list[Job]) -> Future:
        try:
            return self.pool.submit(fn, job)
        except BrokenProcessPool:  # a process died; the futures then in flight carry the error
            self.pool = self._start()
            return self.pool.submit(fn, job)

    def finished(self, handles: list[Any]) -> list[Any]:
        return [h for h in handles if h.done()]

    def result(self, handle: Future) -> Any:
        return handle.result()

    def close(self) -> None:
        # at the end nothing runs; on an interrupt (or a driver's error) the jobs in flight stop now rather than
        # when their run ends: a stage is written to a temporary folder and renamed, so a stopped one leaves no entry
        processes = list((getattr(self.pool, "_processes", None) or {}).values())  # shutdown forgets them
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()
