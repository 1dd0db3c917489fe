"""What a cached result depends on beyond its config: the code that computed it and the libraries it ran on.

A stage's cache key holds, besides its resolved config and its inputs' keys, the *reach* of its code:
start from the function that computes the stage (the caller of ``Pipeline.stage``, with its nested
``compute``) and the functions named in ``uses``, and follow every name they use, across modules, to
the definitions it binds — functions, classes (whole, with their bases), the names a module imports
(top-level or lazily inside a function, ``require("lib")`` and ``import_module("x")`` calls too). For
every project module reached this way, the key hashes

- the source of each definition reached, and
- every top-level statement that is not a definition: imports, constants (``SHARD_ROWS = 1 << 17``),
  module-level calls. Appending any line of code to a module therefore re-keys every stage whose code
  reaches anything in it; editing one function re-keys only the stages that reach that function.

A plugin adds its own reach through ``fingerprint`` (rdmbench.provenance.describe): its whole module
(hashed as a file, comments included), its base classes and ``code_modules``, and what they reach. The
versions of the libraries the reached code imports are keyed (torch, diffusers, faiss, numpy, …), so
upgrading diffusers recomputes what diffusers computed, not the data stage.

Not keyed, on purpose: the engine a stage's code calls through the ``pipe`` object it is handed, which
creates plugins, stores entries and shows progress but computes none of its numbers (``ENGINE``: the
pipeline, the registry, progress bars, failpoints, the launch's processes); other code reached only through
an object's attribute whose class the stage's code does not name (a plugin's methods are keyed through its
fingerprint instead); process-wide side effects of modules that a stage does not reach.
tests/test_stage_keys.py checks the reach against what actually runs: every project module whose code
executes while a stage computes is in that stage's key (or in ``ENGINE``).

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
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable

#: import names that are part of rdmbench itself: their code is hashed, not versioned
OWN = ("rdmbench", "rdmbench_plugins")
#: modules that run around a stage's computation without computing its numbers: never keyed
ENGINE = ("rdmbench", "rdmbench.pipeline", "rdmbench.registry", "rdmbench.hookspecs", "rdmbench.progress",
          "rdmbench.provenance", "rdmbench.processes", "rdmbench.failpoints")
#: a root that stands for a whole module (every definition in it)
WHOLE = "*"


def _file_key(path: str) -> tuple[str, int, int]:
    st = Path(path).stat()
    return path, st.st_size, st.st_mtime_ns


def _named_import(node: ast.AST) -> str | None:
    """``require("faiss", …)`` / ``import_module("x.y")``: the module a call imports by name, if it is one."""
    if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in
            ("require", "import_module") and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)):
        return node.args[0].value
    return None


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


# -- one module, parsed -----------------------------------------------------------------------------------

@dataclass
class Module:
    """A parsed project module: its top-level definitions, the names its top level binds by import, and the
    source of everything at its top level that is not a definition."""
    name: str
    path: str
    digest: str  # sha256 of the file
    lines: list[str]
    defs: dict[str, ast.AST]
    imports: dict[str, tuple[str, str | None]]  # bound name -> (module, attribute or None for the module)
    statements: str  # every top-level statement that is not a definition, in order
    libraries: frozenset[str]  # libraries its top-level statements import
    assigned: dict[str, list[ast.AST]]  # top-level name -> the assignments that bind it (constants)
    body: ast.Module  # top-level statements that bind nothing by name (module-level calls): they run on import


def _is_package(path: str) -> bool:
    return Path(path).name == "__init__.py"


def _absolute(module: str, path: str, node: ast.ImportFrom) -> str:
    """The absolute module of a (possibly relative) ``from … import``."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if _is_package(path) else parts[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _bindings(module: str, path: str, node: ast.AST) -> dict[str, tuple[str, str | None]]:
    """The names an import statement binds: ``import a.b`` binds ``a`` (the package), ``import a.b as c``
    binds ``c`` to ``a.b``, ``from a import b`` binds ``b`` to attribute ``b`` of ``a``."""
    out: dict[str, tuple[str, str | None]] = {}
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.asname:
                out[a.asname] = (a.name, None)
            else:
                out[a.name.split(".")[0]] = (a.name.split(".")[0], None)
    elif isinstance(node, ast.ImportFrom):
        source = _absolute(module, path, node)
        for a in node.names:
            if a.name != "*":
                out[a.asname or a.name] = (source, a.name)
    return out


