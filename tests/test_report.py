"""rdmbench.report on fake results folders: k_train sweep with seeds and a failure, a single run,
a categorical x-axis, sweep groups of different keys, and a missing results.csv."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from rdmbench.columns import Column, Expected, declarations
from rdmbench.errors import RdmbenchError
from rdmbench.report import write_report

FX = "efficientnet-lite2 (ImageNet, 64px, pooled 1280-d)"
COLS = ["run_id", "status", "error", "k_train", "seed", "fid", "kid", "kid_std", "precision", "recall",
        "f_score", "class_agreement", "class_agreement_chance", "feature_extractor", "encoder",
        "num_samples", "num_reference", "wall_s", "profile"]


#: the declarations suite.json carries (metric plugins and tasks declare them; written out here so the
#: report is tested against the format, not against today's plugins)
GENERATION_COLUMNS = declarations([
    Column("fid", "FID", "lower", space_dependent=True), Column("kid", "KID", "lower", space_dependent=True),
    Column("kid_std", "KID std"), Column("is", "IS", "higher", space_dependent=True),
    Column("precision", "precision", "higher", recall="recall"), Column("recall", "recall", "higher"),
    Column("f_score", "F-score", "higher"),
    Column("class_agreement", "class agreement", "higher", expected=Expected("class_agreement_chance", "chance")),
    Column("class_agreement_chance", "class agreement by chance"),
    Column("near_copies", "near-copies", "lower", description="share of samples unusually near a training image",
           expected=Expected("near_copy_quantile", "expected")),
    Column("near_copy_quantile", "near-copy quantile", summary=False, description="near-copies expected of novel "
                                                                                  "samples"),
    Column("head_parameters", "head parameters", summary=False),
    Column("sampling_database", "sampling database", summary=False),
    Column("skipped_metrics", "metrics not measured", summary=False),
    Column("feature_extractor", "feature extractor", summary=False),
    Column("encoder", "retrieval encoder", summary=False), Column("num_samples", "generated samples", summary=False),
    Column("num_reference", "reference images", summary=False), Column("wall_s", "wall time (s)"),
])
RETRIEVAL_COLUMNS = declarations([
    Column("retriever", "retriever", summary=False), Column("recall", "recall@k", "higher"),
    Column("qps", "queries/s (batched)", "higher"), Column("qps_single", "queries/s (one per call)", "higher"),
    Column("latency_p50_ms", "latency p50 (ms)", "lower"), Column("latency_p99_ms", "latency p99 (ms)", "lower"),
    Column("build_s", "build time (s)", "lower"), Column("index_bytes", "index size (bytes)", "lower"),
    Column("vectors", "vector set", summary=False), Column("k", "k", summary=False),
    Column("metric", "metric", summary=False), Column("encoder", "retrieval encoder", summary=False),
])


def make_results(root, rows, swept, report=None, samples=True, task="generation"):
    root.mkdir(parents=True)
    cols = [c for c in COLS if any(c in r for r in rows)] + sorted({k for r in rows for k in r} - set(COLS))
    with open(root / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    (root / "suite.json").write_text(json.dumps({
        "suite": root.name, "task": task, "profile": "smoke", "description": "A fake study.", "swept_keys": swept,
        "columns": GENERATION_COLUMNS if task == "generation" else RETRIEVAL_COLUMNS, "report": report or {}}))
    for i, r in enumerate(rows):
        if samples and r.get("status", "ok") == "ok":
            (root / "runs" / r["run_id"]).mkdir(parents=True)
            Image.new("RGB", (64, 64), (40 * i % 255, 120, 200)).save(root / "runs" / r["run_id"] / "samples.png")
    return root


def k_rows():
    rows = []
    for k in (1, 2, 4, 8, 16):
        for seed in (0, 1):
            rows.append(dict(run_id=f"k{k}_s{seed}", status="ok", error="", k_train=k, seed=seed,
                             fid=10.0 * k + seed, kid=0.01 * k, kid_std=0.001, precision=0.5 + 0.02 * k,
                             recall=0.6 - 0.02 * k, f_score=0.5, class_agreement=0.3 + 0.01 * seed,
                             class_agreement_chance=0.1, feature_extractor=FX, encoder="clip-vit-b32",
                             num_samples=500, num_reference=1000, wall_s=12.5, profile="smoke"))
    rows.append(dict(run_id="k32_s0", status="failed", error="CUDA out of memory\nwhile sampling", k_train=32, seed=0,
                     profile="smoke"))
    return rows


def test_k_train_report(tmp_path):
    res = make_results(tmp_path / "k_train", k_rows(), ["k_train", "seed"], {"x": "k_train"})
    md_path = write_report(res)
    out = res / "report"
    assert md_path == out / "report.md"
    md = md_path.read_text()
    for name in ("summary.csv", "metric_fid.png", "metric_kid.png", "metric_precision.png", "precision_recall.png",
                 "metric_class_agreement.png", "samples.png", "samples/k4_s1.png", "index.html"):
        assert (out / name).is_file(), name
    import pandas as pd
    s = pd.read_csv(out / "summary.csv")
    assert sorted(s["k_train"]) == [1, 2, 4, 8, 16, 32]
    ok = s[s["k_train"] != 32].set_index("k_train")
    assert ok.loc[4, "fid_mean"] == pytest.approx(40.5)
    assert ok.loc[4, "n"] == 2
    assert s.loc[s["k_train"] == 32, "n_failed"].item() == 1
    table = [line for line in md.splitlines() if line.startswith("| ") and "±" in line]
    assert len(table) == 5
    assert any(line.startswith("| 4 | 2 | 40.5 ± 0.71") for line in table)
    assert "k32_s0" in md and "CUDA out of memory while sampling" in md
    assert FX in md and "NOT Inception" in md
    assert "chance 0.1" in md
    assert "![metric_fid](metric_fid.png)" in md and "samples/k4_s1.png" in md


def test_single_run_missing_columns(tmp_path):
    rows = [dict(run_id="only", status="ok", k_train=4, fid=33.0, feature_extractor="inception-v3 (pool3, 2048-d)")]
    res = make_results(tmp_path / "one", rows, ["k_train"])
    md = write_report(res, tmp_path / "out").read_text()
    assert (tmp_path / "out" / "metric_fid.png").is_file()
    assert not (tmp_path / "out" / "precision_recall.png").exists()
    assert "| 4 | 1 | 33 |" in md and "NOT Inception" not in md


def test_categorical_x_with_nans(tmp_path):
    rows = [dict(run_id=f"{r}_{s}", status="ok", **{"retriever.name": r}, seed=s,
                 fid=float("nan") if (r, s) == ("faiss", 1) else 20.0 + s, precision=0.7, recall=0.4)
            for r in ("exact", "faiss") for s in (0, 1)]
    rows.append(dict(run_id="bad", status="failed", **{"retriever.name": "hnsw"}, seed=0, error="boom"))
    res = make_results(tmp_path / "cat", rows, ["retriever.name", "seed"], samples=False)
    md = write_report(res).read_text()
    assert (res / "report" / "metric_fid.png").is_file() and (res / "report" / "precision_recall.png").is_file()
    assert "| faiss | 2 | 20 |" in md and "| hnsw | 0 (1 failed) |" in md
    assert "not recorded" in md and "boom" in md


def test_missing_results_csv(tmp_path):
    with pytest.raises(RdmbenchError, match=r"results\.csv.*rdmbench run"):
        write_report(tmp_path / "nothing")


def test_suite_json_of_an_older_rdmbench_is_refused(tmp_path):
    res = make_results(tmp_path / "old", k_rows(), ["k_train", "seed"])
    meta = json.loads((res / "suite.json").read_text())
    for key in ("task", "columns"):
        (res / "suite.json").write_text(json.dumps({k: v for k, v in meta.items() if k != key}))
        with pytest.raises(RdmbenchError, match=r"suite\.json: written by an older rdmbench \(no task recorded\); "
                                                r"re-run the suite"):
            write_report(res)
    assert not (res / "report" / "report.md").exists()


def test_columns_decide_metrics_labels_and_directions(tmp_path):
    """A column the suite declares without a better direction (kid_std) is no metric; a declared label and
    direction reach the table header, and a better-lower column marks its lowest value best on the page."""
    res = make_results(tmp_path / "decl", k_rows(), ["k_train", "seed"], {"x": "k_train"})
    meta = json.loads((res / "suite.json").read_text())
    meta["columns"]["recall"]["label"], meta["columns"]["recall"]["better"] = "coverage", "lower"
    (res / "suite.json").write_text(json.dumps(meta))
    md = write_report(res).read_text()
    header = next(line for line in md.splitlines() if line.startswith("| k_train"))
    assert "coverage ↓" in header and "recall" not in header and "kid_std" not in header
    assert not (res / "report" / "metric_kid_std.png").exists()
    page = (res / "report" / "index.html").read_text()
    assert '<td class="num best"><span class="v">0.28 ± 0</span>' in page  # recall 0.6 - 0.02 * 16, the lowest


def write_configs(root, configs):
    """runs/<id>/config.yaml for each run id -> resolved config."""
    import yaml

    for run_id, config in configs.items():
        (root / "runs" / run_id).mkdir(parents=True, exist_ok=True)
        (root / "runs" / run_id / "config.yaml").write_text(yaml.safe_dump(config))


def test_runs_differing_beyond_the_seed_are_never_averaged(tmp_path):
    """Same swept values (k_train, seed) but two retriever configs (a dict-valued sweep the table does
    not show): two rows of two seeds each, labelled by the key that differs, not one row of four."""
    rows, configs = [], {}
    for nlist in (64, 128):
        for seed in (0, 1):
            run_id = f"nlist{nlist}_s{seed}"
            rows.append(dict(run_id=run_id, status="ok", k_train=4, seed=seed, fid=float(nlist + seed),
                             fid_lo=nlist + seed - 2.0, fid_hi=nlist + seed + 2.0, feature_extractor=FX))
            configs[run_id] = {"seed": seed, "k_train": 4, "retriever": {"name": "faiss", "build": {"nlist": nlist}}}
    res = make_results(tmp_path / "two", rows, ["k_train", "seed"], samples=False)
    write_configs(res, configs)
    md = write_report(res).read_text()
    import pandas as pd

    s = pd.read_csv(res / "report" / "summary.csv")
    assert len(s) == 2 and list(s["n"]) == [2, 2]
    assert sorted(s["fid_mean"]) == [64.5, 128.5]
    assert sorted(s["config"]) == ["retriever.build.nlist=128", "retriever.build.nlist=64"]
    table = [line for line in md.splitlines() if line.startswith("| 4 |")]
    assert len(table) == 2 and any("retriever.build.nlist=64" in line for line in table)
    # the same runs with equal configs but for the seed do merge
    write_configs(res, {r: {**c, "retriever": {"name": "faiss", "build": {"nlist": 64}}} for r, c in configs.items()})
    write_report(res)
    assert list(pd.read_csv(res / "report" / "summary.csv")["n"]) == [4]


def test_intervals_labels_and_head_parameters(tmp_path):
    rows = [dict(run_id="k1_s0", status="ok", k_train=1, seed=0, fid=100.0, fid_lo=90.0, fid_hi=115.0, recall=0.5,
                 recall_lo=0.4, recall_hi=0.6, precision=0.7, head_parameters=1234567, feature_extractor=FX)]
    for seed, fid in ((0, 80.0), (1, 84.0)):
        rows.append(dict(run_id=f"k4_s{seed}", status="ok", k_train=4, seed=seed, fid=fid, fid_lo=fid - 6,
                         fid_hi=fid + 8, recall=0.5, recall_lo=0.4, recall_hi=0.6, precision=0.7,
                         head_parameters=1234567, feature_extractor=FX))
    res = make_results(tmp_path / "ci", rows, ["k_train", "seed"], {"x": "k_train"})
    md = write_report(res).read_text()
    import pandas as pd

    s = pd.read_csv(res / "report" / "summary.csv").set_index("k_train")
    assert (s.loc[1, "fid_lo"], s.loc[1, "fid_hi"]) == (90.0, 115.0)  # one seed: its own interval
    # two seeds, 80 and 84: Student's t over the seeds (se 2, t 12.71 at one degree of freedom), not the seeds'
    # own sample intervals, which leave the training-seed variance out
    assert s.loc[4, "fid_lo"] == pytest.approx(82 - 12.706205 * 2)
    assert s.loc[4, "fid_hi"] == pytest.approx(82 + 12.706205 * 2)
    header = next(line for line in md.splitlines() if line.startswith("| k_train"))
    assert "FD (efficientnet-lite2) ↓" in header and "FID" not in header and "head parameters" in header
    assert "| 1 | 1 | 1,234,567 | 100 [90, 115] |" in md
    assert "82 ± 2.8 [56.59, 107.4] |" in md
    assert "precision" in header and "0.7 |" in md  # a metric without interval still shows its value


def test_inception_features_keep_the_name_fid(tmp_path):
    rows = [dict(run_id="a", status="ok", k_train=4, fid=10.0, fid_lo=9.0, fid_hi=11.0,
                 feature_extractor="inception-v3 (pool3, 2048-d)")]
    md = write_report(make_results(tmp_path / "inc", rows, ["k_train"])).read_text()
    header = next(line for line in md.splitlines() if line.startswith("| k_train"))
    assert "FID ↓" in header and "FD (" not in header


def test_retrieval_report_keeps_configurations_apart(tmp_path):
    """Two hnsw runs whose ef_construction differs but is not swept: two configurations, not one."""
    rows, configs = [], {}
    for efc in (40, 200):
        for ef in (16, 64):
            run_id = f"efc{efc}_ef{ef}"
            rows.append(dict(run_id=run_id, status="ok", retriever="hnswlib", vectors="v", recall=0.9 + ef / 1000,
                             qps=1000.0 / ef * (1 + efc / 1000), build_s=1.0, index_bytes=2**20, k=10,
                             database_size=100, dim=8, encoder="e", metric="cosine", num_queries=10,
                             **{"retriever.query.ef": ef, "seed": 0}))
            configs[run_id] = {"seed": 0, "retriever": {"name": "hnswlib", "build": {"ef_construction": efc},
                                                        "query": {"ef": ef}}}
    res = make_results(tmp_path / "ret", rows, ["retriever.query.ef", "seed"], samples=False, task="retrieval")
    write_configs(res, configs)
    md = write_report(res).read_text()
    fastest = [line for line in md.splitlines() if line.startswith("| hnswlib") and "recall" not in line
               and line.count("|") == 7]
    assert len(fastest) == 2, md
    assert any("ef_construction=40" in line for line in fastest)
    assert any("ef_construction=200" in line for line in fastest)


def qd_rows():
    """Fig. 13's two sweep groups: top-m at guidance 1 and guidance at top-m 1, each run carrying one key."""
    rows = [dict(run_id=f"top_m={m}_seed=0", status="ok", **{"sample.mode.top_m": m}, seed=0, fid=10 - m,
                 precision=0.9 - 0.3 * m, recall=0.2 + 0.4 * m, feature_extractor=FX) for m in (0.01, 0.1, 1.0)]
    rows += [dict(run_id=f"guidance_scale={g}_seed=0", status="ok", **{"sample.guidance_scale": g}, seed=0,
                  fid=10 + g, precision=0.6 + 0.1 * g, recall=0.6 - 0.1 * g, feature_extractor=FX) for g in (1.5, 3.0)]
    return rows


