"""The plugin registry: pluggy over the ``rdmbench`` entry-point group; and ``EntryPointClasses``, the
kinds that name one class per entry point in a group of their own (tasks, executors, trackers).

Built-ins and third-party plugins load through the same path. Loading imports only plugin modules
(which must not import torch at module level), so listing plugins and validating suites is fast.
"""

from __future__ import annotations

import difflib
import inspect
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pluggy

from rdmbench import api, hookspecs
from rdmbench.errors import ConfigError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint


#: a plugin contract (rdmbench.api): what ``Registry.contract`` and ``Registry.build`` return, typed
P = TypeVar("P", bound=api.Plugin)
#: what an ``EntryPointClasses`` group's classes are (``Task``, ``Tracker``, the ``Executor`` protocol)
C = TypeVar("C")


@dataclass(frozen=True)
class PluginInfo:
    kind: str
    name: str
    cls: type[api.Plugin]
    package: str

    @property
    def description(self) -> str:
        return self.cls.description()


class Registry:
    def __init__(self, plugin_manager: pluggy.PluginManager, packages: dict[int, str] | None = None,
                 broken: dict[str, str] | None = None):
        self.pm = plugin_manager
        self.packages = packages or {}
        #: entry point -> why it failed to load; shown by `rdmbench plugins`, never silently dropped
        self.broken = broken or {}
        self._plugins: dict[str, dict[str, PluginInfo]] = {k: {} for k in hookspecs.KIND_HOOKS}
        packages = self.packages
        for kind, hook_name in hookspecs.KIND_HOOKS.items():
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                for cls in impl.function() or []:
                    self._add(kind, cls, packages.get(id(impl.plugin), "(registered in-process)"))

    def _add(self, kind: str, cls: type[api.Plugin], package: str) -> None:
        contract = api.CONTRACTS[kind]
        if not (isinstance(cls, type) and issubclass(cls, contract)):
            raise TypeError(f"{cls!r} returned by a {kind} hook is not a subclass of {contract.__name__}")
        if not cls.name:
            raise TypeError(f"{cls.__qualname__} has no `name`")
        existing = self._plugins[kind].get(cls.name)
        if existing is not None and existing.cls is not cls:
            raise TypeError(f"two {kind} plugins are named {cls.name!r}: {existing.package} and {package}")
        self._plugins[kind][cls.name] = PluginInfo(kind, cls.name, cls, package)

    def kinds(self) -> list[str]:
        return list(self._plugins)

    def names(self, kind: str) -> list[str]:
        return sorted(self._plugins[kind])

    def all(self, kind: str) -> list[PluginInfo]:
        return [self._plugins[kind][n] for n in self.names(kind)]

    def info(self, kind: str, name: str, *, file: str | None = None, key: str | None = None) -> PluginInfo:
        try:
            return self._plugins[kind][name]
        except (KeyError, TypeError):
            raise ConfigError(self._unknown(kind, name), file=file, key=key) from None

    def _unknown(self, kind: str, name: Any) -> str:
        """Why ``name`` is not a ``kind`` plugin: a module that failed to import says so, with its reason."""
        for entry, why in self.broken.items():
            if entry.split(" = ")[0].lower() == str(name).lower():
                return f"{kind} {name!r} is not available: plugin {entry!r} failed to import: {why}"
        message = unknown_choice(kind, name, self.names(kind))
        if self.broken:
            message += f"; {len(self.broken)} plugin module(s) failed to import: {', '.join(self.broken)} " \
                       "(`rdmbench plugins` shows why)"
        return message

    def validate(self, kind: str, spec: Any, *, file: str | None = None, key: str | None = None) -> dict[str, Any]:
        """Check ``{name: ..., **kwargs}`` against the plugin's constructor; return the resolved spec.

        The resolved spec has every constructor argument, defaults filled in, so that it can be
        hashed into cache keys and saved beside results.
        """
        if not isinstance(spec, dict) or "name" not in spec:
            raise ConfigError(f"expected a mapping with `name:` (one of: {', '.join(self.names(kind))})", file=file, key=key)
        kwargs = {k: v for k, v in spec.items() if k != "name"}
        info = self.info(kind, spec["name"], file=file, key=f"{key}.name" if key else "name")
        resolved = validate_kwargs(info.cls.__init__, kwargs, file=file, key=key, what=f"{kind} {info.name!r}")
        try:  # constructors are cheap by contract and may check their arguments further
            info.cls(**resolved)
        except ConfigError as exc:
            sub = f"{key}.{exc.key}" if key and exc.key else (exc.key or key)
            raise ConfigError(exc.detail, file=file, key=sub) from None
        except (ValueError, TypeError) as exc:
            # "image_size must be positive": a message that opens with an argument's name is about that argument
            first = str(exc).split(" ", 1)[0]
            sub = f"{key}.{first}" if key and first in resolved else key
            raise ConfigError(f"{exc} ({kind} {info.name!r})", file=file, key=sub) from None
        return {"name": info.name, **resolved}

    def create(self, kind: str, spec: dict[str, Any]) -> Any:
        info = self.info(kind, spec["name"])
        return info.cls(**{k: v for k, v in spec.items() if k != "name"})

    def parts(self, kind: str, specs: list[Any], joined: str) -> tuple[list[dict[str, Any]], list[Any]]:
        """A composite plugin's ``parts`` (the mixed database, the concat dataset): at least two specs of
        ``kind``, each validated (errors keyed ``parts[i].<arg>``, where the bad value is) and created (cheap:
        plugins do no IO in their constructors). ``joined`` says what the composite does with them."""
        if len(specs) < 2:
            raise ConfigError(f"list at least two {kind} specs to {joined}, got {len(specs)} (for one, use it as "
                              f"the {kind} itself)", key="parts")
        resolved = [self.validate(kind, spec, key=f"parts[{i}]") for i, spec in enumerate(specs)]
        return resolved, [self.create(kind, spec) for spec in resolved]

    def contract(self, contract: type[P], name: str) -> type[P]:
        """The class of plugin ``name`` of the kind ``contract`` (e.g. ``api.Encoder``), typed as that contract,
        so that its declared capabilities (``Encoder.trainable``, ``Head.generates``) are read as declared."""
        cls = self.info(contract.kind, name).cls
        assert issubclass(cls, contract)  # _add refused any other
        return cls

    def build(self, contract: type[P], spec: dict[str, Any]) -> P:
        """A new instance of the plugin ``spec`` names (``{name: …, **kwargs}``, resolved), typed as its contract."""
        return self.contract(contract, spec["name"])(**{k: v for k, v in spec.items() if k != "name"})


