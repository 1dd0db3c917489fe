"""The paper's findings as data: ``suites/claims/<study>.yaml`` (docs/statistics.md, "Claims").

A claim file names the suite whose runs test it and lists claims. A claim is one measure, one comparison of
that suite's runs and the paper's direction for it:

* ``compare: {KEY: [A, B]}`` — the runs at A minus the runs at B;
* ``trend: KEY`` (``scale: linear | log2``) — the least-squares slope along KEY (per unit, or per doubling);
* both — the slope of A − B along KEY: a difference that grows (difference-in-differences);

``at:`` fixes other keys (a mapping, or a list of them: one test per setting, e.g. a comparison at the
defaults and at the sampling settings that make it fair). ``expect`` is the paper's direction of the contrast
(``increase``, ``decrease``) or ``none`` with a ``margin`` (no effect within ±margin).

The comparison is a contrast over cells (weights on the suite's runs, one run per cell and seed), checked
against the suite before anything is read: an unknown key, measure, axis or value is one line naming the file
and line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rdmbench.errors import ConfigError, ConfigErrors
from rdmbench.registry import unknown_choice

CLAIMS_DIR = Path("suites/claims")
FORMAT_VERSION = 1
FILE_KEYS = ("version", "suite", "profile", "claims")


class ClaimSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
    #: the paper's statement, in words, and where it stands (figure, table, section)
    paper: str
    where: str
    measure: str
    expect: Literal["increase", "decrease", "none"]
    compare: dict[str, list[Any]] | None = None
    trend: str | None = None
    scale: Literal["linear", "log2"] = "linear"
    #: the axis values the trend is fitted over (default: every value the suite runs at); a mapping gives a
    #: non-numeric axis its positions (``{"3 classes": 3, "10 classes": 10}``)
    values: list[Any] | dict[str, float] | None = None
    at: dict[str, Any] | list[dict[str, Any]] = Field(default_factory=dict)
    #: |contrast| below this is "no effect" (required for expect: none; optional otherwise)
    margin: float | None = Field(default=None, gt=0)
    #: seeds a verdict needs: fewer leave the estimate shown and the claim "needs runs"
    min_seeds: int = Field(default=3, ge=1)
    note: str = ""

    @model_validator(mode="after")
    def _shape(self) -> "ClaimSpec":
        if self.compare is None and self.trend is None:
            raise ValueError("a claim needs `compare: {KEY: [A, B]}`, `trend: KEY` or both")
        if self.compare is not None and (len(self.compare) != 1 or len(next(iter(self.compare.values()))) != 2):
            raise ValueError("`compare` is one key with two values: {KEY: [A, B]} (A − B is estimated)")
        if self.expect == "none" and self.margin is None:
            raise ValueError("`expect: none` needs a `margin`: how large a contrast still counts as no effect")
        if self.values is not None and self.trend is None:
            raise ValueError("`values` restricts a trend's axis; this claim has no `trend`")
        return self


@dataclass
class Cell:
    """One group of runs of the contrast: its weight and the run of each seed."""

    weight: float
    label: str
    runs: dict[int, str] = field(default_factory=dict)   # seed -> run_id


@dataclass
class Test:
    """One claim at one ``at`` setting, resolved against its suite."""

    claim: ClaimSpec
    file: str
    suite: Any                    # rdmbench.suite.Suite
    at: dict[str, Any]
    cells: list[Cell]
    unit: str                     # what the contrast is, in words

    @property
    def name(self) -> str:
        return self.claim.id + (f" @ {_setting(self.at)}" if len(self.claim_settings) > 1 else "")

    @property
    def claim_settings(self) -> list[dict[str, Any]]:
        return self.claim.at if isinstance(self.claim.at, list) else [self.claim.at]

    @property
    def seeds(self) -> list[int]:
        """The seeds the suite runs every cell with."""
        common = set.intersection(*(set(c.runs) for c in self.cells)) if self.cells else set()
        return sorted(common)


def load_claims(directory: Path = CLAIMS_DIR, *, registry: Any = None) -> list[Test]:
    """Every claim file of ``directory`` (sorted), each resolved against its suite; errors name file and line."""
    files = sorted(Path(directory).glob("*.yaml"))
    if not files:
        raise ConfigError(f"no claim files (*.yaml) in {directory}", file=str(directory))
    tests: list[Test] = []
    seen: dict[str, str] = {}
    errors: list[ConfigError] = []
    for path in files:
        try:
            for t in load_file(path, registry=registry):
                if t.claim.id in seen and seen[t.claim.id] != str(path):
                    raise ConfigError(f"claim id {t.claim.id!r} is also used in {seen[t.claim.id]}", file=str(path),
                                      key="claims")
                seen[t.claim.id] = str(path)
                tests.append(t)
        except ConfigErrors as exc:
            errors += exc.errors
        except ConfigError as exc:
            errors.append(exc)
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return tests


def load_file(path: Path, *, registry: Any = None) -> list[Test]:
    from rdmbench.suite import load_yaml_with_lines, located

    doc, lines = load_yaml_with_lines(path)
    try:
        return _resolve(path, doc, registry)
    except ConfigErrors as exc:
        raise ConfigErrors([located(e, lines) for e in exc.errors]) from None
    except ConfigError as exc:
        raise located(exc, lines) from None


def _resolve(path: Path, doc: dict[str, Any], registry: Any) -> list[Test]:
    from rdmbench.suite import load_suite

    file = str(path)
    for key in doc:
        if key not in FILE_KEYS:
            raise ConfigError(unknown_choice("key", key, list(FILE_KEYS)), file=file, key=str(key))
    if doc.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ConfigError(f"unknown claims format version {doc.get('version')!r}; allowed: {FORMAT_VERSION}",
                          file=file, key="version")
    name = doc.get("suite")
    suite_path = path.parent.parent / f"{name}.yaml"
    if not isinstance(name, str) or not suite_path.is_file():
        known = sorted(p.stem for p in path.parent.parent.glob("*.yaml"))
        raise ConfigError(unknown_choice("suite", str(name), known), file=file, key="suite")
    suite = load_suite(suite_path, doc.get("profile"), registry)
    claims = doc.get("claims")
    if not isinstance(claims, list) or not claims:
        raise ConfigError("expected a list of claims", file=file, key="claims")
    tests, errors = [], []
    for i, raw in enumerate(claims):
        at = f"claims[{i}]"
        try:
            spec = ClaimSpec.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            errors.append(ConfigError(err["msg"].removeprefix("Value error, "), file=file,
                                      key=f"{at}.{loc}" if loc else at))
            continue
        try:
            tests += [_test(spec, suite, setting, file, at) for setting in
                      (spec.at if isinstance(spec.at, list) else [spec.at])]
        except ConfigError as exc:
            errors.append(exc)
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return tests


def with_suite(test: Test, suite: Any) -> Test:
    """``test`` resolved against ``suite``, its suite run with other seeds: a results folder that holds seeds
    beyond the suite file's (``rdmbench run SUITE --set seeds=[…]``, as the scorecard's plan asks) is read with
    all of them."""
    return _test(test.claim, suite, test.at, test.file, "claims")


def value_of(run: Any, key: str) -> Any:
    """A run's value of a dotted key: a shown swept value (a label) or its resolved config's."""
    if key in run.shown:
        return run.shown[key]
    node: Any = run.config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def same(a: Any, b: Any) -> bool:
    """YAML's 1 and 1.0 are one setting; everything else compares as written."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return a == b