def test_sweep_groups_of_different_keys_each_get_an_axis_and_a_precision_recall_line(tmp_path, monkeypatch):
    """No run is dropped for lacking the first swept key: one table of all runs, one figure panel per
    sweep, and both sweeps as labelled lines in one precision–recall plane (the paper's Fig. 13)."""
    import matplotlib.axes
    import pandas as pd

    drawn, labelled = [], []
    errorbar, text = matplotlib.axes.Axes.errorbar, matplotlib.axes.Axes.text

    def rounded(values):
        return [round(float(v), 6) for v in values]

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar",
                        lambda ax, x, y, **kw: drawn.append((ax.get_xlabel(), kw.get("label"), rounded(x)))
                        or errorbar(ax, x, y, **kw))
    monkeypatch.setattr(matplotlib.axes.Axes, "text",  # each point's label, placed at the point before
                        lambda ax, x, y, s, **kw: labelled.append((s, tuple(rounded((x, y)))))  # adjustText moves it
                        or text(ax, x, y, s, **kw))
    res = make_results(tmp_path / "qd", qd_rows(), ["sample.mode.top_m", "seed", "sample.guidance_scale"])
    md = write_report(res).read_text()
    s = pd.read_csv(res / "report" / "summary.csv")
    assert list(s["n"]) == [1] * 5
    assert list(s["sweep"]) == ["sample.mode.top_m"] * 3 + ["sample.guidance_scale"] * 2
    assert "| 0.01 | — | 1 |" in md and "| — | 1.5 | 1 |" in md
    assert "FD (efficientnet-lite2): one panel per sweep, against sample.mode.top_m, sample.guidance_scale" in md
    assert all(f"samples/{r['run_id']}.png" in md for r in qd_rows())  # every run's samples, none dropped
    pr = [(label, x) for xlabel, label, x in drawn if xlabel == "" and label]  # the P–R plane: x is recall
    assert pr == [("sample.mode.top_m sweep", [0.204, 0.24, 0.6]), ("sample.guidance_scale sweep", [0.45, 0.3])]
    assert ("0.1", (0.24, 0.87)) in labelled and ("1.5", (0.45, 0.75)) in labelled


