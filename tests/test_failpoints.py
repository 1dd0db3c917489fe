"""kill -9 at every named failpoint of the write paths, then the same command (issue 19, item 3).

Every point in ``rdmbench.failpoints.POINTS`` is armed in a real ``python -m rdmbench run`` of FAST_BASE,
which must die there by SIGKILL (exit -9, the point's marker on stderr). Points are killed in sequences on
one cache each, in the order a run reaches them, one kill per invocation: each invocation resumes what
the previous kill left and dies at the next point. After the last kill of a sequence the same command
finishes it, and then its rows (every results.csv column but timings) and every file of every cache entry
(timings aside) equal those of an uninterrupted run, and ``rdmbench cache verify`` finds nothing corrupt.
No verdict depends on time: a point either fires or the invocation finishes without it (a failure).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest

from conftest import REPO, cache_differences, cli_args, cli_env, result_table, run_cli
from rdmbench import failpoints
from rdmbench.failpoints import POINTS

#: each point of POINTS once, as RDMBENCH_FAILPOINT specs in the order a run of FAST_BASE reaches them.
#: Two sequences, so that two xdist workers share the work; the late one also writes the tracker export
#: and the report, which are written only when every run's row stands
SEQUENCES = {
    "early": ["lock.acquired:data", "stage.compute:database", "embeddings.shard", "train.step@5",
              "stage.publish.before:train", "stage.publish.after:train", "neighbours.chunk"],
    "late": ["samples.sampled", "row.written:k_train=0_seed=0", "results.write", "track.export:k_train=2_seed=0",
             "report.write"],
}
EXTRA = {"early": (), "late": ("--track", "tensorboard", "--report")}
SEQUENCE_OF = {spec.partition(":")[0].partition("@")[0]: name for name, specs in SEQUENCES.items() for spec in specs}
_done: dict[str, dict] = {}


def kill_sequence(name: str, ref, tmp_path_factory) -> dict:
    """Run one sequence (once per worker); what each kill and the final resume gave."""
    if name in _done:
        return _done[name]
    base = tmp_path_factory.mktemp(f"failpoints-{name}")
    out, cache = base / "results" / "fast", base / "results" / ".cache"
    args = [a for a in cli_args(ref.suite, out, cache, *EXTRA[name]) if not (EXTRA[name] and a == "--no-report")]
    kills = {}
    for spec in SEQUENCES[name]:
        proc = subprocess.run(args, cwd=REPO, env={**cli_env(), failpoints.ENV: spec}, capture_output=True, text=True)
        kills[spec.partition(":")[0].partition("@")[0]] = (spec, proc.returncode, proc.stderr)
    final = run_cli(*args, check=False)
    _done[name] = {"kills": kills, "final": final, "out": out, "cache": cache}
    return _done[name]


@pytest.mark.parametrize("point", [pytest.param(p, marks=pytest.mark.xdist_group(f"failpoints-{SEQUENCE_OF.get(p)}"))
                                   for p in POINTS])
def test_kill_9_at_a_failpoint_then_resume(point, fast_reference, tmp_path_factory):
    assert point in SEQUENCE_OF, f"failpoint {point} is in no kill sequence of this test"
    name = SEQUENCE_OF[point]
    seq = kill_sequence(name, fast_reference, tmp_path_factory)
    spec, returncode, stderr = seq["kills"][point]
    assert returncode == -signal.SIGKILL, f"{spec}: exit {returncode}, not killed there:\n{stderr[-3000:]}"
    armed = spec.partition("@")[0]  # a point armed without its qualifier fires at any, and names it
    marker = re.escape(failpoints.MARKER.format(point=armed, action="kill"))
    marker = re.compile(marker if ":" in armed else marker.replace(re.escape(f"{armed} "), re.escape(armed) + r"(:\S+)? "))
    assert marker.search(stderr), f"{spec}: killed, but not at its failpoint:\n{stderr[-3000:]}"

    final, out, cache = seq["final"], seq["out"], seq["cache"]
    assert final.returncode == 0, final.stderr[-3000:]
    table = result_table(out)
    assert [r["run_id"] for r in table] == [r["run_id"] for r in result_table(fast_reference.out)], "rows lost or doubled"
    assert table == result_table(fast_reference.out), "rows differ from the uninterrupted run's"
    assert cache_differences(fast_reference.cache, cache) == []
    verify = run_cli(sys.executable, "-m", "rdmbench", "cache", "verify", "--cache", str(cache), check=False)
    assert verify.returncode == 0 and " 0 corrupt" in verify.stdout, verify.stdout
    if name == "late":  # killed in its export, a kept row is exported by the next invocation; killed in it, the report
        for run_dir in (out / "runs").iterdir():
            assert json.loads((run_dir / "row.json").read_text())["tracked"] is True, run_dir.name
            assert (out / "tensorboard" / run_dir.name).is_dir()
        assert (out / "report" / "report.md").is_file()


def test_every_failpoint_is_called_in_the_code_and_in_one_sequence():
    """A point declared but called nowhere would be tested by a kill that can never come: the sequence
    invocation would finish and its test fail; this says why. A call of an undeclared name fails too."""
    source = "\n".join(p.read_text() for p in (REPO / "rdmbench").rglob("*.py") if p.name != "failpoints.py")
    called = set(re.findall(r"\bfailpoint\(\"([\w.]+)\"", source))
    assert called == set(POINTS), f"declared, never called: {set(POINTS) - called}; called, undeclared: {called - set(POINTS)}"
    specs = [s for specs in SEQUENCES.values() for s in specs]
    assert sorted(SEQUENCE_OF) == sorted(POINTS) and len(specs) == len(POINTS)


def test_a_failpoint_fires_at_its_qualifier_and_nth_hit_only(monkeypatch):
    fired = []
    monkeypatch.setattr(failpoints.os, "kill", lambda pid, sig: fired.append(sig))
    monkeypatch.setattr(failpoints, "_armed", failpoints.parse("stage.compute:train@2"))
    for stage in ("data", "train", "samples", "train", "train"):
        failpoints.failpoint("stage.compute", stage)
        failpoints.failpoint("lock.acquired", stage)
    assert fired == [signal.SIGKILL]
    monkeypatch.setattr(failpoints, "_armed", None)
    failpoints.failpoint("stage.compute", "train")
    assert fired == [signal.SIGKILL]
    with pytest.raises(ValueError, match="unknown failpoint 'stage.comptue'"):
        failpoints.parse("stage.comptue:train")
