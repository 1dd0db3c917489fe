"""Faults a long benchmark meets, injected into real ``rdmbench run`` processes (issue 7, item 9).

kill -9 at random points (a slow soak; the kills aimed at each write path are tests/test_failpoints.py),
then the same command again; cache files truncated or altered between two invocations; two invocations
of one suite at once; a full disk. Each ends with the rows of an
uninterrupted run (``fast_reference``, tests/conftest.py), compared to the digit, and a cache that
``rdmbench cache verify`` finds intact. The figures docs/reliability.md quotes are printed (pytest -s).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from rdmbench import failpoints
from conftest import REPO, CliRun, artefact_times, cli_args, cli_env, result_table, run_cli

KILLS = 20
SEED = 20240607
COMPUTING = re.compile(r"stage (\w+) \[(\w+)\]: computing")


def assert_same_rows_and_intact_cache(ref: CliRun, out: Path, cache: Path) -> None:
    table = result_table(out)
    run_ids = [r["run_id"] for r in table]
    assert len(run_ids) == len(set(run_ids)), f"duplicated rows: {run_ids}"
    assert table == result_table(ref.out), "rows differ from the uninterrupted run's"
    verify = run_cli(sys.executable, "-m", "rdmbench", "cache", "verify", "--cache", str(cache), check=False)
    assert verify.returncode == 0 and " 0 corrupt" in verify.stdout, verify.stdout


def progress(ref: CliRun, out: Path, cache: Path) -> float:
    """How far along the uninterrupted run's timeline the finished stages and rows on disk reach."""
    done = artefact_times(out, cache)
    return max((t for name, t in ref.events.items() if name in done), default=0.0)


def phase(stderr: str) -> str:
    """Where a killed process was: starting up, computing a stage, or in between (re-walk, rows)."""
    started = COMPUTING.findall(stderr)
    finished = re.findall(r"stage (\w+) \[(\w+)\]: done", stderr)
    if not stderr.strip():
        return "startup"
    open_stages = [s for s, k in started if (s, k) not in finished]
    return f"computing {open_stages[-1]}" if open_stages else "between stages"


@pytest.mark.slow  # a soak: its kills land where the clock puts them (tests/test_failpoints.py aims them)
def test_kill_9_at_random_points_then_resume(fast_reference, tmp_path):
    """SIGKILL at KILLS points drawn uniformly over the uninterrupted run's duration, all in one
    sequence: each next invocation resumes from the cache, and is killed when it has reached the next
    point of the uninterrupted timeline (its startup, then the time still missing from where the
    finished stages on disk reach). Should a resume finish before its point (it skips the lazy imports
    a cached stage does not need), that sequence is checked and the point is retried on an empty cache."""
    ref = fast_reference
    rng = random.Random(SEED)
    points = sorted(rng.uniform(0, ref.seconds) for _ in range(KILLS))
    sequence, landed, finished_early = 0, Counter(), 0

    def fresh():
        base = tmp_path / f"seq{sequence}"
        return base / "results" / "fast", base / "results" / ".cache"

    out, cache = fresh()
    for point in points:
        for _attempt in range(2):
            reached = progress(ref, out, cache)
            delay = point - reached + (ref.startup if reached else 0.0)
            proc = subprocess.Popen(cli_args(ref.suite, out, cache), cwd=REPO, env=cli_env(), text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                _, err = proc.communicate(timeout=max(delay, 0.05))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)  # no-op if it exited in between: then it finished
                _, err = proc.communicate()
            if proc.returncode == -signal.SIGKILL:
                landed[phase(err)] += 1
                break
            assert proc.returncode == 0, err[-3000:]  # finished before the point: a complete sequence
            finished_early += 1
            assert_same_rows_and_intact_cache(ref, out, cache)
            sequence += 1
            out, cache = fresh()
    run_cli(*cli_args(ref.suite, out, cache))
    assert_same_rows_and_intact_cache(ref, out, cache)
    injected = sum(landed.values())
    print(f"\nkill -9: {injected} injected over a {ref.seconds:.1f} s run, {injected} survived, 0 rows lost, "
          f"{sequence + 1} sequence(s), {finished_early} resume(s) done before their point; landed: {dict(landed)}")
    assert injected >= KILLS, f"only {injected} kills landed in a running process"


