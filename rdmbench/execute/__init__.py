"""Fan a suite's runs out to workers of a scheduler a user already operates: Ray, or SLURM through submitit.

``rdmbench run SUITE --executor ray|slurm`` keeps every guarantee of a local run. The workers compute
through the same stage cache (on a filesystem they all mount at the same path; checked before any work),
whose per-entry locks make a stage shared by runs computed once. A job carries one run's resolved spec (not
the suite); its worker writes the run's row under the results lock, as the local loop does
(rdmbench.runner.run_one), and the driver rewrites results.csv as each run ends.

Scheduling: runs whose configs agree on what decides their stages before training
(``Task.shared_part``) form a group. One job per group computes those shared stages first
(``Pipeline.until_collective``); when it ends, the group's runs are submitted, one job each. So no worker
waits on a lock held by another for the data, the first stage or the database's embeddings, and groups
progress independently. Beside each group's shared stages a second job computes what its runs will read that
does not wait on them (``Task.warm``: the database's embeddings while the first stage trains, the metric
features of X), so a second worker has work from the start. A worker is given a group's warm-up or shared
stages only while no other job works on that group, if another group has some, and a warm-up rather than
shared stages while shared stages are computing: where groups share a first stage (one per database), a
group's two jobs would compute one database's embeddings, one waiting on the other's lock, and a second
group's shared stages would wait on the first stage's training (benchmarks/bench_scheduling.py).

A run whose worker dies is retried from its cached stages as often as ``max_retries`` says, then recorded as a
failed row; running the same command again resumes it.

The executors are small adapters (``on_ray``, ``on_slurm``): submit a function, ask which jobs ended,
fetch a result. Everything else is here and in ``work``. Each is one line of the ``rdmbench.executors``
entry-point group (``ray = "rdmbench.execute.on_ray:RayExecutor"``), the built-ins in rdmbench's own
pyproject.toml exactly as an outside package registers its own.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from rdmbench.cache import canonical
from rdmbench.errors import ConfigError, one_line
from rdmbench.execute.work import Job, PROBE, prepare, warm, work
from rdmbench.registry import EntryPointClasses, unknown_choice

log = logging.getLogger("rdmbench")


class Executor(Protocol):
    """Where a suite's jobs run: built as ``cls(out, options)`` (the results folder, the ``--executor-option``
    settings; an unknown option or a missing package or cluster is an error here, before any work)."""

    #: jobs in flight at once (None: as many as there are)
    capacity: int | None
    #: optional ``threads: int`` attribute: what ``threads: auto`` resolves to for the runs it executes, where
    #: that is not the driver's own count (``--jobs N`` shares the machine's cores among N runs)

    def submit(self, fn: Any, job: Job | list[Job]) -> Any: ...

    def finished(self, handles: list[Any]) -> list[Any]: ...

    def result(self, handle: Any) -> Any: ...

    def close(self) -> None: ...


#: executor name -> its entry point (``rdmbench.executors`` group); ``local`` is the runner's own loop, not one
EXECUTORS: EntryPointClasses[Executor] = EntryPointClasses("rdmbench.executors", "executor", Executor)


def make_executor(name: str, out: Path, options: dict[str, Any]) -> Executor:
    if name not in EXECUTORS:
        raise ConfigError(unknown_choice("executor", name, ["local", *EXECUTORS]), key="--executor")
    return EXECUTORS.load(name, key="--executor")(out, dict(options))


def fan_out(suite: Any, out: Path, cache_root: Path, executor: str, *, use_cache: bool = True,
            only: list[str] | None = None, options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    from rdmbench import runner
    from rdmbench.progress import Progress
    from rdmbench.tasks import get_task

    out, cache_root = Path(out).resolve(), Path(cache_root).resolve()
    runs = runner.select(suite, only)
    ex = make_executor(executor, out, options or {})  # a missing package or cluster: before any work
    # before any job is made: the workers get the driver's count (or the one the executor shares out)
    runner.resolve_threads(suite.runs, getattr(ex, "threads", None))
    device = runner.resolve_device(runs[0].spec.device) if runs else "cpu"
    try:
        runner.begin(suite, out, runner.pipeline_for(cache_root, use_cache, Progress(), device))
    except BaseException:
        ex.close()
        raise
    token = uuid.uuid4().hex
    probes = [folder / f"{PROBE}{token}" for folder in (cache_root, out)]
    for probe in probes:  # a worker that cannot see these does not share the driver's filesystem
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text(token)
    task = get_task(suite.task)
    groups = task.shared_groups(runs)
    job = {r.run_id: Job(suite.info, r, str(out), str(cache_root), use_cache, token) for r in runs}
    heads = {r.run_id: canonical(task.trained_part(r.spec)) for r in runs}
    group_of = {r.run_id: key for key, members in groups.items() for r in members}
    capacity = ex.capacity or len(runs) + len(groups)
    # jobs not yet submitted: each group's shared stages, and beside them what its runs read that waits on none
    from rdmbench.tasks import Task

    warms = type(task).warm is not Task.warm  # a task with nothing to warm gets no job for it
    queue: list[tuple[Any, Any]] = [item for members in groups.values()
                                    for item in ((prepare, members), *([(warm, members[0])] if warms else []))]
    waiting: dict[Any, Any] = {}  # shared stages computing -> their group
    warming: dict[Any, Any] = {}  # warm-up jobs -> the run they warm for
    running: dict[Any, Any] = {}  # run jobs -> their run
    done = 0
    log.info("%s: %d runs in %d groups sharing their first stages; computing those first",
             executor, len(runs), len(groups))
    try:
        while queue or waiting or warming or running:
            while queue and len(waiting) + len(warming) + len(running) < capacity:
                busy = {*((prepare, group_of[_first(w).run_id]) for w in waiting.values()),
                        *((warm, group_of[w.run_id]) for w in warming.values())}
                fn, what = queue.pop(_next(queue, {heads[r.run_id] for r in running.values()}, heads, busy, group_of))
                if fn is prepare:
                    waiting[ex.submit(prepare, [job[r.run_id] for r in what])] = what
                elif fn is warm:
                    warming[ex.submit(warm, job[what.run_id])] = what
                else:
                    running[ex.submit(work, job[what.run_id])] = what
            for handle in ex.finished(list(waiting)):
                members = waiting.pop(handle)
                _report_prepare(ex, handle, members)
                queue += [(work, run) for run in members]
            for handle in ex.finished(list(warming)):
                _report_prepare(ex, handle, [warming.pop(handle)], "warm-up for")
            for handle in ex.finished(list(running)):
                done += 1
                _report_run(ex, handle, running.pop(handle), suite, out, done, len(runs))
            time.sleep(0.2)
    finally:
        ex.close()
        for probe in probes:
            probe.unlink(missing_ok=True)
    with runner.results_lock(out):
        return runner.write_results_csv(out, suite)


def _next(queue: list[tuple[Any, Any]], training: set[str], heads: dict[str, str],
          busy: set[tuple[Any, str]] | None = None, group_of: dict[str, str] | None = None) -> int:
    """The job to start next. Shared-stage jobs before runs (they are what runs wait for). With ``group_of``, each
    of a group no running job works on (``busy``: (prepare or warm, group) of the running ones) where there is
    one — a second job on one group's stages only waits on the first's locks: a group's shared stages while none
    are computing, else a warm-up (it does not wait on a first stage another group's shared stages may be
    training). Then the first queued run that does not train a model a running job trains: a second run of one
    trained head started beside the first only waits on its lock, while a run of another head keeps that worker
    busy."""
    shared = [i for i, (fn, _) in enumerate(queue) if fn in (prepare, warm)]
    if shared and group_of is not None:
        busy = busy or set()
        taken = {group for _, group in busy}
        preparing = any(fn is prepare for fn, _ in busy)
        for kind in ((warm, prepare) if preparing else (prepare, warm)):
            for i in shared:
                fn, what = queue[i]
                if fn is kind and group_of[_first(what).run_id] not in taken:
                    return i
    if shared:
        return shared[0]
    for i, (_, what) in enumerate(queue):
        if heads[what.run_id] not in training:
            return i
    return 0  # every queued run waits on a head in training: the first waits on it as well as any


def _first(what: Any) -> Any:
    """The run a queued or running job stands for: a group's first (shared stages) or the run itself."""
    return what[0] if isinstance(what, list) else what


