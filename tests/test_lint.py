"""The linter and the type checker, as `make test` runs them (configured in pyproject.toml): ruff over every
Python file, mypy --strict over the typed core (the contracts, the engine, the shared stages, the tasks)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize("tool", [["ruff", "check", "--no-cache", "."], ["mypy"]], ids=["ruff", "mypy"])
def test_the_project_passes(tool):
    proc = subprocess.run([sys.executable, "-m", *tool], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
