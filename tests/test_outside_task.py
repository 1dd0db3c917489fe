"""A task from outside the package: the memorisation audit of examples/rdmbench-audit, one module found through
its one ``rdmbench.tasks`` entry-point line (a dist-info on sys.path; nothing installed). It composes the
generation task's public plan, so auditing a run shares every stage up to the features with that run."""

from __future__ import annotations

import ast
import sys

import pytest
import yaml

from conftest import FAST_BASE, REPO
from rdmbench import runner
from rdmbench.cache import read_json
from rdmbench.suite import load_suite
from rdmbench.tasks import TASKS

EXAMPLE = REPO / "examples" / "rdmbench-audit"


@pytest.fixture
def audit_installed(tmp_path, monkeypatch):
    dist = tmp_path / "site" / "rdmbench_audit-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rdmbench-audit\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text('[rdmbench.tasks]\naudit = rdmbench_audit:AuditTask\n')
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.syspath_prepend(str(EXAMPLE))
    TASKS.reload()
    yield
    monkeypatch.undo()
    sys.modules.pop("rdmbench_audit", None)
    TASKS.reload()


def test_the_audit_imports_nothing_private():
    tree = ast.parse((EXAMPLE / "rdmbench_audit.py").read_text())
    imported = [(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]
    assert all(not name.startswith("_") and not any(part.startswith("_") for part in module.split("."))
               for module, name in imported if module.startswith("rdmbench")), imported


def test_an_outside_task_audits_a_run_sharing_its_stages(tmp_path, audit_installed):
    doc = yaml.safe_load(FAST_BASE)
    doc["sweep"]["grid"]["k_train"] = [2]
    (tmp_path / "gen.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "audit.yaml").write_text(yaml.safe_dump({**doc, "suite": "audit", "task": "audit",
                                                         "base": {**doc["base"], "audit": {"quantile": 0.05,
                                                                                           "shown": 4}}}))
    cache = tmp_path / "cache"
    runner.run_suite(load_suite(tmp_path / "gen.yaml"), tmp_path / "gen", cache)
    (row,) = runner.run_suite(load_suite(tmp_path / "audit.yaml"), tmp_path / "audit", cache)
    assert row["status"] == "ok", row.get("error")
    assert 0.0 <= float(row["copies"]) <= 1.0 and float(row["median_ratio"]) > 0
    assert (tmp_path / "audit" / "runs" / "k_train=2_seed=0" / "copies.png").is_file()
    log = read_json(tmp_path / "audit" / "runs" / "k_train=2_seed=0" / "stages.json")
    computed = [s["stage"] for s in log if not s["cached"]]
    assert computed == ["audit"], computed  # data to features came from the generation run's cache
    with open(tmp_path / "audit" / "results.csv") as f:
        assert "status,copies,copy_quantile,median_ratio," in f.readline()  # the outside task's own columns