def test_a_result_column_as_x_draws_one_line_per_hue(tmp_path, monkeypatch):
    """head_widths: a zip of labels, widths and k_train, drawn as FD against head_parameters with a line for
    k_train 4 and one for 0. The label, which x and hue decide, splits no line; head_parameters is the x
    column once, not a second column beside it."""
    import matplotlib.axes
    import pandas as pd

    drawn = []
    errorbar = matplotlib.axes.Axes.errorbar
    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar",
                        lambda ax, x, y, **kw: drawn.append((ax.get_xlabel(), kw.get("label"), [float(v) for v in x]))
                        or errorbar(ax, x, y, **kw))
    rows = [dict(run_id=f"{name}_{seed}", status="ok", label=name, k_train=k, seed=seed, head_parameters=params,
                 fid=1000.0 - params / 1e5 - 10 * k + seed, feature_extractor=FX)
            for name, k, params in [("RDM narrow", 4, 1.6e6), ("baseline narrow", 0, 1.6e6),
                                    ("RDM wide", 4, 1.27e7), ("baseline wide", 0, 1.27e7)] for seed in (0, 1)]
    res = make_results(tmp_path / "widths", rows, ["label", "k_train", "seed"],
                       {"x": "head_parameters", "hue": "k_train"}, samples=False)
    write_report(res)
    s = pd.read_csv(res / "report" / "summary.csv")
    assert list(s.columns).count("head_parameters") == 1 and len(s) == 4
    # the FD figure's lines (the labels go on after errorbar): one per k_train, each across both widths
    assert sorted(drawn) == [("", "0", [1.6e6, 1.27e7]), ("", "4", [1.6e6, 1.27e7])]


