"""Claims (suites/claims/) resolved against their suites, scored from results folders: verdicts on made-up
results with known effects, the runs a claim still needs, the plan's time estimate, and the claim file's
errors. The statistics themselves are tested on synthetic draws in tests/test_verdicts.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO, TINY_BASE

SUITE = TINY_BASE.replace("suite: tiny", "suite: sweep") + """
  zip:
    label: [low, mid, high]
    sample.guidance_scale: [1.0, 2.0, 3.0]
seeds: [0, 1, 2]
report: {x: sample.guidance_scale}
"""
CLAIMS = """
version: 1
suite: sweep
claims:
  - id: guidance.precision
    paper: guidance raises precision
    where: Fig. 13
    measure: precision
    trend: sample.guidance_scale
    expect: increase
  - id: guidance.recall_flat
    paper: recall does not move
    where: Fig. 13
    measure: recall
    trend: sample.guidance_scale
    expect: none
    margin: 0.05
  - id: guidance.fid
    paper: guidance lowers FD
    where: Fig. 13
    measure: fid
    compare: {label: [high, low]}
    expect: decrease
"""


def layout(tmp_path: Path, suite: str = SUITE, claims: str = CLAIMS) -> Path:
    """A repository's suites/ and suites/claims/ in tmp_path; returns the claims folder."""
    (tmp_path / "suites" / "claims").mkdir(parents=True)
    (tmp_path / "suites" / "sweep.yaml").write_text(suite.replace("\nsweep:\n  grid:\n    k_train: [0, 2]\n", "\nsweep:\n"))
    (tmp_path / "suites" / "claims" / "sweep.yaml").write_text(claims)
    return tmp_path / "suites" / "claims"


def fabricate(tmp_path: Path, values, *, seeds=None, skip=(), failed=(), replicates=None, timings=True,
              shared=lambda run: ["first_stage/vq"]) -> Path:
    """Results of suites/sweep.yaml as a run would leave them, with ``values(run) -> {column: value}`` and
    ``shared(run)``, the keys of the stages it read before its head."""
    from rdmbench.runner import suite_columns, swept_keys
    from rdmbench.suite import load_suite

    sets = [f"seeds={seeds}"] if seeds is not None else []
    suite = load_suite(tmp_path / "suites" / "sweep.yaml", sets=sets)
    out = tmp_path / "results" / "sweep"
    rows = []
    for run in suite.runs:
        if run.run_id in skip:
            continue
        d = out / "runs" / run.run_id
        d.mkdir(parents=True)
        # as the driver records it: `threads: auto` resolved on the machine that ran it
        (d / "config.yaml").write_text(yaml.safe_dump({**run.config, "threads": 2}, sort_keys=False))
        status = "failed" if run.run_id in failed else "ok"
        row = {"run_id": run.run_id, **run.shown, "status": status, "num_samples": 24, **values(run)}
        (d / "row.json").write_text(json.dumps({**row, "stage_keys": [*shared(run), f"train/head{run.config['seed']}",
                                                                      f"samples/{run.run_id}"]}))
        if timings:
            (d / "stages.json").write_text(json.dumps([
                {"stage": "train", "key": "x", "cached": run.config["sample"]["guidance_scale"] != 1.0, "seconds": 300.0},
                {"stage": "samples", "key": "y", "cached": False, "seconds": 20.0},
                {"stage": "metrics", "key": "z", "cached": False, "seconds": 10.0}]))
        if replicates is not None:
            reps = replicates(run)
            (d / "replicates.csv").write_text(",".join(reps) + "\n" + "\n".join(
                ",".join(f"{reps[c][b]:.7g}" for c in reps) for b in range(len(next(iter(reps.values()))))) + "\n")
        rows.append(row)
    columns = sorted({k for r in rows for k in r}, key=lambda c: (c != "run_id", c))
    lines = [",".join(columns)] + [",".join(str(r.get(c, "")) for c in columns) for r in rows]
    (out / "results.csv").write_text("\n".join(lines) + "\n")
    (out / "suite.json").write_text(json.dumps({"suite": "sweep", "profile": "cpu", "task": "generation",
                                                "columns": suite_columns(suite), "swept_keys": swept_keys(suite),
                                                "file": str(tmp_path / "suites" / "sweep.yaml")}))
    return out


