"""The replication scorecard: every claim of ``suites/claims/`` read from finished suites' results.

For each claim (rdmbench.claims) it finds the suite's results folder, takes each cell's run of every seed
(``results.csv``, the run's ``config.yaml`` to make sure the row is of the run the suite defines now, and
``replicates.csv`` for one-seed paired intervals), forms the contrast per seed and hands it to
rdmbench.verdicts. Runs that are missing, failed, made with another config, or that read other shared-stage
entries than the runs they are compared with (``Results.made_together``) are named, not skipped; so are the
seeds a verdict still needs. ``plan`` adds what those runs would cost, from the stage timings that
finished runs recorded (``runs/<id>/stages.json``).
"""

from __future__ import annotations

import csv
import functools
import json
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rdmbench.claims import Test
from rdmbench.suite import _shown
from rdmbench.verdicts import ALPHA_PER_LOOK, LOOKS, SAMPLES_ONLY, Estimate, decide, estimate, look, next_look

#: stages a new run of an existing suite computes (the shared ones — data, database, first stage, embeddings,
#: index, neighbours, reference features — are taken as cached); "train" once per head not yet trained
RUN_STAGES = ("samples", "features", "metrics", "novelty")
HEAD_STAGE = "train"


@dataclass
class Row:
    test: Test
    results: Path | None
    estimate: Estimate | None = None
    per_seed: list[float] = field(default_factory=list)
    samples: int = 0
    side: str = ""                        # "sampling" (every cell shares its seed's trained head) or "training"
    verdict: str = "needs runs"
    p_holm: float = float("nan")
    card_verdict: str = ""                # the verdict were the whole card one Holm family (shown beside it)
    missing: list[str] = field(default_factory=list)      # run ids of the suite with no usable row
    why: dict[str, str] = field(default_factory=dict)     # run id -> missing / failed / stale
    seeds_needed: list[int] = field(default_factory=list)  # seeds the suite must add for a verdict
    complete: int = 0                     # seeds with every cell's run usable (the estimate reads the look's first)

    @property
    def decided(self) -> bool:
        return self.verdict in ("agrees", "contradicts", "no effect", "unresolved")

    @property
    def stopped(self) -> bool:
        """Answered at its look: seeds beyond it are not needed (the stopping rule; docs/statistics.md)."""
        return self.verdict in ("agrees", "contradicts", "no effect")


