"""Stage keys cover what changes a result, and nothing else.

Editing a plugin's source recomputes exactly its stage and those downstream; upgrading a library
recomputes exactly the stages whose code imports it; another run of the suite changes no key; a
finished run re-run with nothing changed keeps its row.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import TINY_BASE
from rdmbench import provenance, runner
from rdmbench.suite import load_suite

ONE_RUN = TINY_BASE.replace("k_train: [0, 2]", "k_train: [2]")
#: the head, what it samples, their features, the metrics and the novelty measure
DOWNSTREAM_OF_HEAD = {"train", "samples", "features", "metrics", "novelty"}


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """The one-run tiny suite computed once into a cache the tests below reuse."""
    tmp = tmp_path_factory.mktemp("keys")
    (tmp / "s.yaml").write_text(ONE_RUN)
    cache = tmp / "cache"
    runner.run_suite(load_suite(tmp / "s.yaml"), tmp / "first", cache)
    return tmp, cache


def recomputed(tmp: Path, cache: Path, text: str = ONE_RUN, out: str = "again", only=None) -> dict[str, bool]:
    path = tmp / f"{out}.yaml"
    path.write_text(text)
    suite = load_suite(path)
    runner.run_suite(suite, tmp / out, cache, only=only)
    run_id = only[0] if only else suite.runs[0].run_id
    stages = json.loads((tmp / out / "runs" / run_id / "stages.json").read_text())
    return {s["stage"] for s in stages if not s["cached"]}


def test_editing_a_plugin_recomputes_its_stage_and_downstream_only(warm, tmp_path, monkeypatch):
    tmp, cache = warm
    original = provenance.module_file("rdmbench_plugins.heads.rdm")
    edited = tmp_path / "rdm.py"
    shutil.copyfile(original, edited)
    with open(edited, "a") as f:
        f.write("\n# one line appended, as a user editing the head would\n")
    real = provenance.module_file
    monkeypatch.setattr(provenance, "module_file",
                        lambda m: str(edited) if m == "rdmbench_plugins.heads.rdm" else real(m))
    assert recomputed(tmp, cache, out="edited") == DOWNSTREAM_OF_HEAD


def test_library_upgrade_recomputes_the_stages_that_import_it(warm, monkeypatch):
    tmp, cache = warm
    real = provenance.library_versions

    def upgraded(names):
        versions = real(names)
        if "torch-fidelity" in versions:
            versions["torch-fidelity"] += ".post1"
        return versions

    monkeypatch.setattr(provenance, "library_versions", upgraded)
    provenance._function_provenance.cache_clear()
    try:
        assert recomputed(tmp, cache, out="upgraded") == {"metrics"}
    finally:
        provenance._function_provenance.cache_clear()


def test_another_run_of_the_suite_changes_no_key(warm):
    tmp, cache = warm
    wider = ONE_RUN.replace("k_train: [2]", "k_train: [2, 32]")
    assert recomputed(tmp, cache, wider, out="wider", only=["k_train=2_seed=0"]) == set()


def test_unchanged_rerun_keeps_the_row(warm):
    tmp, _ = warm
    before = (tmp / "first" / "runs" / "k_train=2_seed=0" / "row.json").read_text()
    runner.run_suite(load_suite(tmp / "s.yaml"), tmp / "first", tmp / "cache")
    assert (tmp / "first" / "runs" / "k_train=2_seed=0" / "row.json").read_text() == before


def test_stage_code_is_hashed_per_function():
    from rdmbench import stages
    from rdmbench.tasks.generation import stages as gen

    data, train = provenance.function_provenance(stages.data), provenance.function_provenance(gen.train)
    assert data["code"] != train["code"]
    assert data["libraries"]["numpy"]  # what stages.py imports is versioned
    rdm = provenance.plugin_provenance(__import__("rdmbench_plugins.heads.rdm", fromlist=["RDMHead"]).RDMHead)
    assert {"torch", "diffusers"} <= set(rdm["libraries"]), rdm["libraries"]