def scored(claims_dir: Path, results: Path):
    from rdmbench import scorecard
    from rdmbench.claims import load_claims

    found = scorecard.find_results([results.parent])
    rows = scorecard.score(load_claims(claims_dir), found)
    return {r.test.name: r for r in rows}, rows, found


def known_effects(run):
    """Precision rises 0.05 per unit of guidance, recall stays, FD falls 30 from low to high guidance; each
    seed shifts every run alike (a head's quality) plus a little noise of its own."""
    g, seed = run.config["sample"]["guidance_scale"], run.config["seed"]
    rng = np.random.default_rng([seed, int(g * 10)])
    head = [0.0, 0.03, -0.02][seed]
    return {"precision": 0.5 + 0.05 * g + head + rng.normal(0, 0.004),
            "recall": 0.3 + head + rng.normal(0, 0.004),
            "fid": 100 - 15 * g + 50 * head + rng.normal(0, 1.0), "class_agreement": 0.4}


def noisy_precision(run):
    """known_effects, but precision's effect of guidance small (0.004 per unit) beside seed noise: unresolved at
    three seeds. Seeds past 2 as seed (seed mod 3)."""
    from types import SimpleNamespace

    g, seed = run.config["sample"]["guidance_scale"], run.config["seed"] % 3
    v = known_effects(SimpleNamespace(config={**run.config, "seed": seed}))
    return {**v, "precision": 0.5 + 0.004 * g + {0: 0.0, 1: 0.006, 2: -0.005}[seed] * (g - 2)}


def test_known_effects_get_their_verdicts(tmp_path):
    claims = layout(tmp_path)
    by_name, _, _ = scored(claims, fabricate(tmp_path, known_effects))
    assert by_name["guidance.precision"].verdict == "agrees"
    assert by_name["guidance.precision"].estimate.value == pytest.approx(0.05, abs=0.01)
    assert by_name["guidance.recall_flat"].verdict == "no effect"
    assert by_name["guidance.fid"].verdict == "agrees"
    assert by_name["guidance.fid"].estimate.value == pytest.approx(-30, abs=4)
    for row in by_name.values():
        assert row.estimate.seeds == 3 and row.side == "sampling" and row.samples == 24


def test_the_paper_contradicted_is_called_so(tmp_path):
    claims = layout(tmp_path, claims=CLAIMS.replace("expect: increase", "expect: decrease"))
    by_name, _, _ = scored(claims, fabricate(tmp_path, known_effects))
    assert by_name["guidance.precision"].verdict == "contradicts"


def test_a_missing_failed_or_stale_run_is_named_not_skipped(tmp_path):
    claims = layout(tmp_path)
    out = fabricate(tmp_path, known_effects, skip={"label=low_guidance_scale=1.0_seed=1"},
                    failed={"label=high_guidance_scale=3.0_seed=2"})
    stale = out / "runs" / "label=mid_guidance_scale=2.0_seed=0" / "config.yaml"
    stale.write_text(stale.read_text().replace("steps: 2", "steps: 3"))
    by_name, _, _ = scored(claims, out)
    row = by_name["guidance.precision"]
    assert row.verdict == "needs runs"
    assert row.why == {"label=low_guidance_scale=1.0_seed=1": "not run",
                       "label=high_guidance_scale=3.0_seed=2": "failed",
                       "label=mid_guidance_scale=2.0_seed=0": row.why["label=mid_guidance_scale=2.0_seed=0"]}
    assert row.why["label=mid_guidance_scale=2.0_seed=0"].startswith("made with another config")
    from rdmbench.scorecard import needs_text

    assert "label=low_guidance_scale=1.0_seed=1" in needs_text(row, ids=3)