class Results:
    """One suite's results folder, read once."""

    def __init__(self, path: Path):
        self.path = path
        self.meta = json.loads((path / "suite.json").read_text())
        with open(path / "results.csv", newline="") as f:
            self.rows = {r["run_id"]: r for r in csv.DictReader(f)}
        self._configs: dict[str, Any] = {}
        self._replicates: dict[str, dict[str, np.ndarray] | None] = {}
        self._stage_keys: dict[str, list[str]] = {}
        self._shared: dict[str, dict[str, set[str]]] = {}
        self._together: dict[tuple[str, ...], dict[str, tuple[str, list[str]]]] = {}

    @functools.cached_property
    def seeds(self) -> set[int]:
        """The seeds of the runs this folder holds."""
        return {int(r["seed"]) for r in self.rows.values() if str(r.get("seed", "")).isdigit()}

    def config(self, run_id: str) -> Any:
        from rdmbench.report.common import read_config

        if run_id not in self._configs:
            p = self.path / "runs" / run_id / "config.yaml"
            self._configs[run_id] = read_config(p) if p.is_file() else None
        return self._configs[run_id]

    def value(self, run_id: str, measure: str) -> float:
        try:
            return float(self.rows[run_id][measure])
        except (KeyError, ValueError, TypeError):
            return float("nan")

    def replicates(self, run_id: str) -> dict[str, np.ndarray] | None:
        from rdmbench.stats import read_replicates

        if run_id not in self._replicates:  # a report reads each run's once per column otherwise
            p = self.path / "runs" / run_id / "replicates.csv"
            self._replicates[run_id] = read_replicates(p) if p.is_file() else None
        return self._replicates[run_id]

    def stage_keys(self, run_id: str) -> list[str]:
        """``stage/key`` of every stage the run read, in the order it read them (its ``row.json``)."""
        if run_id not in self._stage_keys:
            p = self.path / "runs" / run_id / "row.json"
            self._stage_keys[run_id] = (json.loads(p.read_text()).get("stage_keys") or []) if p.is_file() else []
        return self._stage_keys[run_id]

    def train_key(self, run_id: str) -> str | None:
        return next((k for k in self.stage_keys(run_id) if k.startswith(HEAD_STAGE + "/")), None)

    def shared_stages(self, run_id: str) -> dict[str, set[str]]:
        """Stage name -> keys, of the stages the run read before training its head: the ones runs of the same
        shared part (rdmbench.tasks.Task.shared_part) are meant to read from one cache entry."""
        if run_id not in self._shared:  # read once per run: grouping compares each run with every set's first
            out: dict[str, set[str]] = {}
            for k in self.stage_keys(run_id):
                name, _, key = k.partition("/")
                if name == HEAD_STAGE:
                    break
                out.setdefault(name, set()).add(key)
            self._shared[run_id] = out
        return self._shared[run_id]

    def made_together(self, suite: Any) -> dict[str, tuple[str, list[str]]]:
        """Run id -> its group, and the finished runs of the group that read the same shared-stage entries as it
        (itself included). A group is the runs of one shared part (rdmbench.tasks.Task.shared_part), meant to read one
        cache entry per shared stage; another code version or thread count makes the same config into other
        entries (another draw of the first stage, another fit of the retrieval space), and such runs form a
        second set of the group."""
        from rdmbench.tasks import get_task

        runs = [r for r in suite.runs if (self.rows.get(r.run_id) or {}).get("status") == "ok"]
        memo = tuple(sorted(r.run_id for r in runs))
        if memo not in self._together:
            out: dict[str, tuple[str, list[str]]] = {}
            for group, members in get_task(suite.task).shared_groups(runs).items():
                sets: list[list[str]] = []
                for i in (r.run_id for r in members):
                    home = next((c for c in sets if _together(self.shared_stages(i), self.shared_stages(c[0]))), None)
                    if home is None:
                        sets.append([i])
                    else:
                        home.append(i)
                out.update({i: (group, c) for c in sets for i in c})
            self._together[memo] = out
        return self._together[memo]

    def stage_seconds(self) -> dict[str, list[float]]:
        """Stage -> seconds of each entry a run computed (not read from the cache); training also under
        ``train:HEAD``, its head plugin's own: RARM's heads trained 30 % longer than RDM's, and a plan priced
        with one median for both fell short by as much (benchmarks/RESULTS.md)."""
        out: dict[str, list[float]] = {}
        for p in sorted((self.path / "runs").glob("*/stages.json")):
            head = _head_name(self.config(p.parent.name))
            for s in json.loads(p.read_text()):
                if not s.get("cached"):
                    out.setdefault(s["stage"], []).append(float(s["seconds"]))
                    if s["stage"] == HEAD_STAGE and head:
                        out.setdefault(f"{HEAD_STAGE}:{head}", []).append(float(s["seconds"]))
        return out


def find_results(paths: list[Path]) -> dict[tuple[str, str], Results]:
    """(suite, profile) -> its results, from results folders or folders holding them (``results/``)."""
    found: dict[tuple[str, str], Results] = {}
    for path in paths:
        candidates = [path] if (path / "suite.json").is_file() else sorted(p.parent for p in path.glob("*/suite.json"))
        for c in candidates:
            if not (c / "results.csv").is_file():
                continue
            r = Results(c)
            found.setdefault((str(r.meta.get("suite")), str(r.meta.get("profile"))), r)
    return found


def score(tests: list[Test], results: dict[tuple[str, str], Results]) -> list[Row]:
    """A row per test, then the verdicts of the rows with enough seeds, Holm-corrected within each study (the
    tests of one suite: a study's verdicts do not move when another study gains runs); beside them, the
    verdicts were the whole card one family (benchmarks/bench_families.py measured both)."""
    found = [results.get((t.suite.name, t.suite.profile)) for t in tests]
    suites: dict[tuple[str, str, tuple[int, ...]], Any] = {}  # a suite re-read with its results' seeds, once
    rows = [_row(_all_seeds(t, res, suites), res) for t, res in zip(tests, found)]
    # a verdict needs a look's worth of complete seeds (at least min_seeds); runs missing beyond are named beside it
    tested = [r for r in rows if r.estimate is not None and not r.seeds_needed and r.estimate.seeds in LOOKS
              and r.estimate.seeds >= r.test.claim.min_seeds]
    estimates, expects = [r.estimate for r in tested], [r.test.claim.expect for r in tested]
    for r, (v, p), (card, _) in zip(tested, decide(estimates, expects, ALPHA_PER_LOOK,
                                                   families=[study(r) for r in tested]),
                                    decide(estimates, expects, ALPHA_PER_LOOK)):
        r.verdict, r.p_holm, r.card_verdict = v, p, card
    return rows


