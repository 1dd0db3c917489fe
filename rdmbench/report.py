"""Turn ``results/<suite>/`` (results.csv, suite.json, runs/*/samples.png) into a report folder:
report.md, summary.csv (metrics aggregated over seeds) and seaborn figures.

A table row (and a figure point) aggregates runs whose resolved configurations
(``runs/<id>/config.yaml``) are equal but for the seed, never more: runs that share the swept
values shown but differ elsewhere get rows of their own, labelled with the keys that differ.
Each value carries its 95% bootstrap interval (``<metric>_lo``/``_hi``, rdmbench.stats); over
several seeds the row shows mean ± sample std of the seeds and an interval for the mean.

Heavy imports (pandas, seaborn, matplotlib) happen inside :func:`write_report` so the CLI starts fast.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

from rdmbench.errors import RdmbenchError

METRICS = ("fid", "kid", "is", "precision", "recall", "f_score", "class_agreement", "classifier_acc", "retrieval_recall")
AUX = ("kid_std", "is_std", "class_agreement_chance", "wall_s", "train_s", "sample_s")  # summary.csv only
KNOWN = ("run_id", "status", "error", "feature_extractor", "encoder", "num_samples", "num_reference", "profile",
         "head_parameters", "pr_set_size", "bootstrap_s", "config_hash")
CI = ("_lo", "_hi")
FIGS = ("precision_recall.png", "class_agreement.png", "samples.png", "pareto_recall_qps.png",
        "pareto_recall_qps_single.png")
LOWER_IS_BETTER = {"fid", "kid"}
LABELS = {"fid": "FID", "kid": "KID", "is": "IS", "f_score": "F-score", "class_agreement": "class agreement",
          "classifier_acc": "classifier accuracy", "retrieval_recall": "retrieval recall@k_train"}
#: metrics whose value depends on the feature extractor's space; named after it unless it is Inception-v3
SPACE_DEPENDENT = ("fid", "kid", "is")


def metric_labels(extractors: list[str]) -> dict[str, str]:
    """Display names: "FID" only for Inception-v3 features, "FD (<extractor>)" otherwise (and KID, IS alike)."""
    labels = dict(LABELS)
    if extractors and all("inception" in v.lower() and "v3" in v.lower() for v in extractors):
        return labels
    short = ", ".join(dict.fromkeys(v.split(" (")[0] for v in extractors)) or "unrecorded features"
    labels.update({"fid": f"FD ({short})", "kid": f"KID ({short})", "is": f"IS ({short})"})
    return labels


def _flat(obj, prefix: str = "") -> dict:
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() for k, v in _flat(val, f"{prefix}{key}.").items()}
    return {prefix[:-1]: obj}


def config_groups(df, results_dir: Path, shown: list[str], ignore: tuple[str, ...] = ("seed",)) -> tuple[list, list]:
    """Per row: an id of its resolved config (``runs/<id>/config.yaml``) minus the ``ignore`` keys,
    None where that file is missing, and a label naming the keys, other than the ``shown`` ones, in
    which its config differs from other rows'."""
    import yaml

    flats: list[dict | None] = []
    for run_id in df["run_id"]:
        path = results_dir / "runs" / str(run_id) / "config.yaml"
        if not path.is_file():
            flats.append(None)
            continue
        flat = _flat(yaml.safe_load(path.read_text()) or {})
        flats.append({k: v for k, v in flat.items() if not any(k == i or k.startswith(i + ".") for i in ignore)})
    ids = [None if f is None else hashlib.sha256(json.dumps(f, sort_keys=True, default=str).encode()).hexdigest()[:12]
           for f in flats]
    known = [f for f in flats if f is not None]
    # a key only some rows have is another plugin's argument (exact has no nlist): it tells configurations
    # apart only where two rows that both have it disagree
    values = {k: {json.dumps(f[k], sort_keys=True, default=str) for f in known if k in f}
              for k in {k for f in known for k in f}}
    differ = sorted(k for k, v in values.items() if len(v) > 1 and k not in shown)
    labels = ["" if f is None else ", ".join(f"{k}={_num(f[k])}" for k in differ if k in f) for f in flats]
    return ids, labels