def _segment(lines: list[str], node: ast.AST) -> str:
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return "\n".join(lines[start - 1:node.end_lineno])


@lru_cache(maxsize=None)
def _parse(name: str, path: str, _size: int, _mtime: int) -> Module:
    source = Path(path).read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    defs, imports, statements, libraries, assigned, body = {}, {}, [], set(), {}, []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[node.name] = node
            continue
        statements.append(_segment(lines, node))
        targets = [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else getattr(node, "targets", [])
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        for n in names:  # followed only where reached code uses the name: a registry of every class is no hub
            assigned.setdefault(n, []).append(node)
        if not names and not _only_imports(node):
            body.append(node)
        for sub in ast.walk(node):  # imports under `if TYPE_CHECKING:` / try-except count as well
            bound = _bindings(name, path, sub)
            imports.update(bound)
            libraries.update(m.split(".")[0] for m, _ in bound.values())
    return Module(name, path, hashlib.sha256(source.encode()).hexdigest(), lines, defs, imports,
                  "\n".join(statements), frozenset(libraries), assigned, ast.Module(body=body, type_ignores=[]))


def _only_imports(node: ast.AST) -> bool:
    """An import, or a block of nothing but imports (``if TYPE_CHECKING:``, ``try: import x``): it binds
    names, which are followed where they are used."""
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass)):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):  # a docstring
        return True
    blocks = [getattr(node, f, []) for f in ("body", "orelse", "finalbody")]
    blocks += [h.body for h in getattr(node, "handlers", [])]
    return isinstance(node, (ast.If, ast.Try)) and all(_only_imports(n) for b in blocks for n in b)


def parsed(module: str) -> Module | None:
    path = module_file(module)
    if path is None:
        return None
    try:
        return _parse(module, *_file_key(path))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


# -- the reach of some roots ------------------------------------------------------------------------------

@dataclass
class Reach:
    own: tuple[str, ...]
    defs: dict[str, set[str]] = field(default_factory=dict)  # module -> definitions reached (WHOLE: all)
    libraries: set[str] = field(default_factory=set)

    def is_own(self, module: str) -> bool:
        return module.split(".")[0] in self.own

    def add(self, module: str, name: str) -> bool:
        """Mark ``name`` of ``module`` reached; True when it is new and has a body to follow."""
        seen = self.defs.setdefault(module, set())
        if name in seen or WHOLE in seen:
            return False
        seen.add(name)
        return True


def reach(roots: Iterable[tuple[str, str]], own: tuple[str, ...] = OWN) -> Reach:
    """Every project definition that ``roots`` — (module, top-level name or ``WHOLE``) — reach by name."""
    out = Reach(own)
    todo = list(roots)
    while todo:
        module, name = todo.pop()
        if not out.is_own(module):
            out.libraries.add(module.split(".")[0])
            continue
        if module in ENGINE:  # what the engine creates (a nested plugin) is keyed by its own fingerprint
            continue
        mod = parsed(module)
        if mod is None:  # a name that is not a module of ours after all (e.g. an attribute of a package)
            continue
        first = module not in out.defs
        if not out.add(module, name):
            continue
        if first:  # what the module's top level runs on import: constants computed by calls, say
            out.libraries |= mod.libraries
            todo += _references(mod, mod.body, out)
        if name == WHOLE:
            out.defs[module] = {WHOLE}
            for node in mod.defs.values():
                todo += _references(mod, node, out)
        elif name in mod.defs:
            todo += _references(mod, mod.defs[name], out)
        elif name in mod.assigned:
            for node in mod.assigned[name]:
                todo += _references(mod, node, out)
        elif name in mod.imports:  # a name the module re-exports
            todo.append(_target(mod.imports[name], out))
        elif module_file(f"{module}.{name}") is not None:  # a submodule
            todo.append((f"{module}.{name}", WHOLE))
    return out


