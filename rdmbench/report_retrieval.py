"""Report of a retrieval suite (task ``retrieval``): recall–QPS Pareto fronts, as ann-benchmarks draws.

One line per retriever configuration (its name, swept build arguments and any other config key in
which its runs differ, see rdmbench.report.config_groups), points for each
query-time setting, the Pareto front (no other point of that configuration has both higher recall
and higher QPS) drawn through them; one panel per vector set, batched and single-query QPS apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rdmbench.report import _num

RECALL_LEVELS = (0.9, 0.95, 0.99)


def pareto(points: Any) -> Any:
    """Rows of a (recall, qps) frame on its upper-right front, sorted by recall."""
    pts = points.sort_values(["recall", "qps_y"], ascending=[False, False])
    keep, best = [], -1.0
    for idx, r in pts.iterrows():
        if r["qps_y"] > best:
            keep.append(idx)
            best = r["qps_y"]
    return points.loc[keep].sort_values("recall")


def write(df: Any, meta: dict[str, Any], out: Path, title: str, swept: list[str]) -> list[str]:
    """Figures and report.md lines for retrieval rows; returns the report's lines."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    ok = df[~df["_failed"]].copy()
    for c in ("recall", "qps", "qps_single", "latency_p50_ms", "latency_p99_ms", "build_s", "index_bytes", "k"):
        if c in ok:
            ok[c] = pd.to_numeric(ok[c], errors="coerce")
    build_keys = [k for k in swept if k.startswith("retriever.build.")]
    # the label names config keys (other than the seed and query settings) that differ between rows and
    # are not swept build keys: two configurations never share a line or a table row
    ok["configuration"] = [" ".join([str(r["retriever"])] + [f"{k.split('.')[-1]}={_num(r[k])}" for k in build_keys
                                                              if pd.notna(r.get(k))]
                                    + ([f"[{r['_config_label']}]"] if r.get("_config_label") else []))
                           for _, r in ok.iterrows()]
    sets = list(dict.fromkeys(ok["vectors"])) if len(ok) else []
    figs = []
    sns.set_theme(style="whitegrid", context="notebook")
    palette = dict(zip(sorted(ok["configuration"].unique()), sns.color_palette("tab10", ok["configuration"].nunique())))
    for column, name, label in (("qps", "pareto_recall_qps.png", "queries per second (batched)"),
                                ("qps_single", "pareto_recall_qps_single.png", "queries per second (one per call)")):
        if column not in ok or not ok[column].notna().any():
            continue
        fig, axes = plt.subplots(1, len(sets), figsize=(7 * len(sets), 6), squeeze=False,
                                 layout="constrained")
        for ax, vs in zip(axes[0], sets):
            # logit x: the region that matters (0.9, 0.99, 0.999) gets room; recall 1 is drawn at 0.9999
            part = ok[ok["vectors"] == vs].assign(qps_y=lambda d, c=column: d[c],
                                                 recall=lambda d: d["recall"].clip(0.01, 0.9999))
            for conf, g in part.groupby("configuration", sort=True):
                front = pareto(g)
                ax.scatter(g["recall"], g["qps_y"], color=palette[conf], s=14, alpha=0.35)
                ax.plot(front["recall"], front["qps_y"], "o-", color=palette[conf], label=conf, ms=5)
            k = _num(part["k"].iloc[0]) if len(part) else "k"
            ax.set(yscale="log", xscale="logit", xlabel=f"recall@{k} vs exact (logit scale; 1 drawn at 0.9999)",
                   ylabel=label, title=vs)
            ticks = [t for t in (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999) if t >= part["recall"].min() - 1e-9 or t == 0.5]
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
        handles, labels = axes[0][0].get_legend_handles_labels()
        for ax in axes[0][1:]:
            h, lab = ax.get_legend_handles_labels()
            handles += [a for a, b in zip(h, lab) if b not in labels]
            labels += [b for b in lab if b not in labels]
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), frameon=False, fontsize=9)
        fig.suptitle(f"{title}: {label} against recall; up and right is better", fontsize=11)
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        figs.append(name)

    L = ["", "## Recall against speed", "",
         "Recall@k counts a returned neighbour whose true score reaches the k-th exact neighbour's (ties count); "
         "QPS batched is the best of the suite's repeats over all queries in one call, single-query QPS and "
         "latency come from one call per query. Timings are from this machine and this run only: compare "
         "rows with each other, not with other machines.", ""]
    L += [f"![{f[:-4]}]({f})" for f in figs]
    for vs in sets:
        part = ok[ok["vectors"] == vs]
        first = part.iloc[0]
        L += ["", f"### {vs}", "",
              f"{_num(first['database_size'])} vectors x {_num(first['dim'])} ({first['encoder']}), metric "
              f"{first['metric']}, k = {_num(first['k'])}, {_num(first['num_queries'])} queries.", "",
              "Fastest setting of each configuration reaching a recall level (batched QPS; — where none does):", "",
              "| configuration | build s | index MB | " + " | ".join(f"recall ≥ {lv}" for lv in RECALL_LEVELS) + " |",
              "|---|---|---|" + "---|" * len(RECALL_LEVELS)]
        for conf, g in part.groupby("configuration", sort=True):
            cells = []
            for lv in RECALL_LEVELS:
                hit = g[g["recall"] >= lv]
                best = hit.loc[hit["qps"].idxmax()] if len(hit) else None
                cells.append("—" if best is None else f"{best['qps']:,.0f} ({_query(best, swept) or 'defaults'})")
            L.append(f"| {conf} | {g['build_s'].iloc[0]:.1f} | {g['index_bytes'].iloc[0] / 2**20:.1f} | "
                     + " | ".join(cells) + " |")
        L += ["", "Every point:", "",
              "| configuration | query | recall | QPS batched | QPS single | p50 ms | p99 ms |", "|---|---|---|---|---|---|---|"]
        for _, r in part.sort_values(["configuration", "recall"]).iterrows():
            L.append(f"| {r['configuration']} | {_query(r, swept) or '—'} | {r['recall']:.4f} | {r['qps']:,.0f} | "
                     f"{_opt(r.get('qps_single'), ',.0f')} | {_opt(r.get('latency_p50_ms'), '.3f')} | "
                     f"{_opt(r.get('latency_p99_ms'), '.3f')} |")
    return L


def _query(r: Any, swept: list[str]) -> str:
    import pandas as pd

    return " ".join(f"{k.split('.')[-1]}={_num(r[k])}" for k in swept if k.startswith("retriever.query.")
                    and k in r and pd.notna(r[k]))


def _opt(v: Any, spec: str) -> str:
    import pandas as pd

    return "—" if v is None or pd.isna(v) else format(v, spec)