def test_a_categorical_sweep_beside_a_numeric_one_and_settings_of_some_runs(tmp_path):
    """databases: a size sweep and a domain (label) sweep. A setting only some runs have (a skipped
    metric) is said of those runs, never as a fact of the suite; one that differs is a table column."""
    import pandas as pd

    rows = [dict(run_id=f"size={n}_seed=0", status="ok", **{"database.size": n}, seed=0, fid=5.0 + n / 1000,
                 class_agreement=0.5, sampling_database="training database", num_samples=40) for n in (300, 800)]
    why = "class-agreement: queries from the sampling database are not labelled with the reference classes"
    rows += [dict(run_id=f"label={d}_seed=0", status="ok", label=d, seed=0, fid=7.0, sampling_database=d,
                  skipped_metrics=why, num_samples=40) for d in ("digits", "mixed")]
    res = make_results(tmp_path / "dbs", rows, ["database.size", "seed", "label"])
    md = write_report(res).read_text()
    header = next(line for line in md.splitlines() if line.startswith("| database.size"))
    assert header.startswith("| database.size | label | n | sampling database | FD")
    assert "| — | digits | 1 | digits | 7 |" in md and "| 300 | — | 1 | training database | 5.3 |" in md
    assert "- **generated samples:** 40" in md  # the same in every run: a fact
    assert "metrics not measured:**" not in md and "- **sampling database:**" not in md
    assert f"**metrics not measured** in `label=digits`, `label=mixed`: {why}." in md
    assert "**metrics not measured** in `database.size=300`, `database.size=800`: none." in md
    assert "class agreement: one panel per sweep, against database.size; no interval recorded; no value in the " \
           "label sweep" in md
    assert list(pd.read_csv(res / "report" / "summary.csv")["label"].fillna("")) == ["", "", "digits", "mixed"]
    assert all(f"samples/{r['run_id']}.png" in md for r in rows)


