"""``rdmbench cache list | verify | prune``: what the stage cache holds, whether it is intact, what to drop.

Which runs use an entry is read from the ``runs/*/stages.json`` files under the results root (by
default the folder that holds the cache: ``results/``), the record each run keeps of the stage keys
it used. An entry no result references is what ``prune`` removes, with leftovers of interrupted
writes (temporary folders of a killed process) and entries moved aside as corrupt.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from rdmbench.cache import DONE, LOCKS, verify_entry
from rdmbench.errors import RdmbenchError


@dataclass
class Entry:
    stage: str
    key: str
    path: Path
    bytes: int
    written: float
    runs: list[str] = field(default_factory=list)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def entries(cache: Path) -> list[Entry]:
    if not cache.is_dir():
        raise RdmbenchError(f"no stage cache at {cache} (`rdmbench run` creates it; --cache names another)")
    out = []
    for stage_dir in sorted(p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for entry in sorted(p for p in stage_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if (entry / DONE).exists():
                out.append(Entry(stage_dir.name, entry.name, entry, _size(entry), (entry / DONE).stat().st_mtime))
    return out


def references(results: Path) -> dict[str, list[str]]:
    """``stage/key`` -> the runs (``suite/run_id``) whose stages.json names it."""
    refs: dict[str, list[str]] = {}
    for record in sorted(results.glob("*/runs/*/stages.json")):
        try:
            stages = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        run = f"{record.parents[2].name}/{record.parent.name}"
        for s in stages:
            refs.setdefault(f"{s['stage']}/{s['key']}", []).append(run)
    return refs


def leftovers(cache: Path) -> list[Path]:
    """Temporary folders of interrupted writes and entries moved aside as corrupt (``prune`` removes each only
    while it holds the lock its writer would hold)."""
    return [p for stage_dir in (d for d in cache.iterdir() if d.is_dir() and d.name != LOCKS)
            for p in stage_dir.iterdir() if p.is_dir() and p.name.startswith(".")]


def _lock_of(cache: Path, path: Path) -> Path | None:
    """The lock a writer of ``path`` holds for as long as it writes (None: nobody writes there)."""
    name = path.name
    if name.startswith(".corrupt-"):
        return None
    key = name.removeprefix(".partial-") if name.startswith(".partial-") else \
        name[1:].split(".")[0] if name.startswith(".") else name
    return cache / LOCKS / f"{path.parent.name}-{key}.lock"


def _remove(cache: Path, path: Path, dry_run: bool = False) -> str | None:
    """Remove an entry or leftover under its writer's lock, so that no writer publishes into a folder being
    deleted; a symlinked entry loses its link, never what it points to. None when removed (or, in a dry run,
    removable), else why not."""
    from filelock import FileLock, Timeout

    lock = _lock_of(cache, path)
    try:
        with FileLock(str(lock), timeout=0) if lock else contextlib.nullcontext():
            if dry_run:
                return None
            if path.is_symlink():
                path.unlink()
            else:
                shutil.rmtree(path)
    except Timeout:
        return "a live writer holds it"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def age(t: float) -> str:
    s = max(0.0, time.time() - t)
    return f"{s / 86400:.1f} d" if s >= 86400 else f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.0f} min"


def list_entries(cache: Path, results: Path, stage: str | None = None) -> str:
    refs = references(results)
    rows = [e for e in entries(cache) if stage is None or e.stage == stage]
    lines = [f"{'stage':<20} {'key':<22} {'size':>9} {'age':>8}  used by"]
    for e in rows:
        used = refs.get(f"{e.stage}/{e.key}", [])
        shown = ", ".join(used[:3]) + (f" (+{len(used) - 3} more)" if len(used) > 3 else "") if used else "-"
        lines.append(f"{e.stage:<20} {e.key:<22} {human(e.bytes):>9} {age(e.written):>8}  {shown}")
    unused = [e for e in rows if f"{e.stage}/{e.key}" not in refs]
    lines.append(f"{len(rows)} entries, {human(sum(e.bytes for e in rows))}; "
                 f"{len(unused)} referenced by no result under {results} ({human(sum(e.bytes for e in unused))})")
    return "\n".join(lines)


def verify(cache: Path, remove: bool = False) -> tuple[str, int]:
    """Recompute every entry's checksums; returns the report and the number of bad entries."""
    bad = []
    all_entries = entries(cache)
    for e in all_entries:
        problems = verify_entry(e.path)
        if problems:
            bad.append(f"{e.stage}/{e.key}: " + "; ".join(problems))
            if remove:
                shutil.rmtree(e.path)
    lines = bad + [f"{len(all_entries)} entries checked, {len(bad)} corrupt"
                   + (" (removed: the next run recomputes them)" if remove and bad else "")]
    return "\n".join(lines), len(bad)


def prune(cache: Path, results: Path, dry_run: bool = False, min_age_s: float = 3600) -> str:
    """Remove entries no result references, if older than ``min_age_s`` (a run still going has not yet
    written the stages.json that will reference its fresh entries), and leftovers of killed writers. Each is
    removed under its writer's lock and counted only once it is gone."""
    refs = references(results)
    now = time.time()
    drop = [e.path for e in entries(cache) if f"{e.stage}/{e.key}" not in refs and now - e.written >= min_age_s]
    drop += leftovers(cache)
    sizes = {p: 0 if p.is_symlink() else _size(p) for p in drop}
    kept = {p: why for p in drop if (why := _remove(cache, p, dry_run)) is not None}
    gone = [p for p in drop if p not in kept]
    verb = "would remove" if dry_run else "removed"
    lines = [f"  {p.relative_to(cache)}" for p in gone] + [f"  kept {p.relative_to(cache)}: {why}" for p, why in kept.items()]
    return "\n".join(lines + [f"{verb} {len(gone)} entries ({human(sum(sizes[p] for p in gone))}) not referenced by any "
                              f"result under {results}" + (f"; {len(kept)} kept" if kept else "")])


#: key material that records the code that computed an entry, not its inputs (rdmbench.provenance)
CODE_FIELDS = ("code", "modules", "libraries", "distribution", "runs_on")


def config_key(cache_root: Path, key: str, memo: dict[str, str] | None = None) -> str:
    """An entry's key without its code: its resolved config (code hashes, library versions, device and threads
    left out) and the config keys of its inputs. A refactor that moves no input keeps every config key, while
    its code hashes move every stage key it reaches (scripts/smoke_snapshot.py, tests/test_end_to_end.py)."""
    from rdmbench.cache import make_key, read_json

    memo = {} if memo is None else memo
    if key not in memo:
        (entry,) = [p for p in Path(cache_root).glob(f"*/{key}") if (p / DONE).is_file()]
        meta = read_json(entry / DONE)
        inputs = {name: config_key(cache_root, value, memo) for name, value in meta.get("inputs", {}).items()}
        memo[key] = make_key(meta["stage"], _without_code(meta["config"]), inputs)
    return memo[key]


def _without_code(node: object) -> object:
    if isinstance(node, dict):
        return {k: _without_code(v) for k, v in node.items() if k not in CODE_FIELDS}
    if isinstance(node, list):
        return [_without_code(v) for v in node]
    return node


def run_config_keys(cache_root: Path, run_dir: Path) -> list[list[str]]:
    """[stage, config key] of every stage a finished run recorded (its ``row.json`` stage keys), sorted."""
    from rdmbench.cache import read_json

    memo: dict[str, str] = {}
    stages = read_json(Path(run_dir) / "row.json")["stage_keys"]
    return sorted({(s.split("/")[0], config_key(cache_root, s.split("/")[1], memo)) for s in stages})