def test_truncated_and_altered_entries_are_detected_and_recomputed(fast_reference, tmp_path):
    ref = fast_reference
    out, cache = tmp_path / "results" / "fast", tmp_path / "results" / ".cache"
    shutil.copytree(ref.out, out)
    shutil.copytree(ref.cache, cache)
    keys = {run: dict(k.split("/") for k in json.loads((out / "runs" / run / "row.json").read_text())["stage_keys"])
            for run in ("k_train=0_seed=0", "k_train=2_seed=0")}
    samples = cache / "samples" / keys["k_train=2_seed=0"]["samples"]
    head = cache / "train" / keys["k_train=0_seed=0"]["train"] / "head.safetensors"
    original = json.loads((samples / "stage.json").read_text())["files"]["samples_images.npy"]
    with open(samples / "samples_images.npy", "r+b") as f:  # truncated
        f.truncate(original["bytes"] // 2)
    data = bytearray(head.read_bytes())  # altered, same size
    data[-1] ^= 0xFF
    head.write_bytes(bytes(data))

    proc = run_cli(*cli_args(ref.suite, out, cache))
    for stage, key in (("samples", samples.name), ("train", head.parent.name)):
        assert f"cache entry {stage}/{key} is corrupt" in proc.stderr
        assert f"stage {stage} [{key}]: computing" in proc.stderr
        assert len(list((cache / stage).glob(f".corrupt-{key}-*"))) == 1  # kept aside for inspection
    assert "samples_images.npy has" in proc.stderr and "head.safetensors was altered" in proc.stderr
    assert_same_rows_and_intact_cache(ref, out, cache)
    recomputed = json.loads((samples / "stage.json").read_text())["files"]["samples_images.npy"]
    assert recomputed == original  # the same bytes again


def test_two_runs_at_once_compute_each_stage_once(fast_reference, tmp_path):
    """Two invocations of one suite on one cache, made to overlap by construction: the first is held
    (failpoint pause) inside the lock of the first stage it computes until the second has logged that it
    waits for that lock; then both go on, racing for the rest. Each stage is computed once in all."""
    ref = fast_reference
    out, cache = tmp_path / "results" / "fast", tmp_path / "results" / ".cache"
    release, logs = tmp_path / "release", [tmp_path / "first.log", tmp_path / "second.log"]
    hold = {failpoints.ENV: "stage.compute:data", f"{failpoints.ENV}_PAUSE": str(release)}
    held = re.compile(r"failpoint stage.compute:data hit: pause")
    waiting = re.compile(r"stage data \[\w+\]: waiting for the lock another process holds")
    procs = []
    for log, extra, reached in zip(logs, (hold, {}), (held, waiting)):  # the second starts once the first holds
        with open(log, "w") as err:
            procs.append(subprocess.Popen(cli_args(ref.suite, out, cache), cwd=REPO, env={**cli_env(), **extra},
                                          text=True, stdout=subprocess.DEVNULL, stderr=err))
        while not reached.search(log.read_text()):  # bounded by the test's timeout; no verdict on time
            assert procs[-1].poll() is None, f"{log.name}: ended before {reached.pattern}:\n{log.read_text()[-3000:]}"
            time.sleep(0.05)
    release.touch()
    for p in procs:
        p.wait()
    texts = [log.read_text() for log in logs]
    assert [p.returncode for p in procs] == [0, 0], [t[-2000:] for t in texts]
    computed = Counter(m for text in texts for m in COMPUTING.findall(text))
    assert computed and max(computed.values()) == 1, [k for k, n in computed.items() if n > 1]
    assert {f"{s}/{k}" for s, k in computed} == {k for k in ref.events if not k.startswith("row:")}
    assert "data" in {s for s, _ in COMPUTING.findall(texts[0])} and not COMPUTING.search(
        texts[1].split("waiting for the lock")[0]), "the second run computed before it waited"
    assert all("[2/2] k_train=2_seed=0: " in text for text in texts)  # both walked the whole suite
    assert_same_rows_and_intact_cache(ref, out, cache)
    assert (out / "results.csv").read_text().count("\n") == 1 + len(result_table(ref.out))


def mount_tmpfs(path: Path, size: str) -> list[str] | None:
    """Mount a tmpfs (as root, or through passwordless sudo as on CI runners); the umount command."""
    prefixes = [[]] if os.geteuid() == 0 else [["sudo", "-n"]] if shutil.which("sudo") else []
    for prefix in prefixes:
        if subprocess.run([*prefix, "mount", "-t", "tmpfs", "-o", f"size={size},mode=1777", "tmpfs", str(path)],
                          capture_output=True).returncode == 0:
            return [*prefix, "umount", "-l", str(path)]
    return None


def test_full_disk_stops_with_one_line_and_keeps_results(fast_reference, tmp_path):
    """An 8 MB tmpfs holds results and cache (the default layout: results/.cache beside results/<suite>).
    A first invocation finishes one run; the disk is then filled to within 64 KB and the whole suite
    run: it stops at the next stage write with one line, and the first results stay as they were;
    with the disk full to the last byte it stops at its first write, alike. After space is freed the
    same command completes the suite. Without a tmpfs (not root, no passwordless sudo) it skips, saying
    so: a writer patched to raise would prove only what the patch says, not what a full disk does."""
    ref = fast_reference
    disk = tmp_path / "disk"
    disk.mkdir()
    umount = mount_tmpfs(disk, "8m")
    if umount is None:
        pytest.skip("no tmpfs can be mounted here (needs root or passwordless sudo): the full disk is not tested")
    out, cache = disk / "fast", disk / ".cache"
    try:
        run_cli(*cli_args(ref.suite, out, cache, "--only", "k_train=0_seed=0"))
        before = (out / "results.csv").read_bytes()
        free = shutil.disk_usage(disk).free
        with open(disk / "filler", "wb") as f:
            os.posix_fallocate(f.fileno(), 0, free - 64 * 1024)
        stops = [run_cli(*cli_args(ref.suite, out, cache), check=False)]
        with open(disk / "filler2", "wb") as f:
            os.posix_fallocate(f.fileno(), 0, shutil.disk_usage(disk).free)
        stops.append(run_cli(*cli_args(ref.suite, out, cache), check=False))
        for proc in stops:
            assert proc.returncode == 2, proc.stderr[-2000:]
            assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
            last = proc.stderr.strip().splitlines()[-1]
            assert last.startswith("error: no space left on the device") and "run the same command again" in last
            assert (out / "results.csv").read_bytes() == before
        verify = run_cli(sys.executable, "-m", "rdmbench", "cache", "verify", "--cache", str(cache))
        assert " 0 corrupt" in verify.stdout
        for filler in disk.glob("filler*"):
            filler.unlink()
        run_cli(*cli_args(ref.suite, out, cache))
        assert_same_rows_and_intact_cache(ref, out, cache)
    finally:
        subprocess.run(umount, check=True)


def test_a_full_disk_is_recognised_however_the_writer_reports_it():
    import errno

    from rdmbench.cache import disk_full

    assert disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert disk_full(RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"))
    try:
        try:
            raise OSError(errno.ENOSPC, "full")
        except OSError as exc:
            raise ValueError("could not write the index") from exc
    except ValueError as wrapped:
        assert disk_full(wrapped)
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk_full(RuntimeError("boom"))
