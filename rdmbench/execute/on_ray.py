"""Runs as Ray tasks: a local Ray instance by default, the cluster at ``RAY_ADDRESS`` when it is set.

Options (``--executor-option KEY=VALUE``): ``num_cpus`` (per run, default: the run's ``threads``, at most the
local instance's CPUs; Ray would otherwise reserve one CPU and start the worker at OMP_NUM_THREADS=1, while the
worker computes with the run's count whatever Ray reserved), ``num_gpus`` (per run,
default 0), ``memory`` (bytes per run), ``max_retries`` (a run whose worker dies is retried this often
from its cached stages, default 1), ``local_cpus`` (CPUs of the local instance; default: all).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from rdmbench.errors import ConfigError, require
from rdmbench.execute.work import Job

HINT = ("--executor ray needs Ray: pip install 'ray>=2.40' (or pip install -e '.[cluster]'); "
        "--executor local (the default) needs nothing")
TASK_OPTIONS = ("num_cpus", "num_gpus", "memory", "max_retries")
#: how long the one connection attempt to ``RAY_ADDRESS`` may take before the run stops (docs/reliability.md)
CONNECT_TIMEOUT_S = 5.0


class RayExecutor:
    #: Ray queues what it cannot place: every job is submitted at once
    capacity: int | None = None

    def __init__(self, out: Path, options: dict[str, Any]):
        unknown = sorted(set(options) - {*TASK_OPTIONS, "local_cpus"})
        if unknown:
            raise ConfigError(f"unknown option {unknown[0]!r} for --executor ray (allowed: "
                              f"{', '.join((*TASK_OPTIONS, 'local_cpus'))})", key="--executor-option")
        ray = require("ray", HINT)
        address = os.environ.get("RAY_ADDRESS")
        if address and address != "auto":
            reachable(address)
        self.ray = ray
        local = {} if address else {"num_cpus": options.get("local_cpus")}
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                 configure_logging=False, **local)
        self.options = {"max_retries": 1, **{k: v for k, v in options.items() if k in TASK_OPTIONS}}
        # a local instance has no more CPUs than it was given: a task asking for more would wait forever
        self.cpus = None if address else int(ray.cluster_resources().get("CPU", 1))
        self._remote: dict[Any, Any] = {}

    def submit(self, fn: Any, job: Job | list[Job]) -> Any:
        if fn not in self._remote:
            self._remote[fn] = self.ray.remote(fn)
        return self._remote[fn].options(**self.task_options(job)).remote(job)

    def task_options(self, job: Job | list[Job]) -> dict[str, Any]:
        """Ray's options for one job: ``num_cpus`` reserves the threads its runs compute with (resolved ints)."""
        if "num_cpus" in self.options:
            return self.options
        threads = max(j.run.spec.threads for j in (job if isinstance(job, list) else [job]))
        return {**self.options, "num_cpus": min(threads, self.cpus) if self.cpus else threads}

    def finished(self, handles: list[Any]) -> list[Any]:
        if not handles:
            return []
        ready, _ = self.ray.wait(handles, num_returns=len(handles), timeout=0)
        return ready

    def result(self, handle: Any) -> Any:
        return self.ray.get(handle)

    def close(self) -> None:
        self.ray.shutdown()


def reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """A one-line error now for a cluster address nobody answers at, instead of Ray's minute of retries."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"RAY_ADDRESS={address!r} is not host:port (or ray://host:port, or auto)", key="RAY_ADDRESS")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(f"RAY_ADDRESS={address!r}: nothing answers at {host}:{port} ({exc}); start the cluster "
                          "(ray start --head) or unset RAY_ADDRESS for a local Ray instance", key="RAY_ADDRESS") \
            from None
