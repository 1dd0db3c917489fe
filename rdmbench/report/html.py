"""The report model as index.html: one static page that opens from disk (file://) without a server
or the network. CSS is inline, images are relative paths inside the report folder, and the page
reads completely without JavaScript; the one inline script only counts images that failed to load
(``body[data-broken-images]``) and shows a banner naming them, which is what the headless-browser
test reads.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from rdmbench.report.common import interval_text
from rdmbench.report.model import Block, Cell, Fact, Figure, Gallery, Legend, Report, Section, Table, Text

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --accent: #0969da;
  --best: #dafbe1; --best-fg: #116329; --warn-bg: #fff8c5; --warn-line: #d4a72c; --bad-bg: #ffebe9;
  --bad-line: #cf222e; }
* { box-sizing: border-box; }
html { scroll-behavior: smooth; scroll-padding-top: 1rem; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.5; font-size: 15px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", Arial, sans-serif; }
.page { max-width: 1320px; margin: 0 auto; padding: 2rem 2rem 4rem; }
h1 { font-size: 2rem; line-height: 1.2; margin: 0 0 .5rem; letter-spacing: -.01em; }
h2 { font-size: 1.35rem; margin: 2.5rem 0 .75rem; padding-bottom: .35rem; border-bottom: 1px solid var(--line); }
p { margin: .5rem 0 .9rem; max-width: 90ch; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em;
  background: var(--soft); padding: .1em .35em; border-radius: 4px; }
a { color: var(--accent); }
.lede { font-size: 1.05rem; color: var(--muted); max-width: 100ch; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: .6rem; margin: 1.2rem 0; }
.fact { border: 1px solid var(--line); border-radius: 8px; padding: .55rem .8rem; background: #fff; }
.fact dt { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.fact dd { margin: .1rem 0 0; font-weight: 600; overflow-wrap: anywhere; }
.fact ul { margin: .35rem 0 0; padding-left: 1.1rem; font-weight: 400; font-size: .9rem; }
.fact.wide { grid-column: 1 / -1; }
.fact.warn { background: var(--warn-bg); border-color: var(--warn-line); }
.fact.warn dt::before { content: "⚠ "; }
.toc { display: flex; flex-wrap: wrap; gap: .4rem; margin: .5rem 0 0; }
.toc a { text-decoration: none; font-size: .9rem; padding: .2rem .7rem; border: 1px solid var(--line);
  border-radius: 999px; color: var(--fg); background: var(--soft); }
.toc a:hover { border-color: var(--accent); color: var(--accent); }
.tbl { margin: 1rem 0 1.5rem; }
.tbl > figcaption, .gallery > figcaption, details > summary { color: var(--muted); margin-bottom: .4rem; }
.scroll { overflow: auto; max-height: 78vh; border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: separate; border-spacing: 0; width: 100%; font-size: .9rem;
  font-variant-numeric: tabular-nums; }
th, td { padding: .4rem .6rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { position: sticky; top: 0; z-index: 2; background: var(--soft); font-weight: 600; vertical-align: bottom;
  box-shadow: inset 0 -1px 0 var(--line); }
tbody tr:last-child td { border-bottom: 0; }
tbody tr:hover td { background: #f3f6fa; }
th.num, td.num { text-align: right; }
td.num { white-space: nowrap; }
/* the scorecard's long ids and contrasts wrap anywhere, so its eight columns fit the page */
.scorecard td { overflow-wrap: anywhere; }
.scorecard td:nth-child(1) { min-width: 10rem; max-width: 15rem; }
.scorecard td:nth-child(2) { min-width: 13rem; }
.arrow { display: inline-block; padding: 0 .3rem; border-radius: 4px; font-size: .8rem;
  background: #ddf4ff; color: var(--accent); }
.v { font-weight: 500; }
.ci { display: block; color: var(--muted); font-size: .78rem; }
.note { display: block; color: var(--muted); font-size: .78rem; font-style: italic; }
.bar { position: relative; display: block; height: 6px; margin-top: 4px; min-width: 64px;
  background: linear-gradient(var(--line), var(--line)) center / 100% 1px no-repeat; }
.bar i { position: absolute; top: 1px; height: 4px; border-radius: 2px; background: #8cb4e8; }
.bar b { position: absolute; top: -1px; width: 2px; height: 8px; margin-left: -1px; background: var(--fg); }
td.best { background: var(--best); }
td.tied { background: #f0fbf2; }
td.best .v { color: var(--best-fg); font-weight: 700; }
td.best .v::after { content: " ★"; font-size: .75em; }
.failed .scroll { border-color: var(--bad-line); }
.failed thead th { background: var(--bad-bg); }
.failed td:last-child { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .8rem;
  color: #82071e; white-space: pre-wrap; overflow-wrap: anywhere; min-width: 30ch; }
details { margin: 1rem 0; }
details > summary { cursor: pointer; }
.figs { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1.2rem; margin: 1rem 0; }
.fig.wide { grid-column: 1 / -1; }
.fig { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: .6rem; background: #fff; }
.fig img { display: block; width: 100%; height: auto; }
/* run images at the width their tag gives (a whole multiple of the file's), never stretched to a column (a narrow
   panel's text would grow); pixels stay square blocks, not blurred; only a window narrower than one shrinks it */
.tile img { display: block; max-width: 100%; height: auto; image-rendering: pixelated; }
.fig figcaption { color: var(--muted); font-size: .85rem; margin-top: .4rem; }
.gallery { margin: 1rem 0 2rem; }
.flow { display: flex; flex-wrap: wrap; gap: .6rem; align-items: flex-start; }
.flow + .rowhead { margin-top: 1rem; }
.cell { min-width: 0; max-width: 100%; }
.legend { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .5rem 0 1rem;
  font-size: .88rem; max-width: 110ch; }
.legend dt { font-weight: 600; }
.legend dd { margin: 0; color: var(--muted); }
.colhead { font-weight: 600; overflow-wrap: anywhere; padding: .2rem 0; }
.rowhead { font-weight: 600; font-size: .85rem; color: var(--muted); margin: .4rem 0; }
.tile { display: block; max-width: 100%; text-decoration: none; color: var(--muted); border: 1px solid var(--line);
  border-radius: 8px; padding: .35rem; background: #fff; }
.tile:hover { border-color: var(--accent); }
.tile span { display: block; font-size: .78rem; margin-top: .25rem; overflow-wrap: anywhere; }
.empty { border: 1px dashed var(--line); border-radius: 8px; min-height: 3rem; min-width: 8rem; }
.broken { outline: 3px solid var(--bad-line); }
#broken { position: sticky; top: 0; z-index: 10; background: var(--bad-bg); color: #82071e;
  border-bottom: 2px solid var(--bad-line); padding: .6rem 2rem; font-weight: 600; }
footer { margin-top: 3rem; color: var(--muted); font-size: .85rem; border-top: 1px solid var(--line);
  padding-top: 1rem; }
"""

