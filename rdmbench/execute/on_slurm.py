"""Runs as SLURM jobs through submitit (one job per run; sbatch must be on PATH: a login node).

Options (``--executor-option KEY=VALUE``) are submitit's: ``slurm_partition``, ``timeout_min``,
``gpus_per_node``, ``cpus_per_task``, ``mem_gb``, ``slurm_account``, ... (submitit names every one it
refuses), plus ``parallel`` (at most this many jobs queued at once; default: no limit) and
``cluster``: ``local`` runs the same jobs as processes of this machine through submitit's local executor
(at most ``parallel`` at once, default one per CPU), ``debug`` in this process. Job scripts and logs go
to ``<results>/.submitit``. A job that dies (time limit, preemption, kill) is recorded as a failed row;
running the same command again resumes it from its cached stages.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from rdmbench.errors import ConfigError, RdmbenchError, require
from rdmbench.execute.work import Job

HINT = ("--executor slurm needs submitit: pip install 'submitit>=1.5' (or pip install -e '.[cluster]'); "
        "--executor local (the default) needs nothing")


class SlurmExecutor:
    def __init__(self, out: Path, options: dict[str, Any]):
        submitit = require("submitit", HINT)
        cluster = options.pop("cluster", "slurm")
        if cluster not in ("slurm", "local", "debug"):
            raise ConfigError(f"cluster {cluster!r} is not one of slurm, local, debug", key="--executor-option")
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise RdmbenchError("--executor slurm: no sbatch on PATH; run from a SLURM login node, or pass "
                                "--executor-option cluster=local to run the same jobs as local processes")
        self.capacity = options.pop("parallel", os.cpu_count() if cluster == "local" else None)
        self.executor = submitit.AutoExecutor(folder=Path(out) / ".submitit" / "%j", cluster=cluster)
        try:
            self.executor.update_parameters(name="rdmbench", **options)
        except (ValueError, NameError) as exc:
            raise ConfigError(f"{exc}".splitlines()[0], key="--executor-option") from None

    def submit(self, fn: Any, job: Job | list[Job]) -> Any:
        return self.executor.submit(fn, job)

    def finished(self, handles: list[Any]) -> list[Any]:
        return [h for h in handles if h.done()]

    def result(self, handle: Any) -> Any:
        return handle.result()

    def close(self) -> None:
        pass
