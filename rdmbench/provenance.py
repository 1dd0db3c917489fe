"""What a cached result depends on beyond its config: the code that computed it and the libraries it ran on.

A stage's cache key holds, besides its resolved config and its inputs' keys:

- the source of the function that computes the stage (found from the caller of ``Pipeline.stage``) and
  of every function and method of its module that it reaches by name, so editing the stage's code
  recomputes it and nothing else;
- for each plugin it uses, the source of the plugin's module, of its base classes' modules and of the
  modules it names in ``code_modules``, plus the version of the distribution that installed it (for an
  outside plugin, its package version and source hash both count);
- the versions of the libraries those modules import (found by reading their imports, including the
  lazy ones inside functions and ``require("lib", ...)`` calls), e.g. torch, diffusers, faiss, numpy.

So upgrading diffusers recomputes what diffusers computed (heads, autoencoders), not the data stage.
Everything here reads source files and package metadata only: no plugin library is imported.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import re
import sys
import types
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

#: import names that are part of rdmbench itself: their code is hashed, not versioned
OWN = ("rdmbench", "rdmbench_plugins")


def _file_key(path: str) -> tuple[str, int, int]:
    st = Path(path).stat()
    return path, st.st_size, st.st_mtime_ns


@lru_cache(maxsize=None)
def _file_facts(path: str, size: int, mtime_ns: int) -> tuple[str, frozenset[str]]:
    """(sha256 of the source, top-level names it imports); cached until the file changes."""
    source = Path(path).read_bytes()
    names: set[str] = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        tree = None
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in
              ("require", "import_module") and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value.split(".")[0])
    return hashlib.sha256(source).hexdigest(), frozenset(names)


def file_facts(path: str) -> tuple[str, frozenset[str]]:
    return _file_facts(*_file_key(path))


def module_file(module: str) -> str | None:
    """The source file of a module, without importing it (only its parent packages)."""
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None) if mod else None
    if path is None:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        path = spec.origin if spec else None
    return path if path and path.endswith(".py") else None


@lru_cache(maxsize=None)
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def library_versions(import_names: Iterable[str]) -> dict[str, str]:
    """{distribution: version} of the installed distributions behind these import names (stdlib and
    rdmbench itself left out; a library that is not installed is recorded as absent)."""
    out: dict[str, str] = {}
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    for name in sorted(set(import_names)):
        if name in OWN or name in stdlib or name == "__future__":
            continue
        for dist in _distributions().get(name, []) or [name]:
            try:
                out[_canonical(dist)] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                out[_canonical(dist)] = "absent"
    return out


def _canonical(dist: str) -> str:
    """PEP 503 form, so a key does not change with how a package spells its own name."""
    return re.sub(r"[-_.]+", "-", dist).lower()


def modules_facts(files: Iterable[str]) -> dict[str, Any]:
    """{"code": sha256 over the files' sources, "libraries": versions of what they import}."""
    h = hashlib.sha256()
    imports: set[str] = set()
    for path in sorted(set(files)):
        digest, names = file_facts(path)
        h.update(f"{Path(path).name}:{digest}\n".encode())
        imports |= names
    return {"code": h.hexdigest()[:20], "libraries": library_versions(imports)}


def plugin_provenance(cls: type) -> dict[str, Any]:
    """Code hash and library versions of a plugin class: its module, its bases' modules, its
    ``code_modules``, and the distribution that installed it."""
    files = [module_file(c.__module__) for c in cls.__mro__ if c.__module__ not in ("builtins", "abc", "typing")]
    files += [module_file(m) for m in getattr(cls, "code_modules", ())]
    facts = modules_facts(f for f in files if f)
    dist = _distributions().get(cls.__module__.split(".")[0], [])
    if dist and cls.__module__.split(".")[0] not in OWN:
        facts["distribution"] = {_canonical(d): metadata.version(d) for d in dist}
    return facts


def function_provenance(func: types.CodeType | types.FunctionType) -> dict[str, Any]:
    """Code hash and library versions of a stage's computing function and of every function or method of
    its module that it reaches by name (transitively), plus what that module imports."""
    code = func.__code__ if isinstance(func, types.FunctionType) else func
    module = inspect.getmodule(code)
    if module is None:
        return {"code": hashlib.sha256(code.co_code).hexdigest()[:20], "libraries": {}}
    return _function_provenance(code.co_filename, code.co_name, code.co_firstlineno, *_file_key(code.co_filename))


@lru_cache(maxsize=None)
def _function_provenance(filename: str, name: str, firstline: int, _path: str, _size: int, _mtime: int) -> dict:
    source = Path(filename).read_text()
    tree = ast.parse(source)
    functions: dict[str, ast.AST] = {}  # module-level functions, reached by a bare name
    methods: dict[ast.AST, dict[str, ast.AST]] = {}  # per class, reached as self.<name>
    owner: dict[ast.AST, dict[str, ast.AST]] = {}
    start = None
    for node in tree.body:
        defs = [(node, functions)] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else []
        if isinstance(node, ast.ClassDef):
            table = methods.setdefault(node, {})
            defs = [(m, table) for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for d, table in defs:
            table[d.name] = d
            owner[d] = table
            if d.name == name and firstline in [d.lineno] + [x.lineno for x in d.decorator_list]:
                start = d
    if start is None:  # a nested function: hash the whole module rather than guess
        return {"code": hashlib.sha256(source.encode()).hexdigest()[:20],
                "libraries": library_versions(file_facts(filename)[1])}
    seen: dict[int, ast.AST] = {}
    todo = [start]
    while todo:  # the computing function and what it reaches: self.<method> of its class, module functions
        node = todo.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self":
                hit = owner.get(node, {}).get(sub.attr) if owner.get(node) is not functions else None
            elif isinstance(sub, ast.Name):
                hit = functions.get(sub.id)
            else:
                hit = None
            if hit is not None:
                todo.append(hit)
    lines = source.splitlines()
    h = hashlib.sha256()
    for node in sorted(seen.values(), key=lambda n: n.lineno):
        h.update("\n".join(lines[node.lineno - 1:node.end_lineno]).encode() + b"\n")
    return {"code": h.hexdigest()[:20], "libraries": library_versions(file_facts(filename)[1])}


def describe(plugin: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Cache-key material of a plugin instance (also for plugins nested in others, e.g. a database's
    dataset): resolved spec, version, data/weight fingerprints, code and libraries."""
    fp = getattr(plugin, "fingerprint", None)
    return {"spec": spec, "version": type(plugin).version, **(fp() if fp else {}), **plugin_provenance(type(plugin))}