#: the widest an enlarged image is drawn: .page's max-width less its padding and a tile's border and padding
COLUMN_PX = 1320 - 2 * 32 - 2 * 7
#: a 28-px image at three screen pixels per pixel shows all there is to see; larger only costs scrolling
MAX_ENLARGEMENT = 3

# counts images that did not load; the page needs no script otherwise
SCRIPT = """
window.addEventListener("load", function () {
  var bad = Array.prototype.filter.call(document.images, function (i) {
    return i.complete && i.naturalWidth === 0;
  });
  document.body.dataset.brokenImages = String(bad.length);
  if (!bad.length) return;
  bad.forEach(function (i) { (i.closest("a") || i).classList.add("broken"); });
  var banner = document.getElementById("broken");
  banner.textContent = bad.length + " image(s) missing from the report folder: " +
    bad.map(function (i) { return i.getAttribute("src"); }).join(", ");
  banner.hidden = false;
});
"""


def render(report: Report) -> str:
    toc = "".join(f'<a href="#{_e(s.anchor)}">{_e(s.title)}</a>' for s in report.sections)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(report.title)} · rdmbench report</title>",
        f"<style>{CSS}</style></head>",
        '<body><div id="broken" role="alert" hidden></div><div class="page">',
        f"<header><h1>{_e(report.title)}</h1>",
        f'<p class="lede">{_inline(report.description)}</p>' if report.description else "",
        # plain facts first, then those with notes (warnings) across the full width
        '<dl class="facts">' + "".join(_fact(f) for f in sorted(report.facts, key=lambda f: bool(f.notes))) + "</dl>",
        f'<nav class="toc" aria-label="sections">{toc}</nav></header>' if toc else "</header>",
        "<main>", *[_section(s) for s in report.sections], "</main>",
        '<footer>Written by rdmbench. The same content for terminals: <a href="report.md">report.md</a>; '
        'the numbers: <a href="summary.csv">summary.csv</a>. ↓/↑: lower/higher is better; ★ marks a column\'s best '
        "value (each table's note says how it is decided; a paler green, where shown, the values whose interval "
        "overlaps the best's); a bar under a value spans its interval on the column's scale.</footer>",
        f"</div><script>{SCRIPT}</script></body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _fact(f: Fact) -> str:
    notes = "".join(f"<li>{_inline(n)}</li>" for n in f.notes)
    cls = "fact" + (" warn" if f.warn else "") + (" wide" if f.notes else "")
    return (f'<div class="{cls}"><dt>{_e(f.label)}</dt>'
            f"<dd>{_e(f.value)}{f'<ul>{notes}</ul>' if notes else ''}</dd></div>")


