"""An edit of one plugin contract re-keys the cached stages that depend on that contract, and no others.

rdmbench.api is one module per contract because a stage's key hashes the project modules its code and its
plugins reach (rdmbench.provenance): while every contract shared rdmbench/api.py, a line added to the head's
contract re-keyed the data, the database, the embeddings and the index as well. Here a contract module is
edited — a copy with a module constant appended stands in for it, the strongest edit short of a new
import: every stage that reaches anything in the module is re-keyed by it — and a one-run suite is run
again on a warm cache. Exactly the stages that use the contract, and those that read their entries, get
new keys. Pointed at a module every stage reaches (``rdmbench.api.plugin``, the package's ``__init__``), the
test fails: it would fail if the contracts shared one file again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FAST_BASE
from rdmbench import provenance, runner
from rdmbench.cache import read_json
from rdmbench.suite import load_suite


def one_run(text: str) -> str:
    """FAST_BASE as one run (k = 2) with a head and a sampler of two steps each."""
    for old, new in (("k_train: [0, 2]", "k_train: [2]"), ("steps: 20, batch_size", "steps: 2, batch_size"),
                     ("head: {steps: 10}", "head: {steps: 2}")):
        assert old in text, old
        text = text.replace(old, new)
    return text


ONE_RUN = one_run(FAST_BASE)


def stage_log(tmp: Path, out: str) -> list[dict]:
    """Run the suite into results ``out`` on the shared cache; its stages in order, with their keys."""
    suite = load_suite(tmp / "s.yaml")
    rows = runner.run_suite(suite, tmp / out, tmp / "cache")
    assert [r["status"] for r in rows] == ["ok"], [r.get("error") for r in rows]
    return json.loads((tmp / out / "runs" / suite.runs[0].run_id / "stages.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, list[dict]]:
    tmp = tmp_path_factory.mktemp("contracts")
    (tmp / "s.yaml").write_text(ONE_RUN)
    return tmp, stage_log(tmp, "reference")


def readers(cache: Path, log: list[dict], seeds: set[str]) -> set[int]:
    """Positions of the stages named ``seeds`` and of every stage that reads their entries, directly or not
    (an entry's inputs are the keys of the entries it read)."""
    reached = {s["key"] for s in log if s["stage"] in seeds}
    for s in log:  # the log is in the order of computation: an entry's inputs come before it
        inputs = read_json(cache / s["stage"] / s["key"] / "stage.json")["inputs"]
        if reached & set(inputs.values()):
            reached.add(s["key"])
    return {i for i, s in enumerate(log) if s["key"] in reached}


def rekeyed_by_edit(tmp: Path, module: str, monkeypatch, out: str) -> list[dict]:
    """The run again, ``module`` edited (a copy with a constant appended stands in for its file)."""
    edited = tmp / f"{out}.py"
    edited.write_text(Path(provenance.module_file(module)).read_text() + "\n_APPENDED_BY_A_TEST = 1\n")
    real = provenance.module_file
    monkeypatch.setattr(provenance, "module_file", lambda m: str(edited) if m == module else real(m))
    try:
        return stage_log(tmp, out)
    finally:
        monkeypatch.setattr(provenance, "module_file", real)


@pytest.mark.parametrize("module,uses,untouched", [
    ("rdmbench.api.head", {"train", "samples"},
     {"data", "database", "first_stage", "embeddings", "index", "neighbours"}),
    # the exact neighbours that neighbour recall is measured against are searched by a retriever as well
    ("rdmbench.api.retriever", {"index", "neighbours", "ground_truth"},
     {"data", "database", "first_stage", "embeddings"}),
    ("rdmbench.api.retriever_runtime", {"index", "neighbours", "ground_truth"},
     {"data", "database", "first_stage", "embeddings"}),
], ids=["head", "retriever", "retriever-runtime"])
def test_editing_a_contract_rekeys_only_the_stages_that_use_it(reference, monkeypatch, module, uses, untouched):
    tmp, before = reference
    assert uses <= {s["stage"] for s in before} and untouched <= {s["stage"] for s in before}  # the run has them
    after = rekeyed_by_edit(tmp, module, monkeypatch, module.rsplit(".", 1)[1])
    assert [s["stage"] for s in after] == [s["stage"] for s in before]
    rekeyed = {i for i, (a, b) in enumerate(zip(after, before)) if a["key"] != b["key"]}
    expected = readers(tmp / "cache", before, uses)
    assert sorted(before[i]["stage"] for i in rekeyed) == sorted(before[i]["stage"] for i in expected)
    assert rekeyed == expected
    assert not {before[i]["stage"] for i in rekeyed} & untouched


def test_a_name_imported_through_the_package_reaches_its_own_module_only():
    """``from rdmbench.api import ImageSet`` is followed through the package's re-export to
    rdmbench.api.images; the package's ``__init__`` is keyed for its own statements, and adds no contract."""
    from rdmbench import stages
    from rdmbench.registry import get_registry
    from rdmbench.tasks.generation import stages as gen

    def contracts(facts: dict) -> set[str]:
        return {m for m in facts["modules"] if m.startswith("rdmbench.api")}

    assert contracts(provenance.function_provenance(stages.data)) == {
        "rdmbench.api", "rdmbench.api.images", "rdmbench.api.dataset", "rdmbench.api.plugin"}
    # the train stage reads the Head contract's declared space (``Head.generates``): it reaches the class
    assert contracts(provenance.function_provenance(gen.train)) == {"rdmbench.api", "rdmbench.api.head",
                                                                    "rdmbench.api.plugin"}
    assert contracts(provenance.function_provenance(stages.index)) == set()
    registry = get_registry()
    # a plugin reaches its contract's module (its base class, by definition) and the base of every plugin
    assert contracts(provenance.plugin_provenance(registry.info("head", "rdm").cls)) == {
        "rdmbench.api", "rdmbench.api.head", "rdmbench.api.plugin"}
    assert contracts(provenance.plugin_provenance(registry.info("retriever", "exact").cls)) == {
        "rdmbench.api", "rdmbench.api.retriever", "rdmbench.api.retriever_runtime", "rdmbench.api.plugin"}
