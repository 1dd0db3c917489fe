"""Cold cost of `make test`'s type check (tests/test_lint.py runs mypy on a clean clone: no cache).

Runs mypy twice from an empty cache in one session: with the project's configuration, and with its
``follow_imports = "skip"`` overrides taken out (every big library read for its types). Prints both
times, the number of modules each read, and the ratio.

    python benchmarks/bench_typecheck.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def without_overrides(pyproject: str) -> str:
    return re.sub(r"\[\[tool\.mypy\.overrides\]\].*?follow_imports = \"skip\"\n", "", pyproject, flags=re.S)


def cold(config: Path) -> tuple[float, int, str]:
    with tempfile.TemporaryDirectory() as cache:
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(config), "--cache-dir", cache, "-v"],
                              cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - t
    modules = len(re.findall(r"^LOG:  Parsing ", proc.stderr, flags=re.M))
    return seconds, modules, proc.stdout.strip().splitlines()[-1]


def main() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert "[[tool.mypy.overrides]]" in text and without_overrides(text) != text
    with tempfile.TemporaryDirectory() as tmp:
        everything = Path(tmp) / "pyproject.toml"
        everything.write_text(without_overrides(text))
        slow = cold(everything)
    fast = cold(REPO / "pyproject.toml")
    print("| configuration | cold seconds | modules read | result |\n|---|---|---|---|")
    print(f"| every library followed | {slow[0]:.1f} | {slow[1]} | {slow[2]} |")
    print(f"| big libraries skipped (pyproject.toml) | {fast[0]:.1f} | {fast[1]} | {fast[2]} |")
    print(f"\nratio: {slow[0] / fast[0]:.2f}x")


if __name__ == "__main__":
    main()
