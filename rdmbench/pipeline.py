"""The engine every task runs on: cached stages and shared plugin instances.

A stage is a function (``rdmbench.stages``, a task's ``stages`` module) that calls
``pipe.stage(name, config, inputs, compute)``. Its key covers the stage's resolved config, its
inputs' keys, and the code that computes it: the calling function with what it reaches in its
module, the functions named in ``uses``, and the versions of the libraries those modules import
(rdmbench.provenance); plugins add theirs through ``fingerprint``. Nothing here knows which
stages exist or which task runs them, so no key depends on another run of a suite: a run is
computed from its own resolved config alone.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from rdmbench import processes, provenance
from rdmbench.cache import StageCache, make_key, write_json
from rdmbench.failpoints import failpoint
from rdmbench.progress import Progress
from rdmbench.registry import Registry

if TYPE_CHECKING:
    from rdmbench.schema import RunSpec

log = logging.getLogger("rdmbench")


class SharedStagesDone(Exception):
    """A pipeline told ``until_collective`` reached its first collective stage (named in the message)."""


class Pipeline:
    def __init__(self, cache: StageCache, registry: Registry, progress: Progress, device: str):
        self.cache, self.registry, self.progress = cache, registry, progress
        self.device = device
        self._plugins: dict[str, Any] = {}
        self._loaded: dict[int, Path] = {}
        self.stage_log: list[dict[str, Any]] = []
        #: stop a run at its first collective stage (training): what a scheduler computes once for the runs
        #: that share those stages, before fanning them out (rdmbench.execute)
        self.until_collective = False

    def plugin(self, kind: str, spec: dict[str, Any]) -> Any:
        """One instance per distinct spec, so models load once per suite, not once per run."""
        key = make_key(kind, spec)
        if key not in self._plugins:
            self._plugins[key] = self.registry.create(kind, spec)
        return self._plugins[key]

    def loaded(self, kind: str, spec: dict[str, Any], path: Path, load: Callable[[Any], None]) -> Any:
        """The shared instance for ``spec`` with the stage at ``path`` loaded; loads only when it changes."""
        plugin = self.plugin(kind, spec)
        if self._loaded.get(id(plugin)) != path:
            load(plugin)
            self._loaded[id(plugin)] = path
        return plugin

    def fingerprint(self, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
        """A plugin's cache-key material: resolved spec, version, data/weight fingerprints, code and libraries."""
        return provenance.describe(self.plugin(kind, spec), spec)

    def stage(self, name: str, config: Any, inputs: dict[str, str], compute: Callable[[Path], dict[str, Any] | None], *,
              version: int = 1, uses: tuple[Callable[..., Any], ...] = (), collective: bool = False,
              portable: bool = False) -> Path:
        """The stage's entry, computed unless an intact one with the same key exists.

        ``version``: bump it when a stage's meaning changes in a way its code hash cannot see.
        ``uses``: functions the computation calls that its code does not name (they are keyed too).
        ``collective``: under a launcher of several processes (rdmbench.processes), every process
        computes it together (training); otherwise the main process computes it and the others wait.
        ``portable``: its bytes are the same on every device and thread count (it copies and counts, but
        sums no floats), so neither is keyed. Otherwise the device type and the thread count are: float
        sums reduce in another order on CUDA or with another number of threads, and a trained head
        amplifies those last bits like another seed.
        The lock makes concurrent processes compute it once.
        """
        code = provenance.stage_provenance(sys._getframe(1).f_code, uses)
        if not portable:
            code = {**code, "runs_on": self.runs_on()}
        key = make_key(name, {"v": version, "config": config, "code": code}, inputs)
        path = self.cache.path(name, key)
        if collective and self.until_collective:
            raise SharedStagesDone(name)
        if processes.launched():
            if collective:
                return self._together(name, key, config, code, inputs, compute)
            processes.by_main(lambda: self._compute(name, key, config, code, inputs, compute))
            return path
        return self._compute(name, key, config, code, inputs, compute)

    def runs_on(self) -> dict[str, Any]:
        """The device type and the thread count in force, which the keys of device-dependent stages hold."""
        import torch

        return {"device": self.device.split(":")[0], "threads": torch.get_num_threads()}

    def _compute(self, name: str, key: str, config: Any, code: dict[str, Any], inputs: dict[str, str],
                 compute: Callable[[Path], dict[str, Any] | None]) -> Path:
        path = self.cache.path(name, key)
        cached = {"stage": name, "key": key, "cached": True, "seconds": 0.0}
        if self.cache.done(name, key):
            self.stage_log.append(cached)
            return path
        with self.cache.lock(name, key):
            if self.cache.done(name, key):  # another process computed it while we waited
                self.stage_log.append(cached)
                return path
            log.info("stage %s [%s]: computing", name, key)
            start = time.perf_counter()
            with self.cache.write(name, key, {"config": config, "code": code, "inputs": inputs}) as tmp:
                failpoint("stage.compute", name)
                info = compute(tmp) or {}
                write_json(tmp / "info.json", {**info, "seconds": time.perf_counter() - start})
        seconds = time.perf_counter() - start
        self.stage_log.append({"stage": name, "key": key, "cached": False, "seconds": seconds})
        log.info("stage %s [%s]: done in %.1f s", name, key, seconds)
        return path

    def _together(self, name: str, key: str, config: Any, code: dict[str, Any], inputs: dict[str, str],
                  compute: Callable[[Path], dict[str, Any] | None]) -> Path:
        """Every process computes; the main one writes the entry, the others fill a folder thrown away.
        Whether it is cached is the main process's answer, so all of them compute it or none does."""
        if processes.share(self.cache.done(name, key) if processes.is_main() else None):
            self.stage_log.append({"stage": name, "key": key, "cached": True, "seconds": 0.0})
            return self.cache.path(name, key)
        try:
            if processes.is_main():
                path = self._compute(name, key, config, code, inputs, compute)
            else:
                with tempfile.TemporaryDirectory(prefix=f"rdmbench-{name}-rank{processes.rank()}-") as tmp:
                    compute(Path(tmp))
                path = self.cache.path(name, key)
        except Exception as exc:  # the others are inside the same collective: only stopping them all is safe
            raise processes.CollectiveFailed(f"stage {name} failed in process {processes.rank()} of "
                                             f"{processes.world()}: {type(exc).__name__}: {exc}") from exc
        processes.barrier()  # the others read the entry only once the main process has published it
        return path

    def run(self, spec: RunSpec) -> tuple[dict[str, Any], dict[str, Path]]:
        """Compute (or reuse) every stage of one run through its task; return its row and files to keep."""
        from rdmbench.tasks import get_task

        self.stage_log = []
        return get_task(spec.task).run(self, spec)