def _target(bound: tuple[str, str | None], out: Reach) -> tuple[str, str]:
    module, attribute = bound
    if attribute is None:
        return module, WHOLE
    # a library is recorded by its top-level name only: looking for its submodule would import its
    # parent packages (diffusers' alone take seconds, in every process that keys a stage)
    if out.is_own(module) and module_file(f"{module}.{attribute}") is not None:  # `from pkg import submodule`
        return f"{module}.{attribute}", WHOLE
    return module, attribute


def _references(mod: Module, node: ast.AST, out: Reach) -> list[tuple[str, str]]:
    """What the definition ``node`` of ``mod`` names: its own imports (lazy ones), the module's top-level
    definitions, constants and imports, attributes of imported modules, modules imported by a named call.
    A name a function binds itself (an argument, a local variable) is not the module's."""
    local: dict[str, tuple[str, str | None]] = {}
    found: list[tuple[str, str]] = []
    for sub in ast.walk(node):
        bound = _bindings(mod.name, mod.path, sub)
        local.update(bound)
        # a module imported by name is followed where its attributes are used, not whole
        found += [t for t in (_target(b, out) for b in bound.values()) if t[1] != WHOLE or not out.is_own(t[0])]
        if (name := _named_import(sub)) is not None:
            found.append((name, WHOLE))
    targets = {n: _target(b, out) for n, b in {**mod.imports, **local}.items()}
    modules = {n: t[0] for n, t in targets.items() if t[1] == WHOLE}
    for name, attribute in _free_names(node):
        if attribute is not None and name in modules:
            found.append((modules[name], attribute))
        elif name in local:
            found.append(_target(local[name], out))
        elif name in mod.defs or name in mod.assigned:
            found.append((mod.name, name))
        elif name in mod.imports:
            found.append(_target(mod.imports[name], out))
    return found


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _free_names(node: ast.AST) -> list[tuple[str, str | None]]:
    """(name, attribute read from it or None) for every name ``node`` loads that its own functions do not
    bind (arguments, assignments; names bound by ``import`` stay free: they are resolved as imports).
    Comprehension variables are taken as free: a miss would be unsound, a surplus only keys more."""
    out: list[tuple[str, str | None]] = []

    def visit(scope: ast.AST, bound: frozenset[str]) -> None:
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            bound = bound | _bound_in(scope)
        children = scope.body if isinstance(scope, (ast.ClassDef, ast.Module)) else [scope.body] \
            if isinstance(scope, ast.Lambda) else scope.body
        todo = list(children)
        while todo:
            n = todo.pop()
            if isinstance(n, _SCOPES):
                # decorators, defaults and bases are evaluated where the definition stands
                todo += [*getattr(n, "decorator_list", []), *getattr(n, "bases", []), *_defaults(n)]
                visit(n, bound)
                continue
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id not in bound:
                out.append((n.value.id, n.attr))
                continue
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in bound:
                out.append((n.id, None))
            todo += list(ast.iter_child_nodes(n))

    if isinstance(node, _SCOPES):
        out += [(n.id, None) for d in (*getattr(node, "decorator_list", []), *getattr(node, "bases", []),
                                       *_defaults(node)) for n in ast.walk(d) if isinstance(n, ast.Name)]
        visit(node, frozenset())
    else:
        visit(ast.Module(body=[node] if not isinstance(node, ast.Module) else node.body, type_ignores=[]),
              frozenset())
    return out


def _defaults(node: ast.AST) -> list[ast.AST]:
    args = getattr(node, "args", None)
    return [d for d in (*args.defaults, *args.kw_defaults) if d is not None] if isinstance(args, ast.arguments) else []


