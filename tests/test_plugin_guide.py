"""docs/writing-a-plugin.md runs as written: its module is loaded as a plugin and its contract
block is collected as tests here, against that module (not the installed example)."""

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
MODULE = "guide_usearch"  # a name of its own, so the guide's class is not the installed example's


def test_the_guide_shows_the_example_package_verbatim():
    assert len(BLOCKS) == 2, "the guide's Python blocks: the plugin module, then its tests"
    assert BLOCKS[0] == (EXAMPLE / "rdmbench_usearch.py").read_text()
    assert BLOCKS[1] == (EXAMPLE / "tests" / "test_usearch_retriever.py").read_text()


@pytest.fixture(scope="module")
def guide_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("guide")
    (folder / f"{MODULE}.py").write_text(BLOCKS[0])
    sys.path.insert(0, str(folder))  # the contract's missing-library check imports it in a subprocess
    try:
        yield __import__(MODULE)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(MODULE, None)


@pytest.fixture(autouse=True)
def guide_registry(guide_module, monkeypatch):
    """The installed plugins, with the guide's module in place of the installed example."""
    base = registry.get_registry()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, plugin in base.pm.list_name_plugin():
        if getattr(plugin, "__name__", "") != "rdmbench_usearch":
            pm.register(plugin, name=name)
    pm.register(guide_module, name=MODULE)
    monkeypatch.setattr(registry, "_REGISTRY", registry.Registry(pm, base.packages, base.broken))
    yield
    monkeypatch.setattr(registry, "_REGISTRY", base)


def test_the_guide_module_is_the_registered_usearch(guide_module):
    assert registry.get_registry().info("retriever", "usearch").cls is guide_module.USearchRetriever


# The guide's test block, collected here: TestUSearch, TestUSearchHalfPrecision, ...
_tests = types.ModuleType("guide_tests")
exec(compile(BLOCKS[1], f"{GUIDE}:tests", "exec"), _tests.__dict__)
for _name, _value in vars(_tests).items():
    if _name.startswith("Test") and isinstance(_value, type):
        globals()[f"{_name}FromGuide"] = type(f"{_name}FromGuide", (_value,), {})
