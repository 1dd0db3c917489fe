"""The generation task's report: a table of metrics with intervals, one figure per metric, the
precision–recall plane, and for every run its sample grid and its panel (each sample beside its
query, its k retrieved neighbours and its nearest training image), so a reader sees whether the
model copies.

A table row (and a figure point) aggregates runs whose resolved configurations
(``runs/<id>/config.yaml``) are equal but for the seed, never more: runs that share the swept
values shown but differ elsewhere get rows of their own, labelled with the keys that differ.
Each value carries its 95% bootstrap interval (``<metric>_lo``/``_hi``, rdmbench.stats); over
several seeds the row shows mean ± sample std of the seeds and an interval for the mean.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from typing import Any

from rdmbench.report.common import (config_groups, finite, is_seed, labels, mean_interval, metric_names, num,
                                    one_line)
from rdmbench.report.model import Cell, Figure, Gallery, Head, ReportData, Section, Table, Text

#: a metric's value expected by chance or for novel samples, drawn as a dashed line and noted in its cell
EXPECTED = {"class_agreement": ("class_agreement_chance", "chance"),
            "near_copies": ("near_copy_quantile", "expected")}
PER_RUN = ("samples.png", "panel.png")


@dataclass
class View:
    """How the runs are laid out: ``x`` on the horizontal axis, the other ``keys`` separate lines/rows."""

    df: Any
    ok: Any
    x: str
    keys: list[str]            # x, hue, other varying swept keys and "config" where needed
    line_keys: list[str]       # keys but x: each combination is a line of every figure
    metrics: list[str]         # with a value in some successful run
    unmeasured: list[str]      # asked for but without any value
    aux: list[str]             # aggregated into summary.csv only
    labels: dict[str, str]
    params: bool               # head_parameters recorded


def sections(data: ReportData) -> list[Section]:
    import matplotlib

    matplotlib.use("Agg")
    view = _view(data)
    summary = _summary(view, data)
    out = [Section("Results", _results(view, summary, data)),
           Section("Figures", _figures(view, summary, data))]
    samples = _samples(view, data)
    if samples:
        out.append(Section("Samples", samples))
    return out


def _view(data: ReportData) -> View:
    import pandas as pd

    df, wish, swept = data.frame, data.wish, data.swept
    for k in swept + [wish.get("x"), wish.get("hue")]:  # numeric sweeps sort and plot as numbers
        if k in df and df[k].notna().any():
            conv = pd.to_numeric(df[k], errors="coerce")
            if conv.notna().sum() == df[k].notna().sum():
                df[k] = conv
    non_seed = [k for k in swept if not is_seed(k)]
    x = wish.get("x") if wish.get("x") in df else (non_seed[0] if non_seed else "run_id")
    hue = wish.get("hue") if wish.get("hue") in df and wish.get("hue") != x else None
    extra = [k for k in non_seed if k not in (x, hue) and df[k].nunique() > 1]
    keys = [x] + ([hue] if hue else []) + extra
    # never average runs whose configs differ other than by seed: such runs get rows of their own
    df["_config"], config = config_groups(df, data.results_dir, shown=keys,
                                          ignore=("seed", *[k for k in swept if is_seed(k)]))
    # the label is needed only where equal shown values hide different configs (k_train also sets sample.k)
    hidden = df.groupby(keys, dropna=False)["_config"].nunique(dropna=False).gt(1).any() if keys else False
    if hidden and any(config):
        df["config"] = config
        keys.append("config")

    declared = [m for m in metric_names(data.columns) if m in df]
    wanted = list(wish.get("metrics") or declared)
    # a reference value (chance, expected share) is aggregated like the metric it goes with
    refs = [EXPECTED[m][0] for m in wanted if m in EXPECTED and EXPECTED[m][0] in df]
    aux = [c for c, col in data.columns.items() if c in df and col.summary and col.better is None] + refs
    for c in {*wanted, *aux} & set(df):
        for col in (c, c + "_lo", c + "_hi"):
            if col in df:
                df[col] = pd.to_numeric(df[col], errors="coerce")
    ok = df[~df["_failed"]]
    metrics = [m for m in wanted if m in df and ok[m].notna().any()]
    aux = [a for a in dict.fromkeys(aux) if a not in metrics and ok[a].notna().any()]
    fx = [str(v) for v in ok["feature_extractor"].dropna().unique()] if "feature_extractor" in ok else []
    params = "head_parameters" in df and ok["head_parameters"].notna().any()
    return View(df, ok, x, keys, [k for k in keys if k != x], metrics, [m for m in wanted if m not in metrics],
                aux, labels(data.columns, fx), bool(params))


def _summary(v: View, data: ReportData) -> Any:
    """One row per configuration (seeds aggregated), written to summary.csv."""
    import numpy as np
    import pandas as pd

    rows = []
    for vals, g in v.df.groupby(v.keys + ["_config"], dropna=False, sort=False):
        r = dict(zip(v.keys, vals))
        good = g[~g["_failed"]]
        r["n"], r["n_failed"] = len(good), int(g["_failed"].sum())
        if v.params:
            hp = good["head_parameters"].dropna()
            r["head_parameters"] = hp.iloc[0] if len(hp) else np.nan
        for c in v.metrics + v.aux:
            vals_ = good[c].dropna()
            r[f"{c}_mean"] = vals_.mean() if len(vals_) else np.nan
            r[f"{c}_std"] = vals_.std(ddof=1) if len(vals_) > 1 else np.nan
            r[f"{c}_lo"], r[f"{c}_hi"] = mean_interval(good, c) if c + "_lo" in good else (np.nan, np.nan)
        rows.append(r)
    cols = v.keys + ["n", "n_failed"] + (["head_parameters"] if v.params else []) + [
        f"{c}_{s}" for c in v.metrics + v.aux for s in ("mean", "std", "lo", "hi")]
    summary = pd.DataFrame(rows, columns=cols).sort_values(v.keys, na_position="last", kind="stable")
    summary = summary.reset_index(drop=True)
    summary.to_csv(data.out / "summary.csv", index=False)
    return summary


def _results(v: View, summary: Any, data: ReportData) -> list:
    seeds = [s for s in data.swept if is_seed(s)]
    note = (f"Aggregated over {'seeds (' + ', '.join(seeds) + ')' if seeds else 'repeated runs'}: mean ± sample std "
            "when n > 1; n counts successful runs. [lo, hi]: 95% bootstrap interval over resamples of the generated "
            "samples (one run), or of the mean over seeds (each seed's interval half-widths added in quadrature, "
            "divided by n). Runs are averaged only when their resolved configs differ by the seed alone "
            "(summary.csv: `<metric>_mean`, `_std`, `_lo`, `_hi`).")
    blocks: list = []
    if "config" in v.keys:
        blocks.append(Text("Runs with equal swept values but different configs are kept apart; `config` names the "
                           "keys that differ."))
    blocks += [Text(note), _table(v, summary, data)]
    if "near_copies" in v.metrics:
        q = summary.get("near_copy_quantile_mean")
        q = num(float(q.dropna().iloc[0])) if q is not None and q.notna().any() else "the calibration quantile"
        label = v.labels.get("near_copies", "near_copies")
        blocks.append(Text(f"**{label}**: share of samples whose nearest training image (in the metric's feature "
                           f"space) is closer than the {q} quantile of held-out images' nearest-training distances. "
                           f"Samples as novel as held-out images score ≈ {q}; more means the model copies."))
    if v.unmeasured:
        blocks.append(Text(f"Metrics without values (not measured or all NaN): {', '.join(v.unmeasured)}."))
    return blocks


def _table(v: View, summary: Any, data: ReportData) -> Table:
    import pandas as pd

    header = [Head(k, numeric=k != "config" and pd.api.types.is_numeric_dtype(summary[k])) for k in v.keys]
    header.append(Head("n", numeric=True, description="successful runs aggregated in this row"))
    if v.params:
        header.append(Head("head parameters", numeric=True))
    for m in v.metrics:
        col = data.columns.get(m)
        header.append(Head(v.labels.get(m, m), col.better if col else None, col.description if col else "", True))
    rows = []
    for _, r in summary.iterrows():
        cells = [Cell(one_line(num(r[k])) if pd.notna(r[k]) else "—") for k in v.keys]
        cells.append(Cell(f"{int(r['n'])}" + (f" ({int(r['n_failed'])} failed)" if r["n_failed"] else "")))
        if v.params:
            cells.append(Cell(f"{r['head_parameters']:,.0f}" if pd.notna(r["head_parameters"]) else "—"))
        for m in v.metrics:
            cells.append(_metric_cell(r, m))
        rows.append(cells)
    return Table(header, rows)


def _metric_cell(r: Any, m: str) -> Cell:
    mu, sd = finite(r[f"{m}_mean"]), finite(r[f"{m}_std"])
    if mu is None:
        return Cell("—")
    if sd is not None and sd < 1e-9 * max(abs(mu), 1):
        sd = 0.0  # float noise of equal values
    text = f"{mu:.4g}" + (f" ± {sd:.2g}" if sd is not None else "")
    lo, hi = finite(r[f"{m}_lo"]), finite(r[f"{m}_hi"])
    note = ""
    if m in EXPECTED and finite(r.get(f"{EXPECTED[m][0]}_mean")) is not None:
        note = f"({EXPECTED[m][1]} {r[f'{EXPECTED[m][0]}_mean']:.3g})"
    return Cell(text, mu, lo if hi is not None else None, hi if lo is not None else None, note)


# ---- figures --------------------------------------------------------------------------------------
def _figures(v: View, summary: Any, data: ReportData) -> list:
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import seaborn as sns

    df, ok, x, out = v.df, v.ok, v.x, data.out
    sns.set_theme(style="whitegrid", context="notebook")
    xnum = pd.api.types.is_numeric_dtype(df[x]) and ok[x].notna().any()
    xv = sorted(ok[x].dropna().unique()) if xnum else []
    log2 = xnum and len(xv) >= 3 and all(v_ > 0 and float(v_).is_integer() and (int(v_) & (int(v_) - 1)) == 0
                                         for v_ in xv)
    order = list(summary[x].dropna().unique())
    lines = list(summary.groupby(v.line_keys, dropna=False, sort=False)) if v.line_keys else [((), summary)]
    colours = sns.color_palette(n_colors=max(len(lines), 1))
    figs: list = []

    def lineplot(ax, m) -> bool:
        """Means with error bars per line; returns whether any interval was drawn."""
        drawn = False
        for j, (gv, g) in enumerate(lines):
            g = g[g[f"{m}_mean"].notna()]
            if not len(g):
                continue
            yerr, has = _bars(g, m)
            drawn |= has or bool(g[f"{m}_std"].notna().any())
            if xnum:
                pos = g[x].to_numpy(float)
            else:  # categorical: dodge the lines apart around each category
                shift = (j - (len(lines) - 1) / 2) * min(0.3 / max(len(lines) - 1, 1), 0.12)
                pos = np.array([order.index(o) for o in g[x]], float) + shift
            ax.errorbar(pos, g[f"{m}_mean"], yerr=yerr, fmt="o-" if xnum else "o", capsize=4, color=colours[j],
                        label=_line_label(gv) if v.line_keys else None, ms=5)
        if xnum:
            if log2:
                ax.set_xscale("log", base=2)
            ax.set_xticks(xv if len(xv) <= 12 else ax.get_xticks())
            ax.set_xticklabels([num(float(t)) for t in ax.get_xticks()])
            ax.minorticks_off()
        else:
            ax.set_xticks(range(len(order)), [str(num(o)) for o in order])
            if max((len(str(o)) for o in order), default=0) > 8:
                ax.tick_params(axis="x", labelrotation=30)
        ax.set_xlabel(x)
        if v.line_keys:
            ax.legend(title=", ".join(v.line_keys), fontsize=9)
        return drawn

    for m in v.metrics:
        fig, ax = plt.subplots(figsize=(8 if v.line_keys else 6, 4))
        with_bars = lineplot(ax, m)
        if m in EXPECTED and EXPECTED[m][0] in ok and ok[EXPECTED[m][0]].notna().any():
            ref = ok[EXPECTED[m][0]].dropna().mean()
            ax.axhline(ref, color="gray", ls="--", label=f"{EXPECTED[m][1]} ({ref:.3g})")
            ax.legend(title=", ".join(v.line_keys) or None, fontsize=9)
        col = data.columns.get(m)
        arrow = {"lower": "↓ better", "higher": "↑ better"}.get(col.better if col else "", "")
        has_ci = f"{m}_lo" in ok and ok[f"{m}_lo"].notna().any()
        bar_note = "bars: 95% bootstrap interval" if has_ci else ("bars: ±sd over seeds" if with_bars
                                                                   else "no interval recorded")
        label = v.labels.get(m, m)
        ax.set(ylabel=label, title=f"{label} ({'; '.join(p for p in (arrow, bar_note) if p)})")
        if v.line_keys and ax.get_legend():
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), frameon=False)
        _save(fig, out / f"metric_{m}.png")
        figs.append(Figure(f"metric_{m}.png", f"{label} against {x}; {bar_note}"))
    if {"precision", "recall"} <= set(v.metrics):
        figs.append(_precision_recall(v, lines, colours, out))
    return figs


def _bars(g: Any, m: str) -> tuple[Any, bool]:
    """Error bars: the bootstrap interval (of the mean, over seeds) where recorded, else ±sd over seeds."""
    import numpy as np

    mu = g[f"{m}_mean"].to_numpy(float)
    lo, hi, sd = (g[f"{m}_{e}"].to_numpy(float) for e in ("lo", "hi", "std"))
    has = np.isfinite(lo) & np.isfinite(hi)
    sd = np.nan_to_num(sd)
    return np.clip(np.vstack([np.where(has, mu - lo, sd), np.where(has, hi - mu, sd)]), 0, None), bool(has.any())


def _line_label(gv: Any) -> str:
    return ", ".join(num(val) for val in (gv if isinstance(gv, tuple) else (gv,)))


def _precision_recall(v: View, lines: list, colours: list, out: Any) -> Figure:
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    fig, ax = plt.subplots(figsize=(7.5 if v.line_keys else 5.5, 5))
    f = np.linspace(0.01, 1, 200)
    for fs in (0.2, 0.4, 0.6, 0.8):  # iso-F1 curves for orientation
        r = fs * f / (2 * f - fs)
        ax.plot(f[r > 0], np.where(r > 0, r, np.nan)[r > 0], color="lightgray", lw=0.8, zorder=0)
        ax.text(1.0, fs / (2 - fs), f"F1={fs}", fontsize=7, color="gray", ha="right", va="bottom")
    for (hv, g), col in zip(lines, colours):
        ax.errorbar(g["recall_mean"], g["precision_mean"], xerr=_bars(g, "recall")[0],
                    yerr=_bars(g, "precision")[0], fmt="o-", color=col, capsize=3,
                    label=_line_label(hv) if v.line_keys else None)
        for i, (_, r) in enumerate(g.iterrows()):  # alternate label sides so neighbours don't collide
            if pd.notna(r["precision_mean"]) and pd.notna(r["recall_mean"]):
                ax.annotate(num(r[v.x]), (r["recall_mean"], r["precision_mean"]), textcoords="offset points",
                            xytext=(6, 4) if i % 2 else (-6, -12), ha="left" if i % 2 else "right", fontsize=9)
    ax.set(xlim=(0, 1.05), ylim=(0, 1.05), xlabel="recall", ylabel="precision",
           title=f"precision–recall (points labelled by {v.x})")
    ax.set_aspect("equal")
    if v.line_keys:
        ax.legend(fontsize=9, title=", ".join(v.line_keys), loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    _save(fig, out / "precision_recall.png")
    return Figure("precision_recall.png", f"precision against recall, one point per {v.x}; up and right is better; "
                                          "grey: iso-F1 curves")


def _save(fig: Any, path: Any, dpi: int = 110) -> None:
    import matplotlib.pyplot as plt

    if not fig.get_constrained_layout():
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


# ---- samples and panels ---------------------------------------------------------------------------
def _samples(v: View, data: ReportData) -> list:
    """Per run: its sample grid and its panel, copied into the report folder, laid out one column per
    value of ``x`` (the stylization study: one column per sampling database), one row per other setting."""
    df, x, out = v.df, v.x, data.out
    seeds = [s for s in data.swept if is_seed(s)]
    row_keys = [k for k in v.line_keys + seeds if k in df]
    srt = df[~df["_failed"]].sort_values(row_keys + [x, "run_id"], na_position="last", kind="stable")
    copied: dict[str, list] = {name: [] for name in PER_RUN}
    for _, r in srt.iterrows():
        for name in PER_RUN:
            src = data.results_dir / "runs" / r["run_id"] / name
            if src.is_file():
                folder = "samples" if name == "samples.png" else "panels"
                (out / folder).mkdir(exist_ok=True)
                shutil.copyfile(src, out / folder / f"{r['run_id']}.png")
                copied[name].append(r)
    blocks: list = []
    if copied["panel.png"]:
        blocks += [Text("Each panel row: a sample's query image, its k retrieved neighbours, the sample, and its "
                        "nearest training image in the metric's feature space. A sample that repeats its nearest "
                        "training image is a copy."),
                   _grid(v, copied["panel.png"], row_keys, "panels", data.swept, wide=True)]
    if copied["samples.png"]:
        blocks += [_grid(v, copied["samples.png"], row_keys, "samples", data.swept),
                   Figure("samples.png", "all sample grids", only="markdown")]
        _montage(v, copied["samples.png"], data)
    return blocks


def _grid(v: View, runs: list, row_keys: list[str], folder: str, swept: list[str], wide: bool = False) -> Gallery:
    import pandas as pd

    what = "Panels" if folder == "panels" else "Samples (queries | samples)"
    present = {r[v.x] for r in runs}
    xs = [val for val in v.ok[v.x].drop_duplicates().sort_values(na_position="last") if val in present]
    rows = list(dict.fromkeys(tuple(r[k] for k in row_keys) for r in runs))
    if 1 < len(xs) and len(xs) * len(rows) <= 2 * len(runs) and v.x != "run_id":
        cell = {(tuple(r[k] for k in row_keys), r[v.x]): r for r in runs}
        items = []
        for key in rows:
            for xv in xs:
                r = cell.get((key, xv))
                items.append((f"{folder}/{r['run_id']}.png", r["run_id"]) if r is not None else ("", ""))
        row_labels = [", ".join(f"{k}={num(val)}" for k, val in zip(row_keys, key) if pd.notna(val)) or "runs"
                      for key in rows]
        return Gallery(items, [f"{v.x}={num(xv)}" for xv in xs], row_labels,
                       caption=f"{what}, one column per {v.x}.", wide=wide)
    items = [(f"{folder}/{r['run_id']}.png",
              r["run_id"] + "".join(f", {k}={num(r[k])}" for k in swept
                                    if pd.notna(r[k]) and f"{k}=" not in r["run_id"]))
             for r in runs]
    return Gallery(items, caption=f"{what}, one per run.", wide=wide)


def _montage(v: View, shots: list, data: ReportData) -> None:
    """samples.png: every run's grid in one figure, for report.md readers."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    from PIL import Image

    nx = v.df[v.x].nunique()
    ncols = nx if 1 < nx <= 6 and len(shots) % nx == 0 else min(len(shots), 5)
    nrows = math.ceil(len(shots) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.8 * ncols, 3.2 * nrows), squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for ax, r in zip(axes.flat, shots):
        with Image.open(data.out / "samples" / f"{r['run_id']}.png") as im:
            ax.imshow(np.asarray(im.convert("RGB")))
        kv = [f"{k}={num(r[k])}" for k in data.swept if pd.notna(r[k])]
        sub = "" if all(s in r["run_id"] for s in kv) else ", ".join(kv)  # run_id often already says it
        ax.set_title(f"{r['run_id']}\n{sub}" if sub else r["run_id"], fontsize=9)
    fig.suptitle(f"{data.title}: samples", fontsize=11)
    _save(fig, data.out / "samples.png", dpi=130)