class EntryPointClasses(Mapping[str, "EntryPoint"], Generic[C]):
    """A kind whose entry points each name one class, ``name = "module:Class"``, in a group of its own:
    tasks (``rdmbench.tasks``), executors (``rdmbench.executors``), trackers (``rdmbench.trackers``).

    Built-ins are registered in rdmbench's own pyproject.toml exactly as an outside package registers its
    own. As a mapping it holds name -> entry point, read from package metadata without importing anything
    (so ``--help``, listing names and unknown-name errors stay light); ``load`` imports one class. An entry
    point that fails to import, or names something that does not fit ``contract``, is an error naming it and
    why (``rdmbench plugins`` lists them under "failed to load"), never a silently missing choice.
    """

    def __init__(self, group: str, kind: str, contract: type[C]) -> None:
        self.group, self.kind, self.contract = group, kind, contract
        self._entries: dict[str, EntryPoint] | None = None
        self._conflicts: dict[str, str] = {}
        self._classes: dict[str, type[C]] = {}

    def reload(self) -> None:
        """Read the group again (a package installed, or a folder put on ``sys.path``, in this process)."""
        self._entries, self._conflicts, self._classes = None, {}, {}

    def _read(self) -> dict[str, EntryPoint]:
        if self._entries is None:
            from importlib.metadata import entry_points

            found: dict[str, EntryPoint] = {}
            for ep in entry_points(group=self.group):
                first = found.setdefault(ep.name, ep)
                if first.value != ep.value:
                    self._conflicts[ep.name] = (f"two packages register it: {entry_package(first)} ({first.value}) "
                                                f"and {entry_package(ep)} ({ep.value})")
            self._entries = dict(sorted(found.items()))
        return self._entries

    def __getitem__(self, name: str) -> EntryPoint:
        return self._read()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())

    def package(self, name: str) -> str:
        return entry_package(self[name])

    def load(self, name: str, *, file: str | None = None, key: str | None = None) -> type[C]:
        """The class ``name`` names, imported now; an unknown or broken name is a one-line ``ConfigError``."""
        if name in self._classes:
            return self._classes[name]
        entries = self._read()
        if name not in entries:
            raise ConfigError(unknown_choice(self.kind, name, list(entries)), file=file, key=key)
        found = self._try(name)
        if isinstance(found, str):
            ep = entries[name]
            raise ConfigError(f"{self.kind} {name!r} is not available: entry point '{ep.name} = {ep.value}' "
                              f"({entry_package(ep)}) {found}", file=file, key=key)
        self._classes[name] = found
        return found

    def _try(self, name: str) -> type[C] | str:
        """The class, or why it cannot be had."""
        if name in self._conflicts:
            return self._conflicts[name]
        try:
            cls = self[name].load()
        except Exception as exc:  # an outside package's bug: named, and it must not hide the other entries
            return f"failed to import: {type(exc).__name__}: {exc}"
        if not isinstance(cls, type):
            return f"names {cls!r}, not a class"
        if getattr(self.contract, "_is_protocol", False):
            missing = [m for m, v in vars(self.contract).items()
                       if callable(v) and not m.startswith("_") and not callable(getattr(cls, m, None))]
            if missing:
                return f"names {cls.__qualname__}, which lacks {', '.join(missing)} of {self.contract.__name__}"
        elif not issubclass(cls, self.contract):
            return f"names {cls.__qualname__}, not a subclass of {self.contract.__name__}"
        declared = getattr(cls, "name", "")
        if declared not in ("", name):
            return f"names {cls.__qualname__}, whose name is {declared!r}"
        return cls

    def catalogue(self) -> tuple[list[tuple[str, type[C], str]], dict[str, str]]:
        """Every entry point loaded: ``(name, class, package)`` of each that loads, and ``{"name = value": why}``
        of each that does not (what ``rdmbench plugins`` lists)."""
        good: list[tuple[str, type[C], str]] = []
        broken: dict[str, str] = {}
        for name, ep in self._read().items():
            found = self._try(name)
            if isinstance(found, str):
                broken[f"{ep.name} = {ep.value}"] = found
            else:
                good.append((name, found, entry_package(ep)))
        return good, broken


