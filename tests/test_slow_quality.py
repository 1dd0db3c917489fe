"""Slow end-to-end quality check at the `cpu` profile (pytest -m slow; ~20 min from an empty cache).

It reuses the repository's own stage cache (results/.cache), so after `make run` it takes seconds.
The bounds are loose against what was measured (README): untrained FD 3511, RDM k=4 FD 1327,
class agreement 0.32 vs chance 0.10, parametric baseline at chance.
"""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from conftest import FASHION, REPO


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.exists(), reason="Debian dataset-fashion-mnist not installed")
def test_baselines_cpu_profile_quality(tmp_path):
    out = tmp_path / "baselines"
    proc = subprocess.run([sys.executable, "-m", "rdmbench", "run", "suites/baselines.yaml", "--results", str(out),
                           "--cache", str(REPO / "results" / ".cache")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "results.csv") as f:
        untrained, baseline, rdm = (
            {k: float(v) if k in ("fid", "class_agreement", "class_agreement_chance") else v for k, v in r.items()}
            for r in csv.DictReader(f))
    assert rdm["fid"] < 0.6 * untrained["fid"]
    assert rdm["fid"] < baseline["fid"]
    assert rdm["class_agreement"] > 2 * rdm["class_agreement_chance"]
    assert baseline["class_agreement"] < 1.5 * baseline["class_agreement_chance"]
