"""The base every plugin kind derives from (rdmbench.api): ``kind``, ``name``, ``version``, ``requires``, the
preflight ``check`` and the one-line description the registry lists.

A plugin class sets ``name`` (what suites call it) and a docstring whose first line is its
one-line description. Its ``__init__`` keyword arguments, with type annotations and defaults, are
its configuration: the registry validates a suite's values against them before any work starts,
and the resolved values become part of every cache key the plugin touches.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar


class Plugin:
    """Base of all plugins. Subclasses set ``kind`` (via their contract) and ``name``."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    #: Bump when the plugin's output changes for the same config, so cached stages are recomputed.
    version: ClassVar[int] = 1
    #: importable module -> install hint (the command, and a built-in to use instead): the runner imports
    #: each before any work (``check_requirements``), so a missing library is one line, not a traceback
    requires: ClassVar[dict[str, str]] = {}
    #: project modules the plugin's results depend on beyond its own module and its bases (e.g. a helper
    #: module it imports lazily): their code is keyed with the plugin's (rdmbench.provenance)
    code_modules: ClassVar[tuple[str, ...]] = ()

    def check(self, *, images: tuple[int, int, int] | None = None) -> None:
        """Cheap checks, before any work, that what this plugin will read is there and readable (weights
        load as tensors, files parse) and that it can work on the run's images: ``images`` is the (height,
        width, channels) of the run's training images X, read from one row (None where it cannot be told).
        Raise an RdmbenchError (a ConfigError with ``key=`` the argument at fault) whose one line names the
        file or argument and the fix. The runner's preflight calls it for every plugin of every run, and so
        does ``--dry-run``; a plugin whose ``check`` takes no ``images`` is called without."""

    def fingerprint(self) -> dict[str, Any]:
        """Cache-key material beyond the resolved constructor arguments, the version and the code (e.g. the
        hashes of the files the plugin reads); keyed into every stage the plugin computes or feeds."""
        return {}

    @classmethod
    def check_requirements(cls) -> None:
        """Import every module in ``requires``; a missing one is one MissingDependency line with its hint."""
        import importlib

        from rdmbench.errors import MissingDependency

        for module, hint in cls.requires.items():
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise MissingDependency(f"{hint} ({type(exc).__name__}: {exc})") from None

    @classmethod
    def description(cls) -> str:
        doc = inspect.getdoc(cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""
