"""Helpers every task's report shares: number formatting, which runs may be averaged
(config_groups), the interval of a mean over seeds, and column labels from suite.json's declarations.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from rdmbench.columns import Column, Role


def read_config(path: Path) -> Any:
    """A run's config.yaml, read safely with libyaml's parser where PyYAML has it: a scorecard reads every
    run's config, and the pure-Python parser was 40% of its time."""
    import yaml

    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def num(v: Any) -> str:
    """A value as a table shows it: integers without ".0", floats to 4 significant digits, NaN empty."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalars
        v = v.item()
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def one_line(s: Any) -> str:
    return " ".join(str(s).split())


def is_seed(key: str) -> bool:
    return key == "seed" or key.endswith(".seed")


def is_inception(extractor: str) -> bool:
    low = extractor.lower()
    return "inception" in low and "v3" in low


def labels(columns: dict[str, Column], extractors: list[str]) -> dict[str, str]:
    """Display names from the declarations; a ``space_dependent`` column (FID, KID, IS) is named after
    the feature extractor, "FD (<net>)", unless every run measured with Inception-v3."""
    out = {name: c.label for name, c in columns.items()}
    if extractors and all(is_inception(v) for v in extractors):
        return out
    short = ", ".join(dict.fromkeys(v.split(" (")[0] for v in extractors)) or "unrecorded features"
    for name, c in columns.items():
        if c.space_dependent:
            base = "FD" if c.label.upper() == "FID" else c.label
            out[name] = f"{base} ({short})"
    return out


def fit_names(columns: dict[str, Column]) -> list[str]:
    """Columns a trained encoder declares from its fit (role ``FIT``, numbers: declared with a summary),
    whatever their better direction: a table shows them beside the scores, without a figure of their own."""
    return [n for n, c in columns.items() if c.role is Role.FIT and c.summary]


def metric_names(columns: dict[str, Column]) -> list[str]:
    """Columns aggregated and plotted as scores: declared with a summary and a better direction, fit columns
    (``fit_names``) aside."""
    fit = set(fit_names(columns))
    return [n for n, c in columns.items() if c.summary and c.better is not None and n not in fit]


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() for k, v in _flat(val, f"{prefix}{key}.").items()}
    return {prefix[:-1]: obj}


def config_groups(df: Any, results_dir: Path, shown: list[str],
                  ignore: tuple[str, ...] = ("seed",)) -> tuple[list[str | None], list[str]]:
    """Per row: an id of its resolved config (``runs/<id>/config.yaml``) minus the ``ignore`` keys,
    None where that file is missing, and a label naming the keys, other than the ``shown`` ones, in
    which its config differs from other rows'."""
    flats: list[dict | None] = []
    for run_id in df["run_id"]:
        path = results_dir / "runs" / str(run_id) / "config.yaml"
        if not path.is_file():
            flats.append(None)
            continue
        flat = _flat(read_config(path) or {})
        flats.append({k: v for k, v in flat.items() if not any(k == i or k.startswith(i + ".") for i in ignore)})
    ids = [None if f is None else hashlib.sha256(json.dumps(f, sort_keys=True, default=str).encode()).hexdigest()[:12]
           for f in flats]
    known = [f for f in flats if f is not None]
    # a key only some rows have is another plugin's argument (exact has no nlist): it tells configurations
    # apart only where two rows that both have it disagree
    values = {k: {json.dumps(f[k], sort_keys=True, default=str) for f in known if k in f}
              for k in {k for f in known for k in f}}
    differ = sorted(k for k, v in values.items() if len(v) > 1 and k not in shown)
    labels_ = ["" if f is None else ", ".join(f"{k}={num(f[k])}" for k in differ if k in f) for f in flats]
    return ids, labels_


def mean_interval(runs: Any, col: str) -> tuple[float, float]:
    """Interval of the mean over seeds: Student's t over the seeds' values (each seed is a whole draw of the
    pipeline, so their spread holds the training-seed and the sample variance; rdmbench.verdicts). One run:
    its own bootstrap interval over its samples."""
    import numpy as np

    from rdmbench.verdicts import estimate

    v = runs[[col, col + "_lo", col + "_hi"]].dropna() if col + "_lo" in runs else runs[[col]].dropna()
    if not len(v):
        return np.nan, np.nan
    if len(v) == 1:
        if col + "_lo" not in v:
            return np.nan, np.nan
        return float(v[col + "_lo"].iloc[0]), float(v[col + "_hi"].iloc[0])
    e = estimate(list(v[col]))
    return e.lo, e.hi


def finite(v: Any) -> float | None:
    """``v`` as a float, or None where it is missing or not a finite number."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def shared_value(runs: Any, column: str) -> Any:
    """The value of ``column`` if every one of ``runs`` has it and all are equal, else None: only such a
    value may describe the whole suite (a header fact); any other belongs beside each run."""
    if column not in runs or not len(runs) or runs[column].isna().any() or runs[column].nunique() != 1:
        return None
    return runs[column].iloc[0]


def interval_text(lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None:
        return ""
    lo, hi = (0.0 if abs(b) < 1e-12 else b for b in (lo, hi))  # float noise of a bound at 0 (-1.4e-17)
    return f"[{lo:.4g}, {hi:.4g}]"
