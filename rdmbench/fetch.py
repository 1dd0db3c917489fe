"""`rdmbench data fetch NAME`: download a dataset's files where there is a network.

A dataset plugin opts in by defining a module-level ``fetch(dest: Path | None) -> Path`` beside
its class (see ``rdmbench_plugins.datasets.fashion_mnist``). Dispatch goes through the registry,
so third-party datasets are fetchable the same way as built-ins.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from rdmbench.errors import ConfigError
from rdmbench.registry import get_registry, unknown_choice


def _fetcher(cls: type) -> Callable[[Path | None], Path] | None:
    func = getattr(importlib.import_module(cls.__module__), "fetch", None)
    return func if callable(func) else None


def fetchable() -> dict[str, Callable[[Path | None], Path]]:
    """Dataset name -> its module's ``fetch``, for every installed dataset that has one."""
    registry = get_registry()
    found = {info.name: _fetcher(info.cls) for info in registry.all("dataset")}
    return {name: func for name, func in found.items() if func is not None}


def fetch(name: str, dest: str | None = None) -> Path:
    """Download dataset ``name`` into ``dest`` (default: the dataset's own user-cache folder)."""
    available = fetchable()
    if name not in available:
        if name in get_registry().names("dataset"):
            message = f"dataset {name!r} has no download (fetchable: {', '.join(sorted(available)) or 'none'})"
        else:
            message = unknown_choice("fetchable dataset", name, sorted(available))
        raise ConfigError(message, key="name")
    return available[name](Path(dest).expanduser() if dest else None)
