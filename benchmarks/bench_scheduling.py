"""How long a suite's runs take through `--jobs N` with and without the rule that keeps a run off a worker while
another running job trains its head (rdmbench.execute._next; Task.trained_part), on the real suites' run order.

An event simulation of the driver's loop, not a run: each run that is the first of its trained head trains it
(TRAIN_S) and then samples and measures (SAMPLE_S); a run whose head another job is training waits on that
job's training lock, then samples. The times are the embedded default's medians at one thread (RDM ≈ 300 s of
training, a sampling run's samples, features and metrics ≈ 40 s; benchmarks/RESULTS.md); the shared stages are
left out (they run before either order matters). The suites' own run lists and trained parts are used.

The second table: the shared stages alone (rdmbench.execute's prepare and warm-up jobs, and
``_next``'s rule that gives a worker a group no running job works on), from an empty cache and with the first
stage cached. Each job is the stages it reads, in the pipeline's order, keyed as the suite's specs key them; a
job that reaches a stage another computes waits for it (the cache's lock). Times: the VQ first stage 268 s, a
database's Lite0 embeddings and X's neighbours 181 s (35,000 images; the same for every database here, so the
small databases of suites/databases.yaml count as large), the metric's Lite2 features of X and of the reference
set 188 s (benchmarks/RESULTS.md and this session's logs).

    python benchmarks/bench_scheduling.py [--jobs 2] [--train-s 300] [--sample-s 40]
"""

from __future__ import annotations

import argparse
from pathlib import Path

SUITES = ("dataset_complexity", "quality_diversity", "heads", "baselines", "stylization", "text_unseen_classes",
          "k_train")


def makespan(heads: list[str], jobs: int, train_s: float, sample_s: float, rule: bool) -> float:
    """Seconds until the last run ends, the driver handing out runs in suite order (``rule``: by ``_next``)."""
    from rdmbench.execute import _next, work

    class Run:
        def __init__(self, i: int):
            self.run_id = str(i)

    runs = [Run(i) for i in range(len(heads))]
    head_of = {r.run_id: h for r, h in zip(runs, heads)}
    queue = [(work, r) for r in runs]
    trained_at: dict[str, float] = {}     # head -> when its training ends (set by the job that trains it)
    running: list[tuple[float, Run]] = []  # (end time, run)
    now = 0.0
    while queue or running:
        while queue and len(running) < jobs:
            training = {head_of[r.run_id] for _, r in running}
            _, run = queue.pop(_next(queue, training, head_of) if rule else 0)
            head = head_of[run.run_id]
            if head not in trained_at:  # this job trains it; any other run of the head waits on its lock
                trained_at[head] = now + train_s
                end = trained_at[head] + sample_s
            else:
                end = max(now, trained_at[head]) + sample_s
            running.append((end, run))
        running.sort(key=lambda e: e[0])
        now, _ = running.pop(0)
    return now


FIRST_STAGE_S, DATABASE_S, FEATURES_S = 268.0, 181.0, 188.0
SHARED_SUITES = ("patch_size", "databases", "encoders", "dataset_complexity", "stylization", "k_train")


def first_stage_of(spec) -> str:
    """The key the bench gives a run's first stage: what decides it (its device, data and settings)."""
    from rdmbench.cache import canonical

    return canonical(spec.model_dump(include={"device", "data", "first_stage"}))


def shared_makespan(runs: list, jobs: int, first_stage_cached: bool, rule: bool) -> float:
    """Seconds until every group's shared stages and warm-up are done, the driver's queue handed out by
    ``_next`` with the groups (``rule``) or without (suite order)."""
    from rdmbench.api import Encoder
    from rdmbench.cache import canonical
    from rdmbench.execute import _first, _next, prepare, warm
    from rdmbench.registry import get_registry
    from rdmbench.tasks import get_task

    task = get_task(runs[0].spec.task)
    groups = task.shared_groups(runs)
    group_of = {r.run_id: key for key, members in groups.items() for r in members}
    registry = get_registry()

    def stages(fn, what) -> list[tuple[str, float]]:
        spec = _first(what).spec
        first = first_stage_of(spec)
        database = group_of[_first(what).run_id]
        features = canonical({"data": spec.data.model_dump(), "fe": spec.metrics.feature_extractor})
        built_on = registry.contract(Encoder, spec.encoder["name"]).uses_first_stage
        if fn is prepare:
            return [(first, FIRST_STAGE_S), (database, DATABASE_S)]
        return [(features, FEATURES_S)] if built_on else [(database, DATABASE_S), (features, FEATURES_S)]

    ends: dict[str, float] = {}  # stage -> when the job computing it ends it
    if first_stage_cached:
        ends.update({first_stage_of(r.spec): 0.0 for r in runs})
    queue = [item for members in groups.values() for item in ((prepare, members), (warm, members[0]))]
    running: list[list] = []  # [free at, job's remaining stages, its group, prepare or warm]
    now = 0.0
    while queue or running:
        while queue and len(running) < jobs:
            busy = {(fn, g) for _, _, g, fn in running}
            i = _next(queue, set(), {}, busy, group_of) if rule else 0
            fn, what = queue.pop(i)
            running.append([now, stages(fn, what), group_of[_first(what).run_id], fn])
        running.sort(key=lambda e: e[0])
        job = running[0]
        now = job[0]
        if not job[1]:
            running.pop(0)
            continue
        key, seconds = job[1].pop(0)
        if key in ends:  # computed, or in computing by another job: wait on its lock
            job[0] = max(now, ends[key])
        else:
            ends[key] = job[0] = now + seconds
    return now


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--train-s", type=float, default=300.0)
    parser.add_argument("--sample-s", type=float, default=40.0)
    args = parser.parse_args()
    from rdmbench.cache import canonical
    from rdmbench.suite import load_suite
    from rdmbench.tasks import get_task

    root = Path(__file__).resolve().parent.parent
    print(f"--jobs {args.jobs}, training {args.train_s:.0f} s per head, {args.sample_s:.0f} s per sampling run\n")
    print("| suite | runs | trained heads | suite order (min) | a head in training waits (min) | ratio |")
    print("|---|---|---|---|---|---|")
    for name in SUITES:
        suite = load_suite(root / "suites" / f"{name}.yaml")
        task = get_task(suite.task)
        heads = [canonical(task.trained_part(r.spec)) for r in suite.runs]
        before = makespan(heads, args.jobs, args.train_s, args.sample_s, rule=False)
        after = makespan(heads, args.jobs, args.train_s, args.sample_s, rule=True)
        print(f"| {name} | {len(heads)} | {len(set(heads))} | {before / 60:.1f} | {after / 60:.1f} | "
              f"{before / after:.2f}× |")

    print("\nShared stages and warm-ups only:\n")
    print("| suite | groups | first stages | cache | suite order (min) | a group per job (min) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name in SHARED_SUITES:
        suite = load_suite(root / "suites" / f"{name}.yaml")
        groups = get_task(suite.task).shared_groups(suite.runs)
        firsts = {first_stage_of(r.spec) for r in suite.runs}
        for cached in (False, True):
            before = shared_makespan(suite.runs, args.jobs, cached, rule=False)
            after = shared_makespan(suite.runs, args.jobs, cached, rule=True)
            print(f"| {name} | {len(groups)} | {len(firsts)} | {'first stage cached' if cached else 'empty'} | "
                  f"{before / 60:.1f} | {after / 60:.1f} | {before / after:.2f}× |")


if __name__ == "__main__":
    main()
