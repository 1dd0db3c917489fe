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

        def __init__(self, depth: int = 1):
            self.depth = depth

    module.rdmbench_retrievers = hookspecs.hookimpl(lambda: [Echo])
    monkeypatch.setattr(registry, "_REGISTRY", None)
    reg = registry.register_in_process(module)
    assert "echo" in reg.names("retriever")
    assert reg.validate("retriever", {"name": "echo"}) == {"name": "echo", "depth": 1}
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