def _all_seeds(test: Test, res: Results | None, suites: dict[tuple[str, str, tuple[int, ...]], Any]) -> Test:
    """The test over every seed its results hold, the suite file's and any run beyond them."""
    from rdmbench.claims import with_suite
    from rdmbench.suite import load_suite

    have = {s for c in test.cells for s in c.runs}
    seeds = tuple(sorted(have | (res.seeds if res else set())))
    if len(seeds) == len(have):
        return test
    key = (str(test.suite.path), test.suite.profile, seeds)
    if key not in suites:
        suites[key] = load_suite(test.suite.path, test.suite.profile, sets=[f"seeds={list(seeds)}"])
    return with_suite(test, suites[key])


def study(row: Row) -> tuple[str, str]:
    """The Holm family a row's test belongs to: its suite (and profile)."""
    return row.test.suite.name, row.test.suite.profile


def _row(test: Test, res: Results | None) -> Row:
    row = Row(test, res.path if res else None)
    suite_seeds = sorted({s for c in test.cells for s in c.runs})
    runs_by_id = {r.run_id: r for r in test.suite.runs}
    usable: dict[str, bool] = {}
    for cell in test.cells:
        for run_id in cell.runs.values():
            why = _unusable(res, run_id, runs_by_id[run_id].config)
            usable[run_id] = why is None
            if why:
                row.missing.append(run_id)
                row.why[run_id] = why
    if res is not None:
        for run_id, why in _apart(res, test.suite, [i for i, ok in usable.items() if ok]).items():
            usable[run_id] = False
            row.missing.append(run_id)
            row.why[run_id] = why
    seeds = [s for s in test.seeds if all(usable.get(c.runs[s], False) for c in test.cells)]
    if len(suite_seeds) < test.claim.min_seeds:
        row.seeds_needed = [s for s in range(test.claim.min_seeds * 2) if s not in suite_seeds][
            :test.claim.min_seeds - len(suite_seeds)]
    if not seeds or res is None:
        return row
    row.complete = len(seeds)
    reached = look(len(seeds))
    if reached is not None:  # the seeds past the last look reached wait for the next (verdicts.LOOKS)
        seeds = seeds[:reached]
    m = test.claim.measure
    row.per_seed = [sum(c.weight * res.value(c.runs[s], m) for c in test.cells) for s in seeds]
    reps = None
    if len(seeds) == 1:
        got = [res.replicates(c.runs[seeds[0]]) for c in test.cells]
        if all(g is not None and m in g for g in got) and len({len(g[m]) for g in got}) == 1:
            reps = sum(c.weight * g[m] for c, g in zip(test.cells, got))
    row.estimate = estimate(row.per_seed, reps, margin=test.claim.margin)
    row.samples = int(min((_int(res.rows[c.runs[s]].get("num_samples")) for c in test.cells for s in seeds),
                          default=0))
    heads = [{res.train_key(c.runs[s]) for c in test.cells} for s in seeds]
    row.side = "sampling" if all(len(h) == 1 and None not in h for h in heads) else "training"
    return row


def _together(a: dict[str, set[str]], b: dict[str, set[str]]) -> bool:
    """Whether two runs read common entries: no stage both read without a key in common (a code or thread
    change moves every key downstream of it; a baseline that skips a stage is still together)."""
    return all(a[n] & b[n] for n in a.keys() & b.keys())


