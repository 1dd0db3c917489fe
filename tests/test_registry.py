"""The plugin mechanism itself: documented hooks, every kind populated, third-party registration."""

from __future__ import annotations

import inspect
import sys
import types

import pytest

from rdmbench import api, hookspecs, registry
from rdmbench.errors import ConfigError


def test_every_hook_is_documented_and_implemented():
    reg = registry.get_registry()
    for kind, hook in hookspecs.KIND_HOOKS.items():
        assert inspect.getdoc(getattr(hookspecs, hook)), hook
        assert reg.names(kind), f"no built-in {kind} plugin"
    assert not reg.broken, reg.broken


def test_every_plugin_is_described_and_its_module_cites_its_source():
    reg = registry.get_registry()
    for kind in reg.kinds():
        for info in reg.all(kind):
            assert info.description, info.name
            assert inspect.getdoc(sys.modules[info.cls.__module__]), info.cls.__module__
            if info.cls.__module__.startswith("rdmbench_plugins."):  # built-ins, not the installed example
                assert info.package.startswith("rdmbench "), info.package


def test_a_third_party_module_registers_like_a_builtin(monkeypatch):
    module = types.ModuleType("my_rdmbench_plugin")

    class Echo(api.Retriever):
        """A test retriever from outside the package."""

        name = "echo"

        def __init__(self, metric: str = "cosine", depth: int = 1):
            self.depth = depth

    module.rdmbench_retrievers = hookspecs.hookimpl(lambda: [Echo])
    monkeypatch.setattr(registry, "_REGISTRY", None)
    reg = registry.register_in_process(module)
    assert "echo" in reg.names("retriever")
    assert reg.validate("retriever", {"name": "echo"}) == {"name": "echo", "metric": "cosine", "depth": 1}
    with pytest.raises(ConfigError, match="unknown key 'deep'.*did you mean 'depth'"):
        reg.validate("retriever", {"name": "echo", "deep": 2}, key="retriever")
    monkeypatch.setattr(registry, "_REGISTRY", None)


def test_a_hook_returning_a_non_plugin_is_rejected(monkeypatch):
    module = types.ModuleType("bad_plugin")
    module.rdmbench_heads = hookspecs.hookimpl(lambda: [object])
    monkeypatch.setattr(registry, "_REGISTRY", None)
    with pytest.raises(TypeError, match="not a subclass of Head"):
        registry.register_in_process(module)
    monkeypatch.setattr(registry, "_REGISTRY", None)


def test_a_plugin_that_failed_to_import_is_named_with_its_reason():
    reg = registry.get_registry()
    broken = registry.Registry(reg.pm, reg.packages, {"ghost = ghost_plugin": "ModuleNotFoundError: No module named 'gh'"})
    with pytest.raises(ConfigError, match=r"s.yaml: base.retriever.name: retriever 'ghost' is not available: plugin "
                                          r"'ghost = ghost_plugin' failed to import: ModuleNotFoundError: No module "
                                          r"named 'gh'"):
        broken.info("retriever", "ghost", file="s.yaml", key="base.retriever.name")
    with pytest.raises(ConfigError, match=r"unknown retriever 'exakt' \(did you mean 'exact'\?.*\); 1 plugin "
                                          r"module\(s\) failed to import: ghost = ghost_plugin"):
        broken.info("retriever", "exakt")


def test_close_matches_ignore_case():
    assert "did you mean 'm'?" in registry.unknown_choice("key", "M", ["m", "ef_construction"])
    assert "did you mean 'ef_construction'?" in registry.unknown_choice("key", "EF_Constr", ["m", "ef_construction"])


def test_args_section_is_read_from_the_docstring():
    class Documented:
        """One line.

        Args:
            depth: how deep;
                continued here.
            width (int): how wide.

        Returns:
            nothing: to see here.
        """

    assert registry.args_section(Documented) == {"depth": "how deep; continued here.", "width": "how wide."}
