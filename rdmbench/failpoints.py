"""Named failpoints in the paths that write, for crash tests (after etcd's gofail and SQLite's crash tests).

A crash test drawn on a stopwatch lands where the machine's load puts it (mostly in imports); a named
point lands where it is meant to, on any machine. Each point is declared once in ``POINTS`` and called
where the code writes: ``failpoint("stage.publish.before", stage)``. Nothing happens unless the
environment arms one point:

    RDMBENCH_FAILPOINT=NAME[:QUALIFIER][@N]

``QUALIFIER`` restricts it to one hit site (a stage's name, an embedded array, a run id); ``@N`` fires at
the Nth matching hit (default 1). It kills the process by SIGKILL, as ``kill -9`` from outside would;
with ``RDMBENCH_FAILPOINT_PAUSE=PATH`` set too, it waits there until PATH exists instead (a test holds
a process at a point to make two processes overlap by construction, not by timing). Before acting, one
line goes to stderr (``failpoint NAME:QUALIFIER hit: kill``), so a test knows where the process stopped.
"""

from __future__ import annotations

import os
import re
import signal
import time

ENV = "RDMBENCH_FAILPOINT"
MARKER = "failpoint {point} hit: {action}"

#: every point compiled in, and where it is (tests/test_failpoints.py kills a real run at each)
POINTS = {
    "lock.acquired": "a stage entry's lock was just acquired (rdmbench.cache.StageCache.lock); qualifier: stage",
    "stage.compute": "a stage's computation starts, inside its lock (rdmbench.pipeline); qualifier: stage",
    "embeddings.shard": "an embeddings stage saved a shard (@N: the Nth) (rdmbench.stages); qualifier: array",
    "train.step": "the training loop finished a step (@N: the Nth) (rdmbench.training.fit)",
    "samples.sampled": "the samples stage saved its images, not yet its queries (generation stages)",
    "neighbours.chunk": "the neighbour search wrote a chunk of its table (@N: the Nth) (rdmbench.stages)",
    "stage.publish.before": "a complete entry, fsynced, before the rename that publishes it; qualifier: stage",
    "stage.publish.after": "just after the publishing rename; qualifier: stage",
    "row.written": "a run's row.json is written, results.csv not yet (rdmbench.runner.run_one); qualifier: run id",
    "results.write": "results.csv is about to be rewritten (rdmbench.runner.write_results_csv)",
    "track.export": "a run's tracker export starts (rdmbench.track.export); qualifier: run id",
    "report.write": "the report's files are about to be written (rdmbench.report.write_report)",
}


def parse(spec: str, pause: str = "") -> dict | None:
    """``NAME[:QUALIFIER][@N]`` as a dict; None for an empty spec. A name not in POINTS is an error: a
    misspelt point would otherwise never fire, and the test that armed it would pass for nothing."""
    if not spec:
        return None
    nth = re.search(r"@(\d+)$", spec)
    name, _, qualifier = spec[:nth.start() if nth else None].partition(":")
    if name not in POINTS:
        raise ValueError(f"{ENV}: unknown failpoint {name!r}; known: {', '.join(POINTS)}")
    return {"name": name, "qualifier": qualifier or None, "nth": int(nth.group(1)) if nth else 1,
            "action": f"pause until {pause} exists" if pause else "kill", "release": pause, "hits": 0}


_armed = parse(os.environ.get(ENV, ""), os.environ.get(f"{ENV}_PAUSE", ""))


def failpoint(name: str, qualifier: object = None) -> None:
    """Act here when the environment armed this point (and qualifier, and this is the Nth hit)."""
    if _armed is None or _armed["name"] != name:
        return
    if _armed["qualifier"] is not None and _armed["qualifier"] != str(qualifier):
        return
    _armed["hits"] += 1
    if _armed["hits"] != _armed["nth"]:
        return
    point = f"{name}:{qualifier}" if qualifier is not None else name
    os.write(2, (MARKER.format(point=point, action=_armed["action"]) + "\n").encode())
    if not _armed["release"]:
        os.kill(os.getpid(), signal.SIGKILL)
        return
    while not os.path.exists(_armed["release"]):  # released by the test that holds this process here
        time.sleep(0.02)