def _apart(res: Results, suite: Any, run_ids: list[str]) -> dict[str, str]:
    """Run id -> why, for the runs of a claim that, within their group, are not in the set most of the claim's
    runs of that group are in (ties: the set most of the suite's runs are in): compared with the others, they
    would measure another draw of the shared stages beside the contrast."""
    made = res.made_together(suite)
    groups: dict[str, dict[str, list[str]]] = {}  # group -> a set's first run -> the claim's runs in it
    for i in run_ids:
        if i in made:
            group, together = made[i]
            groups.setdefault(group, {}).setdefault(together[0], []).append(i)
    out: dict[str, str] = {}
    for by_set in groups.values():
        kept = max(by_set, key=lambda first: (len(by_set[first]), len(made[first][1])))
        for first, ids in by_set.items():
            if first == kept:
                continue
            a, b = res.shared_stages(first), res.shared_stages(kept)
            names = sorted(n for n in a.keys() & b.keys() if not a[n] & b[n])
            threads = [(res.config(i) or {}).get("threads") for i in (first, kept)]
            for i in ids:
                out[i] = (f"its shared stages ({', '.join(names)}) are other cache entries than those of the "
                          f"{len(by_set[kept])} runs it is compared with (made by another code version or thread "
                          f"count: threads {threads[0]} here, {threads[1]} there); re-run it at their thread count")
    return out


def _unusable(res: Results | None, run_id: str, config: dict[str, Any]) -> str | None:
    if res is None:
        return "not run"
    r = res.rows.get(run_id)
    if r is None:
        return "not run"
    if r.get("status") != "ok":
        return "failed"
    made = res.config(run_id)
    if made is not None and config.get("threads") == "auto":  # resolved by the machine that ran it
        config = {**config, "threads": made.get("threads")}
    if made != config:
        return "made with another config (re-run the suite: cached stages are reused)"
    return None


def _int(v: Any) -> int:
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return 0


def decided_best(res: Results, groups: list[dict[int, str]], measure: str, better: str) -> int | None:
    """The row (a {seed: run_id} group) whose ``measure`` is better than every other row's by the paired
    comparison, Holm-corrected over the column's comparisons; None where the data do not decide it. One shared
    seed decides only between samplings of one trained head (the bootstrap covers the sample variance only)."""
    from rdmbench.verdicts import ALPHA, holm

    values = [[v for v in (res.value(r, measure) for r in g.values()) if np.isfinite(v)] for g in groups]
    means = [float(np.mean(v)) if v else np.nan for v in values]
    finite = [i for i, m in enumerate(means) if np.isfinite(m)]
    if len(finite) < 2:
        return None
    best = min(finite, key=lambda i: means[i]) if better == "lower" else max(finite, key=lambda i: means[i])
    sign = -1.0 if better == "lower" else 1.0
    found = []
    for i in finite:
        if i == best:
            continue
        seeds = sorted(set(groups[best]) & set(groups[i]))
        d = [res.value(groups[best][s], measure) - res.value(groups[i][s], measure) for s in seeds]
        if not seeds or not np.isfinite(d).all():
            return None
        reps = None
        if len(seeds) == 1:
            a, b = (groups[best][seeds[0]], groups[i][seeds[0]])
            ra, rb = res.replicates(a), res.replicates(b)
            if (res.train_key(a) is None or res.train_key(a) != res.train_key(b) or ra is None or rb is None
                    or measure not in ra or measure not in rb or len(ra[measure]) != len(rb[measure])):
                return None
            reps = ra[measure] - rb[measure]
        found.append(estimate(d, reps))
    adjusted = holm([e.p for e in found])
    if all(np.isfinite(p) and p < ALPHA and sign * e.value > 0 for e, p in zip(found, adjusted)):
        return best
    return None


# -- what the missing runs would cost ---------------------------------------------------------------------
@dataclass
class Need:
    suite: Any
    command: str
    runs: list[str]
    heads: int                # distinct heads to train among them
    seconds: float | None     # estimated CPU time, None when nothing was timed
    claims: list[str]
    note: str = ""            # instead of a command: why no runs are proposed