def _section(s: Section) -> str:
    out, figs = [f'<section id="{_e(s.anchor)}"><h2>{_e(s.title)}</h2>'], []
    for b in s.blocks:
        if isinstance(b, Figure):
            if b.only != "markdown":
                figs.append(b)
            continue
        if figs:  # consecutive figures share one grid
            out.append(_figures(figs))
            figs = []
        out.append(_block(b))
    if figs:
        out.append(_figures(figs))
    return "\n".join(out) + "</section>"


def _block(b: Block) -> str:
    if isinstance(b, Text):
        return f"<p>{_inline(b.text)}</p>"
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Gallery):
        return _gallery(b)
    if isinstance(b, Legend):
        return ('<dl class="legend">' + "".join(f"<dt>{_e(t)}</dt><dd>{_inline(d)}</dd>" for t, d in b.items)
                + "</dl>")
    raise TypeError(f"unknown block {type(b).__name__}")


def _figures(figs: list[Figure]) -> str:
    items = "".join(f'<figure class="fig{" wide" if f.wide else ""}"><a href="{_src(f.file)}">'
                    f'<img src="{_src(f.file)}" alt="{_e(f.caption)}"></a>'
                    f"<figcaption>{_inline(f.caption)}</figcaption></figure>" for f in figs)
    return f'<div class="figs">{items}</div>'


def _table(t: Table) -> str:
    best = [_best(t, j) for j in range(len(t.header))]
    tied = [_tied(t, j, best[j]) for j in range(len(t.header))]
    scale = [_scale(t, j) for j in range(len(t.header))]
    head = "".join(_th(h) for h in t.header)
    body = "".join("<tr>" + "".join(_td(c, t.header[j].numeric, _mark(c, best[j], tied[j]), scale[j])
                                    for j, c in enumerate(row)) + "</tr>" for row in t.rows)
    if not t.rows:
        body = f'<tr><td colspan="{len(t.header)}">No rows.</td></tr>'
    table = f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    kind = f"tbl {t.kind}"
    if t.folded:
        return (f'<details class="{kind}"><summary>{_inline(t.caption or "table")} ({len(t.rows)} rows)</summary>'
                f"{table}</details>")
    cap = f"<figcaption>{_inline(t.caption)}</figcaption>" if t.caption else ""
    return f'<figure class="{kind}">{cap}{table}</figure>'


def _th(h) -> str:
    tip = " ".join(p for p in (h.description, f"{h.better} is better" if h.better else "") if p)
    arrow = f'<span class="arrow">{"↓" if h.better == "lower" else "↑"}</span>' if h.better else ""
    return (f'<th scope="col"{" class=num" if h.numeric else ""}{f" title={_q(tip)}" if tip else ""}>'
            f"{_e(h.label)}{'&nbsp;' if arrow else ''}{arrow}</th>")


def _mark(c: Cell, best: set[int], tied: set[int]) -> str:
    return "best" if id(c) in best else "tied" if id(c) in tied else ""


def _td(c: Cell, numeric: bool, mark: str, scale: tuple[float, float] | None) -> str:
    cls = " ".join(p for p in ("num" if numeric else "", mark) if p)
    text = f'<a href="{_src(c.link)}">{_e(c.text)}</a>' if c.link else _e(c.text)
    inner = f'<span class="v">{text}</span>'
    ci = interval_text(c.lo, c.hi)
    if ci:
        inner += f'<span class="ci">{_e(ci)}</span>'
    if c.note:
        inner += f'<span class="note">{_e(c.note)}</span>'
    if scale and c.value is not None and c.lo is not None and c.hi is not None:
        lo_, span = scale[0], (scale[1] - scale[0]) or 1.0
        left, width, mark = ((c.lo - lo_) / span * 100, (c.hi - c.lo) / span * 100, (c.value - lo_) / span * 100)
        inner += (f'<span class="bar" aria-hidden="true"><i style="left:{left:.1f}%;width:{max(width, 0.5):.1f}%">'
                  f'</i><b style="left:{mark:.1f}%"></b></span>')
    return f'<td{f" class={_q(cls)}" if cls else ""}>{inner}</td>'


