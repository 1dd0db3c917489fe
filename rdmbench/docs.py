"""Numbers in README.md and docs/ come from committed results, never from a hand: ``rdmbench docs``.

A generated block is written between two markers; everything between them is replaced by what the spec says:

    <!-- generated: table results/k_train metrics=fid,precision,recall -->
    …
    <!-- end generated -->

* ``table RESULTS [metrics=a,b,…] [by=key,…]`` — one row per configuration of a suite's results (seeds
  averaged), each metric with its interval: over seeds, Student's t of the mean (training-seed and sample
  variance); for one seed, that run's bootstrap interval over its samples.
* ``figure RESULTS metric=m [as=PATH]`` — the suite report's figure of a metric (error bars: the table's
  intervals), drawn from the results and copied beside the page (default ``img/<suite>_<m>.png``); ``check``
  compares the link and that the file exists, not its pixels (matplotlib versions draw them differently).
* ``pairing RESULTS a=RUN b=RUN measure=m`` — the 95 % interval of m(a) − m(b) with the runs' bootstrap
  replicates paired (same resampled samples, as the scorecard takes them) and drawn apart (replicates of b in
  another order): how much pairing narrows a comparison.
* ``cost RESULTS`` — what the suite's runs took on the machine that made them (from results.csv and env.json).
* ``scorecard [claims=pattern,…]`` — the scorecard's rows for the claims whose id matches a pattern
  (fnmatch), scored from every results folder under ``results/`` with Holm within each study, as the scorecard.

Prose that states a finding cites the claim and its verdict, ``(claim k_train.fid_flat: no effect)``, or
mid-sentence with its numbers after, ``claim k_train.fid_flat: no effect, p 0.07``;
``check`` fails where a block differs from what the results give today or a citation's verdict is not the
scorecard's.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdmbench.errors import RdmbenchError

BLOCK = re.compile(r"(<!-- generated: (?P<spec>.+?) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)
# prose wraps its lines anywhere, citations too; and a citation may sit mid-sentence with its numbers after it
CITATION = re.compile(r"\bclaim\s+(?P<id>[a-z0-9_]+\.[a-z0-9_.]*[a-z0-9_](?:\s+@\s+[^:()]+)?):\s+"
                      r"(?P<verdict>agrees|contradicts|no\s+effect|unresolved|needs\s+runs)\b")
PAGES = ("README.md", "docs/**/*.md")


@dataclass
class Context:
    root: Path
    check: bool = False
    scratch: Path | None = None  # where reports are drawn; the caller removes it
    _rows: Any = None
    _reports: dict[Path, Path] | None = None

    def report(self, results: Path) -> Path:
        """The folder a suite's report was drawn into (once per suite and update)."""
        import tempfile

        from rdmbench.report import write_report

        self._reports = self._reports or {}
        if results not in self._reports:
            out = Path(tempfile.mkdtemp(prefix=f"{results.name}-", dir=self.scratch))
            write_report(results, out)
            self._reports[results] = out
        return self._reports[results]

    def scorecard(self) -> list[Any]:
        """Every claim scored from every committed results folder (Holm within each study, as `rdmbench scorecard`)."""
        if self._rows is None:
            from rdmbench import scorecard
            from rdmbench.claims import load_claims

            found = scorecard.find_results([self.root / "results"])
            self._rows = scorecard.score(load_claims(self.root / "suites" / "claims"), found)
        return self._rows


def pages(root: Path) -> list[Path]:
    return sorted({p for pattern in PAGES for p in root.glob(pattern)})


def render(text: str, ctx: Context, where: str) -> str:
    def block(m: re.Match) -> str:
        return m.group(1) + generate(m.group("spec"), ctx, where) + m.group(4)

    return BLOCK.sub(block, text)