def plan(rows: list[Row], results: dict[tuple[str, str], Results]) -> list[Need]:
    """Per suite: the runs that would turn its undecided claims into verdicts, and their estimated time. A head
    that a finished run of any suite trained, or that an earlier line of the plan trains, is not counted again
    (suites share heads through the cache: stylization samples quality_diversity's)."""
    from rdmbench.suite import load_suite

    timings: dict[str, list[float]] = {}
    trained: set[str] = set()
    for res in results.values():
        for stage, secs in res.stage_seconds().items():
            timings.setdefault(stage, []).extend(secs)
        for run_id in res.rows:
            config = res.config(run_id)
            if config is not None and res.rows[run_id].get("status") == "ok":
                trained.add(_head(config))
    typical = {s: statistics.median(v) for s, v in timings.items() if v}
    # a line per suite for its missing runs, and one per suite and next look for the seeds its unresolved claims
    # need (the cells those claims read, at the look's seed count)
    by_suite: dict[tuple[str, str, str], list[Row]] = {}
    final: list[Row] = []
    for r in rows:
        line = ""
        if r.verdict == "unresolved" and not r.seeds_needed:  # the seeds of the next look, if there is one
            n = next_look(r.estimate.seeds if r.estimate is not None else 0)
            have = sorted({s for c in r.test.cells for s in c.runs})
            if n is None:
                final.append(r)
                continue
            r = replace(r, seeds_needed=[s for s in range(max(have) + 1, max(have) + 1 + n - len(have))])
            line = f"look {n}"
        if (r.missing and not r.stopped) or r.seeds_needed:
            by_suite.setdefault((str(r.test.suite.path), r.test.suite.profile, line), []).append(r)
    needs = []
    for (path, profile, line), rs in sorted(by_suite.items(), key=lambda kv: (kv[0][0], kv[0][2])):
        suite = rs[0].test.suite
        extra = sorted({s for r in rs for s in r.seeds_needed})
        seeds = sorted({*(s for c in rs[0].test.cells for s in c.runs), *extra})
        # the suite file's seeds, unless the claims' results or the look reach beyond them (the runs of
        # seeds the file does not list are only found, and only run, with the seeds set on the command line)
        beyond = seeds != _seeds(load_suite(Path(path), profile))
        if seeds != _seeds(suite):  # the claims' suite, read with the seeds its results hold, may already be it
            suite = load_suite(Path(path), profile, sets=[f"seeds={seeds}"])
        wanted = _wanted(rs, suite)
        res = results.get((suite.name, suite.profile))
        unusable = [run for run in suite.runs if _unusable(res, run.run_id, run.config) is not None]
        missing = [run for run in unusable if run.run_id in wanted]
        names = {_head(run.config): _head_name(run.config) for run in missing}
        heads = set(names) - trained
        if not line:  # the runs a suite lacks will be run; one claim's extra seeds are an option among several
            trained |= heads
        timed = [typical[s] for s in RUN_STAGES if s in typical]
        per_run = sum(timed) if timed else float("nan")
        fallback = typical.get(HEAD_STAGE, float("nan"))  # a head plugin no finished run trained
        seconds = len(missing) * per_run + sum(typical.get(f"{HEAD_STAGE}:{names[h]}", fallback) for h in heads)
        command = f"rdmbench run {_shown(path)}" + (f" --profile {profile}" if profile != "cpu" else "") + \
            (f" --set 'seeds={seeds}'" if beyond else "")
        if len(missing) < len(suite.runs):  # only what the claims read: a run whose row stands is not run again
            command += " --only " + " ".join(f"'{run.run_id}'" for run in missing)
        needs.append(Need(suite, command, [r.run_id for r in missing], len(heads),
                          seconds if np.isfinite(seconds) else None, sorted({r.test.name for r in rs})))
    for r in final:
        needs.append(Need(r.test.suite, "", [], 0, None, [r.test.name],
                          f"unresolved at the last look ({LOOKS[-1]} seeds): the design adds none (smallest "
                          f"detectable contrast {_round(r.estimate.detectable) if r.estimate else 'unknown'})"))
    return needs


def _wanted(rows: list[Row], suite: Any) -> set[str]:
    """Run ids of ``suite`` (possibly with more seeds) that the rows' cells hold: runs whose config is a cell
    run's but for the seed."""
    templates = []
    for r in rows:
        cell_runs = {rid for c in r.test.cells for rid in c.runs.values()}
        templates += [_unseeded(run.config) for run in r.test.suite.runs if run.run_id in cell_runs]
    return {run.run_id for run in suite.runs if _unseeded(run.config) in templates}


def _unseeded(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "seed"}


def _seeds(suite: Any) -> list[int]:
    return sorted({run.config.get("seed") for run in suite.runs})


def _head_name(config: Any) -> str | None:
    """The head plugin a run config trains."""
    head = config.get("head") if isinstance(config, dict) else None
    return head.get("name") if isinstance(head, dict) else None


