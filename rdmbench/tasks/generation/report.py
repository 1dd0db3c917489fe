"""The generation task's report: a table of metrics with intervals, one figure per metric, the
precision–recall plane, and for every run its sample grid and its panel (each sample beside its
query, its k retrieved neighbours and its nearest training image), so a reader sees whether the
model copies.

A table row (and a figure point) aggregates runs whose resolved configurations
(``runs/<id>/config.yaml``) are equal but for the seed, never more: runs that share the swept
values shown but differ elsewhere get rows of their own, labelled with the keys that differ.
Each value carries its 95% bootstrap interval (``<metric>_lo``/``_hi``, rdmbench.stats); over
several seeds the row shows mean ± sample std of the seeds and Student's t interval of the mean over the seeds
(rdmbench.report.common.mean_interval), which holds the training-seed variance that one run's interval lacks.

A trained retrieval encoder's own fit columns (``Encoder.fit_columns``, declared with role ``FIT``) stand in the
table beside the scores, whatever metrics the suite lists, without figures (rdmbench.report.common.fit_names).
A metric's value expected by chance (its declared ``expected`` companion column) is a dashed line in its figure
and a note in its cells; a precision column declared with its ``recall`` column is drawn with it as a
precision–recall plane.

A suite whose sweep groups sweep different keys (top-m at guidance 1 beside guidance at top-m 1)
is split into parts, one per set of swept keys its runs carry: each part has its own x axis and
its own panel of every metric figure, and its own line in the precision–recall plane. One table
holds every run ("—" where a key does not apply to a run).

The builders are public, for another task's report to reuse (an audit's, say): ``view_of`` (how the runs
are laid out), ``summarise`` (one row per configuration, seeds aggregated), ``results_blocks`` and
``results_table``, ``figures`` (one per metric, and ``precision_recall_figure``), ``sample_galleries``;
``sections`` composes them into this task's report.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from typing import Any

from rdmbench.columns import Expected
from rdmbench.report.common import (config_groups, finite, fit_names, is_seed, labels, mean_interval, metric_names,
                                    num, one_line, shared_value)
from rdmbench.report.model import Cell, Figure, Gallery, Head, Legend, ReportData, Section, Table, Text

#: per-run images -> the report folder they are copied to (prompts.png: text-conditioned runs only)
PER_RUN = {"samples.png": "samples", "panel.png": "panels", "prompts.png": "prompts"}
#: declared columns that are neither settings shown per row nor header facts of this task's making
NOT_SETTINGS = ("error", "status", "run_id", "profile", "head_parameters")
SHORT = 40  # characters: a longer setting (a sentence) is listed under the table, not in a column


@dataclass
class Part:
    """Runs that sweep the same keys (their non-seed swept keys with a value): they share an x axis."""

    index: int
    keys: tuple[str, ...]
    x: str
    line_keys: list[str]       # each combination of their values is a line of the part's figures
    name: str                  # "" when the suite has one part

    def label(self, gv: Any = ()) -> str:
        """A legend entry: the part's name (several parts) and the values of its line keys."""
        vals = ", ".join(num(val) for val in (gv if isinstance(gv, tuple) else (gv,)))
        return "; ".join(p for p in (self.name, vals) if p)


@dataclass
class View:
    """How the runs are laid out: ``parts`` of runs sweeping the same keys, ``keys`` the table's."""

    df: Any
    ok: Any
    parts: list[Part]
    keys: list[str]            # every part's x and line keys (all its keys where there are several parts)
    metrics: list[str]         # with a value in some successful run
    fits: list[str]            # a trained encoder's fit columns with a value (role ``FIT``): table, no figure
    unmeasured: list[str]      # asked for but without any value
    aux: list[str]             # aggregated into summary.csv only
    settings: list[str]        # declared settings whose value differs between runs: a table column each
    labels: dict[str, str]
    params: bool               # head_parameters recorded
    expected: dict[str, Expected]  # metric -> its declared value expected by chance, where that column is recorded


def sections(data: ReportData) -> list[Section]:
    import matplotlib

    matplotlib.use("Agg")
    v = view_of(data)
    table = summarise(v, data)
    out = [Section("Results", results_blocks(v, table, data)),
           Section("Figures", figures(v, table, data))]
    galleries = sample_galleries(v, data)
    if galleries:
        out.append(Section("Samples", galleries))
    return out


