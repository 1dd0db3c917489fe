"""The retrieval task's report: recall–QPS Pareto fronts, as ann-benchmarks draws them.

One line per retriever configuration (its name, swept build arguments and any other config key in
which its runs differ, see rdmbench.report.common.config_groups), points for each query-time
setting, the Pareto front (no other point of that configuration has both higher recall and higher
QPS) drawn through them; one panel per vector set, batched and single-query QPS apart. Tables: the
fastest setting of each configuration reaching a recall level, and every point.
"""

from __future__ import annotations

from typing import Any

from rdmbench.report.common import config_groups, finite, is_seed, num
from rdmbench.report.model import Cell, Figure, Head, ReportData, Section, Table, Text

RECALL_LEVELS = (0.9, 0.95, 0.99)


def pareto(points: Any) -> Any:
    """Rows of a (recall, qps_y) frame on its upper-right front, sorted by recall."""
    pts = points.sort_values(["recall", "qps_y"], ascending=[False, False])
    keep, best = [], -1.0
    for idx, r in pts.iterrows():
        if r["qps_y"] > best:
            keep.append(idx)
            best = r["qps_y"]
    return points.loc[keep].sort_values("recall")


def sections(data: ReportData) -> list[Section]:
    import matplotlib

    matplotlib.use("Agg")
    ok = _points(data)
    ok.drop(columns=["_failed", "_config_label"]).to_csv(data.out / "summary.csv", index=False)
    intro = Text("Recall@k counts a returned neighbour whose true score reaches the k-th exact neighbour's (ties "
                 "count); QPS batched is the best of the suite's repeats over all queries in one call, single-query "
                 "QPS and latency come from one call per query. Timings are from this machine and this run only: "
                 "compare rows with each other, not with other machines.")
    out = [Section("Recall against speed", [intro, *_figures(ok, data)])]
    for vs in dict.fromkeys(ok["vectors"]) if len(ok) else []:
        out.append(_vector_set(ok[ok["vectors"] == vs], vs, data))
    return out


def _points(data: ReportData) -> Any:
    """Successful rows with the declared numbers as numbers and a ``configuration`` label each."""
    import pandas as pd

    df, swept = data.frame, data.swept
    # a configuration is everything but the seed and the query-time settings (those are its points)
    _, df["_config_label"] = config_groups(df, data.results_dir, shown=[*swept, "retriever.name"],
                                           ignore=("seed", "retriever.query", *[k for k in swept if is_seed(k)]))
    ok = df[~df["_failed"]].copy()
    for c, col in data.columns.items():  # the columns declared numeric
        if c in ok and col.numeric:
            ok[c] = pd.to_numeric(ok[c], errors="coerce")
    build_keys = [k for k in swept if k.startswith("retriever.build.")]
    # the label names config keys (other than the seed and query settings) that differ between rows and
    # are not swept build keys: two configurations never share a line or a table row
    ok["configuration"] = [" ".join([str(r["retriever"])] + [f"{k.split('.')[-1]}={num(r[k])}" for k in build_keys
                                                              if pd.notna(r.get(k))]
                                    + ([f"[{r['_config_label']}]"] if r.get("_config_label") else []))
                           for _, r in ok.iterrows()]
    return ok


def _figures(ok: Any, data: ReportData) -> list[Figure]:
    import matplotlib.pyplot as plt
    import seaborn as sns

    sets = list(dict.fromkeys(ok["vectors"])) if len(ok) else []
    figs = []
    sns.set_theme(style="whitegrid", context="notebook")
    palette = dict(zip(sorted(ok["configuration"].unique()), sns.color_palette("tab10", ok["configuration"].nunique())))
    for column, name in (("qps", "pareto_recall_qps.png"), ("qps_single", "pareto_recall_qps_single.png")):
        if column not in ok or not ok[column].notna().any():
            continue
        label = data.columns[column].label if column in data.columns else column
        fig, axes = plt.subplots(1, len(sets), figsize=(7 * len(sets), 6), squeeze=False, layout="constrained")
        for ax, vs in zip(axes[0], sets):
            _pareto_panel(ax, ok[ok["vectors"] == vs], column, label, vs, palette)
        handles, labels = axes[0][0].get_legend_handles_labels()
        for ax in axes[0][1:]:
            h, lab = ax.get_legend_handles_labels()
            handles += [a for a, b in zip(h, lab) if b not in labels]
            labels += [b for b in lab if b not in labels]
        # as many legend columns as the widest label lets fit under the panels (~8 px a character at 9 pt)
        fit = int(7 * len(sets) * 110 / (8 * max(map(len, labels), default=1) + 50))
        fig.legend(handles, labels, loc="outside lower center", ncol=max(1, min(len(labels), fit)), frameon=False,
                   fontsize=9)
        fig.suptitle(f"{label} against recall; up and right is better", fontsize=11)
        fig.savefig(data.out / name, dpi=110)
        plt.close(fig)
        figs.append(Figure(name, f"{label} against recall@k, one panel per vector set; lines join each "
                                 "configuration's Pareto front; up and right is better"))
    return figs