def generate(spec: str, ctx: Context, where: str) -> str:
    words = shlex.split(spec)
    kind, args = words[0], words[1:]
    options = dict(a.split("=", 1) for a in args if "=" in a)
    positional = [a for a in args if "=" not in a]
    if kind == "table" and len(positional) == 1:
        return table(ctx.root / positional[0], _list(options.get("metrics")), _list(options.get("by")))
    if kind == "figure" and len(positional) == 1 and options.get("metric"):
        return figure(ctx, ctx.root / positional[0], options["metric"], options.get("as"), where)
    if kind == "pairing" and len(positional) == 1 and {"a", "b", "measure"} <= set(options):
        return pairing(ctx.root / positional[0], options["a"], options["b"], options["measure"], where)
    if kind == "cost" and len(positional) == 1:
        return cost(ctx.root / positional[0])
    if kind == "scorecard" and not positional:
        return scorecard_table(ctx, _list(options.get("claims")) or ["*"], where)
    raise RdmbenchError(f"{where}: unknown generated block {spec!r} (allowed: `table RESULTS [metrics=…] [by=…]`, "
                        "`scorecard [claims=…]`)")


def figure(ctx: Context, results: Path, metric: str, name: str | None, where: str) -> str:
    import shutil

    page_dir = (ctx.root / where).parent
    rel = name or f"img/{results.name}_{metric}.png"
    target = page_dir / rel
    if not (results / "results.csv").is_file():
        return f"_No committed results in `results/{results.name}/` to draw {metric} from._\n"
    if not ctx.check:
        drawn = ctx.report(results) / f"metric_{metric}.png"
        if not drawn.is_file():
            raise RdmbenchError(f"{where}: the report of results/{results.name} draws no figure of {metric!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(drawn, target)
    elif not target.is_file():  # differs from any page that links it: reported as a stale block
        return f"_{rel} is missing: run `rdmbench docs`._\n"
    return f"![{metric} of results/{results.name}]({rel})\n"


def pairing(results: Path, a: str, b: str, measure: str, where: str) -> str:
    import numpy as np

    from rdmbench.scorecard import Results
    from rdmbench.stats import interval

    if not (results / "results.csv").is_file():
        return f"_No committed results in `results/{results.name}/`._\n"
    res = Results(results)
    missing = [r for r in (a, b) if r not in res.rows]
    if missing:  # a page citing runs its results no longer hold (renamed, or run no more) is stale, not empty
        raise RdmbenchError(f"{where}: pairing names run {missing[0]!r}, which results/{results.name}/results.csv does not "
                            "hold; name one of its runs")
    ra, rb = res.replicates(a), res.replicates(b)
    if ra is None or rb is None or measure not in ra or measure not in rb:
        return f"_No committed replicates of {measure} for runs `{a}` and `{b}` in `results/{results.name}/`._\n"
    point = res.value(a, measure) - res.value(b, measure)
    paired = interval(point, ra[measure] - rb[measure], 0.95)
    apart = interval(point, ra[measure] - np.random.default_rng(0).permutation(rb[measure]), 0.95)
    wp, wa = paired[1] - paired[0], apart[1] - apart[0]
    return (f"{measure} of `{a}` minus {measure} of `{b}`:\n\n| replicates | 95 % interval | width |\n|---|---|---|\n"
            f"| replicates paired (shared samples) | {_fmt(point)} [{_fmt(paired[0])}, {_fmt(paired[1])}] | "
            f"{_fmt(wp)} |\n"
            f"| replicates drawn apart | {_fmt(point)} [{_fmt(apart[0])}, {_fmt(apart[1])}] | {_fmt(wa)} |\n\n"
            f"Paired / unpaired width: **{wp / wa:.2f}×** ({len(ra[measure])} replicates each, "
            f"`results/{results.name}/runs/*/replicates.csv`).\n")


def cost(results: Path) -> str:
    import json

    import pandas as pd

    if not (results / "results.csv").is_file():
        return f"_No committed results in `results/{results.name}/`._\n"
    df = pd.read_csv(results / "results.csv")
    ok = df[df["status"] == "ok"]
    envs = [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*/env.json"))
            if p.parent.name in set(df["run_id"])]
    machine = ""
    if envs:
        e = envs[0]
        # the runs of one suite may have computed at different counts (--jobs 2 beside serial runs): say so
        counts = sorted({x.get("torch_threads") for x in envs}, key=str)
        threads = "–".join(map(str, counts))
        machine = f" on {e.get('device', 'an unrecorded device')} ({e.get('cpu', 'cpu')}, {threads} thread" \
                  f"{'' if counts == [1] else 's'})"
    parts = [f"{len(ok)} of {len(df)} runs finished{machine}"]
    if "train_s" in ok and ok["train_s"].notna().any():
        heads = ok.drop_duplicates("train_s")["train_s"].dropna()
        parts.append(f"training a head took {heads.median() / 60:.1f} min (median of {len(heads)})")
    if "sample_s" in ok and ok["sample_s"].notna().any():
        parts.append(f"sampling {ok['sample_s'].median():.0f} s per run (median)")
    return "Measured: " + "; ".join(parts) + f" (`results/{results.name}/results.csv`).\n"


def _list(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def table(results: Path, metrics: list[str], by: list[str]) -> str:
    """A suite's results, one row per configuration, seeds averaged."""
    import json

    import pandas as pd

    from rdmbench.columns import from_declarations
    from rdmbench.report.common import config_groups, labels, mean_interval, num

    if not (results / "results.csv").is_file():
        return (f"_No committed results in `results/{results.name}/`: `rdmbench run suites/{results.name}.yaml` "
                "makes them._\n")
    meta = json.loads((results / "suite.json").read_text())
    df = pd.read_csv(results / "results.csv")
    df = df[df["status"] == "ok"].copy()
    df["run_id"] = df["run_id"].astype(str)
    columns = from_declarations(meta["columns"])
    keys = by or [k for k in meta.get("swept_keys") or [] if k != "seed" and k in df]
    metrics = metrics or [m for m in (meta.get("report") or {}).get("metrics") or [] if m in df]
    extractors = [str(v) for v in df["feature_extractor"].dropna().unique()] if "feature_extractor" in df else []
    names = labels(columns, extractors)
    df["_config"], _ = config_groups(df, results, keys)
    if "seed" in df:  # one setting listed twice (two sweep groups meet) is one run per seed, not two
        df = df.drop_duplicates(["_config", "seed"])
    head = [*keys, *(f"{names.get(m, m)} {columns[m].arrow if m in columns else ''}".strip() for m in metrics),
            "seeds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, g in df.groupby("_config", sort=False):
        first = g.iloc[0]
        cells = [num(first[k]) for k in keys]
        for m in metrics:
            mean = g[m].mean()
            lo, hi = mean_interval(g, m)
            cells.append(f"{_fmt(mean)} [{_fmt(lo)}, {_fmt(hi)}]" if pd.notna(lo) else _fmt(mean))
        cells.append(str(len(g)))
        lines.append("| " + " | ".join(cells) + " |")
    n = df.groupby("_config").size()
    what = ("mean over seeds [95% Student-t interval over the seeds: training-seed and sample variance]"
            if (n > 1).all() else "one seed [95% bootstrap interval over its generated samples: sample variance only]")
    return "\n".join(lines) + f"\n\nEach cell: {what}; from `results/{results.name}/results.csv` (`rdmbench docs` " \
        "writes this table).\n"


def _fmt(v: float) -> str:
    import math

    if v is None or not math.isfinite(v):
        return ""
    if v != 0 and abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}" if abs(v) >= 0.01 or v == 0 else f"{v:.2g}"


def scorecard_table(ctx: Context, patterns: list[str], where: str) -> str:
    import os

    from rdmbench.scorecard import needs_text

    stats = os.path.relpath(ctx.root / "docs" / "statistics.md", (ctx.root / where).parent)
    rows = [r for r in ctx.scorecard() if any(fnmatch.fnmatch(r.test.claim.id, p) for p in patterns)]
    if not rows:
        raise RdmbenchError(f"no claim matches {', '.join(patterns)}")
    lines = ["| claim | the paper | estimate [95% interval] | seeds × samples | verdict |", "|---|---|---|---|---|"]
    for r in rows:
        e = r.estimate
        est = f"{_fmt(e.value)} [{_fmt(e.lo)}, {_fmt(e.hi)}] ({r.test.unit})" if e is not None else ""
        seeds = f"{e.seeds} × {r.samples}" if e is not None else ""
        verdict = f"**{r.verdict}**" if r.decided else needs_text(r, ctx.root)
        lines.append(f"| `{r.test.name}` | {r.test.claim.paper} ({r.test.claim.where}) | {est} | {seeds} | "
                     f"{verdict} |".replace("\n", " "))
    return "\n".join(lines) + "\n\nFrom `rdmbench scorecard results/` (claims: `suites/claims/`; statistics: " \
        f"[docs/statistics.md]({stats})).\n"


def citations(text: str, ctx: Context, where: str) -> list[str]:
    """Problems with the claims ``text`` cites: an unknown claim, or a verdict other than the scorecard's."""
    verdicts = {r.test.name: r.verdict for r in ctx.scorecard()}
    problems = []
    for m in CITATION.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        cited, said = (" ".join(m.group(k).split()) for k in ("id", "verdict"))
        if cited not in verdicts:
            problems.append(f"{where}:{line}: cites claim {cited!r}, which no claim file defines")
        elif verdicts[cited] != said:
            problems.append(f"{where}:{line}: says claim {cited} {said!r}; the scorecard says {verdicts[cited]!r}")
    return problems


def update(root: Path, *, check: bool = False) -> list[str]:
    """Regenerate every block (or, with ``check``, report where a page differs); then check the citations."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rdmbench-docs-") as scratch:
        return _update(root, Context(root, check, Path(scratch)))


def _update(root: Path, ctx: Context) -> list[str]:
    from rdmbench import cache

    problems = []
    for page in pages(root):
        where = page.relative_to(root).as_posix()
        text = page.read_text()
        new = render(text, ctx, where)
        if new != text:
            if ctx.check:
                first = next(i for i, (a, b) in enumerate(zip(text.splitlines(), new.splitlines() + [""])) if a != b)
                problems.append(f"{where}:{first + 1}: a generated block differs from what the results give "
                                "(run `rdmbench docs`)")
            else:
                cache.write_text(page, new)
        problems += citations(new, ctx, where)
    return problems


def update_from_head(root: Path, *, check: bool = False) -> list[str]:
    """``update`` with the results and suites as committed at HEAD (what a fresh clone and CI see) and the
    pages of the working tree; changed pages are written back. A run in progress, or a `make run` on another
    machine, leaves the working tree's results/ with numbers no commit holds."""
    import shutil
    import subprocess
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rdmbench-docs-") as tmp:
        work = Path(tmp) / "repo"
        archive = Path(tmp) / "head.tar"
        try:
            subprocess.run(["git", "archive", "-o", str(archive), "HEAD", "results", "suites"], cwd=root, check=True,
                           capture_output=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise RdmbenchError(f"{root}: cannot read the committed results with `git archive` ({exc})") from None
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")
        shutil.copytree(root / "docs", work / "docs")
        shutil.copyfile(root / "README.md", work / "README.md")
        problems = update(work, check=check)
        if not check:
            for page in [work / "README.md", *(q for q in (work / "docs").rglob("*") if q.is_file())]:
                rel = page.relative_to(work)
                dst = root / rel
                if not dst.is_file() or dst.read_bytes() != page.read_bytes():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(page, dst)
    return problems
