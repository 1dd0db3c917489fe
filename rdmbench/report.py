"""Turn ``results/<suite>/`` (results.csv, suite.json, runs/*/samples.png) into a report folder:
report.md, summary.csv (metrics aggregated over seeds) and seaborn figures.

Heavy imports (pandas, seaborn, matplotlib) happen inside :func:`write_report` so the CLI starts fast.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from rdmbench.errors import RdmbenchError

METRICS = ("fid", "kid", "is", "precision", "recall", "f_score", "class_agreement", "classifier_acc", "retrieval_recall")
AUX = ("kid_std", "is_std", "class_agreement_chance", "wall_s", "train_s", "sample_s")  # summary.csv only
KNOWN = ("run_id", "status", "error", "feature_extractor", "encoder", "num_samples", "num_reference", "profile")
FIGS = ("precision_recall.png", "class_agreement.png", "samples.png", "pareto_recall_qps.png",
        "pareto_recall_qps_single.png")
LOWER_IS_BETTER = {"fid", "kid"}
LABELS = {"fid": "FID", "kid": "KID", "is": "IS", "f_score": "F-score", "class_agreement": "class agreement",
          "classifier_acc": "classifier accuracy", "retrieval_recall": "retrieval recall@k_train"}


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
        return _write_retrieval(df, meta, out, swept, wish.get("title") or meta.get("suite") or results_dir.name)
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

    wanted = list(wish.get("metrics") or [m for m in METRICS if m in df])
    missing = [m for m in wanted if m not in df]
    for m in set(wanted) - set(missing) | {a for a in AUX if a in df}:
        df[m] = pd.to_numeric(df[m], errors="coerce")
    ok = df[~df["_failed"]]
    metrics = [m for m in wanted if m in df and ok[m].notna().any()]
    empty = [m for m in wanted if m in df and m not in metrics]
    aggcols = metrics + [a for a in AUX if a in df and a not in metrics and ok[a].notna().any()]

    rows = []
    for vals, g in df.groupby(keys, dropna=False, sort=False):
        r = dict(zip(keys, vals))
        good = g[~g["_failed"]]
        r["n"], r["n_failed"] = len(good), int(g["_failed"].sum())
        for c in aggcols:
            v = good[c].dropna()
            r[f"{c}_mean"] = v.mean() if len(v) else np.nan
            r[f"{c}_std"] = v.std(ddof=1) if len(v) > 1 else np.nan
        rows.append(r)
    cols = keys + ["n", "n_failed"] + [f"{c}_{s}" for c in aggcols for s in ("mean", "std")]
    summary = pd.DataFrame(rows, columns=cols).sort_values(keys, na_position="last", kind="stable")
    summary = summary.reset_index(drop=True)
    summary.to_csv(out / "summary.csv", index=False)

    # ---- figures --------------------------------------------------------------------------------
    sns.set_theme(style="whitegrid", context="notebook")
    xnum = pd.api.types.is_numeric_dtype(df[x]) and ok[x].notna().any()
    xv = sorted(ok[x].dropna().unique()) if xnum else []
    log2 = xnum and len(xv) >= 3 and all(v > 0 and float(v).is_integer() and (int(v) & (int(v) - 1)) == 0 for v in xv)
    order = [v for v in summary[x].dropna().unique()]
    pdata = ok.sort_values(plot_hue, kind="stable").assign(**{plot_hue: ok[plot_hue].map(_num)}) if plot_hue else ok

    def lineplot(ax, y, data=pdata):  # numeric x: line with ±sd bars over seeds; categorical x: points
        if xnum:
            sns.lineplot(data=data, x=x, y=y, hue=plot_hue, marker="o", errorbar="sd",
                         err_style="bars", err_kws={"capsize": 4}, ax=ax)
            if log2:
                ax.set_xscale("log", base=2)
            ax.set_xticks(xv if len(xv) <= 12 else ax.get_xticks())
            ax.set_xticklabels([_num(float(v)) for v in ax.get_xticks()])
            ax.minorticks_off()
        else:
            sns.pointplot(data=data.assign(**{x: data[x].astype(str)}), x=x, y=y, order=[str(o) for o in order],
                          hue=plot_hue, errorbar="sd", capsize=0.1, linestyle="none", err_kws={"linewidth": 1.5},
                          dodge=0.3 if plot_hue else False, ax=ax)
            if max((len(str(o)) for o in order), default=0) > 8:
                ax.tick_params(axis="x", labelrotation=30)

    def save(fig, name, dpi=110):
        if not fig.get_constrained_layout():
            fig.tight_layout()
        fig.savefig(out / name, dpi=dpi)
        plt.close(fig)
        figs.append(name)

    figs: list[str] = []
    title = wish.get("title") or meta.get("suite") or results_dir.name
    for m in metrics:
        fig, ax = plt.subplots(figsize=(8 if plot_hue else 6, 4))
        lineplot(ax, m)
        if m == "class_agreement" and "class_agreement_chance" in ok and ok["class_agreement_chance"].notna().any():
            ch = ok["class_agreement_chance"].dropna()
            ax.axhline(ch.mean(), color="gray", ls="--", label=f"chance ({ch.mean():.3g})")
            ax.legend(title=plot_hue)
        arrow = "↓ better" if m in LOWER_IS_BETTER else "↑ better"
        ax.set(ylabel=LABELS.get(m, m), title=f"{LABELS.get(m, m)} ({arrow})")
        if plot_hue and ax.get_legend():
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
        groups = summary.groupby(plot_hue, dropna=False, sort=False) if plot_hue in summary else [(None, summary)]
        for (hv, g), col in zip(groups, sns.color_palette(n_colors=max(len(groups), 1))):
            ax.errorbar(g["recall_mean"], g["precision_mean"], xerr=g["recall_std"].fillna(0),
                        yerr=g["precision_std"].fillna(0), fmt="o-", color=col, capsize=3,
                        label=None if hv is None else _num(hv[0] if isinstance(hv, tuple) else hv))
            for i, (_, r) in enumerate(g.iterrows()):  # alternate label sides so neighbours don't collide
                if pd.notna(r["precision_mean"]) and pd.notna(r["recall_mean"]):
                    ax.annotate(_num(r[x]), (r["recall_mean"], r["precision_mean"]), textcoords="offset points",
                                xytext=(6, 4) if i % 2 else (-6, -12), ha="left" if i % 2 else "right", fontsize=9)
        ax.set(xlim=(0, 1.05), ylim=(0, 1.05), xlabel="recall", ylabel="precision",
               title=f"precision–recall (points labelled by {x})")
        ax.set_aspect("equal")
        if plot_hue:
            ax.legend(fontsize=9, title=plot_hue, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
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
    fx = [str(v) for v in ok["feature_extractor"].dropna().unique()] if "feature_extractor" in ok else []
    L.append(f"- **Feature extractor (FID/KID/IS/precision/recall):** {'; '.join(fx) if fx else 'not recorded'}")
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
                      ("num_reference", "Reference images")):
        if col in ok and ok[col].notna().any():
            L.append(f"- **{name}:** {', '.join(_num(v) for v in ok[col].dropna().unique())}")
    if "wall_s" in df and df["wall_s"].notna().any():
        L.append(f"- **Total wall time:** {df['wall_s'].sum() / 60:.1f} min")
    seeds = [s for s in swept if _is_seed(s)]
    L += ["", "## Results", "", f"Aggregated over {'seeds (' + ', '.join(seeds) + ')' if seeds else 'repeated runs'}: "
          "mean ± sample std when n > 1; n counts successful runs "
          "(summary.csv: `<metric>_mean`, `<metric>_std` over seeds).", ""]
    hdr = keys + ["n"] + [f"{LABELS.get(m, m)} {'↓' if m in LOWER_IS_BETTER else '↑'}" for m in metrics]
    L += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for _, r in summary.iterrows():
        cells = [_cell(_num(r[k]) if pd.notna(r[k]) else "—") for k in keys]
        cells.append(f"{int(r['n'])}" + (f" ({int(r['n_failed'])} failed)" if r["n_failed"] else ""))
        for m in metrics:
            mu, sd = r[f"{m}_mean"], r[f"{m}_std"]
            sd = 0.0 if pd.notna(sd) and sd < 1e-9 * max(abs(mu), 1) else sd  # float noise of equal values
            c = "—" if pd.isna(mu) else f"{mu:.4g}" + (f" ± {sd:.2g}" if pd.notna(sd) else "")
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


def _write_retrieval(df, meta: dict, out: Path, swept: list[str], title: str) -> Path:
    from rdmbench import report_retrieval

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