def _report_prepare(ex: Executor, handle: Any, members: list[Any], what: str = "shared stages of") -> None:
    try:
        outcome = ex.result(handle)
    except Exception as exc:  # its runs meet the same problem and record it in their rows
        outcome = f"failed: {one_line(exc)}"
    log.info("%s %s: %s", what, ", ".join(r.run_id for r in members), outcome)


def _report_run(ex: Executor, handle: Any, run: Any, suite: Any, out: Path, done: int, total: int) -> None:
    from rdmbench import runner
    from rdmbench.cache import write_json

    try:
        outcome = ex.result(handle)
    except Exception as exc:  # the worker died (killed, out of memory, preempted) after its retries
        error = f"worker lost: {one_line(exc)}"
        row = {"run_id": run.run_id, **run.shown, "profile": suite.profile, "status": "failed", "error": error}
        with runner.results_lock(out):
            write_json(out / "runs" / run.run_id / "row.json", row)
            runner.write_results_csv(out, suite)
        log.error("[%d/%d] %s: FAILED: %s (run the same command again to resume it from its cached stages)",
                  done, total, run.run_id, error)
        return
    with runner.results_lock(out):  # the worker wrote the run's row; the table of every run is the driver's
        runner.write_results_csv(out, suite)
    log.info("[%d/%d] %s: %s on %s", done, total, run.run_id, outcome["status"], outcome["worker"])


def parse_options(items: list[str]) -> dict[str, Any]:
    """``--executor-option KEY=VALUE`` (VALUE is YAML) -> a dict."""
    from rdmbench.suite import key_value

    return dict(key_value(item, "--executor-option") for item in items)
