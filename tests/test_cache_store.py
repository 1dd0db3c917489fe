"""The stage cache on its own: checksums recorded at write and checked on reuse, locks, cache verbs."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rdmbench.cache import DONE, StageCache, save_array, verify_entry, write_json


def fill(cache: StageCache, stage: str = "data", key: str = "k1", value: float = 1.0) -> Path:
    with cache.write(stage, key, {"config": {}}) as tmp:
        save_array(tmp / "x.npy", np.full((100, 10), value, np.float32))
        (tmp / "sub").mkdir()
        (tmp / "sub" / "index.bin").write_bytes(b"abc" * 100)
    return cache.path(stage, key)


def test_entry_records_sizes_and_checksums(tmp_path):
    entry = fill(StageCache(tmp_path))
    files = json.loads((entry / DONE).read_text())["files"]
    assert set(files) == {"x.npy", "sub/index.bin"}
    assert files["sub/index.bin"]["bytes"] == 300 and len(files["x.npy"]["sha256"]) == 64
    assert verify_entry(entry) == []
    assert StageCache(tmp_path).done("data", "k1")


@pytest.mark.parametrize("damage", ["truncate", "alter", "delete", "nested"])
def test_damaged_entry_is_detected_and_moved_aside(tmp_path, damage):
    entry = fill(StageCache(tmp_path))
    target = entry / ("sub/index.bin" if damage == "nested" else "x.npy")
    data = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "delete":
        target.unlink()
    else:  # same size, one byte flipped: only the checksum can tell
        target.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert verify_entry(entry), "damage must be reported"
    cache = StageCache(tmp_path)  # a fresh process: nothing verified yet
    assert not cache.done("data", "k1")
    assert not entry.exists() and list((tmp_path / "data").glob(".corrupt-k1-*")), "kept aside for inspection"
    fill(cache)  # recomputed in place
    assert StageCache(tmp_path).done("data", "k1")


def test_entry_without_checksums_counts_as_corrupt(tmp_path):
    entry = fill(StageCache(tmp_path))
    meta = json.loads((entry / DONE).read_text())
    del meta["files"]
    write_json(entry / DONE, meta)
    assert "records no checksums" in verify_entry(entry)[0]


def test_failed_write_leaves_no_entry(tmp_path):
    cache = StageCache(tmp_path)
    with pytest.raises(RuntimeError):
        with cache.write("data", "k1", {}) as tmp:
            (tmp / "half.npy").write_bytes(b"x")
            raise RuntimeError("boom")
    assert not cache.done("data", "k1") and list((tmp_path / "data").iterdir()) == []


def _compute_once(root: str, counter: str, logs: list[str], me: int) -> None:
    """Three processes ask for the same stage; the lock must make exactly one compute it. The one that
    computes holds the lock until both others have logged that they wait for it, so all three overlap by
    construction, whatever the machine's load."""
    import logging

    from rdmbench.pipeline import Pipeline
    from rdmbench.progress import Progress

    handler = logging.FileHandler(logs[me])
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logging.getLogger("rdmbench").addHandler(handler)
    logging.getLogger("rdmbench").setLevel(logging.INFO)
    pipe = Pipeline(StageCache(Path(root)), None, Progress(), "cpu")

    def compute(out: Path) -> dict:
        with open(counter, "a") as f:
            f.write(f"{os.getpid()}\n")
        others = [Path(log) for i, log in enumerate(logs) if i != me]
        while not all("waiting for the lock" in log.read_text() for log in others):
            time.sleep(0.02)  # bounded by the test's join timeout
        save_array(out / "x.npy", np.arange(10))
        return {}

    pipe.stage("data", {"a": 1}, {}, compute)


def test_concurrent_processes_compute_a_shared_stage_once(tmp_path):
    counter = tmp_path / "computed.txt"
    logs = [str(tmp_path / f"process{i}.log") for i in range(3)]
    for log in logs:
        Path(log).touch()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_compute_once, args=(str(tmp_path / "cache"), str(counter), logs, i)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert len(counter.read_text().split()) == 1
    texts = [Path(log).read_text() for log in logs]
    # overlap, from the processes' own logs: one computed while the two others waited for its lock, then reused
    assert sorted("data [" in t and ": computing" in t for t in texts) == [False, False, True], texts
    assert sum("waiting for the lock another process holds" in t for t in texts) == 2, texts


def test_disk_full_is_a_clear_error(tmp_path, monkeypatch):
    import errno

    from rdmbench import cache as cache_mod

    cache = StageCache(tmp_path)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_mod, "_fsync_tree", full)
    with pytest.raises(cache_mod.DiskFull, match="no space left.*run the same command again"):
        fill(cache)
    assert not cache.done("data", "k1")


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "rdmbench", "cache", *args], cwd=cwd, capture_output=True, text=True)


def test_cache_verbs(tmp_path):
    cache = StageCache(tmp_path / "results" / ".cache")
    used, unused, broken = fill(cache, key="used"), fill(cache, key="unused"), fill(cache, "train", "broken")
    run = tmp_path / "results" / "suite" / "runs" / "k=1"
    run.mkdir(parents=True)
    write_json(run / "stages.json", [{"stage": "data", "key": "used", "cached": False, "seconds": 1.0}])
    os.makedirs(cache.root / "data" / ".dead.abc123")  # a killed writer's temporary folder
    (broken / "x.npy").write_bytes(b"oops")

    listing = cli("list", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "suite/k=1" in listing.stdout and "3 entries" in listing.stdout and "2 referenced by no result" in listing.stdout

    check = cli("verify", cwd=tmp_path)
    assert check.returncode == 1 and "train/broken: x.npy has 4 bytes" in check.stdout and "1 corrupt" in check.stdout

    dry = cli("prune", "--dry-run", "--min-age", "0", cwd=tmp_path)
    assert "would remove 3 entries" in dry.stdout and unused.exists()
    done = cli("prune", "--min-age", "0", cwd=tmp_path)
    assert done.returncode == 0 and "removed 3 entries" in done.stdout
    assert used.exists() and not unused.exists() and not broken.exists()
    assert not (cache.root / "data" / ".dead.abc123").exists()


def test_cache_verbs_name_a_missing_cache(tmp_path):
    out = cli("list", "--cache", "nowhere", cwd=tmp_path)
    assert out.returncode == 2 and "no stage cache at nowhere" in out.stderr


def test_prune_removes_a_symlinked_entrys_link_and_never_an_entry_a_writer_holds(tmp_path):
    """A symlinked entry loses its link (its target stays) and is counted only once gone; an entry whose lock a
    live writer holds is kept, and said to be, while the lock is held for the whole removal."""
    from filelock import FileLock

    cache = StageCache(tmp_path / "results" / ".cache")
    elsewhere = fill(StageCache(tmp_path / "shared"), key="linked")
    (cache.root / "data").mkdir(parents=True)
    (cache.root / "data" / "linked").symlink_to(elsewhere, target_is_directory=True)
    held = fill(cache, key="held")
    (tmp_path / "results" / "suite" / "runs").mkdir(parents=True)
    with FileLock(str(cache.root / ".locks" / "data-held.lock")):  # a writer of that key, alive
        done = cli("prune", "--min-age", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "removed 1 entries" in done.stdout and "kept data/held: a live writer holds it" in done.stdout
    assert not (cache.root / "data" / "linked").exists() and elsewhere.is_dir() and held.is_dir()
    assert "removed 1 entries" in cli("prune", "--min-age", "0", cwd=tmp_path).stdout and not held.exists()