def view_of(data: ReportData) -> View:
    import pandas as pd

    df, wish, swept = data.frame, data.wish, data.swept
    for k in swept + [wish.get("x"), wish.get("hue")]:  # numeric sweeps sort and plot as numbers
        if k in df and df[k].notna().any():
            conv = pd.to_numeric(df[k], errors="coerce")
            if conv.notna().sum() == df[k].notna().sum():
                df[k] = conv
    parts = _parts(df, data)
    keys: list[str] = []
    for p in parts:
        keys += [k for k in dict.fromkeys([p.x, *p.line_keys, *(p.keys if len(parts) > 1 else ())]) if k not in keys]
    # never average runs whose configs differ other than by seed: such runs get rows of their own
    df["_config"], config = config_groups(df, data.results_dir, shown=keys,
                                          ignore=("seed", *[k for k in swept if is_seed(k)]))
    # the label is needed only where equal shown values hide different configs (k_train also sets sample.k)
    hidden = df.groupby(keys + ["_part"], dropna=False)["_config"].nunique(dropna=False).gt(1).any()
    if hidden and any(config):
        df["config"] = config
        keys.append("config")
        for p in parts:
            p.line_keys.append("config")

    declared = [m for m in metric_names(data.columns) if m in df]
    wanted = list(wish.get("metrics") or declared)
    # what a trained encoder reports of its own fit is shown beside the scores whatever the suite's list of
    # metrics (which picks among the sample metrics), unless that list names it itself
    fit = [c for c in fit_names(data.columns) if c in df and c not in wanted]
    # a reference value (chance, expected share) is aggregated like the metric it goes with
    expected = {m: e for m in wanted if m in data.columns and (e := data.columns[m].expected) and e.column in df}
    refs = [e.column for e in expected.values()]
    aux = [c for c, col in data.columns.items() if c in df and col.summary and col.better is None
           and c not in fit] + refs
    for c in {*wanted, *aux, *fit} & set(df):
        for col in (c, c + "_lo", c + "_hi"):
            if col in df:
                df[col] = pd.to_numeric(df[col], errors="coerce")
    ok = df[~df["_failed"]]
    metrics = [m for m in wanted if m in df and ok[m].notna().any()]
    fits = [c for c in fit if ok[c].notna().any()]
    aux = [a for a in dict.fromkeys(aux) if a not in metrics and ok[a].notna().any()]
    # a setting with one value in every run is a header fact (rdmbench.report.header); any other is shown
    # per row, so that no run is described by another's value
    settings = [c for c, col in data.columns.items()
                if c in ok and not col.summary and col.better is None and c not in NOT_SETTINGS
                and c not in keys and c not in data.swept and c not in refs and ok[c].notna().any()
                and shared_value(ok, c) is None]
    fx = [str(v) for v in ok["feature_extractor"].dropna().unique()] if "feature_extractor" in ok else []
    # a column of its own unless it is already a key (the suite's x)
    params = "head_parameters" in df and "head_parameters" not in keys and ok["head_parameters"].notna().any()
    return View(df, ok, parts, keys, metrics, fits, [m for m in wanted if m not in metrics], aux, settings,
                labels(data.columns, fx), bool(params), expected)


def _parts(df: Any, data: ReportData) -> list[Part]:
    """Split runs by the non-seed swept keys they carry; sets ``df["_part"]``."""
    import pandas as pd

    wish, non_seed = data.wish, [k for k in data.swept if not is_seed(k)]
    sigs = [tuple(k for k, v in zip(non_seed, vals) if pd.notna(v)) for vals in zip(*[df[k] for k in non_seed])]
    sigs = sigs or [()] * len(df)
    order = list(dict.fromkeys(sigs))
    df["_part"] = [order.index(s) for s in sigs]
    parts = []
    for i, keys in enumerate(order):
        rows = df[df["_part"] == i]
        want_x, want_hue = wish.get("x"), wish.get("hue")
        # the suite's x where this part sweeps it, or where every run of it has a value (an unswept column)
        if want_x is not None and (want_x in keys or (want_x in df and want_x not in non_seed
                                                        and rows[want_x].notna().all())):
            x: str = want_x
        else:
            x = keys[0] if keys else "run_id"
        hue = want_hue if want_hue in keys and want_hue != x else None
        # a key that x and hue already decide (a zip's label beside the widths it names) splits no line
        by = [c for c in (x, hue) if c]
        line_keys = ([hue] if hue else []) + [k for k in keys if k not in (x, hue) and rows[k].nunique() > 1
                                              and not (x != "run_id" and _decided(rows, k, by))]
        name = f"{', '.join(keys) or 'unswept'} sweep" if len(order) > 1 else ""
        parts.append(Part(i, keys, x, line_keys, name))
    return parts


