"""Turn ``results/<suite>/`` (results.csv, suite.json, runs/<id>/*.png) into a report folder:
report.md for terminals, index.html (one static page that opens from disk), summary.csv and figures.

The suite's task (suite.json's ``"task"``) writes the body: ``get_task(task).report(data)`` returns
its sections, which may write figures and summary.csv into the report folder. This module adds what
every task shares: the header (profile, runs, failures, feature extractor, wall time) and the table
of failed runs. Column labels and better directions come from suite.json's ``"columns"``.

Heavy imports (pandas; the task's seaborn and matplotlib) happen inside :func:`write_report`.
"""

from __future__ import annotations

import json
from pathlib import Path

from rdmbench.errors import RdmbenchError
from rdmbench.report.model import Cell, Fact, Gallery, Head, Report, ReportData, Section, Table, Text

MANIFEST = ".report-files.json"  # what the last report wrote here, removed before the next one
ERROR_CHARS = 600


def write_report(results_dir: Path, out_dir: Path | None = None) -> Path:
    """Write report.md, index.html, summary.csv and figures for one suite's results; returns report.md."""
    from rdmbench import cache
    from rdmbench.failpoints import failpoint
    from rdmbench.report import html, markdown
    from rdmbench.tasks import get_task

    data = load(Path(results_dir), out_dir)
    task = get_task(data.meta["task"], file=str(data.results_dir / "suite.json"))
    _remove_previous(data.out)
    sections = task.report(data)
    findings = findings_section(data)
    if findings is not None:  # beside the tables and figures it reads, before the long sample galleries
        galleries = [i for i, sec in enumerate(sections) if any(isinstance(b, Gallery) for b in sec.blocks)]
        sections.insert(galleries[0] if galleries else len(sections), findings)
    if data.frame["_failed"].any():
        sections.append(failed_section(data))
    report = Report(data.title, str(data.meta.get("description") or "").strip(), header(data), sections)
    failpoint("report.write")
    cache.write_text(data.out / "report.md", markdown.render(report))
    cache.write_text(data.out / "index.html", html.render(report))
    written = sorted({f for f in _files(report) if (data.out / f).is_file()} | {"summary.csv"})
    cache.write_json(data.out / MANIFEST, written)
    return data.out / "report.md"


def load(results_dir: Path, out_dir: Path | None = None) -> ReportData:
    """results.csv and suite.json as a ReportData; every problem is one line naming the file."""
    import pandas as pd

    from rdmbench.columns import from_declarations

    csv_path, meta_path = results_dir / "results.csv", results_dir / "suite.json"
    if not csv_path.is_file():
        raise RdmbenchError(f"no results to report: {csv_path} does not exist "
                            f"(`rdmbench run <suite.yaml>` writes it).")
    if not meta_path.is_file():
        raise RdmbenchError(f"{meta_path} does not exist: re-run the suite (`rdmbench run <suite.yaml>`); "
                            "cached stages are reused.")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise RdmbenchError(f"{meta_path}: not valid JSON ({e}); re-run the suite.") from None
    if not isinstance(meta, dict) or "task" not in meta or "columns" not in meta:
        raise RdmbenchError(f"{meta_path}: written by an older rdmbench (no task recorded); re-run the suite: "
                            "cached stages are reused")
    try:
        df = pd.read_csv(csv_path)
    except pd.errors.EmptyDataError:
        raise RdmbenchError(f"{csv_path} is empty; re-run `rdmbench run` for this suite.") from None
    if "run_id" not in df:
        df["run_id"] = [f"run{i}" for i in range(len(df))]
    df["run_id"] = df["run_id"].astype(str)
    if "status" in df:
        df["_failed"] = df["status"].astype(str).str.lower().isin(["failed", "error"])
    else:
        df["_failed"] = df["error"].notna() if "error" in df else False
    columns = from_declarations(meta["columns"], lambda: code_columns(str(meta["task"]), str(meta_path)))
    for name, col in columns.items():  # declared numeric columns (and their intervals) read as numbers
        for c in (name, f"{name}_lo", f"{name}_hi"):
            if c in df and col.numeric and df[c].dtype == object:
                df[c] = pd.to_numeric(df[c], errors="coerce")
    swept = [k for k in meta.get("swept_keys") or [] if k in df]
    out = Path(out_dir) if out_dir is not None else results_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    title = (meta.get("report") or {}).get("title") or meta.get("suite") or results_dir.name
    return ReportData(df, meta, results_dir, out, columns, swept, str(title))


def code_columns(task: str, file: str) -> list[str]:
    """Every column this code declares that a suite of ``task`` may hold: the task's own, the wall time,
    every metric's and every trained encoder's fit columns. A suite.json written before a field of the
    declarations existed takes that field from here (rdmbench.columns.from_declarations)."""
    from rdmbench.api import Encoder, Metric
    from rdmbench.columns import WALL_S
    from rdmbench.registry import get_registry
    from rdmbench.tasks import get_task

    registry = get_registry()
    return [*get_task(task, file=file).columns, WALL_S,
            *(c for name in registry.names("metric") for c in registry.contract(Metric, name).columns),
            *(c for name in registry.names("encoder") for c in registry.contract(Encoder, name).fit_columns)]


