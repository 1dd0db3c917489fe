"""Slow end-to-end quality check at the `cpu` profile (pytest -m slow; ~20 min).

It runs on its own empty cache: a shared cache (results/.cache) could hand it rows computed by other
code, and the check would pass on numbers the code in place no longer produces. The bounds are
loose against what was measured (README): untrained FD 3511, RDM k=4 FD 1327, class agreement 0.32
vs chance 0.10, parametric baseline at chance.
"""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from conftest import REPO, needs_fashion_mnist


@pytest.mark.slow
@needs_fashion_mnist
def test_baselines_cpu_profile_quality(tmp_path):
    out = tmp_path / "baselines"
    proc = subprocess.run([sys.executable, "-m", "rdmbench", "run", "suites/baselines.yaml", "--results", str(out),
                           "--cache", str(tmp_path / "cache")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "results.csv") as f:
        untrained, baseline, rdm = (
            {k: float(v) if k in ("fid", "class_agreement", "class_agreement_chance") else v for k, v in r.items()}
            for r in csv.DictReader(f))
    assert rdm["fid"] < 0.6 * untrained["fid"]
    assert rdm["fid"] < baseline["fid"]
    assert rdm["class_agreement"] > 2 * rdm["class_agreement_chance"]
    assert baseline["class_agreement"] < 1.5 * baseline["class_agreement_chance"]