def _decided(rows: Any, key: str, by: list[str]) -> bool:
    """Whether every combination of the ``by`` columns' values goes with one value of ``key``."""
    return bool(rows.groupby(by, dropna=False)[key].nunique(dropna=False).le(1).all())


def summarise(v: View, data: ReportData) -> Any:
    """One row per configuration (seeds aggregated), written to summary.csv."""
    import numpy as np
    import pandas as pd

    rows = []
    for vals, g in v.df.groupby(v.keys + ["_part", "_config"], dropna=False, sort=False):
        r = dict(zip(v.keys + ["_part"], vals))
        good = g[~g["_failed"]]
        r["n"], r["n_failed"] = len(good), int(g["_failed"].sum())
        seeds = good["seed"] if "seed" in good else [0] * len(good)  # one run per seed: what is paired across rows
        r["_runs"] = {int(s): str(run_id) for s, run_id in zip(seeds, good["run_id"]) if pd.notna(s)}
        if v.params:
            hp = good["head_parameters"].dropna()
            r["head_parameters"] = hp.iloc[0] if len(hp) else np.nan
        for c in v.settings:
            r[c] = _setting(good[c])
        for c in v.metrics + v.fits + v.aux:
            vals_ = good[c].dropna()
            r[f"{c}_mean"] = vals_.mean() if len(vals_) else np.nan
            r[f"{c}_std"] = vals_.std(ddof=1) if len(vals_) > 1 else np.nan
            r[f"{c}_lo"], r[f"{c}_hi"] = mean_interval(good, c) if c + "_lo" in good else (np.nan, np.nan)
        rows.append(r)
    cols = v.keys + ["_part", "_runs", "n", "n_failed"] + (["head_parameters"] if v.params else []) + v.settings + [
        f"{c}_{s}" for c in v.metrics + v.fits + v.aux for s in ("mean", "std", "lo", "hi")]
    summary = pd.DataFrame(rows, columns=cols)
    # numbers sort as numbers, anything else in the suite's order (its baseline first), not alphabetically
    first = {k: {val: i for i, val in enumerate(dict.fromkeys(v.df[k]))} for k in v.keys}
    summary = summary.sort_values(["_part"] + v.keys, na_position="last", kind="stable",
                                  key=lambda s: s if s.name == "_part" or pd.api.types.is_numeric_dtype(s)
                                  else s.map(first[s.name]))
    summary = summary.reset_index(drop=True)
    out = summary.drop(columns=["_part", "_runs"])
    if len(v.parts) > 1:
        out.insert(len(v.keys), "sweep", [", ".join(v.parts[i].keys) for i in summary["_part"]])
    out.to_csv(data.out / "summary.csv", index=False)
    return summary


def _setting(values: Any) -> str:
    """A setting's value in one row's runs; "(2 of 3 runs)" where only some runs have it."""
    have = values.dropna()
    if not len(have):
        return ""
    text = "; ".join(dict.fromkeys(one_line(num(val)) for val in have))
    return text + (f" ({len(have)} of {len(values)} runs)" if len(have) < len(values) else "")