def _head(config: dict[str, Any]) -> str:
    """What identifies a trained head: the run config without its sampling and measuring sections and its label."""
    return json.dumps({k: v for k, v in config.items() if k not in ("sample", "metrics", "label")}, sort_keys=True,
                      default=str)


def covers(row: Row) -> str:
    if row.estimate is None:
        return ""
    return row.estimate.covers if row.estimate.covers != SAMPLES_ONLY else "samples only (one seed)"


# -- how it reads --------------------------------------------------------------------------------------------
EXPECT = {"increase": "increases", "decrease": "decreases", "none": "no effect"}


def needs_text(row: Row, root: Path | None = None, ids: int = 0) -> str:
    """The runs a row still needs, its suite file named relative to ``root`` (default: the working folder), with
    the first ``ids`` run ids (`--plan` gives the commands)."""
    import os

    suite = os.path.relpath(row.test.suite.path, root) if root is not None else _shown(str(row.test.suite.path))
    parts = []
    if row.seeds_needed:
        seeds = sorted({*(s for c in row.test.cells for s in c.runs), *row.seeds_needed})
        parts.append(f"needs {suite} with seeds {seeds}")
    if row.missing:
        kinds = sorted(set(row.why.values()))
        listed = (": " + ", ".join(row.missing[:ids]) + (" …" if len(row.missing) > ids else "")) if ids else ""
        parts.append(f"needs {len(row.missing)} run(s) of {suite} ({'; '.join(kinds)}){listed}")
    return "; ".join(parts)


def unread_text(row: Row) -> str:
    """A claim answered at its look beside runs it did not read (later seeds, or a seed with a run missing)."""
    kinds = sorted(set(row.why.values()))
    return f"{len(row.missing)} run(s) of its suite not read ({'; '.join(kinds)}): not needed, it stopped at this look"


def evidence(row: Row, relative_to: Path | None = None) -> str:
    """Where the figure behind a claim is: the suite report's plot of the measure (or its page)."""
    import os

    if row.results is None:
        return ""
    report = row.results / "report"
    figure = report / f"metric_{row.test.claim.measure}.png"
    target = figure if figure.is_file() else report / "index.html"
    return os.path.relpath(target, relative_to) if relative_to is not None else _shown(str(target))


def blocks(rows: list[Row], relative_to: Path | None = None) -> list[Any]:
    """The scorecard as report blocks: one table, its legend."""
    from rdmbench.report.common import num
    from rdmbench.report.model import Cell, Head, Legend, Table

    header = [Head("claim"), Head("the paper"), Head("contrast (the paper's direction)"),
              Head("estimate [95% interval]", numeric=True), Head("seeds × samples"),
              Head("verdict (Holm-adjusted p within the study)"), Head("smallest detectable", numeric=True), Head("evidence")]
    body = []
    for r in rows:
        c = r.test.claim
        e = r.estimate
        est = Cell(num(_round(e.value)), lo=_round(e.lo), hi=_round(e.hi)) if e is not None else Cell("")
        margin = f" ±{num(c.margin)}" if c.margin is not None else ""
        seeds = f"{e.seeds} × {r.samples} ({covers(r)}; {r.side}-side)" if e is not None else ""
        if e is not None and r.complete > e.seeds:
            seeds += f"; {r.complete} seeds complete, read at the look of {e.seeds}"
        verdict = r.verdict if r.decided else needs_text(r)
        if r.decided and np.isfinite(r.p_holm):
            verdict += f" (p = {num(_round(r.p_holm))})"
        if r.decided and r.missing:
            verdict += f"; {unread_text(r) if r.stopped else needs_text(r)}"
        elif not r.decided and e is not None and e.seeds == 1:
            verdict = f"{needs_text(r)} (one seed: {_one_seed(e)})"
        body.append([Cell(r.test.name), Cell(f"{c.paper} ({c.where})"),
                     Cell(f"{r.test.unit} (paper: {EXPECT[c.expect]}{margin})"), est, Cell(seeds), Cell(verdict),
                     Cell(num(_round(e.detectable)) if e is not None and np.isfinite(e.detectable) else ""),
                     Cell("figure" if r.results else "", link=evidence(r, relative_to))])
    legend = Legend([
        ("contrast", "what is estimated, per seed on runs that share that seed (initialisation, batches, queries, "
                     "noise), then averaged over seeds"),
        ("estimate", "the mean contrast over seeds; the interval is Student's t over the per-seed contrasts "
                     "(training-seed and sample variance) with two or more seeds, and the paired bootstrap over "
                     "the generated samples with one (sample variance only: about those trained heads)"),
        ("verdict", "agrees: the contrast is apart from 0 in the paper's direction; contradicts: apart the other "
                    "way (or, where the paper expects none, apart at all); no effect: inside ±margin (two one-sided "
                    "tests); unresolved: none of these. Read at a look (3, 5 or 8 complete seeds) at the look's "
                    f"level {ALPHA_PER_LOOK}, with Holm's correction over the tests of one study (one suite's "
                    "claims); a claim with fewer seeds than it needs gets no verdict, only the runs it needs. The "
                    "facts above say which verdicts would stand with one family for the whole card "
                    "(docs/statistics.md)"),
        ("smallest detectable", "the |contrast| this design finds with 80% power at a look's level, 0.0197 "
                                "(before Holm)"),
        ("not covered", "the reference set (fixed across seeds) and FD's bias at this sample size: estimates "
                        "compare runs of this suite, not published numbers (docs/statistics.md)"),
    ])
    return [Table(header, body, kind="scorecard"), legend]