def test_column_notes_come_from_the_declarations(tmp_path):
    rows = [dict(run_id="a", status="ok", k_train=4, near_copies=0.1, near_copy_quantile=0.05, fid=3.0)]
    res = make_results(tmp_path / "notes", rows, ["k_train"])
    meta = json.loads((res / "suite.json").read_text())
    meta["columns"]["near_copies"]["description"] = "a definition the suite declares"
    (res / "suite.json").write_text(json.dumps(meta))
    md = write_report(res).read_text()
    assert "- **near-copies**: a definition the suite declares" in md
    assert "- **near-copy quantile**: near-copies expected of novel samples" in md
    assert "- **FID" not in md and "- **FD" not in md  # declared without a description: no note
    assert "held-out images' nearest-training distances" not in md


def test_chance_that_differs_along_x_is_drawn_per_x(tmp_path, monkeypatch):
    """Class agreement's chance is 1/3 over 3 classes and 1/10 over 10 (dataset_complexity): one dashed
    level per x, never their mean; a chance equal everywhere stays one line."""
    import matplotlib.axes

    levels, lines = [], []
    hlines, axhline = matplotlib.axes.Axes.hlines, matplotlib.axes.Axes.axhline
    monkeypatch.setattr(matplotlib.axes.Axes, "hlines",
                        lambda ax, y, *a, **kw: levels.append([round(float(v), 3) for v in y]) or hlines(ax, y, *a, **kw))
    monkeypatch.setattr(matplotlib.axes.Axes, "axhline",
                        lambda ax, y=0, **kw: lines.append(round(float(y), 3)) or axhline(ax, y, **kw))
    rows = [dict(run_id=f"{n}", status="ok", label=f"{n} classes", seed=0, fid=1.0, precision=0.5, recall=0.5,
                 class_agreement=0.6, class_agreement_chance=1 / n, feature_extractor=FX, profile="smoke")
            for n in (3, 6, 10)]
    write_report(make_results(tmp_path / "dc", rows, ["label", "seed"], {"x": "label"}))
    assert [0.333, 0.167, 0.1] in levels and lines == []
    write_report(make_results(tmp_path / "k", k_rows(), ["k_train", "seed"], {"x": "k_train"}))
    assert lines == [0.1]


