"""The report model as report.md: GitHub-flavoured markdown that also reads well in a terminal."""

from __future__ import annotations

from rdmbench.report.common import interval_text
from rdmbench.report.model import Block, Cell, Figure, Gallery, Legend, Report, Table, Text


def render(report: Report) -> str:
    L = [f"# {report.title}", ""]
    if report.description:
        L += [report.description, ""]
    for f in report.facts:
        L.append(f"- **{f.label}:** {f.value}")
        L += [f"  - {n}" for n in f.notes]
    for s in report.sections:
        L += ["", f"## {s.title}"]
        for b in s.blocks:
            lines = _block(b)
            if lines:
                L += [""] + lines
    return "\n".join(L) + "\n"


def _block(b: Block) -> list[str]:
    if isinstance(b, Text):
        return [b.text]
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        if b.only == "html":
            return []
        return [f"![{_stem(b.file)}]({b.file})"] + ([_esc(b.caption)] if b.caption else [])
    if isinstance(b, Gallery):
        return _gallery(b)
    if isinstance(b, Legend):
        return [f"- **{_esc(term)}**: {text}" for term, text in b.items]
    raise TypeError(f"unknown block {type(b).__name__}")


def _table(t: Table) -> list[str]:
    head = [h.label + (f" {_arrow(h.better)}" if h.better else "") for h in t.header]
    L = ([t.caption, ""] if t.caption else []) + ["| " + " | ".join(map(_esc, head)) + " |", "|" + "---|" * len(head)]
    L += ["| " + " | ".join(_esc(_cell(c)) for c in row) + " |" for row in t.rows]
    if not t.rows:
        L.append("\n_No rows._")
    return L


def _cell(c: Cell) -> str:
    text = f"[{c.text}]({c.link})" if c.link and c.text else c.text
    return " ".join(p for p in (text, interval_text(c.lo, c.hi), c.note) if p)


def _gallery(g: Gallery) -> list[str]:
    L = [g.caption, ""] if g.caption else []
    if g.columns:
        L += ["| " + " | ".join(["", *map(_esc, g.columns)]) + " |", "|" + "---|" * (len(g.columns) + 1)]
        n = len(g.columns)
        for i, label in enumerate(g.rows):
            items = g.items[i * n:(i + 1) * n]
            L.append("| " + " | ".join([_esc(label), *[_image(f, c) for f, c in items]]) + " |")
        return L
    L += ["| image | |", "|---|---|"]
    return L + [f"| {_esc(c)} | {_image(f, c)} |" for f, c in g.items]


def _image(file: str, caption: str) -> str:
    return f"![{_esc(caption) or _stem(file)}]({file})" if file else ""


def _stem(file: str) -> str:
    name = file.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0]


def _arrow(better: str | None) -> str:
    return {"lower": "↓", "higher": "↑"}.get(better or "", "")


def _esc(s: str) -> str:
    return " ".join(str(s).split()).replace("|", "\\|")
