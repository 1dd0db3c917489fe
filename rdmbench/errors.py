"""Errors a user can act on: each says where (file, key) and what is allowed."""

from __future__ import annotations


class RdmbenchError(Exception):
    """Base class for errors reported to the user without a traceback."""


class ConfigError(RdmbenchError):
    """A suite or run configuration is wrong. Raised before any expensive work starts."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        self.file, self.key, self.detail = file, key, message
        where = ": ".join(p for p in (file, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class ConfigErrors(RdmbenchError):
    """Several configuration errors found in one pass, one line each."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def one_line(exc: BaseException, limit: int = 500) -> str:
    """``Type: message``, first line only, at most ``limit`` characters: an error as a row or log shows it."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:limit]


class MissingDependency(RdmbenchError):
    """An optional library or a local file a plugin needs is not there; says how to get it."""


class DataNotFound(RdmbenchError):
    """A dataset's files are not where they were looked for; says where it looked and how to fix it."""


def require(module: str, hint: str):
    """Import an optional library, or raise MissingDependency with ``hint`` (how to install it, what
    to use instead), so a missing library is one clear line instead of an ImportError traceback."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(hint) from None