def marked(page: str) -> list[str]:
    """The values the page stars: ``<td class="num best"><span class="v">VALUE</span>``."""
    import re

    return re.findall(r'<td class="num best"><span class="v">([^<]+)</span>', page)


def paired_rows(fid, seeds=(0, 1, 2)):
    return [dict(run_id=f"g{g}_s{s}", status="ok", guidance=g, seed=s, fid=fid(g, s), fid_lo=fid(g, s) - 30,
                 fid_hi=fid(g, s) + 30, feature_extractor=FX, num_samples=500)
            for g in (1, 2, 3) for s in seeds]


def test_a_best_is_starred_only_where_the_paired_comparison_decides_it(tmp_path):
    """Seeds move every row alike (a head's quality): the marginal intervals overlap, the paired differences do
    not. A difference as large as the seed-to-seed noise is not starred."""
    head = {0: 0.0, 1: 40.0, 2: -35.0}
    decided = make_results(tmp_path / "decided", paired_rows(lambda g, s: 100 - 5 * g + head[s] + 0.3 * s * g),
                           ["guidance", "seed"], {"x": "guidance"}, samples=False)
    write_report(decided)
    assert marked((decided / "report" / "index.html").read_text()) == ["87.57 ± 37"]  # g = 3 beats both, seed by seed
    noise = {(1, 0): 0, (1, 1): 9, (1, 2): -7, (2, 0): 6, (2, 1): -8, (2, 2): 3, (3, 0): -9, (3, 1): 2, (3, 2): 4}
    undecided = make_results(tmp_path / "undecided", paired_rows(lambda g, s: 100 - 2 * g + head[s] + noise[g, s]),
                             ["guidance", "seed"], {"x": "guidance"}, samples=False)
    write_report(undecided)
    assert marked((undecided / "report" / "index.html").read_text()) == []


def write_runs(root, rows, train_key, reps):
    for r in rows:
        d = root / "runs" / r["run_id"]
        d.mkdir(parents=True, exist_ok=True)
        (d / "row.json").write_text(json.dumps({"stage_keys": [f"train/{train_key(r)}"]}))
        (d / "replicates.csv").write_text("fid\n" + "\n".join(f"{v:.6g}" for v in reps(r)) + "\n")


def test_one_seed_stars_only_between_samplings_of_one_trained_head(tmp_path):
    """One seed: the paired bootstrap over samples decides between samplings of one head; between heads
    trained apart it cannot (training-seed variance is in no interval), however far apart the values."""
    shared = np.random.default_rng(0).normal(0, 20, 200)  # replicate b resamples the same samples in every run
    rows = paired_rows(lambda g, s: 100 - 10 * g, seeds=(0,))
    for name, key in (("one_head", lambda r: "head0"), ("three_heads", lambda r: f"head{r['guidance']}")):
        res = make_results(tmp_path / name, rows, ["guidance", "seed"], {"x": "guidance"}, samples=False)
        write_runs(res, rows, key, lambda r: r["fid"] + shared + np.random.default_rng(r["guidance"]).normal(0, 1, 200))
        write_report(res)
        stars = marked((res / "report" / "index.html").read_text())
        assert stars == (["70"] if name == "one_head" else []), name
