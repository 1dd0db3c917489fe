"""What a report says, apart from how it is drawn: the data it is made from (``ReportData``) and a
small document model (``Report`` of ``Section``s of blocks) that rdmbench.report.markdown renders
for terminals and rdmbench.report.html renders as one static page.

Blocks hold text and numbers, never markup: a renderer decides how an interval, a better-direction
arrow or the best value of a column looks. Files are paths relative to the report folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from rdmbench.columns import Better, Column


@dataclass
class ReportData:
    """One suite's results as a task's report reads them."""

    frame: Any                      # pandas DataFrame of results.csv, plus a boolean ``_failed`` column
    meta: dict[str, Any]            # suite.json
    results_dir: Path
    out: Path                       # the report folder (exists)
    columns: dict[str, Column]      # suite.json's declarations, in results.csv order
    swept: list[str]                # swept keys present in the frame
    title: str

    @property
    def wish(self) -> dict[str, Any]:
        """The suite's ``report:`` section (x, hue, metrics, title)."""
        return self.meta.get("report") or {}


@dataclass
class Text:
    """A paragraph. Inline `code` and **bold** are the only markup, understood by both renderers."""

    text: str


@dataclass
class Head:
    """A table column: its label, which direction is better (arrow, best-value mark) and a tooltip."""

    label: str
    better: Better = None
    description: str = ""
    numeric: bool = False


@dataclass
class Cell:
    """A table cell. ``value`` (a number) marks the best of its column; ``lo``/``hi`` an interval."""

    text: str
    value: float | None = None
    lo: float | None = None
    hi: float | None = None
    note: str = ""                  # after the value and interval, e.g. "(chance 0.1)"
    #: set by a task that compares rows statistically: True on a column's best only where the paired comparison
    #: decides it. None (every cell of a column): the renderer marks the best value itself
    best: bool | None = None
    link: str = ""                  # the text links here (a figure file, relative to the report folder)


@dataclass
class Table:
    header: list[Head]
    rows: list[list[Cell]]
    caption: str = ""
    kind: Literal["results", "failed", "plain", "scorecard"] = "results"
    folded: bool = False            # long detail tables: collapsed on the page until opened


@dataclass
class Legend:
    """Terms and what they mean (a table's columns, from their declarations)."""

    items: list[tuple[str, str]]    # (term, definition)


@dataclass
class Figure:
    file: str
    caption: str = ""
    #: "markdown": a montage that only the terminal report needs (the page shows the gallery instead)
    only: Literal["markdown", "html"] | None = None
    wide: bool = False              # several panels side by side: the page gives it a whole row


@dataclass
class Gallery:
    """Images, each at its own size or all enlarged alike (``sizes``). With ``columns``, ``items`` fill a grid
    row by row, one row per ``rows`` label; an item whose file is "" is an empty cell. Without, they flow."""

    items: list[tuple[str, str]]    # (file, caption)
    columns: list[str] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    caption: str = ""
    #: file -> (width, height) in pixels, for pixel images (sample grids, panels of 28-px images), small at their
    #: own size: the page draws every item at one whole multiple of it, the same for the gallery and as large as
    #: its column allows, so that pixels stay square, none is smeared or dropped, and panels compare alike
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)


Block = Union[Text, Table, Figure, Gallery, Legend]


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    anchor: str = ""

    def __post_init__(self):
        if not self.anchor:
            self.anchor = "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-") or "section"


@dataclass
class Fact:
    """A line of the header: ``label: value``, with notes below it (``warn``: shown as a warning)."""

    label: str
    value: str
    notes: list[str] = field(default_factory=list)
    warn: bool = False


@dataclass
class Report:
    title: str
    description: str
    facts: list[Fact]
    sections: list[Section]