def _test(spec: ClaimSpec, suite: Any, setting: dict[str, Any], file: str, at: str) -> Test:
    from rdmbench.runner import suite_columns

    columns = suite_columns(suite)
    if spec.measure not in columns:
        numeric = [c for c, d in columns.items() if d.get("better") or d.get("summary")]
        raise ConfigError(unknown_choice("measure", spec.measure, numeric), file=file, key=f"{at}.measure")
    runs = suite.runs

    def key_error(key: str, where: str) -> ConfigError:
        known = sorted({*(k for r in runs for k in r.shown), *_swept_config_keys(runs)})
        return ConfigError(unknown_choice("key", key, known), file=file, key=where)

    where_at = f"{at}.at"
    for key, value in setting.items():
        present = [value_of(r, key) for r in runs]
        if all(v is _MISSING for v in present):
            raise key_error(key, f"{where_at}.{key}")
        if not any(same(v, value) for v in present):
            raise ConfigError(f"no run of {suite.path} has {key} = {value!r}; it runs at "
                              f"{_values(present)}", file=file, key=f"{where_at}.{key}")
    chosen = [r for r in runs if all(same(value_of(r, k), v) for k, v in setting.items())]
    for role, key in (("compare", next(iter(spec.compare)) if spec.compare else None), ("trend", spec.trend)):
        if key is None:
            continue
        present = [value_of(r, key) for r in chosen]
        if all(v is _MISSING for v in present):
            raise key_error(key, f"{at}.{role}")
    comp_key, comp = (next(iter(spec.compare.items())) if spec.compare else (None, None))
    if comp_key is not None:
        for j, v in enumerate(comp):
            if not any(same(value_of(r, comp_key), v) for r in chosen):
                raise ConfigError(f"no run of {suite.path} at {_setting(setting) or 'its settings'} has {comp_key} = "
                                  f"{v!r}; it runs at {_values([value_of(r, comp_key) for r in chosen])}",
                                  file=file, key=f"{at}.compare.{comp_key}[{j}]")
    if spec.trend is not None:
        axis = _distinct([value_of(r, spec.trend) for r in chosen])
        if spec.values is not None:
            for j, v in enumerate(spec.values):
                if not any(same(v, a) for a in axis):
                    raise ConfigError(f"{spec.trend} = {v!r} is not among the suite's values {_values(axis)}",
                                      file=file, key=f"{at}.values[{j}]" if isinstance(spec.values, list)
                                      else f"{at}.values.{v}")
            axis = [a for a in axis if any(same(a, v) for v in spec.values)]
        positions = [spec.values[a] for a in axis] if isinstance(spec.values, dict) else axis
        if not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in positions):
            raise ConfigError(f"a trend needs a numeric axis, or `values` giving each value a position; "
                              f"{spec.trend} takes {_values(axis)}", file=file, key=f"{at}.trend")
        if len(axis) < 2:
            raise ConfigError(f"a trend needs two values of {spec.trend} at least; the suite has {_values(axis)}",
                              file=file, key=f"{at}.trend")
        if spec.scale == "log2" and min(positions) <= 0:
            raise ConfigError(f"scale log2 needs positive values of {spec.trend}, got {_values(positions)}",
                              file=file, key=f"{at}.scale")
        xs = [math.log2(a) if spec.scale == "log2" else float(a) for a in positions]
        mean = sum(xs) / len(xs)
        ss = sum((x - mean) ** 2 for x in xs)
        slope = [(x - mean) / ss for x in xs]
    else:
        axis, slope = [None], [1.0]
    cells: list[Cell] = []
    for a, w in zip(axis, slope):
        for sign, c in ((1.0, comp[0]), (-1.0, comp[1])) if comp_key else ((1.0, None),):
            fixed = {**({spec.trend: a} if spec.trend else {}), **({comp_key: c} if comp_key else {})}
            cell = Cell(sign * w, _setting(fixed))
            for r in chosen:
                if all(same(value_of(r, k), v) for k, v in fixed.items()):
                    seed = r.config["seed"]
                    if seed in cell.runs and _config_of(runs, cell.runs[seed]) == r.config:
                        continue  # one setting listed twice (two sweep groups meet): one run, shared stages
                    if seed in cell.runs:
                        other = cell.runs[seed]
                        varying = [k for k in r.shown if k != "seed" and not same(r.shown[k], _shown_of(runs, other, k))]
                        raise ConfigError(f"runs {other} and {r.run_id} of {suite.path} both fall in the cell "
                                          f"{cell.label or 'of this claim'} (seed {seed}); fix "
                                          f"{', '.join(varying) or 'the key they differ in'} with `at:`", file=file,
                                          key=where_at)
                    cell.runs[seed] = r.run_id
            cells.append(cell)
    return Test(spec, file, suite, setting, cells, _unit(spec, comp_key, comp))


def _config_of(runs: list[Any], run_id: str) -> dict[str, Any]:
    return next(r.config for r in runs if r.run_id == run_id)


def _shown_of(runs: list[Any], run_id: str, key: str) -> Any:
    return next(r.shown.get(key) for r in runs if r.run_id == run_id)


def _swept_config_keys(runs: list[Any]) -> list[str]:
    return sorted({k for r in runs for k in r.swept})


def _distinct(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v is not _MISSING and not any(same(v, o) for o in out):
            out.append(v)
    return sorted(out, key=lambda v: (not isinstance(v, (int, float)), v if isinstance(v, (int, float)) else str(v)))


def _values(values: list[Any]) -> str:
    return ", ".join(map(repr, _distinct(values))) or "no value"


def _setting(at: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in at.items())


def _unit(spec: ClaimSpec, comp_key: str | None, comp: list[Any] | None) -> str:
    diff = f"{spec.measure}({comp_key} = {comp[0]}) − {spec.measure}({comp_key} = {comp[1]})" if comp_key else ""
    if spec.trend is None:
        return diff
    per = f"per doubling of {spec.trend}" if spec.scale == "log2" else f"per unit of {spec.trend}"
    return f"slope of {diff or spec.measure} {per}"