def results_blocks(v: View, summary: Any, data: ReportData) -> list[Any]:
    seeds = [s for s in data.swept if is_seed(s)]
    note = (f"Aggregated over {'seeds (' + ', '.join(seeds) + ')' if seeds else 'repeated runs'}: mean ± sample std "
            "when n > 1; n counts successful runs. [lo, hi]: one run: 95% bootstrap interval over resamples of its "
            "generated samples (sample variance only); several seeds: 95% Student-t interval of the mean over the "
            "seeds (training-seed and sample variance). ★ marks a column's best only where the paired comparison "
            "decides it: better than every other row on their shared seeds (Student's t over the seeds' paired "
            "differences; with one seed, the paired bootstrap, and only between samplings of one trained head), "
            "Holm-corrected over the column; overlapping intervals are not compared by eye. Runs are averaged only when their resolved configs differ by the seed alone "
            "(summary.csv: `<metric>_mean`, `_std`, `_lo`, `_hi`).")
    blocks: list[Any] = []
    if len(v.parts) > 1:
        sweeps = "; ".join(f"{(summary['_part'] == p.index).sum()} row(s) sweep "
                           + (", ".join(f"`{k}`" for k in p.keys) or "nothing") for p in v.parts)
        blocks.append(Text(f"The runs sweep {len(v.parts)} different sets of keys: {sweeps}. A key a run does not "
                           "sweep shows as —; each sweep has its own x axis in the figures."))
    if "config" in v.keys:
        blocks.append(Text("Runs with equal swept values but different configs are kept apart; `config` names the "
                           "keys that differ."))
    blocks += [Text(note), results_table(v, summary, data), *_long_settings(v, summary, data)]
    if v.fits:
        blocks.append(Text("The retrieval encoder is trained on each run's training set. Its fit's own quality is "
                           "in " + ", ".join(f"**{v.labels.get(c, c)}**" for c in v.fits) + " (column "
                           "`encoder_<key>` holds the fit report's `<key>`): measured once per fit and shared by the "
                           "runs that share it, a property of the retrieval space, not a score of the samples."))
    # what each column means, from its declaration (suite.json), for the columns shown
    shown = v.metrics + [e.column for m, e in v.expected.items() if m in v.metrics and e.column in v.aux] + v.fits
    notes = [(v.labels.get(c, c), data.columns[c].description) for c in shown
             if c in data.columns and data.columns[c].description]
    if notes:
        blocks.append(Legend(notes))
    if v.unmeasured:
        blocks.append(Text(f"Metrics without values (not measured or all NaN): {', '.join(v.unmeasured)}."))
    return blocks


def _long_settings(v: View, summary: Any, data: ReportData) -> list[Text]:
    """Settings with a sentence for a value (why a metric was skipped): one line per value, naming its rows."""
    import pandas as pd

    short, out = _short_settings(v, summary), []
    for c in [c for c in v.settings if c not in short]:
        named: dict[str, list[str]] = {}
        for _, r in summary.iterrows():
            row = ", ".join(f"{k}={num(r[k])}" for k in v.keys if pd.notna(r[k])) or "unswept"
            named.setdefault(r[c], []).append(f"`{row}`")
        for value, rows in named.items():
            out.append(Text(f"**{v.labels.get(c, c)}** in {', '.join(rows)}: {value or 'none'}."))
    return out


def _short_settings(v: View, summary: Any) -> list[str]:
    """Settings whose values are short enough for a table column."""
    return [c for c in v.settings if summary[c].astype(str).str.len().max() <= SHORT]


def results_table(v: View, summary: Any, data: ReportData) -> Table:
    import pandas as pd

    header = [Head(k, numeric=k != "config" and pd.api.types.is_numeric_dtype(summary[k])) for k in v.keys]
    header.append(Head("n", numeric=True, description="successful runs aggregated in this row"))
    if v.params:
        header.append(Head("head parameters", numeric=True))
    short = _short_settings(v, summary)
    for c in short:
        header.append(Head(v.labels.get(c, c), description=data.columns[c].description))
    for m in v.metrics + v.fits:
        col = data.columns.get(m)
        header.append(Head(v.labels.get(m, m), col.better if col else None, col.description if col else "", True))
    from rdmbench.scorecard import Results

    try:  # read once: every column's comparisons pair the same runs' files
        res = Results(data.results_dir)
    except (OSError, ValueError):
        res = None
    best = {m: _decided_best(summary, m, data, res) for m in v.metrics + v.fits}
    rows = []
    for i, (_, r) in enumerate(summary.iterrows()):
        cells = [Cell(one_line(num(r[k])) if pd.notna(r[k]) else "—") for k in v.keys]
        cells.append(Cell(f"{int(r['n'])}" + (f" ({int(r['n_failed'])} failed)" if r["n_failed"] else "")))
        if v.params:
            cells.append(Cell(f"{r['head_parameters']:,.0f}" if pd.notna(r["head_parameters"]) else "—"))
        cells += [Cell(r[c] or "—") for c in short]
        for m in v.metrics + v.fits:
            cell = _metric_cell(r, m, v.expected.get(m))
            cell.best = None if best[m] is False else best[m] == i
            cells.append(cell)
        rows.append(cells)
    return Table(header, rows)


