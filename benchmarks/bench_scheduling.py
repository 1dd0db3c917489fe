"""How long a suite's runs take through `--jobs N` with and without the rule that keeps a run off a worker while
another running job trains its head (rdmbench.execute._next; Task.trained_part), on the real suites' run order.

An event simulation of the driver's loop, not a run: each run that is the first of its trained head trains it
(TRAIN_S) and then samples and measures (SAMPLE_S); a run whose head another job is training waits on that
job's training lock, then samples. The times are the embedded default's medians at one thread (RDM ≈ 300 s of
training, a sampling run's samples, features and metrics ≈ 40 s; benchmarks/RESULTS.md); the shared stages are
left out (they run before either order matters). The suites' own run lists and trained parts are used.

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


if __name__ == "__main__":
    main()