def test_runs_whose_shared_stages_are_other_entries_are_not_compared(tmp_path):
    """Two heads can only be compared through one draw of what they share (the first stage they decode
    through): runs that another code version or thread count made read other entries, and are named for re-run.
    A run that skips a shared stage (a baseline without neighbours) still reads the same first stage."""
    claims = layout(tmp_path)

    def shared(run):
        label = run.config["label"]
        return {"low": ["first_stage/vq", "neighbours/nn"], "mid": ["first_stage/vq"],
                "high": ["first_stage/vq-2-threads", "neighbours/nn-2-threads"]}[label]

    by_name, _, _ = scored(claims, fabricate(tmp_path, known_effects, shared=shared))
    fid = by_name["guidance.fid"]  # high against low: 3 runs each, ties go to the set most runs are in (6 to 3)
    assert fid.verdict == "needs runs"
    assert set(fid.why) == {f"label=high_guidance_scale=3.0_seed={s}" for s in range(3)}
    assert all("first_stage, neighbours" in why and "other cache entries" in why for why in fid.why.values())
    assert by_name["guidance.precision"].why.keys() == fid.why.keys()

    # the same suite made in one piece: nothing to name
    import shutil

    shutil.rmtree(tmp_path / "results")
    by_name, _, _ = scored(claims, fabricate(tmp_path, known_effects,
                                             shared=lambda run: shared(run) if run.config["label"] != "high" else
                                             ["first_stage/vq"]))
    assert by_name["guidance.fid"].verdict == "agrees" and not by_name["guidance.fid"].why


def test_one_seed_gives_the_paired_bootstrap_and_asks_for_seeds(tmp_path):
    claims = layout(tmp_path, suite=SUITE.replace("seeds: [0, 1, 2]", "seeds: [0]"))

    def reps(run):
        # replicate b moves every run of the seed alike (shared indices): the contrast's replicates barely move
        common = np.random.default_rng(7).normal(0, 0.02, 50)
        own = np.random.default_rng(int(run.config["sample"]["guidance_scale"] * 10)).normal(0, 0.002, 50)
        v = known_effects(run)
        return {"precision": v["precision"] + common + own, "recall": v["recall"] + common + own,
                "fid": v["fid"] + 40 * common + own}

    by_name, rows, found = scored(claims, fabricate(tmp_path, known_effects, replicates=reps))
    row = by_name["guidance.precision"]
    assert row.estimate.seeds == 1 and row.estimate.covers.startswith("samples")
    assert row.estimate.lo < 0.05 < row.estimate.hi and row.estimate.hi - row.estimate.lo < 0.02  # paired: narrow
    assert row.verdict == "needs runs" and row.seeds_needed == [1, 2]
    from rdmbench.scorecard import plan

    need, = plan(rows, found)
    assert "--set 'seeds=[0, 1, 2]'" in need.command
    assert len(need.runs) == 6 and need.heads == 2  # two new seeds, three samplings of one head each
    # from stages.json: 30 s of sampling and measuring per run, 300 s per head
    assert need.seconds == pytest.approx(6 * 30 + 2 * 300)


def test_holm_counts_every_tested_claim(tmp_path):
    """A weak effect that one test alone would call, lost among more claims: the adjusted p is larger."""
    from rdmbench.verdicts import decide, estimate

    weak = estimate([0.9, 1.1, 1.0])
    alone, = decide([weak], ["increase"])
    crowd = decide([weak] + [estimate([0.1, -0.2, 0.05])] * 9, ["increase"] * 10)
    assert alone[1] < crowd[0][1]


def test_a_study_is_its_own_holm_family():
    """The same claim, p ≈ 0.013 alone: a verdict in a study of its own whatever another study holds, unresolved
    among nine nulls of one card-wide family (benchmarks/bench_families.py measures the trade)."""
    from rdmbench.verdicts import decide, estimate

    claim, nulls = estimate([0.8, 1.2, 1.0]), [estimate([0.1, -0.2, 0.05])] * 9
    alone, = decide([claim], ["increase"])
    assert alone[0] == "agrees"
    assert decide([claim, *nulls], ["increase"] * 10, families=["a"] + ["b"] * 9)[0] == alone
    assert decide([claim, *nulls], ["increase"] * 10)[0][0] == "unresolved"


@pytest.mark.parametrize("edit, key, message", [
    ("    measure: precision\n", "measure: precison\n", "did you mean 'precision'"),
    ("    trend: sample.guidance_scale\n    expect: increase", "trend: sample.guidance\n    expect: increase",
     "unknown key 'sample.guidance'"),
    ("    compare: {label: [high, low]}", "compare: {label: [highest, low]}", "has label = 'highest'"),
    ("    margin: 0.05\n", "", "`expect: none` needs a `margin`"),
    ("    where: Fig. 13\n    measure: fid", "where: Fig. 13\n    measure: fid\n    colour: red", "colour"),
    ("suite: sweep", "suite: swep", "did you mean 'sweep'"),
])
def test_a_bad_claim_is_one_line_naming_file_and_line(tmp_path, edit, key, message):
    from rdmbench.claims import load_claims
    from rdmbench.errors import ConfigError

    text = CLAIMS.replace(edit, ("    " + key) if key and not key.startswith("suite") else key, 1)
    assert text != CLAIMS
    claims = layout(tmp_path, claims=text)
    with pytest.raises(ConfigError) as exc:
        load_claims(claims)
    line = str(exc.value)
    assert "\n" not in line and message in line, line
    assert str(Path("suites") / "claims" / "sweep.yaml") in line and ":" in line.split("sweep.yaml")[1][:3], line