def _pareto_panel(ax: Any, part: Any, column: str, label: str, vs: str, palette: dict[str, Any]) -> None:
    # logit x: the region that matters (0.9, 0.99, 0.999) gets room; recall 1 is drawn at 0.9999
    part = part.assign(qps_y=part[column], recall=part["recall"].clip(0.01, 0.9999))
    for conf, g in part.groupby("configuration", sort=True):
        front = pareto(g)
        ax.scatter(g["recall"], g["qps_y"], color=palette[conf], s=14, alpha=0.35)
        ax.plot(front["recall"], front["qps_y"], "o-", color=palette[conf], label=conf, ms=5)
    k = num(part["k"].iloc[0]) if len(part) else "k"
    ax.set(yscale="log", xscale="logit", xlabel=f"recall@{k} vs exact (logit scale; 1 drawn at 0.9999)",
           ylabel=label, title=vs)
    ticks = [t for t in (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999) if t >= part["recall"].min() - 1e-9 or t == 0.5]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()


def _vector_set(part: Any, vs: str, data: ReportData) -> Section:
    first = part.iloc[0]
    facts = Text(f"{num(first['database_size'])} vectors x {num(first['dim'])} ({first['encoder']}), metric "
                 f"{first['metric']}, k = {num(first['k'])}, {num(first['num_queries'])} queries.")
    return Section(f"Vector set {vs}", [facts, _fastest(part, data), _every_point(part, data)])


def _fastest(part: Any, data: ReportData) -> Table:
    header = [Head("configuration"), Head("build s", "lower", numeric=True), Head("index MB", "lower", numeric=True)]
    header += [Head(f"recall ≥ {lv}", "higher", f"batched QPS of the fastest setting reaching recall {lv}", True)
               for lv in RECALL_LEVELS]
    rows = []
    for conf, g in part.groupby("configuration", sort=True):
        build, size = finite(g["build_s"].iloc[0]), finite(g["index_bytes"].iloc[0])
        cells = [Cell(conf), Cell(f"{build:.1f}" if build is not None else "—", build),
                 Cell(f"{size / 2**20:.1f}" if size is not None else "—", size)]
        for lv in RECALL_LEVELS:
            hit = g[g["recall"] >= lv]
            best = hit.loc[hit["qps"].idxmax()] if len(hit) else None
            setting = f"({_query(best, data.swept) or 'defaults'})" if best is not None else ""
            cells.append(Cell("—") if best is None else Cell(f"{best['qps']:,.0f}", float(best["qps"]), note=setting))
        rows.append(cells)
    return Table(header, rows, caption="Fastest setting of each configuration reaching a recall level "
                                       "(batched QPS; — where none does):")


def _every_point(part: Any, data: ReportData) -> Table:
    spec = (("recall", ".4f"), ("qps", ",.0f"), ("qps_single", ",.0f"), ("latency_p50_ms", ".3f"),
            ("latency_p99_ms", ".3f"))
    short = {"recall": "recall", "qps": "QPS batched", "qps_single": "QPS single", "latency_p50_ms": "p50 ms",
             "latency_p99_ms": "p99 ms"}
    header = [Head("configuration"), Head("query")]
    for c, _ in spec:
        col = data.columns.get(c)
        header.append(Head(short[c], col.better if col else None, col.label if col else "", True))
    rows = []
    for _, r in part.sort_values(["configuration", "recall"]).iterrows():
        cells = [Cell(r["configuration"]), Cell(_query(r, data.swept) or "—")]
        for c, fmt in spec:
            v = finite(r.get(c))
            cells.append(Cell("—" if v is None else format(v, fmt), v))
        rows.append(cells)
    return Table(header, rows, caption="Every point:", folded=len(rows) > 40)


def _query(r: Any, swept: list[str]) -> str:
    import pandas as pd

    return " ".join(f"{k.split('.')[-1]}={num(r[k])}" for k in swept if k.startswith("retriever.query.")
                    and k in r and pd.notna(r[k]))