def _decided_best(summary: Any, m: str, data: ReportData, res: Any) -> int | bool:
    """The summary row whose ``m`` the paired comparison decides best (rdmbench.scorecard.decided_best), -1
    where it decides none; False for a column with no better direction (nothing to mark)."""
    from rdmbench.scorecard import decided_best

    col = data.columns.get(m)
    if col is None or col.better is None:
        return False
    if res is None:
        return -1
    found = decided_best(res, list(summary["_runs"]), m, col.better)
    return -1 if found is None else found


def _metric_cell(r: Any, m: str, expected: Expected | None) -> Cell:
    mu, sd = finite(r[f"{m}_mean"]), finite(r[f"{m}_std"])
    if mu is None:
        return Cell("—")
    if sd is not None and sd < 1e-9 * max(abs(mu), 1):
        sd = 0.0  # float noise of equal values
    text = f"{mu:.4g}" + (f" ± {sd:.2g}" if sd is not None else "")
    lo, hi = finite(r[f"{m}_lo"]), finite(r[f"{m}_hi"])
    note = ""
    if expected is not None and finite(r.get(f"{expected.column}_mean")) is not None:
        note = f"({expected.word} {r[f'{expected.column}_mean']:.3g})"
    return Cell(text, mu, lo if hi is not None else None, hi if lo is not None else None, note)


# ---- figures --------------------------------------------------------------------------------------
def figures(v: View, summary: Any, data: ReportData) -> list[Any]:
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    several = len(v.parts) > 1
    figs: list[Any] = []
    for m in v.metrics:
        parts = [p for p in v.parts if summary.loc[summary["_part"] == p.index, f"{m}_mean"].notna().any()]
        wide = any(p.line_keys for p in parts)
        # one panel per part, sharing the metric's axis so that the sweeps' levels compare
        fig, axes = plt.subplots(1, len(parts), figsize=((8 if wide else 6) if len(parts) == 1 else 5.5 * len(parts),
                                                         4), sharey=True, squeeze=False)
        with_bars = False
        for ax, p in zip(axes[0], parts):
            with_bars |= _lineplot(ax, p, summary[summary["_part"] == p.index], m)
            if m in v.expected and v.ok[v.expected[m].column].notna().any():
                _reference_line(ax, p, summary[summary["_part"] == p.index], *v.expected[m])
            if p.line_keys or ax.get_legend_handles_labels()[0]:
                ax.legend(title=",\n".join(p.line_keys) or None, fontsize=8 if several else 9)
            if several:
                ax.set_title(p.name, fontsize=10)
        col = data.columns.get(m)
        arrow = {"lower": "↓ better", "higher": "↑ better"}.get((col.better if col else None) or "", "")
        has_ci = f"{m}_lo" in v.ok and v.ok[f"{m}_lo"].notna().any()
        bar_note = "bars: 95% interval (table note)" if has_ci else ("bars: ±sd over seeds" if with_bars
                                                                   else "no interval recorded")
        label = v.labels.get(m, m)
        note = "; ".join(p for p in (arrow, bar_note) if p)
        axes[0][0].set_ylabel(label)
        if several:
            fig.suptitle(f"{label} ({note})", fontsize=11)
        else:
            axes[0][0].set_title(f"{label}\n({note})")
            if parts[0].line_keys and axes[0][0].get_legend():
                sns.move_legend(axes[0][0], "upper left", bbox_to_anchor=(1.01, 1), frameon=False)
        _save(fig, data.out / f"metric_{m}.png")
        against = f"one panel per sweep, against {', '.join(p.x for p in parts)}" if several else f"against {p.x}"
        missing = [p.name for p in v.parts if p not in parts]
        figs.append(Figure(f"metric_{m}.png", f"{label}{':' if several else ''} {against}; {bar_note}"
                                              + (f"; no value in the {', '.join(missing)}" if missing else ""),
                           wide=len(parts) > 1))
    for m in v.metrics:  # a precision column declared with its recall column, both measured
        recall = data.columns[m].recall if m in data.columns else None
        if recall in v.metrics:
            figs.append(precision_recall_figure(v, summary, data.out, m, recall))
    return figs


