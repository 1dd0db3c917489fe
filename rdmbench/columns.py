"""Result columns, each declared once: its name, display label and which direction is better.

A ``Column`` is a ``str`` (its name), so metric plugins keep returning ``{column: value}`` dicts
and code that only needs names never notices. Who produces a column declares it: a metric plugin
in its ``columns``, a task in its ``columns``. The runner writes the declarations of a suite's
columns into ``suite.json``; the report, results.csv's column order and every "↓ better" arrow
read them from there, so a new metric or task brings its columns without an edit elsewhere.
"""

from __future__ import annotations

from typing import Any, Iterable, Literal

Better = Literal["lower", "higher"] | None


class Column(str):
    """A result column. ``better``: "lower", "higher" or None (a count, a size, a time of no merit).

    ``space_dependent``: the value is measured in a feature extractor's space (FID is "FD (<net>)"
    unless that net is Inception-v3). ``summary``: aggregated and plotted (False: shown as-is, e.g.
    a set size). ``description``: one line for the report's column legend.
    """

    label: str
    better: Better
    space_dependent: bool
    summary: bool
    description: str

    def __new__(cls, name: str, label: str | None = None, better: Better = None, *, space_dependent: bool = False,
                summary: bool = True, description: str = "") -> "Column":
        if better not in ("lower", "higher", None):
            raise ValueError(f"better must be 'lower', 'higher' or None, got {better!r}")
        self = super().__new__(cls, name)
        self.label, self.better, self.space_dependent = label or name, better, space_dependent
        self.summary, self.description = summary, description
        return self

    def __reduce__(self):  # copies and pickles keep the declaration
        return (_column, (str(self), self.declaration()))

    def declaration(self) -> dict[str, Any]:
        return {"label": self.label, "better": self.better, "space_dependent": self.space_dependent,
                "summary": self.summary, "description": self.description}

    @classmethod
    def from_declaration(cls, name: str, d: dict[str, Any]) -> "Column":
        return cls(name, d.get("label"), d.get("better"), space_dependent=bool(d.get("space_dependent")),
                   summary=d.get("summary", True), description=d.get("description", ""))

    @property
    def arrow(self) -> str:
        return {"lower": "↓", "higher": "↑"}.get(self.better or "", "")


def _column(name: str, d: dict[str, Any]) -> Column:
    return Column.from_declaration(name, d)


def declarations(columns: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{name: declaration}`` for suite.json; a bare string column gets a neutral declaration."""
    out: dict[str, dict[str, Any]] = {}
    for c in columns:
        out.setdefault(str(c), c.declaration() if isinstance(c, Column) else Column(c).declaration())
    return out


def from_declarations(d: dict[str, dict[str, Any]]) -> dict[str, Column]:
    return {name: Column.from_declaration(name, decl) for name, decl in d.items()}


#: columns every task's rows carry
WALL_S = Column("wall_s", "wall time (s)", summary=True, description="the run's wall time, cached stages included")
ERROR = Column("error", "error", summary=False)
ENCODER = Column("encoder", "retrieval encoder", summary=False)