def test_the_repository_claims_cover_the_papers_studies():
    """Every claim file resolves against its suite; at least the issue's list of studies is covered."""
    from rdmbench.claims import load_claims

    tests = load_claims(REPO / "suites" / "claims")
    ids = {t.claim.id for t in tests}
    assert len(ids) >= 12
    studies = {i.split(".")[0] for i in ids}
    for study in ("k_train", "top_m", "guidance", "database", "stylization", "complexity", "patch_size", "encoder",
                  "baseline", "heads", "text", "class_conditional"):
        assert study in studies, study


def test_scorecard_command_prints_and_writes_the_page(tmp_path):
    claims = layout(tmp_path)
    results = fabricate(tmp_path, known_effects)
    proc = subprocess.run([sys.executable, "-m", "rdmbench", "scorecard", str(results), "--claims", str(claims),
                           "--out", str(tmp_path / "card"), "--plan"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "| guidance.precision |" in proc.stdout and "agrees" in proc.stdout
    assert "Every claim has the runs its verdict needs." in proc.stdout
    assert "with one Holm family for all 3 scored claims, 3 of the 3 verdicts would stand" in proc.stdout
    page = (tmp_path / "card" / "index.html").read_text()
    assert "guidance.recall_flat" in page and "no effect" in page


def test_the_suite_report_shows_its_claims(tmp_path):
    from rdmbench.report import write_report

    layout(tmp_path)
    md = write_report(fabricate(tmp_path, known_effects)).read_text()
    section = md.split("## The paper's findings", 1)[1]
    assert "| guidance.precision |" in section and "| agrees (p = " in section
    assert "[figure](metric_precision.png)" in section  # the suite's own plot of the measure
    page = (tmp_path / "results" / "sweep" / "report" / "index.html").read_text()
    assert '<a href="metric_fid.png">figure</a>' in page


def test_a_verdict_stands_on_its_complete_seeds_and_names_the_rest(tmp_path):
    claims = layout(tmp_path, suite=SUITE.replace("seeds: [0, 1, 2]", "seeds: [0, 1, 2, 3]"))

    from types import SimpleNamespace

    def values(run):  # seed 3's runs as seed 0's (known_effects knows three heads)
        return known_effects(SimpleNamespace(config={**run.config, "seed": run.config["seed"] % 3}))

    out = fabricate(tmp_path, values, skip={"label=mid_guidance_scale=2.0_seed=3"})
    by_name, rows, found = scored(claims, out)
    row = by_name["guidance.precision"]
    assert row.estimate.seeds == 3 and row.verdict == "agrees"
    assert row.missing == ["label=mid_guidance_scale=2.0_seed=3"]
    # answered at its look, it stops there: the run it did not read is named, not asked for
    from rdmbench.scorecard import blocks, plan

    assert not [n for n in plan(rows, found) if "guidance.precision" in n.claims]
    text = json.dumps([b.__dict__ for b in blocks(rows)], default=str)
    assert "1 run(s) of its suite not read (not run): not needed, it stopped at this look" in text


def test_seeds_run_beyond_the_suite_file_are_read_at_the_last_look_they_reach(tmp_path):
    """The plan's `--set seeds=[…]` runs count without editing the suite file; a verdict reads the first seeds of
    the last look reached (verdicts.LOOKS): 4 complete seeds are read as 3, 5 as 5."""
    from types import SimpleNamespace

    def values(run):  # seeds past 2 as seed (seed mod 3): known_effects knows three heads
        return known_effects(SimpleNamespace(config={**run.config, "seed": run.config["seed"] % 3}))

    claims = layout(tmp_path)
    out = fabricate(tmp_path, values, seeds=[0, 1, 2, 3, 4], skip={"label=mid_guidance_scale=2.0_seed=4"})
    row = scored(claims, out)[0]["guidance.precision"]
    assert (row.complete, row.estimate.seeds, row.verdict) == (4, 3, "agrees")
    assert row.missing == ["label=mid_guidance_scale=2.0_seed=4"]
    import shutil

    shutil.rmtree(out.parent)
    out = fabricate(tmp_path, values, seeds=[0, 1, 2, 3, 4])
    row = scored(claims, out)[0]["guidance.precision"]
    assert (row.complete, row.estimate.seeds, row.missing) == (5, 5, [])


def test_the_plan_asks_for_the_seeds_an_unresolved_claim_needs(tmp_path):
    """A real but small effect, noisy seeds: unresolved at three seeds; the plan asks for the next look's seeds
    (verdicts.LOOKS: 5) and prices them."""
    from rdmbench.scorecard import plan

    claims = layout(tmp_path)
    by_name, rows, found = scored(claims, fabricate(tmp_path, noisy_precision))
    assert by_name["guidance.precision"].verdict == "unresolved"
    need = next(n for n in plan(rows, found) if "guidance.precision" in n.claims)
    seeds = need.command.split("seeds=")[1].split("]")[0]
    assert seeds == "[0, 1, 2, 3, 4" and need.runs and need.seconds > 0
    assert len(need.runs) % 3 == 0 and need.heads == len(need.runs) // 3  # a head per new seed, three samplings
    # the command runs what it prices: seeds 0-2 stand, and a fresh clone (no cache) must not train them again
    assert set(need.command.split(" --only ")[1].replace("'", "").split()) == set(need.runs)


def test_the_plan_sets_the_seeds_of_runs_beyond_the_suite_file(tmp_path):
    """One half of a look run (its seeds 3-4 in the results, beyond the file's 0-2): the other half's command
    must set those seeds too, or `--only` names runs the suite file does not expand."""
    from rdmbench.scorecard import plan

    claims = layout(tmp_path)
    later = [f"label={lab}_guidance_scale={g}_seed={s}" for lab, g in [("low", 1.0), ("high", 3.0)] for s in (3, 4)]
    by_name, rows, found = scored(claims, fabricate(tmp_path, noisy_precision, seeds=[0, 1, 2, 3, 4],
                                                    skip=set(later)))
    assert by_name["guidance.precision"].verdict == "unresolved"
    need = next(n for n in plan(rows, found) if "guidance.precision" in n.claims)
    assert "--set 'seeds=[0, 1, 2, 3, 4]'" in need.command and sorted(need.runs) == sorted(later)


def test_the_plan_prices_a_head_by_its_own_plugin_training_time(tmp_path):
    """Another suite's heads of another plugin trained three times as long: the plan prices this suite's RDM
    heads by RDM's median, not by the median of both."""
    import shutil

    from rdmbench.scorecard import plan

    claims = layout(tmp_path)
    out = fabricate(tmp_path, noisy_precision)
    other = shutil.copytree(out, out.parent / "other")
    meta = json.loads((other / "suite.json").read_text())
    (other / "suite.json").write_text(json.dumps({**meta, "suite": "other"}))
    for d in (other / "runs").iterdir():
        config = yaml.safe_load((d / "config.yaml").read_text())
        (d / "config.yaml").write_text(yaml.safe_dump({**config, "head": {**config["head"], "name": "rarm"}}))
        stages = json.loads((d / "stages.json").read_text())
        (d / "stages.json").write_text(json.dumps([{**s, "seconds": s["seconds"] * (3 if s["stage"] == "train" else 1)}
                                                   for s in stages]))
    by_name, rows, found = scored(claims, out)
    need = next(n for n in plan(rows, found) if "guidance.precision" in n.claims)
    assert need.heads and need.seconds == pytest.approx(len(need.runs) * 30.0 + need.heads * 300.0)


def test_the_repository_scorecard_has_a_row_for_every_claim():
    """What a fresh clone prints: every claim of suites/claims/ with a verdict or the runs it needs."""
    from rdmbench import scorecard
    from rdmbench.claims import load_claims

    rows = scorecard.score(load_claims(REPO / "suites" / "claims"), scorecard.find_results([REPO / "results"]))
    assert len(rows) >= 12
    for row in rows:
        assert row.decided or scorecard.needs_text(row), row.test.name