def _reference_line(ax: Any, p: Part, summary: Any, ref: str, name: str) -> None:
    """The value expected by chance (or of novel samples) as a dashed line: one level when it is the same at
    every x, else a dashed step per x (class agreement's chance is 1/3 over 3 classes, 1/10 over 10)."""
    import numpy as np
    import pandas as pd

    per_x = summary.groupby(p.x, sort=False)[f"{ref}_mean"].mean().dropna()
    if per_x.empty:
        return
    if per_x.max() - per_x.min() <= 0.02 * max(abs(per_x.mean()), 1e-12):
        ax.axhline(per_x.mean(), color="gray", ls="--", label=f"{name} ({per_x.mean():.3g})")
        return
    xnum = pd.api.types.is_numeric_dtype(summary[p.x])
    order = list(summary[p.x].dropna().unique())
    pos = per_x.index.to_numpy(float) if xnum else np.array([order.index(o) for o in per_x.index], float)
    ax.hlines(per_x.to_numpy(), pos - 0.4 if not xnum else pos * 0.9, pos + 0.4 if not xnum else pos * 1.1,
              colors="gray", linestyles="--", label=f"{name} (per {p.x})")


def _lineplot(ax: Any, p: Part, summary: Any, m: str) -> bool:
    """One part's means of ``m`` against its x, with error bars, one line per value of its line keys;
    returns whether any interval was drawn."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import seaborn as sns

    x = p.x
    xnum = pd.api.types.is_numeric_dtype(summary[x]) and summary[x].notna().any()
    xv = sorted(summary[x].dropna().unique()) if xnum else []
    # a sweep over orders of magnitude (k = 1..16, top-m = 0.01..1) spreads on a log axis
    log = xnum and len(xv) >= 3 and xv[0] > 0 and xv[-1] / xv[0] >= 8
    log2 = log and all(float(v_).is_integer() and (int(v_) & (int(v_) - 1)) == 0 for v_ in xv)
    order = list(summary[x].dropna().unique())
    lines = _lines(p, summary)
    colours = sns.color_palette(n_colors=max(len(lines), 1))
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
                    label=_line_label(gv) if p.line_keys else None, ms=5)
    if xnum:
        if log:
            ax.set_xscale("log", base=2 if log2 else 10)
        ax.set_xticks(xv if len(xv) <= 12 else ax.get_xticks())
        ax.set_xticklabels([num(float(t)) for t in ax.get_xticks()])
        ax.minorticks_off()
    else:
        ax.set_xticks(range(len(order)), [str(num(o)) for o in order])
        ax.set_xlim(-0.5, len(order) - 0.5)  # categories sit in the middle, not on the frame
        if max((len(str(o)) for o in order), default=0) > 8:
            # anchored at their right end, so that neighbouring long labels do not run into each other
            plt.setp(ax.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")
    ax.set_xlabel(x)
    return drawn


def _lines(p: Part, summary: Any) -> list[Any]:
    """(values of the line keys, rows) for each line of a part, its rows sorted along x."""
    if not p.line_keys:
        return [((), summary)]
    return list(summary.groupby(p.line_keys, dropna=False, sort=False))


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


def _extent(lines: list[Any], m: str) -> tuple[float, float]:
    """Lowest and highest value of metric ``m`` over the lines' points, interval ends included."""
    import numpy as np

    parts = [g[c].to_numpy(float) for _, _, g in lines for c in (f"{m}_mean", f"{m}_lo", f"{m}_hi") if c in g]
    vals = np.concatenate(parts) if parts else np.array([0.0, 1.0])
    vals = vals[np.isfinite(vals)]
    return (float(vals.min()), float(vals.max())) if len(vals) else (0.0, 1.0)