def entry_package(ep: EntryPoint) -> str:
    """``"<distribution> <version>"`` of the package that registered ``ep``."""
    return f"{ep.dist.name} {ep.dist.version}" if ep.dist else "?"


def first_line(cls: type) -> str:
    """A class's one-line description: the first paragraph of its own docstring, else of its module's."""
    import sys

    doc = cls.__dict__.get("__doc__") or getattr(sys.modules.get(cls.__module__), "__doc__", None) or ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split()).replace("``", "`")


def unknown_choice(what: str, value: Any, allowed: list[str]) -> str:
    close = closest(str(value), allowed)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown {what} {value!r} ({hint}allowed: {', '.join(allowed) or 'none installed'})"


def closest(value: str, allowed: list[str]) -> list[str]:
    """The allowed name closest to ``value``, ignoring case (``M`` for ``m``), or none."""
    lowered = {a.lower(): a for a in allowed}
    close = difflib.get_close_matches(value.lower(), list(lowered), n=1)
    return [lowered[close[0]]] if close else []


def strict_leaves(annotation: Any) -> Any:
    """``annotation`` with its int, float, bool and str leaves strict, its containers lax.

    Wrong types are errors, never coerced: ``"64"``, ``true`` and ``64.0`` are not integers (nor
    can ``"64"`` and ``64`` become two runs of one config). YAML's natural types still fit: an int
    where a float is expected, a list where a tuple is (resolved values are plain lists anyway).
    """
    import pydantic

    if annotation in (int, float, bool, str):
        return typing.Annotated[annotation, pydantic.Strict()]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if not args or origin is typing.Literal:
        return annotation
    if origin is typing.Annotated:
        return typing.Annotated[(strict_leaves(args[0]), *annotation.__metadata__)]
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(strict_leaves(a) for a in args)]
    try:
        return origin[tuple(a if a is Ellipsis else strict_leaves(a) for a in args)]
    except TypeError:  # a generic that cannot be re-subscripted: validated as declared
        return annotation


@lru_cache(maxsize=None)
def _signature_model(func: Any, *, skip: int) -> Any:
    import pydantic

    hints = typing.get_type_hints(func, include_extras=True)
    fields: dict[str, Any] = {}
    params = list(inspect.signature(func).parameters.values())[skip:]
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = ... if p.default is p.empty else p.default
        fields[p.name] = (strict_leaves(hints.get(p.name, Any)), default)
    config = pydantic.ConfigDict(extra="forbid", strict=False, arbitrary_types_allowed=True)
    return pydantic.create_model(f"{getattr(func, '__qualname__', 'args')}", __config__=config, **fields)