def _bound_in(func: ast.AST) -> frozenset[str]:
    """The names a function binds in its own scope: arguments and assignments, not imports (nor what its
    nested functions bind); names it declares ``global`` are the module's."""
    a = func.args
    names = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if x is not None}
    declared: set[str] = set()
    todo = [func.body] if isinstance(func, ast.Lambda) else list(func.body)
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(n.name)
            continue
        if isinstance(n, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            names.add(n.id)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            names.add(n.name)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            declared.update(n.names)
        todo += list(ast.iter_child_nodes(n))
    return frozenset(names - declared)


def _digest(out: Reach) -> dict[str, Any]:
    """``{"code": hash, "modules": [...], "libraries": {...}}`` of a reach: per module, its file when reached
    whole, else its top-level statements and the definitions reached, in source order."""
    h = hashlib.sha256()
    for module in sorted(out.defs):
        mod = parsed(module)
        if mod is None:
            continue
        names = out.defs[module]
        if WHOLE in names:
            h.update(f"{module}:file:{mod.digest}\n".encode())
            continue
        nodes = sorted((mod.defs[n] for n in names if n in mod.defs), key=lambda n: n.lineno)
        body = "\n".join([mod.statements, *(_segment(mod.lines, n) for n in nodes)])
        h.update(f"{module}:{hashlib.sha256(body.encode()).hexdigest()}\n".encode())
    return {"code": h.hexdigest()[:20], "modules": sorted(out.defs), "libraries": library_versions(out.libraries)}


#: memo of reaches: roots -> (each reached module's file and stat, the digest); valid while no file changed
_memo: dict[tuple, tuple[tuple, dict[str, Any]]] = {}


def provenance_of(roots: Iterable[tuple[str, str]], own: tuple[str, ...] = OWN) -> dict[str, Any]:
    """The key material of the code ``roots`` reach (see the module's docstring)."""
    roots = tuple(sorted(set(roots)))
    memo_key = (roots, own)
    if memo_key in _memo:
        files, result = _memo[memo_key]
        if files == _stats(m for m, _ in files):
            return result
    out = reach(roots, own)
    result = _digest(out)
    _memo[memo_key] = (_stats(out.defs), result)
    return result


def _stats(modules: Iterable[str]) -> tuple:
    stats = []
    for module in modules:
        path = module_file(module)
        stats.append((module, _file_key(path) if path else None))
    return tuple(sorted(stats))


def clear() -> None:
    """Forget what was parsed and reached (tests that swap a module's file or a library's version)."""
    _memo.clear()
    _parse.cache_clear()


def root_of(func: Callable | types.CodeType) -> tuple[str, str]:
    """(module, top-level name) of a function or code object: the top-level definition it sits in (a
    method's class, a nested function's outer function); the whole module when that cannot be told."""
    code = func.__code__ if isinstance(func, types.FunctionType) else func
    module = inspect.getmodule(code)
    if module is None:
        return getattr(func, "__module__", "__main__"), WHOLE
    qualname = getattr(code, "co_qualname", code.co_name)
    top = qualname.split(".")[0]
    mod = parsed(module.__name__)
    return module.__name__, top if mod is not None and top in mod.defs else WHOLE


def stage_provenance(caller: types.CodeType, uses: Iterable[Callable] = ()) -> dict[str, Any]:
    """Key material of a stage's code: what the computing function and ``uses`` reach."""
    return provenance_of([root_of(caller), *(root_of(f) for f in uses)])


def function_provenance(func: Callable | types.CodeType) -> dict[str, Any]:
    return provenance_of([root_of(func)])


def plugin_provenance(cls: type) -> dict[str, Any]:
    """Code hash and library versions of a plugin class: its whole module, its base classes, its
    ``code_modules``, what they reach, and the distribution that installed it."""
    package = cls.__module__.split(".")[0]
    roots = [(cls.__module__, WHOLE)]
    roots += [(c.__module__, c.__qualname__.split(".")[0]) for c in cls.__mro__[1:]
              if c.__module__ not in ("builtins", "abc", "typing")]
    roots += [(m, WHOLE) for m in cls.code_modules]
    facts = provenance_of(roots, own=tuple(dict.fromkeys((*OWN, package))))
    dist = _distributions().get(package, [])
    if dist and package not in OWN:
        facts = {**facts, "distribution": {_canonical(d): metadata.version(d) for d in dist}}
    return facts


def describe(plugin: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Cache-key material of a plugin instance (also for plugins nested in others, e.g. a database's
    dataset): resolved spec, version, data/weight fingerprints, code and libraries."""
    return {"spec": spec, "version": type(plugin).version, **plugin.fingerprint(), **plugin_provenance(type(plugin))}