def precision_recall_figure(v: View, summary: Any, out: Any, precision: str, recall: str) -> Figure:
    """Every part's lines in one plane of the ``precision`` column against its ``recall`` column (the paper's
    Fig. 13: a top-m curve and a guidance curve), each point labelled by its part's swept value."""
    import logging

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import seaborn as sns
    from adjustText import adjust_text

    several = len(v.parts) > 1
    name = f"{precision}_{recall}.png"
    x_label, y_label = v.labels.get(recall, recall), v.labels.get(precision, precision)
    lines = [(p, gv, g) for p in v.parts for gv, g in _lines(p, summary[summary["_part"] == p.index])
             if (g[f"{precision}_mean"].notna() & g[f"{recall}_mean"].notna()).any()]
    legend = several or any(p.line_keys for p, _, _ in lines)
    fig, ax = plt.subplots(figsize=(8.5 if several else 7.5 if legend else 5.5, 5))
    f = np.linspace(0.01, 1, 200)
    for fs in (0.2, 0.4, 0.6, 0.8):  # iso-F1 curves for orientation
        r = fs * f / (2 * f - fs)
        ax.plot(f[r > 0], np.where(r > 0, r, np.nan)[r > 0], color="lightgray", lw=0.8, zorder=0)
        ax.annotate(f"F1={fs}", (fs * 0.6 / (1.2 - fs), 0.6), fontsize=7, color="gray", ha="left", va="bottom",
                    annotation_clip=True)
    colours = sns.color_palette(n_colors=max(len(lines), 1))
    labels = []
    for (p, gv, g), col in zip(lines, colours):
        g = g[g[f"{precision}_mean"].notna() & g[f"{recall}_mean"].notna()]
        ordered = pd.api.types.is_numeric_dtype(summary[p.x])  # a line joins only points of an ordered sweep
        ax.errorbar(g[f"{recall}_mean"], g[f"{precision}_mean"], xerr=_bars(g, recall)[0],
                    yerr=_bars(g, precision)[0], fmt="o-" if ordered else "o", color=col, capsize=3,
                    label=p.label(gv) if legend else None)
        labels += [ax.text(r[f"{recall}_mean"], r[f"{precision}_mean"], num(r[p.x]), fontsize=9,
                           color=col if several else "black", zorder=5,
                           bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
                   for _, r in g.iterrows()]
    (x0, x1), (y0, y1) = _extent(lines, recall), _extent(lines, precision)
    # zoomed to the points (square, so a slope reads the same on both axes) unless they fill the plane
    half = max(x1 - x0, y1 - y0, 0.1) / 2 + 0.03
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    zoom = half < 0.45
    ax.set(xlim=(max(0.0, cx - half), min(1.05, cx + half)) if zoom else (0, 1.05),
           ylim=(max(0.0, cy - half), min(1.05, cy + half)) if zoom else (0, 1.05), xlabel=x_label,
           ylabel=y_label, title=f"{y_label}–{x_label}" + ("" if several else f" (points labelled by {v.parts[0].x})"))
    ax.set_aspect("equal")
    # moved off each other and off the points once the axes are final (labels of close points overlapped); a label
    # wider than the axes (points all at one corner) is placed as well as it goes, without a warning per iteration
    logging.getLogger("adjustText").setLevel(logging.ERROR)
    adjust_text(labels, ax=ax, x=[t.get_position()[0] for t in labels], y=[t.get_position()[1] for t in labels],
                expand=(1.3, 1.6), arrowprops={"arrowstyle": "-", "color": "gray", "lw": 0.5})
    if legend:
        title = "sweep (points labelled by its value)" if several else ", ".join(v.parts[0].line_keys)
        ax.legend(fontsize=9, title=title, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    _save(fig, out / name)
    per = ("one line per sweep (" + "; ".join(f"{p.name}: points labelled by {p.x}" for p in v.parts) + ")"
           if several else f"one point per {v.parts[0].x}")
    return Figure(name, f"{y_label} against {x_label}, {per}; up and right is better; "
                        "grey: iso-F1 curves" + ("; axes zoomed to the points" if zoom else ""))


def _save(fig: Any, path: Any, dpi: int = 110) -> None:
    import matplotlib.pyplot as plt

    if not fig.get_constrained_layout():
        fig.tight_layout()
    fig.savefig(path, dpi=dpi, bbox_inches="tight")  # an outside legend or a long title is kept whole
    plt.close(fig)


# ---- samples and panels ---------------------------------------------------------------------------
def sample_galleries(v: View, data: ReportData) -> list[Any]:
    """Per run: its sample grid and its panel, copied into the report folder, laid out per part one
    column per value of its x (the stylization study: one column per sampling database), one row per
    other setting."""
    df, out = v.df, data.out
    seeds = [s for s in data.swept if is_seed(s)]
    copied: dict[str, list[Any]] = {name: [] for name in PER_RUN}
    for _, r in df[~df["_failed"]].iterrows():
        for name in PER_RUN:
            src = data.results_dir / "runs" / r["run_id"] / name
            if src.is_file():
                folder = PER_RUN[name]
                (out / folder).mkdir(exist_ok=True)
                shutil.copyfile(src, out / folder / f"{r['run_id']}.png")
                copied[name].append(r)
    blocks: list[Any] = []
    for name in ("panel.png", "prompts.png", "samples.png"):
        folder = PER_RUN[name]
        if not copied[name]:
            continue
        if folder == "panels":
            blocks.append(Text("Each panel row: a sample's query image, its k retrieved neighbours, the sample, and "
                               "its nearest training image in the metric's feature space. A sample that repeats its "
                               "nearest training image is a copy. Click an image for its file."))
        for p in v.parts:
            runs = [r for r in copied[name] if r["_part"] == p.index]
            if runs:
                row_keys = [k for k in p.line_keys + seeds if k in df]
                blocks.append(_grid(p, _sorted(runs, row_keys + [p.x]), row_keys, out, folder, data.swept))
    if copied["samples.png"]:
        blocks.append(Figure("samples.png", "all sample grids", only="markdown"))
        _montage(v, [r for p in v.parts for r in copied["samples.png"] if r["_part"] == p.index], data)
    return blocks


def _sorted(runs: list[Any], keys: list[str]) -> list[Any]:
    """Runs sorted by ``keys``: numbers as numbers, anything else in the suite's order."""
    import pandas as pd

    def rank(r: Any) -> tuple[Any, ...]:
        return tuple((pd.isna(r[k]), r[k] if pd.api.types.is_number(r[k]) and pd.notna(r[k]) else 0) for k in keys)
    return sorted(runs, key=rank)  # stable: equal numbers keep results.csv's order


def _grid(p: Part, runs: list[Any], row_keys: list[str], out: Any, folder: str, swept: list[str]) -> Gallery:
    import pandas as pd

    what = {"panels": "Panels", "prompts": "Samples per prompt (one row per prompt)"}.get(folder,
                                                                                     "Samples (queries | samples)")
    sizes = {f"{folder}/{r['run_id']}.png": _size(out / folder / f"{r['run_id']}.png") for r in runs}
    of = f" of the {p.name}" if p.name else ""
    xs = list(dict.fromkeys(r[p.x] for r in runs))
    rows = list(dict.fromkeys(tuple(r[k] for k in row_keys) for r in runs))
    if 1 < len(xs) and len(xs) * len(rows) <= 2 * len(runs) and p.x != "run_id":
        cell = {(tuple(r[k] for k in row_keys), r[p.x]): r for r in runs}
        items = []
        for key in rows:
            for xv in xs:
                r = cell.get((key, xv))
                items.append((f"{folder}/{r['run_id']}.png", r["run_id"]) if r is not None else ("", ""))
        row_labels = [", ".join(f"{k}={num(val)}" for k, val in zip(row_keys, key) if pd.notna(val)) or "runs"
                      for key in rows]
        return Gallery(items, [f"{p.x}={num(xv)}" for xv in xs], row_labels,
                       caption=f"{what}{of}, one column per {p.x}.", sizes=sizes)
    items = [(f"{folder}/{r['run_id']}.png",
              r["run_id"] + "".join(f", {k}={num(r[k])}" for k in swept
                                    if pd.notna(r[k]) and f"{k}=" not in r["run_id"]))
             for r in runs]
    return Gallery(items, caption=f"{what}{of}, one per run.", sizes=sizes)


def _size(path: Any) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def _montage(v: View, shots: list[Any], data: ReportData) -> None:
    """samples.png: every run's grid in one figure, for report.md readers."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    from PIL import Image

    nx = v.df[v.parts[0].x].nunique() if len(v.parts) == 1 else 0
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
