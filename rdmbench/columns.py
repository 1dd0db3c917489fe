"""Result columns, each declared once: its name, display label, which direction is better, and what else
a report or results.csv needs to know of it.

A ``Column`` is a ``str`` (its name), so metric plugins keep returning ``{column: value}`` dicts
and code that only needs names never notices. Who produces a column declares it: a metric plugin
in its ``columns``, a task in its ``columns``, a trained encoder in its ``fit_columns``. The runner writes
the declarations of a suite's columns into ``suite.json``; the report, results.csv's column order and every
"↓ better" arrow read them from there, so a new metric or task brings its columns without an edit elsewhere.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Callable, Iterable, Literal, NamedTuple

Better = Literal["lower", "higher"] | None


class Role(str, Enum):
    """What kind of value a column holds: where results.csv puts it and how a report treats it."""

    #: a score, a setting or a count of the run: results.csv's body
    RESULT = "result"
    #: what the numbers were measured with (feature extractor, encoder, sample counts): after the results
    PROVENANCE = "provenance"
    #: seconds a part of the run took: after the provenance
    TIMING = "timing"
    #: a trained encoder's own fit report (``rdmbench.api.Encoder.fit_columns``, named ``encoder_<key>``):
    #: measured once per fit, shown beside the scores without a figure of its own
    FIT = "fit"


class Expected(NamedTuple):
    """A metric's value expected by chance, or of novel samples, held in a companion column: the report
    aggregates it like the metric, draws it as a dashed line in the metric's figure and notes it in the
    metric's cells, "(chance 0.1)"."""

    column: str     # the companion column
    word: str       # what the note calls it: "chance", "expected"


#: the prefix of a trained encoder's fit columns: ``encoder_<key>`` holds its fit report's ``<key>``
FIT_PREFIX = "encoder_"
#: declaration fields added after suite.json first recorded declarations: a suite.json written before lacks them
LATER_FIELDS = ("expected", "recall", "numeric", "role")


class Column(str):
    """A result column. ``better``: "lower", "higher" or None (a count, a size, a time of no merit).

    ``space_dependent``: the value is measured in a feature extractor's space (FID is "FD (<net>)"
    unless that net is Inception-v3). ``summary``: aggregated and plotted (False: shown as-is, e.g.
    a set size). ``description``: one line for the report's column legend. ``expected``: the companion
    column of its value expected by chance (``Expected``). ``recall``: on a precision column, the recall
    column it pairs with, drawn together as a precision–recall plane. ``numeric``: its values are numbers
    (default: a column aggregated or with a better direction is; a numeric setting, such as a count, says
    so). ``role``: a result, or provenance, a timing or an encoder's fit (``Role``; default: ``FIT`` for a
    name ``encoder_<key>``, the name ``Encoder.fit_columns`` requires, else ``RESULT``).
    """

    label: str
    better: Better
    space_dependent: bool
    summary: bool
    description: str
    expected: Expected | None
    recall: str | None
    numeric: bool
    role: Role

    def __new__(cls, name: str, label: str | None = None, better: Better = None, *, space_dependent: bool = False,
                summary: bool = True, description: str = "", expected: Expected | None = None,
                recall: str | None = None, numeric: bool | None = None, role: Role | str | None = None) -> "Column":
        if better not in ("lower", "higher", None):
            raise ValueError(f"better must be 'lower', 'higher' or None, got {better!r}")
        self = super().__new__(cls, name)
        self.label, self.better, self.space_dependent = label or name, better, space_dependent
        self.summary, self.description = summary, description
        self.expected = None if expected is None else Expected(str(expected[0]), str(expected[1]))
        self.recall = None if recall is None else str(recall)
        self.numeric = bool(summary or better is not None) if numeric is None else bool(numeric)
        if role is None:
            role = Role.FIT if name.startswith(FIT_PREFIX) and len(name) > len(FIT_PREFIX) else Role.RESULT
        self.role = Role(role)
        return self

    def __reduce__(self):  # copies and pickles keep the declaration
        return (_column, (str(self), self.declaration()))

    def declaration(self) -> dict[str, Any]:
        return {"label": self.label, "better": self.better, "space_dependent": self.space_dependent,
                "summary": self.summary, "description": self.description,
                "expected": None if self.expected is None else self.expected._asdict(), "recall": self.recall,
                "numeric": self.numeric, "role": self.role.value}

    @classmethod
    def from_declaration(cls, name: str, d: dict[str, Any], code: "Column | None" = None) -> "Column":
        """The column ``d`` declares. A field ``d`` lacks (a suite.json written before the field existed) is
        ``code``'s, the column's declaration in the code that reads it, where it has one, else the default."""
        def later(key: str) -> Any:
            return d[key] if key in d else getattr(code, key) if code is not None else None

        expected = later("expected")
        return cls(name, d.get("label"), d.get("better"), space_dependent=bool(d.get("space_dependent")),
                   summary=d.get("summary", True), description=d.get("description", ""),
                   expected=Expected(**expected) if isinstance(expected, dict) else expected,
                   recall=later("recall"), numeric=later("numeric"), role=later("role"))

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


def from_declarations(d: dict[str, dict[str, Any]],
                      code: Callable[[], Iterable[str]] | None = None) -> dict[str, Column]:
    """suite.json's declarations as columns. ``code``: the columns the reading code declares, asked for only
    where a declaration lacks a field added since (``LATER_FIELDS``); the first of a name counts."""
    known: dict[str, Column] = {}
    if code is not None and any(not set(LATER_FIELDS) <= set(decl) for decl in d.values()):
        for c in code():
            if isinstance(c, Column):
                known.setdefault(str(c), c)
    return {name: Column.from_declaration(name, decl, known.get(name)) for name, decl in d.items()}


#: columns every task's rows carry
WALL_S = Column("wall_s", "wall time (s)", summary=True, description="the run's wall time, cached stages included",
                role=Role.TIMING)
ERROR = Column("error", "error", summary=False)
ENCODER = Column("encoder", "retrieval encoder", summary=False, role=Role.PROVENANCE)