def validate_kwargs(func: Any, kwargs: dict[str, Any], *, file: str | None, key: str | None, what: str,
                    skip: int = 1) -> dict[str, Any]:
    """Validate keyword arguments against ``func``'s signature (after ``skip`` positional parameters)."""
    import pydantic

    model = _signature_model(func, skip=skip)
    allowed = list(model.model_fields)
    try:
        values = model(**kwargs)
    except pydantic.ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            where = f"{key}.{loc}" if key else loc
            if err["type"] == "extra_forbidden":
                msg = (unknown_choice("key", err["loc"][0], allowed) + f" for {what}" if allowed
                       else f"unknown key {err['loc'][0]!r}: {what} takes no arguments")
            elif err["type"] == "missing":
                msg = f"required by {what}"
            else:
                msg = f"{err['msg']} (got {err.get('input')!r})"
            errors.append(ConfigError(msg, file=file, key=where))
        if len(errors) == 1:
            raise errors[0] from None
        from rdmbench.errors import ConfigErrors

        raise ConfigErrors(errors) from None
    return _plain(values.model_dump())


def _plain(value: Any) -> Any:
    """Tuples to lists, so resolved configs round-trip through YAML/JSON identically."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry of installed plugins (entry points loaded once).

    An entry point that fails to import is recorded in ``broken`` with its error rather than
    taking every other plugin down with it.
    """
    global _REGISTRY
    if _REGISTRY is None:
        from importlib.metadata import entry_points

        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        packages: dict[int, str] = {}
        broken: dict[str, str] = {}
        for ep in entry_points(group=hookspecs.PROJECT):
            try:
                module = ep.load()
            except Exception as exc:  # a third-party plugin's bug must not hide the others
                broken[f"{ep.name} = {ep.value}"] = f"{type(exc).__name__}: {exc}"
                continue
            if pm.is_registered(module):
                continue
            pm.register(module, name=ep.name)
            packages[id(module)] = entry_package(ep)
        pm.check_pending()
        _REGISTRY = Registry(pm, packages, broken)
    return _REGISTRY


def register_in_process(module: Any) -> Registry:
    """Add a plugin module without installing it (tests, notebooks); returns the refreshed registry."""
    global _REGISTRY
    registry = get_registry()
    if not registry.pm.is_registered(module):
        registry.pm.register(module)
    registry.pm.check_pending()
    _REGISTRY = Registry(registry.pm, registry.packages, registry.broken)
    return _REGISTRY


@dataclass(frozen=True)
class Argument:
    """One configuration argument of a plugin, as ``rdmbench plugins NAME`` shows it."""

    name: str
    type: str
    default: str
    doc: str


def arguments(func: Any, *, skip: int = 1, doc_from: Any = None) -> list[Argument]:
    """Keyword arguments of ``func`` (after ``skip`` positional ones) with type, default and doc.

    Types and defaults are read from the signature as written (no import of anything heavy); docs
    come from the ``Args:`` section of ``doc_from``'s docstring (the class), else ``func``'s.
    """
    docs = {**args_section(func), **args_section(doc_from)} if doc_from is not None else args_section(func)
    out = []
    for p in list(inspect.signature(func).parameters.values())[skip:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        kind = p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation)
        default = "(required)" if p.default is p.empty else repr(p.default)
        out.append(Argument(p.name, "" if p.annotation is p.empty else kind, default, docs.get(p.name, "")))
    return out


_ARG_LINE = re.compile(r"^(\s*)(\*{0,2}\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def args_section(obj: Any) -> dict[str, str]:
    """``{argument: text}`` from a Google-style ``Args:`` section of ``obj``'s docstring."""
    doc = inspect.getdoc(obj) if obj is not None else None
    out: dict[str, str] = {}
    inside, indent, current = False, None, None
    for line in (doc or "").splitlines():
        if line.strip() in ("Args:", "Arguments:"):
            inside, indent, current = True, None, None
            continue
        if not inside or not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if (indent is not None and depth < indent) or (depth == 0 and line.rstrip().endswith(":")):
            break  # the next section
        match = _ARG_LINE.match(line)
        if match and (indent is None or depth == indent):
            indent, current = depth, match.group(2).lstrip("*")
            out[current] = match.group(3).strip()
        elif current:
            out[current] = f"{out[current]} {line.strip()}".strip()
    return out
