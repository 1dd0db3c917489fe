"""Checks of one run's config beyond its schema, collected rather than raised one at a time.

A task's ``validate`` receives a ``Checks``: each check either returns the resolved value or records
a ``ConfigError`` naming the file and the dotted key (``base.<key>`` until the suite loader re-keys
it to where the value was written), so one ``--dry-run`` lists every problem of every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from rdmbench.api import Retriever
from rdmbench.errors import ConfigError, ConfigErrors
from rdmbench.registry import Registry, validate_kwargs


@dataclass
class Checks:
    registry: Registry
    file: str | None
    prefix: str
    errors: list[ConfigError] = field(default_factory=list)

    def key(self, dotted: str) -> str:
        return f"{self.prefix}.{dotted}" if self.prefix else dotted

    def error(self, message: str, key: str) -> None:
        self.errors.append(ConfigError(message, file=self.file, key=self.key(key)))

    def attempt(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """``fn(...)``, or None with its ConfigError(s) recorded."""
        try:
            return fn(*args, **kwargs)
        except ConfigErrors as exc:
            self.errors.extend(exc.errors)
        except ConfigError as exc:
            self.errors.append(exc)
        return None

    def plugin(self, kind: str, spec: Any, key: str) -> dict[str, Any] | None:
        """The resolved spec (defaults filled in) of a plugin section, or None when it is invalid."""
        return self.attempt(self.registry.validate, kind, spec, file=self.file, key=self.key(key))

    def raise_errors(self) -> None:
        if self.errors:
            raise ConfigErrors(self.errors) if len(self.errors) > 1 else self.errors[0]


def data_section(checks: Checks, data: dict[str, Any], out: dict[str, Any]) -> None:
    """The dataset spec resolved and both splits checked to exist (a missing split would otherwise
    fail only at the data stage)."""
    out["dataset"] = checks.plugin("dataset", data["dataset"], "data.dataset")
    if out["dataset"] is None:
        return
    splits = checks.registry.create("dataset", out["dataset"]).splits
    for split_key in ("train_split", "reference_split"):
        if out[split_key] not in splits:
            checks.error(f"dataset {out['dataset']['name']!r} has no split {out[split_key]!r}; allowed: "
                         f"{', '.join(splits)}", f"data.{split_key}")


def retriever_section(checks: Checks, r: Any, key: str = "retriever",
                      build_defaults: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A retriever section resolved: build arguments against the constructor, query arguments
    against ``search_index``'s keyword-only parameters."""
    build_args = {**(build_defaults or {}), **r.build}
    known = checks.attempt(checks.registry.info, "retriever", r.name, file=checks.file, key=checks.key(f"{key}.name"))
    build = known and checks.plugin("retriever", {"name": r.name, **build_args}, f"{key}.build")
    if not build:
        return None
    cls = checks.registry.contract(Retriever, r.name)
    query = checks.attempt(validate_kwargs, cls.search_index, r.query, file=checks.file, key=checks.key(f"{key}.query"),
                           what=f"retriever {r.name!r} query", skip=3)
    return {"name": r.name, "build": {k: v for k, v in build.items() if k != "name"}, "query": query,
            "train_neighbours": r.train_neighbours}


def k_fits(checks: Checks, k: int, low: int, key: str, database: dict[str, Any] | None,
           what: str = "the database") -> None:
    """k neighbours must exist in the database, when its size is known from the config alone."""
    if database is None:
        return
    size = checks.registry.create("database", database).size_hint()
    if size is not None and k > size:
        checks.error(f"k = {k} is larger than {what} ({size} entries); allowed: {low}..{size}", key)
