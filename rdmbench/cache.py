"""Content-keyed stage cache with atomic writes, checksums and locks.

A stage's output lives in ``<root>/<stage>/<key>/``. The key hashes the stage's whole resolved
config (plugin defaults filled in), the code and library versions that compute it
(rdmbench.provenance) and the keys of its inputs, so a change anywhere upstream yields a new key
and nothing stale is reused. Outputs are written into a temporary sibling folder and renamed into
place when complete: an interrupted stage (Ctrl-C or kill -9) leaves no half-written entry.

``stage.json`` records every file's size and sha256 at write time. An entry is verified the first
time a process uses it; a truncated, altered or missing file makes the entry corrupt: it is moved
aside (``<stage>/.corrupt-<key>-<time>``, kept for inspection) and computed again. A file lock per
entry makes concurrent processes compute a shared stage once: the second waits, then reuses it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from rdmbench.failpoints import failpoint

DONE = "stage.json"
LOCKS = ".locks"
log = logging.getLogger("rdmbench")


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def make_key(stage: str, config: Any, inputs: dict[str, str] | None = None) -> str:
    payload = canonical({"stage": stage, "config": config, "inputs": inputs or {}})
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


class StageCache:
    def __init__(self, root: Path, enabled: bool = True):
        self.root = Path(root)
        self.enabled = enabled
        self._verified: set[tuple[str, str]] = set()

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def done(self, stage: str, key: str) -> bool:
        """True when a complete, intact entry exists; a corrupt one is moved aside (and False returned)."""
        if not self.enabled or not (self.path(stage, key) / DONE).exists():
            return False
        if (stage, key) in self._verified:
            return True
        problems = verify_entry(self.path(stage, key))
        if problems:
            aside = self.root / stage / f".corrupt-{key}-{int(time.time())}"
            log.warning("cache entry %s/%s is corrupt (%s): moved to %s, recomputing", stage, key,
                        "; ".join(problems[:3]), aside.name)
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.path(stage, key), aside)
            return False
        self._verified.add((stage, key))
        return True

    @contextlib.contextmanager
    def lock(self, stage: str, key: str) -> Iterator[None]:
        """Exclusive across processes for one entry (released by the OS if the holder dies)."""
        from filelock import FileLock

        from filelock import Timeout

        folder = self.root / LOCKS
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(folder / f"{stage}-{key}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:  # logged, so two processes' logs show that they overlapped on this entry
            log.info("stage %s [%s]: waiting for the lock another process holds", stage, key)
            lock.acquire()
        try:
            failpoint("lock.acquired", stage)
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def write(self, stage: str, key: str, meta: dict[str, Any]) -> Iterator[Path]:
        """Yield a temporary folder to fill; on success it becomes the stage's entry atomically."""
        final = self.path(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
        try:
            yield tmp
            files = {str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": file_digest(p)}
                     for p in sorted(tmp.rglob("*")) if p.is_file()}
            write_json(tmp / DONE, {"stage": stage, "key": key, **meta, "files": files,
                                    "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            _fsync_tree(tmp)
            failpoint("stage.publish.before", stage)
            if final.exists():  # a cache-off rerun replaces the entry as a whole
                shutil.rmtree(final)
            os.replace(tmp, final)
            failpoint("stage.publish.after", stage)
            self._verified.add((stage, key))
        except Exception as exc:
            if disk_full(exc):
                raise DiskFull(f"no space left on the device of the cache {self.root} while writing stage "
                               f"{stage!r}; free some space (or `rdmbench cache prune`) and run the same "
                               "command again: finished stages and results are kept") from None
            raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def scratch(tmp: Path) -> Path:
    """A folder for a stage's resumable work in progress, beside the temporary folder ``write`` handed it:
    kept when the stage is interrupted (its next attempt, under the same key, finds it), removed by the stage
    when done, and by ``rdmbench cache prune`` as a leftover of an interrupted write."""
    key = Path(tmp).name[1:].split(".")[0]
    folder = Path(tmp).parent / f".partial-{key}"
    folder.mkdir(exist_ok=True)
    return folder


class DiskFull(OSError):
    """The cache's disk is full: the suite stops (every later stage would fail the same way)."""


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk or quota.

    Writers wrap the OS error their own way: safetensors raises ``SafetensorError("... No space left
    on device (os error 28)")``, not an OSError, so the message is checked too (measured on an 8 MB tmpfs).
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(seen) or "Disk quota exceeded" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def verify_entry(entry: Path) -> list[str]:
    """What is wrong with a stored entry, by the sizes and checksums recorded at write ([] = intact)."""
    try:
        meta = read_json(entry / DONE)
    except (OSError, ValueError) as exc:
        return [f"{DONE} unreadable: {exc}"]
    files = meta.get("files")
    if files is None:
        return [f"{DONE} records no checksums (written by an older rdmbench)"]
    problems = []
    for name, want in files.items():
        path = entry / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != want["bytes"]:
            problems.append(f"{name} has {path.stat().st_size} bytes, {want['bytes']} were written")
        elif file_digest(path) != want["sha256"]:
            problems.append(f"{name} was altered (checksum differs)")
    return problems


def _fsync_tree(folder: Path) -> None:
    """Data on disk before the rename that publishes it, so a power cut cannot publish empty files."""
    for p in folder.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def save_array(path: Path, array: np.ndarray) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npy", dir=path.parent)
    os.close(fd)
    try:
        np.save(tmp, np.ascontiguousarray(array), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_array(path: Path, mmap: bool = False) -> np.ndarray:
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
