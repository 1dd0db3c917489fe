"""docs/writing-a-plugin.md runs as written: its plugin modules (the USearch retriever, and the encoder
section's frozen and trained encoders) are loaded as plugins, and each contract block is collected as tests
here, against those modules (not the installed example)."""

from __future__ import annotations

import re
import sys
import types

import pluggy
import pytest

from conftest import REPO
from rdmbench import hookspecs, registry

GUIDE = REPO / "docs" / "writing-a-plugin.md"
EXAMPLE = REPO / "examples" / "rdmbench-usearch"
BLOCKS = re.findall(r"^```python\n(.*?)^```", GUIDE.read_text(), flags=re.S | re.M)
#: the guide's Python blocks, in order: each plugin module, then its tests
RETRIEVER, RETRIEVER_TESTS, ENCODERS, ENCODER_TESTS = range(4)
#: names of their own, so the guide's classes are not the installed example's
MODULES = {RETRIEVER: "guide_usearch", ENCODERS: "guide_encoders"}


def test_the_guide_shows_the_example_package_verbatim():
    assert len(BLOCKS) == 4, "the guide's Python blocks: the retriever module and its tests, the encoders and theirs"
    assert BLOCKS[RETRIEVER] == (EXAMPLE / "rdmbench_usearch.py").read_text()
    assert BLOCKS[RETRIEVER_TESTS] == (EXAMPLE / "tests" / "test_usearch_retriever.py").read_text()


@pytest.fixture(scope="module")
def guide_modules(tmp_path_factory):
    folder = tmp_path_factory.mktemp("guide")
    for block, name in MODULES.items():
        (folder / f"{name}.py").write_text(BLOCKS[block])
    sys.path.insert(0, str(folder))  # the contract's missing-library check imports it in a subprocess
    try:
        yield {block: __import__(name) for block, name in MODULES.items()}
    finally:
        sys.path.remove(str(folder))
        for name in MODULES.values():
            sys.modules.pop(name, None)


@pytest.fixture(scope="module", autouse=True)
def guide_registry(guide_modules):
    """The installed plugins, with the guide's modules in place of the installed example (for the whole module:
    the encoder contract's class-scoped fixtures create plugins before any function-scoped fixture runs)."""
    base = registry.get_registry()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, plugin in base.pm.list_name_plugin():
        if getattr(plugin, "__name__", "") != "rdmbench_usearch":
            pm.register(plugin, name=name)
    for block, module in guide_modules.items():
        pm.register(module, name=MODULES[block])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry, "_REGISTRY", registry.Registry(pm, base.packages, base.broken))
        yield


def test_the_guide_modules_are_the_registered_plugins(guide_modules):
    reg = registry.get_registry()
    assert reg.info("retriever", "usearch").cls is guide_modules[RETRIEVER].USearchRetriever
    encoders = guide_modules[ENCODERS]
    assert reg.info("encoder", "colour-histogram").cls is encoders.ColourHistogramEncoder
    assert reg.info("encoder", "pca").cls is encoders.PCAEncoder
    declared = reg.info("encoder", "pca").cls.fit_columns
    assert declared == ("encoder_explained_variance",) and declared[0].label == "PCA: explained variance"


# The guide's test blocks, collected here: TestUSearch, TestUSearchHalfPrecision, TestColourHistogram, TestPCA
for _block in (RETRIEVER_TESTS, ENCODER_TESTS):
    _tests = types.ModuleType(f"guide_tests_{_block}")
    exec(compile(BLOCKS[_block], f"{GUIDE}:tests", "exec"), _tests.__dict__)
    for _name, _value in vars(_tests).items():
        if _name.startswith("Test") and isinstance(_value, type):
            globals()[f"{_name}FromGuide"] = type(f"{_name}FromGuide", (_value,), {})