def _mean_interval(runs, col: str) -> tuple[float, float]:
    """Interval of the mean over seeds from each seed's bootstrap interval: the half-widths below and
    above each value add in quadrature and shrink by the number of seeds (independent draws)."""
    import numpy as np

    v = runs[[col, col + "_lo", col + "_hi"]].dropna()
    if not len(v):
        return np.nan, np.nan
    mean, n = v[col].mean(), len(v)
    below = np.sqrt(((v[col] - v[col + "_lo"]) ** 2).sum()) / n
    above = np.sqrt(((v[col + "_hi"] - v[col]) ** 2).sum()) / n
    return float(mean - below), float(mean + above)


def _num(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _cell(s) -> str:
    return " ".join(str(s).split()).replace("|", "\\|")


def _is_seed(key: str) -> bool:
    return key == "seed" or key.endswith(".seed")


def write_report(results_dir: Path, out_dir: Path | None = None) -> Path:
    """Write report.md, summary.csv and figures for one suite's results; returns the report.md path."""
    results_dir = Path(results_dir)
    csv_path = results_dir / "results.csv"
    if not csv_path.is_file():
        raise RdmbenchError(f"no results to report: {csv_path} does not exist "
                            f"(`rdmbench run <suite.yaml>` writes it).")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import seaborn as sns

    try:
        df = pd.read_csv(csv_path)
    except pd.errors.EmptyDataError:
        raise RdmbenchError(f"{csv_path} is empty; re-run `rdmbench run` for this suite.") from None
    meta_path = results_dir / "suite.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    wish = meta.get("report") or {}
    out = Path(out_dir) if out_dir is not None else results_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("metric_*.png"), *out.glob("samples/*.png")] + [out / f for f in FIGS]:
        old.unlink(missing_ok=True)  # stale figures from an earlier report; nothing else is touched

    if "run_id" not in df:
        df["run_id"] = [f"run{i}" for i in range(len(df))]
    df["run_id"] = df["run_id"].astype(str)
    status = df["status"].astype(str).str.lower() if "status" in df else pd.Series("ok", index=df.index)
    failed = status.eq("failed") | status.eq("error")
    if "error" in df and "status" not in df:
        failed = df["error"].notna()
    df["_failed"] = failed

    swept = [k for k in (meta.get("swept_keys") or []) if k in df] if "swept_keys" in meta else [
        c for c in df if c not in METRICS + AUX + KNOWN and not c.startswith("_")]  # no suite.json: guess
    if "qps" in df:  # a retrieval suite: Pareto fronts instead of metric-vs-sweep plots
        return _write_retrieval(df, meta, out, swept, wish.get("title") or meta.get("suite") or results_dir.name,
                                results_dir)
    for k in swept + [wish.get("x"), wish.get("hue")]:  # numeric sweeps sort and plot as numbers
        if k in df and df[k].notna().any():
            conv = pd.to_numeric(df[k], errors="coerce")
            if conv.notna().sum() == df[k].notna().sum():
                df[k] = conv
    non_seed = [k for k in swept if not _is_seed(k)]
    x = wish.get("x") if wish.get("x") in df else (non_seed[0] if non_seed else "run_id")
    hue = wish.get("hue") if wish.get("hue") in df and wish.get("hue") != x else None
    extra = [k for k in non_seed if k not in (x, hue) and df[k].nunique() > 1]
    plot_hue = hue or (extra[0] if extra else None)
    keys = [x] + ([hue] if hue else []) + extra
    # never average runs whose configs differ other than by seed: such runs get rows of their own
    df["_config"], labels = config_groups(df, results_dir, shown=keys, ignore=("seed", *[k for k in swept if _is_seed(k)]))
    # the label is needed only where equal shown values hide different configs (k_train also sets sample.k)
    hidden = df.groupby(keys, dropna=False)["_config"].nunique(dropna=False).gt(1).any() if keys else False
    if hidden and any(labels):
        df["config"] = labels
        keys.append("config")
        plot_hue = plot_hue or "config"

    wanted = list(wish.get("metrics") or [m for m in METRICS if m in df])
    missing = [m for m in wanted if m not in df]
    for m in set(wanted) - set(missing) | {a for a in AUX if a in df} | {m + e for m in wanted for e in CI if m + e in df}:
        df[m] = pd.to_numeric(df[m], errors="coerce")
    ok = df[~df["_failed"]]
    metrics = [m for m in wanted if m in df and ok[m].notna().any()]
    empty = [m for m in wanted if m in df and m not in metrics]
    aggcols = metrics + [a for a in AUX if a in df and a not in metrics and ok[a].notna().any()]

    params = "head_parameters" in df and ok["head_parameters"].notna().any()
    rows = []
    for vals, g in df.groupby(keys + ["_config"], dropna=False, sort=False):
        r = dict(zip(keys, vals))
        good = g[~g["_failed"]]
        r["n"], r["n_failed"] = len(good), int(g["_failed"].sum())
        if params:
            r["head_parameters"] = good["head_parameters"].dropna().iloc[0] if good["head_parameters"].notna().any() \
                else np.nan
        for c in aggcols:
            v = good[c].dropna()
            r[f"{c}_mean"] = v.mean() if len(v) else np.nan
            r[f"{c}_std"] = v.std(ddof=1) if len(v) > 1 else np.nan
            r[f"{c}_lo"], r[f"{c}_hi"] = _mean_interval(good, c) if c + "_lo" in good else (np.nan, np.nan)
        rows.append(r)
    cols = keys + ["n", "n_failed"] + (["head_parameters"] if params else []) + [
        f"{c}_{s}" for c in aggcols for s in ("mean", "std", "lo", "hi")]
    summary = pd.DataFrame(rows, columns=cols).sort_values(keys, na_position="last", kind="stable")
    summary = summary.reset_index(drop=True)
    summary.to_csv(out / "summary.csv", index=False)

    # ---- figures --------------------------------------------------------------------------------
    fx = [str(v) for v in ok["feature_extractor"].dropna().unique()] if "feature_extractor" in ok else []
    labels = metric_labels(fx)
    sns.set_theme(style="whitegrid", context="notebook")
    xnum = pd.api.types.is_numeric_dtype(df[x]) and ok[x].notna().any()
    xv = sorted(ok[x].dropna().unique()) if xnum else []
    log2 = xnum and len(xv) >= 3 and all(v > 0 and float(v).is_integer() and (int(v) & (int(v) - 1)) == 0 for v in xv)
    order = [v for v in summary[x].dropna().unique()]
    line_keys = [k for k in keys if k != x]  # every other shown key separates lines: nothing is averaged away
    lines = list(summary.groupby(line_keys, dropna=False, sort=False)) if line_keys else [((), summary)]
    colours = sns.color_palette(n_colors=max(len(lines), 1))

    def bars(g, m):
        """Error bars: the bootstrap interval (of the mean, over seeds) where recorded, else ±sd over seeds."""
        mu = g[f"{m}_mean"].to_numpy(float)
        lo, hi, sd = (g[f"{m}_{e}"].to_numpy(float) for e in ("lo", "hi", "std"))
        has = np.isfinite(lo) & np.isfinite(hi)
        sd = np.nan_to_num(sd)
        return np.clip(np.vstack([np.where(has, mu - lo, sd), np.where(has, hi - mu, sd)]), 0, None), has.any()

    def lineplot(ax, m) -> bool:
        """Means with error bars per line; returns whether any interval was drawn."""
        drawn = False
        for j, ((gv), g) in enumerate(lines):
            g = g[g[f"{m}_mean"].notna()]
            if not len(g):
                continue
            yerr, has = bars(g, m)
            drawn |= has or bool(g[f"{m}_std"].notna().any())
            gv = gv if isinstance(gv, tuple) else (gv,)
            label = ", ".join(_num(v) for v in gv) if line_keys else None
            if xnum:
                pos = g[x].to_numpy(float)
            else:  # categorical: dodge the lines apart around each category
                shift = (j - (len(lines) - 1) / 2) * min(0.3 / max(len(lines) - 1, 1), 0.12)
                pos = np.array([order.index(v) for v in g[x]], float) + shift
            ax.errorbar(pos, g[f"{m}_mean"], yerr=yerr, fmt="o-" if xnum else "o", capsize=4, color=colours[j],
                        label=label, ms=5)
        if xnum:
            if log2:
                ax.set_xscale("log", base=2)
            ax.set_xticks(xv if len(xv) <= 12 else ax.get_xticks())
            ax.set_xticklabels([_num(float(v)) for v in ax.get_xticks()])
            ax.minorticks_off()
        else:
            ax.set_xticks(range(len(order)), [str(_num(o)) for o in order])
            if max((len(str(o)) for o in order), default=0) > 8:
                ax.tick_params(axis="x", labelrotation=30)
        ax.set_xlabel(x)
        if line_keys:
            ax.legend(title=", ".join(line_keys), fontsize=9)
        return drawn

    def save(fig, name, dpi=110):
        if not fig.get_constrained_layout():
            fig.tight_layout()
        fig.savefig(out / name, dpi=dpi)
        plt.close(fig)
        figs.append(name)

    figs: list[str] = []
    title = wish.get("title") or meta.get("suite") or results_dir.name
    for m in metrics:
        fig, ax = plt.subplots(figsize=(8 if line_keys else 6, 4))
        with_bars = lineplot(ax, m)
        if m == "class_agreement" and "class_agreement_chance" in ok and ok["class_agreement_chance"].notna().any():
            ch = ok["class_agreement_chance"].dropna()
            ax.axhline(ch.mean(), color="gray", ls="--", label=f"chance ({ch.mean():.3g})")
            ax.legend(title=", ".join(line_keys) or None, fontsize=9)
        arrow = "↓ better" if m in LOWER_IS_BETTER else "↑ better"
        has_ci = f"{m}_lo" in ok and ok[f"{m}_lo"].notna().any()
        bar_note = "bars: 95% bootstrap interval" if has_ci else ("bars: ±sd over seeds" if with_bars
                                                                   else "no interval recorded")
        ax.set(ylabel=labels[m] if m in labels else m, title=f"{labels.get(m, m)} ({arrow}; {bar_note})")
        if line_keys and ax.get_legend():
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), frameon=False)
        save(fig, f"metric_{m}.png")
        if m == "class_agreement":
            shutil.copyfile(out / f"metric_{m}.png", out / "class_agreement.png")
            figs[-1] = "class_agreement.png"  # same figure under both names; embed it once
    if {"precision", "recall"} <= set(metrics):
        fig, ax = plt.subplots(figsize=(7.5 if plot_hue else 5.5, 5))
        f = np.linspace(0.01, 1, 200)
        for fs in (0.2, 0.4, 0.6, 0.8):  # iso-F1 curves for orientation
            r = fs * f / (2 * f - fs)
            ax.plot(f[r > 0], np.where(r > 0, r, np.nan)[r > 0], color="lightgray", lw=0.8, zorder=0)
            ax.text(1.0, fs / (2 - fs), f"F1={fs}", fontsize=7, color="gray", ha="right", va="bottom")
        for (hv, g), col in zip(lines, colours):
            ax.errorbar(g["recall_mean"], g["precision_mean"], xerr=bars(g, "recall")[0],
                        yerr=bars(g, "precision")[0], fmt="o-", color=col, capsize=3,
                        label=", ".join(_num(v) for v in (hv if isinstance(hv, tuple) else (hv,))) if line_keys else None)
            for i, (_, r) in enumerate(g.iterrows()):  # alternate label sides so neighbours don't collide
                if pd.notna(r["precision_mean"]) and pd.notna(r["recall_mean"]):
                    ax.annotate(_num(r[x]), (r["recall_mean"], r["precision_mean"]), textcoords="offset points",
                                xytext=(6, 4) if i % 2 else (-6, -12), ha="left" if i % 2 else "right", fontsize=9)
        ax.set(xlim=(0, 1.05), ylim=(0, 1.05), xlabel="recall", ylabel="precision",
               title=f"precision–recall (points labelled by {x})")
        ax.set_aspect("equal")
        if line_keys:
            ax.legend(fontsize=9, title=", ".join(line_keys), loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
        save(fig, "precision_recall.png")

    # ---- sample grids ---------------------------------------------------------------------------
    from PIL import Image
    (out / "samples").mkdir(exist_ok=True)
    sort_keys = [k for k in [plot_hue] + extra + [s for s in swept if _is_seed(s)] if k and k != x] + [x, "run_id"]
    srt = df.sort_values(sort_keys, na_position="last", kind="stable")
    shots = []
    for _, r in srt.iterrows():
        src = results_dir / "runs" / r["run_id"] / "samples.png"
        if src.is_file():
            shutil.copyfile(src, out / "samples" / f"{r['run_id']}.png")
            shots.append(r)
    if shots:
        nx = len(order)
        ncols = nx if 1 < nx <= 6 and len(shots) % nx == 0 else min(len(shots), 5)
        nrows = math.ceil(len(shots) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(2.8 * ncols, 3.2 * nrows), squeeze=False, layout="constrained")
        for ax in axes.flat:
            ax.axis("off")
        for ax, r in zip(axes.flat, shots):
            with Image.open(out / "samples" / f"{r['run_id']}.png") as im:
                ax.imshow(np.asarray(im.convert("RGB")))
            kv = [f"{k}={_num(r[k])}" for k in swept if pd.notna(r[k])]
            sub = "" if all(s in r["run_id"] for s in kv) else ", ".join(kv)  # run_id often already says it
            ax.set_title(f"{r['run_id']}\n{sub}" if sub else r["run_id"], fontsize=9)
        fig.suptitle(f"{title}: samples", fontsize=11)
        save(fig, "samples.png", dpi=130)

    # ---- report.md ------------------------------------------------------------------------------
    L = [f"# {title}", ""]
    if meta.get("description"):
        L += [str(meta["description"]).strip(), ""]
    prof = meta.get("profile") or (", ".join(map(str, df["profile"].dropna().unique())) if "profile" in df else "")
    L += [f"- **Profile:** {prof or 'unknown'}", f"- **Runs:** {len(df)} ({int(failed.sum())} failed)"]
    L.append(f"- **Feature extractor (FD/KID/IS/precision/recall):** {'; '.join(fx) if fx else 'not recorded'}")
    if not fx:
        L.append("  - The measuring network was not recorded: compare these numbers only within this report.")
    elif all("inception" in v.lower() and "v3" in v.lower() for v in fx):
        L.append("  - Measured with Inception-v3, the standard FID network (numbers still depend on sample count).")
    else:
        L.append("  - **These are NOT Inception FID numbers**: they are measured in another network's feature "
                 "space and cannot be compared with FID/KID/IS values from papers; compare only runs measured alike.")
    if len(fx) > 1:
        L.append("  - **Warning:** runs were measured with different feature extractors and are not comparable.")
    for col, name in (("encoder", "Retrieval encoder"), ("num_samples", "Generated samples per run"),
                      ("num_reference", "Reference images"),
                      ("pr_set_size", "Precision/recall set size (generated = reference subset)")):
        if col in ok and ok[col].notna().any():
            L.append(f"- **{name}:** {', '.join(_num(v) for v in ok[col].dropna().unique())}")
    if "wall_s" in df and df["wall_s"].notna().any():
        L.append(f"- **Total wall time:** {df['wall_s'].sum() / 60:.1f} min")
    seeds = [s for s in swept if _is_seed(s)]
    L += ["", "## Results", "", f"Aggregated over {'seeds (' + ', '.join(seeds) + ')' if seeds else 'repeated runs'}: "
          "mean ± sample std when n > 1; n counts successful runs. [lo, hi]: 95% bootstrap interval over "
          "resamples of the generated samples (one run), or of the mean over seeds (each seed's interval "
          "half-widths added in quadrature, divided by n). Runs are averaged only when their resolved configs "
          "differ by the seed alone (summary.csv: `<metric>_mean`, `_std`, `_lo`, `_hi`).", ""]
    if "config" in keys:
        L[-1:-1] = ["Runs with equal swept values but different configs are kept apart; `config` names the "
                    "keys that differ.", ""]
    hdr = keys + ["n"] + (["head parameters"] if params else []) + [
        f"{labels.get(m, m)} {'↓' if m in LOWER_IS_BETTER else '↑'}" for m in metrics]
    L += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for _, r in summary.iterrows():
        cells = [_cell(_num(r[k]) if pd.notna(r[k]) else "—") for k in keys]
        cells.append(f"{int(r['n'])}" + (f" ({int(r['n_failed'])} failed)" if r["n_failed"] else ""))
        if params:
            cells.append(f"{r['head_parameters']:,.0f}" if pd.notna(r["head_parameters"]) else "—")
        for m in metrics:
            mu, sd = r[f"{m}_mean"], r[f"{m}_std"]
            sd = 0.0 if pd.notna(sd) and sd < 1e-9 * max(abs(mu), 1) else sd  # float noise of equal values
            c = "—" if pd.isna(mu) else f"{mu:.4g}" + (f" ± {sd:.2g}" if pd.notna(sd) else "")
            if pd.notna(mu) and pd.notna(r[f"{m}_lo"]) and pd.notna(r[f"{m}_hi"]):
                c += f" [{r[f'{m}_lo']:.4g}, {r[f'{m}_hi']:.4g}]"
            if m == "class_agreement" and pd.notna(r.get("class_agreement_chance_mean", np.nan)):
                c += f" (chance {r['class_agreement_chance_mean']:.3g})"
            cells.append(c)
        L.append("| " + " | ".join(cells) + " |")
    if not len(summary):
        L.append("\n_No runs in results.csv._")
    if missing or empty:
        L += ["", f"Metrics without values (not measured or all NaN): {', '.join(missing + empty)}."]
    if failed.any():
        L += ["", "## Failed runs", "", "| " + " | ".join(["run_id", *swept, "error"]) + " |",
              "|" + "---|" * (len(swept) + 2)]
        for _, r in df[failed].iterrows():
            err = (_cell(r["error"]) if "error" in df and pd.notna(r["error"]) else "") or "(no error recorded)"
            err = err if len(err) < 600 else err[:300] + " … " + err[-300:]
            L.append(f"| {_cell(r['run_id'])} | " + " | ".join(_cell(_num(r[k])) for k in swept) + f" | {err} |")
    L += ["", "## Figures", ""] + [f"![{f[:-4]}]({f})" for f in figs if f != "samples.png"]
    if shots:
        L += ["", "## Samples", "", "![all sample grids](samples.png)", "",
              "| " + " | ".join(["run_id", *swept, "samples"]) + " |", "|" + "---|" * (len(swept) + 2)]
        for r in shots:
            L.append(f"| {r['run_id']} | " + " | ".join(_cell(_num(r[k])) for k in swept)
                     + f" | ![{r['run_id']}](samples/{r['run_id']}.png) |")
    (out / "report.md").write_text("\n".join(L) + "\n")
    return out / "report.md"


def _write_retrieval(df, meta: dict, out: Path, swept: list[str], title: str, results_dir: Path) -> Path:
    from rdmbench import report_retrieval

    # a configuration is everything but the seed and the query-time settings (those are its points)
    _, df["_config_label"] = config_groups(df, results_dir, shown=[*swept, "retriever.name"],
                                           ignore=("seed", "retriever.query", *[k for k in swept if _is_seed(k)]))
    df[~df["_failed"]].drop(columns="_failed").to_csv(out / "summary.csv", index=False)
    L = [f"# {title}", ""] + ([str(meta["description"]).strip(), ""] if meta.get("description") else [])
    L += [f"- **Profile:** {meta.get('profile') or 'unknown'}",
          f"- **Runs:** {len(df)} ({int(df['_failed'].sum())} failed)"]
    if "wall_s" in df and df["wall_s"].notna().any():
        L.append(f"- **Total wall time:** {df['wall_s'].sum() / 60:.1f} min")
    L += report_retrieval.write(df, meta, out, title, swept)
    if df["_failed"].any():
        L += ["", "## Failed runs", "", "| run_id | error |", "|---|---|"]
        for _, r in df[df["_failed"]].iterrows():
            L.append(f"| {_cell(r['run_id'])} | {_cell(r.get('error', '')) or '(no error recorded)'} |")
    (out / "report.md").write_text("\n".join(L) + "\n")
    return out / "report.md"