def header(data: ReportData) -> list[Fact]:
    from rdmbench.report.common import is_inception, num, shared_value

    df, ok = data.frame, data.frame[~data.frame["_failed"]]
    profile = data.meta.get("profile") or (", ".join(map(str, df["profile"].dropna().unique()))
                                           if "profile" in df else "")
    n_failed = int(df["_failed"].sum())
    facts = [Fact("Profile", profile or "unknown"),
             Fact("Runs", f"{len(df)} ({n_failed} failed)", warn=bool(n_failed))]
    if "feature_extractor" in df or "feature_extractor" in data.columns:
        fx = [str(v) for v in ok["feature_extractor"].dropna().unique()] if "feature_extractor" in ok else []
        fact = Fact("Feature extractor (FD/KID/IS/precision/recall)", "; ".join(fx) or "not recorded")
        if not fx:
            fact.notes.append("The measuring network was not recorded: compare these numbers only within this report.")
        elif all(is_inception(v) for v in fx):
            fact.notes.append("Measured with Inception-v3, the standard FID network "
                              "(numbers still depend on sample count).")
        else:
            fact.warn = True
            fact.notes.append("**These are NOT Inception FID numbers**: they are measured in another network's "
                              "feature space and cannot be compared with FID/KID/IS values from papers; "
                              "compare only runs measured alike.")
        if len(fx) > 1:
            fact.warn = True
            fact.notes.append("**Warning:** runs were measured with different feature extractors and are not "
                              "comparable.")
        facts.append(fact)
    # settings every successful run shares (an encoder, a sample count): declared, not scores, one value in
    # each run; a value only some runs have is the task's to show beside those runs
    for name, col in data.columns.items():
        if (name in ("feature_extractor", "error", "status", "run_id", "profile") or name in data.swept
                or col.better is not None or col.summary):
            continue
        value = shared_value(ok, name)
        if value is not None:
            facts.append(Fact(col.label, f"{value:,.0f}" if _is_count(value) else num(value)))
    if "wall_s" in df and df["wall_s"].notna().any():
        facts.append(Fact("Total wall time", f"{df['wall_s'].sum() / 60:.1f} min"))
    return facts


def _is_count(v) -> bool:
    from rdmbench.report.common import finite

    f = None if isinstance(v, (str, bool)) else finite(v)
    return f is not None and f.is_integer() and abs(f) >= 10_000


def findings_section(data: ReportData) -> Section | None:
    """The scorecard's rows for the claims this suite tests (suites/claims/ beside the suite file), scored as
    `rdmbench scorecard` scores them: from every results folder beside this one, Holm within each study."""
    from rdmbench import scorecard
    from rdmbench.claims import load_claims
    from rdmbench.errors import RdmbenchError

    claims_dir = Path(str(data.meta.get("file") or "")).parent / "claims"
    if not data.meta.get("file") or not claims_dir.is_dir():
        return None
    try:
        rows = scorecard.score(load_claims(claims_dir), scorecard.find_results([data.results_dir.parent]))
    except RdmbenchError as exc:
        return Section("The paper's findings", [Text(f"The claims in {claims_dir} could not be read: {exc}")])
    mine = [r for r in rows if r.test.suite.name == data.meta.get("suite")
            and r.test.suite.profile == data.meta.get("profile")]
    if not mine:
        return None
    return Section("The paper's findings", [
        Text(f"The claims of `{claims_dir}` that this suite tests, with their verdicts as `rdmbench scorecard "
             f"{data.results_dir.parent}` gives them (Holm's correction over this study's claims)."),
        *scorecard.blocks(mine, data.out)])


def failed_section(data: ReportData) -> Section:
    import pandas as pd

    from rdmbench.report.common import num, one_line

    df = data.frame
    rows = []
    for _, r in df[df["_failed"]].iterrows():
        err = one_line(r["error"]) if "error" in df and pd.notna(r["error"]) else ""
        err = err if len(err) < ERROR_CHARS else err[:ERROR_CHARS // 2] + " … " + err[-ERROR_CHARS // 2:]
        rows.append([Cell(r["run_id"]), *[Cell(num(r[k])) for k in data.swept], Cell(err or "(no error recorded)")])
    table = Table([Head("run_id"), *[Head(k) for k in data.swept], Head("error")], rows, kind="failed")
    return Section("Failed runs", [Text(f"{len(rows)} run(s) failed; they count in no table or figure above."),
                                   table])


def _files(report: Report) -> list[str]:
    from rdmbench.report.model import Figure, Gallery

    files = []
    for s in report.sections:
        for b in s.blocks:
            if isinstance(b, Figure):
                files.append(b.file)
            elif isinstance(b, Gallery):
                files += [f for f, _ in b.items if f]
    return files


def _remove_previous(out: Path) -> None:
    """Files an earlier report wrote here (stale figures of a metric no longer measured); nothing else."""
    path = out / MANIFEST
    if not path.is_file():
        return
    try:
        listed = json.loads(path.read_text())
    except json.JSONDecodeError:
        return
    root = out.resolve()
    for name in listed if isinstance(listed, list) else []:
        p = (out / str(name)).resolve()
        if root in p.parents:
            p.unlink(missing_ok=True)