def _one_seed(e: Estimate) -> str:
    return "sample variance only" if np.isfinite(e.lo) else "no replicates recorded"


def _round(v: float) -> float:
    """Four significant digits: what the intervals can carry."""
    if v is None or not np.isfinite(v) or v == 0:
        return v
    return float(f"{v:.4g}")


def plan_blocks(needs: list[Need]) -> list[Any]:
    from rdmbench.report.model import Cell, Head, Table, Text

    if not needs:
        return [Text("Every claim has the runs its verdict needs.")]
    rows = []
    for n in needs:
        if n.note:
            rows.append([Cell(n.note), Cell(""), Cell(""), Cell(""), Cell(", ".join(n.claims))])
            continue
        time = f"{n.seconds / 60:.0f} min" if n.seconds is not None else "unknown (no finished run timed it)"
        rows.append([Cell(f"`{n.command}`"), Cell(str(len(n.runs))), Cell(str(n.heads)), Cell(time),
                     Cell(", ".join(n.claims))])
    total = sum(n.seconds for n in needs if n.seconds is not None)
    return [Table([Head("command"), Head("runs"), Head("heads to train"), Head("estimated CPU time"),
                   Head("claims it decides")], rows, kind="plain"),
            Text(f"Estimated from the median time of each stage in the finished runs' `stages.json` "
                 f"(shared stages taken as cached); {total / 60:.0f} min in all where timed.")]


def report(rows: list[Row], needs: list[Need] | None, out: Path | None = None) -> Any:
    from rdmbench.report.model import Fact, Report, Section

    counts = {v: sum(r.verdict == v for r in rows) for v in ("agrees", "contradicts", "no effect", "unresolved")}
    waiting = sum(not r.decided for r in rows)
    found = [r for r in rows if r.verdict in ("agrees", "contradicts", "no effect")]
    kept = sum(r.card_verdict == r.verdict for r in found)
    tests = sum(r.decided for r in rows)
    facts = [Fact("Claims", f"{len(rows)} ({', '.join(f'{n} {v}' for v, n in counts.items())}, {waiting} need runs)"),
             Fact("Families", f"Holm within each study; with one Holm family for all {tests} scored claims, {kept} of the "
                              f"{len(found)} verdicts would stand"
                              + (f" ({', '.join(r.test.name for r in found if r.card_verdict != r.verdict)} "
                                 "would be unresolved)" if kept < len(found) else "")),
             Fact("Measured in", "; ".join(sorted({_shown(str(r.results)) for r in rows if r.results})) or "no results")]
    sections = [Section("Scorecard", blocks(rows, out))]
    if needs is not None:
        sections.append(Section("Runs that would decide the rest", plan_blocks(needs)))
    return Report("Replication scorecard: Blattmann et al. 2022 on rdmbench's embedded default",
                  "Each of the paper's findings that a suite here tests, as a claim (suites/claims/), with the "
                  "paired estimate, its interval and a verdict.", facts, sections)