def _best(t: Table, j: int) -> set[int]:
    """Ids of the cells holding the best value of column ``j`` (ties all marked); none when fewer than two
    rows have a value or all are equal, where "best" would say nothing. Where the task decided it (Cell.best),
    its decision."""
    better = t.header[j].better
    column = [row[j] for row in t.rows if j < len(row)]
    if any(c.best is not None for c in column):
        return {id(c) for c in column if c.best}
    cells = [c for c in column if c.value is not None]
    values = {c.value for c in cells}
    if not better or len(cells) < 2 or len(values) < 2:
        return set()
    top = min(values) if better == "lower" else max(values)
    return {id(c) for c in cells if c.value == top}


def _tied(t: Table, j: int, best: set[int]) -> set[int]:
    """Cells whose interval overlaps a best cell's interval: the data do not tell them apart from it. None where
    the task decided the best by paired comparisons (overlapping marginal intervals say little there)."""
    cells = [row[j] for row in t.rows if j < len(row)]
    if any(c.best is not None for c in cells):
        return set()
    tops = [c for c in cells if id(c) in best and c.lo is not None and c.hi is not None]
    return {id(c) for c in cells if id(c) not in best and c.lo is not None and c.hi is not None
            and any(c.lo <= b.hi and b.lo <= c.hi for b in tops)}


def _scale(t: Table, j: int) -> tuple[float, float] | None:
    ends = [v for row in t.rows if j < len(row) and row[j].lo is not None and row[j].hi is not None
            for v in (row[j].lo, row[j].hi, row[j].value) if v is not None]
    return (min(ends), max(ends)) if ends else None


def _gallery(g: Gallery) -> str:
    cap = f"<figcaption>{_inline(g.caption)}</figcaption>" if g.caption else ""
    k = _enlargement(g)
    if not g.columns:
        return f'<figure class="gallery">{cap}<div class="flow">' + \
            "".join(_tile(f, c, g.sizes.get(f), k) for f, c in g.items) + "</div></figure>"
    # a row wider than the page wraps, each image under its column's label: a row that scrolled sideways hid
    # the runs past the page's edge
    out = [f'<figure class="gallery">{cap}']
    n = len(g.columns)
    for i, label in enumerate(g.rows):
        if len(g.rows) > 1 or label:
            out.append(f'<div class="rowhead">{_e(label)}</div>')
        out.append('<div class="flow">' + "".join(
            f'<div class="cell"><div class="colhead">{_e(col)}</div>{_tile(f, c, g.sizes.get(f), k)}</div>'
            for col, (f, c) in zip(g.columns, g.items[i * n:(i + 1) * n])) + "</div>")
    return "".join(out) + "</figure>"


def _enlargement(g: Gallery) -> int:
    """The one whole factor a gallery's pixel images are drawn at: the largest, up to MAX_ENLARGEMENT, at
    which its widest image still fits the page's column. One factor for all, so that a panel of more
    neighbours stays wider and every panel's pixels stay the same size."""
    widest = max((w for w, _ in g.sizes.values()), default=0)
    return max(1, min(MAX_ENLARGEMENT, COLUMN_PX // widest)) if widest else 1


def _tile(file: str, caption: str, size: tuple[int, int] | None = None, k: int = 1) -> str:
    if not file:
        return '<div class="empty"></div>'
    dims = f' width="{size[0] * k}" height="{size[1] * k}"' if size else ""
    return (f'<a class="tile" href="{_src(file)}"><img src="{_src(file)}" alt="{_e(caption)}"{dims}>'
            f"<span>{_e(caption)}</span></a>")


def _src(file: str) -> str:
    """A relative URL for a file of the report folder (run ids hold '=', ',' and maybe '#' or spaces)."""
    return _e(quote(file, safe="/=,._-"))


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def _q(s: str) -> str:
    return f'"{_e(s)}"'


def _inline(text: str) -> str:
    """Escaped text with `code` and **bold** made markup (the only markup report text uses)."""
    out = _e(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
