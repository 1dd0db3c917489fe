"""Suites: small YAML studies that expand into runs.

A suite has a ``base`` run configuration, ``sweep`` axes over dotted keys (``grid``: every
combination; ``zip``: lists advanced together), ``seeds``, ``profiles`` (dotted overrides of
``base``, plus optionally their own ``sweep``/``seeds``), ``report`` wishes and ``include:`` of
other suite files (deep-merged, the including file wins). Everything is validated, for every run,
before any work starts; errors name the file, the dotted key and what is allowed.
"""

from __future__ import annotations

import copy
import itertools
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rdmbench import schema
from rdmbench.errors import ConfigError, ConfigErrors
from rdmbench.registry import Registry, get_registry, unknown_choice
from rdmbench.tasks import DEFAULT_TASK, get_task
from rdmbench.track import TRACKERS
from rdmbench.validation import Checks

#: the suite format this code reads; a file that says another is refused rather than half-understood
FORMAT_VERSION = 1
#: a suite's name becomes a folder under the results root: one plain component
SUITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


@dataclass
class Run:
    run_id: str
    swept: dict[str, Any]
    #: the resolved, frozen run spec (the task's schema, every plugin default filled in): what the task and
    #: its stages read, typed to the bottom
    spec: Any
    #: the swept values that fit a table cell: an axis of whole sections (a database spec, or null
    #: for "none") is named by its scalar companion (e.g. ``label``) instead
    shown: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> dict[str, Any]:
        """The spec as plain data: what ``config.yaml`` holds and what is compared with a finished run's."""
        return self.spec.model_dump()


@dataclass(frozen=True)
class SuiteInfo:
    """What a run needs of its suite beyond its own spec (a worker of a scheduler gets this, not the suite)."""
    name: str
    profile: str
    #: experiment trackers every finished run is exported to (rdmbench.track)
    track: tuple[str, ...] = ()


@dataclass
class Suite:
    name: str
    path: Path
    profile: str
    description: str
    runs: list[Run]
    report: dict[str, Any] = field(default_factory=dict)
    task: str = DEFAULT_TASK
    #: experiment trackers every finished run is exported to (rdmbench.track); none by default
    track: tuple[str, ...] = ()
    #: the suite format's version (``version:``), recorded in suite.json
    version: int = FORMAT_VERSION

    @property
    def info(self) -> SuiteInfo:
        return SuiteInfo(self.name, self.profile, self.track)


def load_yaml_with_lines(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The document, and ``{dotted key as written: "file:line"}`` for every key of it (a profile's dotted
    override ``encoder.image_size`` is one key: ``profiles.smoke.encoder.image_size``)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError("suite file not found", file=str(path)) from None
    try:
        doc = yaml.safe_load(text) or {}
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=str(path)) from None
    if not isinstance(doc, dict):
        raise ConfigError("a suite must be a mapping at the top level", file=str(path))
    lines: dict[str, str] = {}

    def walk(n: Any, at: str) -> None:
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode):
                    key = f"{at}.{k.value}" if at else str(k.value)
                    lines[key] = f"{path}:{k.start_mark.line + 1}"
                    walk(v, key)
        elif isinstance(n, yaml.SequenceNode):  # sweep.groups[1], seeds[0]
            for i, item in enumerate(n.value):
                lines[f"{at}[{i}]"] = f"{path}:{item.start_mark.line + 1}"
                walk(item, f"{at}[{i}]")

    walk(node, "")
    return doc, lines


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``, mappings key by key; a plugin spec that names another plugin
    replaces the included one whole (one plugin's arguments mean nothing to another)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        both = isinstance(v, dict) and isinstance(out.get(k), dict)
        other_plugin = both and "name" in v and "name" in out[k] and v["name"] != out[k]["name"]
        out[k] = deep_merge(out[k], v) if both and not other_plugin else copy.deepcopy(v)
    return out


def resolve_with_lines(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """A suite with its includes merged in (the including file wins; see ``superseded``), and where each key
    was written (``load_yaml_with_lines``), the including file's lines over the included ones'."""
    path = Path(path).resolve()
    if path in seen:
        raise ConfigError(f"include cycle: {' -> '.join(str(p) for p in (*seen, path))}", file=str(path), key="include")
    doc, lines = load_yaml_with_lines(path)
    unknown = [k for k in doc if k not in schema.SUITE_KEYS]
    if unknown:
        raise ConfigError(unknown_choice("top-level key", unknown[0], list(schema.SUITE_KEYS)), file=str(path), key=unknown[0])
    includes = doc.pop("include", None) or []
    merged: dict[str, Any] = {}
    merged_lines: dict[str, str] = {}
    for inc in [includes] if isinstance(includes, str) else includes:
        inc_doc, inc_lines = resolve_with_lines(path.parent / inc, (*seen, path))
        merged = deep_merge(merged, inc_doc)
        merged_lines.update(inc_lines)
    return deep_merge(superseded(merged, doc), doc), {**merged_lines, **lines}


def superseded(included: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """The included suite less what the including ``doc`` replaces rather than refines:

    - a ``sweep:`` that ``doc`` writes, at the top or in a profile, replaces the included one whole (its
      grid, zip and groups alike): a sweep is a list of runs, and half of another's is none of them;
    - a plugin section ``doc`` switches to another plugin (in ``base`` for every profile, or in one
      profile) takes the included profiles' arguments of that section with it: they were written for the
      included plugin (``encoder.image_size`` means nothing to ``pixels``). A profile that names its own
      plugin for the section keeps its arguments.
    """
    out = copy.deepcopy(included)
    profiles = out.get("profiles") if isinstance(out.get("profiles"), dict) else {}
    own_profiles = doc.get("profiles") if isinstance(doc.get("profiles"), dict) else {}
    if "sweep" in doc:
        out.pop("sweep", None)
    everywhere = list(_switched(out.get("base"), doc.get("base")))
    for name, profile in profiles.items():
        if not isinstance(profile, dict):
            continue
        own = own_profiles.get(name) if isinstance(own_profiles.get(name), dict) else {}
        if "sweep" in own:
            profile.pop("sweep", None)
        switched = everywhere + [k[:-len(".name")] for k in own if k.endswith(".name")]
        switched += [k for k, v in own.items() if isinstance(v, dict) and "name" in v]
        for section in switched:
            if f"{section}.name" in profile or isinstance(profile.get(section), dict) and "name" in profile[section]:
                continue  # the included profile chose its own plugin there: its arguments are its own
            for key in [k for k in profile if k == section or k.startswith(section + ".")]:
                del profile[key]
    return out


def _switched(included: Any, doc: Any, at: str = "") -> list[str]:
    """Dotted keys of the plugin sections ``doc`` sets to another plugin than ``included`` has."""
    if not isinstance(included, dict) or not isinstance(doc, dict):
        return []
    out = []
    for k, v in doc.items():
        if isinstance(v, dict) and isinstance(included.get(k), dict):
            if "name" in v and "name" in included[k] and v["name"] != included[k]["name"]:
                out.append(f"{at}{k}")
            else:
                out += _switched(included[k], v, f"{at}{k}.")
    return out


def set_dotted(config: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.c``. Setting a plugin spec's ``name`` to another plugin replaces the spec with the new
    plugin's defaults, as ``deep_merge`` does (``--set head.name=rarm`` switches heads in one value)."""
    parts = key.split(".")
    node, parent = config, None
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        parent, node = node, node[p]
    if parts[-1] == "name" and parent is not None and node.get("name") not in (None, value):
        node = parent[parts[-2]] = {}
    node[parts[-1]] = copy.deepcopy(value)


#: settings that belong to another section's plugin: a head's sampler settings (``sample.head``) are the keyword
#: arguments of that head's ``sample``, written apart because they are not part of what it trains, and the shared
#: loop's settings (``train``) default to the head's own (``Head.train_defaults``)
COMPANIONS = {"head": ("sample.head", "train")}


def reset_companions(config: dict[str, Any], base: dict[str, Any], written: dict[str, Any]) -> None:
    """A run whose sweep or ``--set`` switches a plugin section to another plugin than the base's (a grid over
    ``head.name``) gets that plugin's default companion settings, as it gets its default arguments, except
    those the same values write (a zip of ``head`` and ``sample.head``, or ``train.steps`` beside ``head.name``)."""
    for section, companions in COMPANIONS.items():
        own, theirs = config.get(section), base.get(section)
        if not (isinstance(own, dict) and isinstance(theirs, dict)) or own.get("name") == theirs.get("name"):
            continue
        for companion in companions:
            kept = {k: v for k, v in written.items() if k == companion or k.startswith(companion + ".")}
            if any(companion.startswith(k + ".") for k in written):
                continue  # a section above it was written whole
            *parents, last = companion.split(".")
            node = config
            for p in parents:
                node = node.setdefault(p, {}) if isinstance(node.get(p, {}), dict) else {}
            node.pop(last, None)
            set_all(config, kept)


def set_all(config: dict[str, Any], values: dict[str, Any]) -> None:
    """``set_dotted`` for each key, plugin names first, so that a switched plugin keeps the arguments
    set beside its name (``head.name: rarm`` with ``head.n_layer: 2``)."""
    for key, value in sorted(values.items(), key=lambda kv: not kv[0].endswith(".name")):
        set_dotted(config, key, value)


def expand_axes(sweep: dict[str, Any], seeds: list[int], file: str, at: str = "sweep") -> list[dict[str, Any]]:
    """The swept values of each run, in a stable order: grid (cartesian) x zip x groups, then seeds.

    ``groups`` is a list of grids whose runs are concatenated (ann-benchmarks' run groups): each
    retriever with its own query-parameter sweep, say. ``at`` is where the sweep was written
    (``sweep`` or ``profiles.<name>.sweep``), for error keys.
    """
    if not isinstance(sweep, dict):
        raise ConfigError("a sweep must be a mapping of grid / zip / groups", file=file, key=at)
    unknown = [k for k in sweep if k not in schema.SWEEP_KEYS]
    if unknown:
        raise ConfigError(unknown_choice("sweep kind", unknown[0], list(schema.SWEEP_KEYS)), file=file, key=f"{at}.{unknown[0]}")
    grid = sweep.get("grid") or {}
    zipped = sweep.get("zip") or {}
    groups = sweep.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, dict) and g for g in groups):
        raise ConfigError("groups must be a list of non-empty grids ({dotted.key: [values]})", file=file,
                          key=f"{at}.groups")
    axes = [("grid", grid), ("zip", zipped)] + [(f"groups[{i}]", g) for i, g in enumerate(groups)]
    for kind, ax in axes:
        if not isinstance(ax, dict):
            raise ConfigError("must be a mapping {dotted.key: [values]}", file=file, key=f"{at}.{kind}")
        for k, v in ax.items():
            if not isinstance(v, list) or not v:
                raise ConfigError("an axis must be a non-empty list of values", file=file, key=f"{at}.{kind}.{k}")
    lengths = {len(v) for v in zipped.values()}
    if len(lengths) > 1:
        raise ConfigError(f"zip axes must have equal lengths, got {sorted(lengths)}", file=file, key=f"{at}.zip")
    combos = _product(grid)
    zip_rows = [dict(zip(zipped, values)) for values in zip(*zipped.values())] or [{}]
    group_rows = [row for g in groups for row in _product(g)] or [{}]
    runs = []
    for g in combos:
        for z in zip_rows:
            for gr in group_rows:
                for s in seeds:
                    runs.append({**g, **z, **gr, "seed": s})
    return runs


def axis_origins(sweep: dict[str, Any], swept: dict[str, Any], at: str) -> dict[str, str]:
    """``{dotted key: where the user wrote it}`` for one run's swept values (``sweep.grid.k_train``)."""
    origins = {}
    for kind in ("grid", "zip"):
        origins.update({k: f"{at}.{kind}.{k}" for k in sweep.get(kind) or {}})
    for i, group in enumerate(sweep.get("groups") or []):
        if all(k in swept and swept[k] in v for k, v in group.items()):  # the group this run came from
            origins.update({k: f"{at}.groups[{i}].{k}" for k in group})
            break
    return origins


def as_written(error: ConfigError, origins: dict[str, str]) -> ConfigError:
    """``error`` re-keyed from the merged run config (``base.…``) to where its value was written."""
    key = error.key or ""
    if not key.startswith("base."):
        return error
    rest = key[len("base."):]
    owners = [k for k in origins if rest == k or rest.startswith(k + ".")]
    if not owners:
        return error
    owner = max(owners, key=len)
    return ConfigError(error.detail, file=error.file, key=origins[owner] + rest[len(owner):])


def parse_sets(sets: list[str], sweep: dict[str, Any], seeds: list[int],
               file: str) -> tuple[dict[str, Any], dict[str, Any], list[int]]:
    """``--set dotted.key=VALUE`` items (VALUE read with yaml.safe_load) -> (run overrides, sweep, seeds).

    A run key is applied to every run after the profile and the sweep. It may refine a swept section
    (``data.reference_size`` where ``data`` is swept) but not replace a swept axis, which would make
    the runs identical; the axis itself is ``sweep.grid.KEY`` / ``sweep.zip.KEY`` /
    ``sweep.groups[N].KEY`` (a new list of values). ``seeds`` replaces the seeds.
    """
    sweep = copy.deepcopy(sweep)
    groups = sweep.get("groups") or []
    axes_at = {f"sweep.{kind}.{k}": k for kind in ("grid", "zip") for k in sweep.get(kind) or {}}
    axes_at.update({f"sweep.groups[{i}].{k}": k for i, g in enumerate(groups) for k in g})
    out: dict[str, Any] = {}
    for item in sets:
        key, value = key_value(item, "--set", "dotted.key", r"[A-Za-z_][\w-]*(\[\d+\])?(\.[A-Za-z_][\w-]*)*", file)
        if key == "seeds":
            seeds = value
        elif key.startswith("sweep."):
            if key not in axes_at:
                raise ConfigError(unknown_choice("swept axis", key, list(axes_at)), file=file, key=f"--set {key}")
            m = re.fullmatch(r"sweep\.(grid|zip|groups\[(\d+)\])\..+", key)
            (sweep[m[1]] if m[2] is None else groups[int(m[2])])[axes_at[key]] = value
        else:
            replaced = [(at, k) for at, k in [*axes_at.items(), ("seeds", "seed")] if k == key or k.startswith(key + ".")]
            if replaced:
                at, axis = replaced[0]
                raise ConfigError(f"the suite sweeps {axis}; one value for every run would make the runs identical: "
                                  f"set the axis instead (--set {at}=[...])", file=file, key=f"--set {key}")
            out[key] = value
    return out, sweep, seeds


def key_value(item: str, flag: str, form: str = "KEY", pattern: str = r".+", file: str | None = None) -> tuple[str, Any]:
    """One ``KEY=VALUE`` command-line item (``flag``: --set, --executor-option) -> (key, VALUE read as YAML);
    a key not matching ``pattern`` or a VALUE that is not YAML is one line naming the flag."""
    key, eq, text = item.partition("=")
    key = key.strip()
    if not eq or not re.fullmatch(pattern, key):
        raise ConfigError(f"expected {form}=VALUE, got {item!r}", file=file, key=flag)
    try:
        return key, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"VALUE is not valid YAML: {' '.join(str(exc).split())}", file=file,
                          key=f"{flag} {key}") from None


def _product(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]


def run_id(shown: dict[str, Any]) -> str:
    """``key=value`` of the swept values shown. Whole sections are left out: give such an axis a
    scalar companion in the same zip (e.g. ``benchmark.label``) so that run ids stay distinct; a plugin
    spec swept in a grid shows as ``<key>.name``."""
    text = "_".join(f"{k.split('.')[-1]}={v}" for k, v in shown.items())
    return re.sub(r"[^A-Za-z0-9_.=+-]", "-", text)


def load_suite(path: str | Path, profile: str | None = None, registry: Registry | None = None,
               sets: list[str] | None = None) -> Suite:
    """Read, merge, expand and validate a suite. Raises ConfigError(s) before any work, each naming the
    file and line where the value at fault was written (an included file's, say), or ``--set KEY``.

    ``sets`` are ``dotted.key=VALUE`` overrides (``rdmbench run --set``), applied last; see ``parse_sets``.
    """
    doc, lines = resolve_with_lines(Path(path))
    try:
        return _load(Path(path), doc, profile, registry, sets)
    except ConfigErrors as exc:
        raise ConfigErrors([located(e, lines) for e in exc.errors]) from None
    except ConfigError as exc:
        raise located(exc, lines) from None


def located(error: ConfigError, lines: dict[str, str]) -> ConfigError:
    """``error`` with its file replaced by ``file:line`` of the key as written (the longest written prefix
    of its dotted key); as it was where the value was not written in a file (a default, ``--set``)."""
    key = error.key or ""
    parts = re.split(r"\.(?![^\[]*\])", key)
    for n in range(len(parts), 0, -1):
        where = lines.get(".".join(parts[:n]))
        if where is not None and not key.startswith("--"):
            file, _, line = where.rpartition(":")
            return ConfigError(error.detail, file=f"{_shown(file)}:{line}", key=key)
    return error


def _shown(file: str) -> str:
    """A path as short as it is clear: relative to the working folder when inside it."""
    relative = os.path.relpath(file)
    return file if relative.startswith("..") else relative


def _load(path: Path, doc: dict[str, Any], profile: str | None, registry: Registry | None,
          sets: list[str] | None) -> Suite:
    file = str(path)
    registry = registry or get_registry()
    profiles = doc.get("profiles") or {}
    profile = profile or doc.get("default_profile") or "cpu"
    if profile not in profiles:
        allowed = sorted(set(profiles) | ({"cpu"} if not profiles else set()))
        if profiles or profile != "cpu":
            raise ConfigError(unknown_choice("profile", profile, allowed), file=file, key="--profile")
    overrides = dict(profiles.get(profile) or {})
    # where each value came from, so that an error names the key the user wrote
    sweep_at = f"profiles.{profile}.sweep" if "sweep" in overrides else "sweep"
    seeds_at = f"profiles.{profile}.seeds" if "seeds" in overrides else "seeds"
    sweep = overrides.pop("sweep", doc.get("sweep") or {})
    seeds = overrides.pop("seeds", doc.get("seeds") or [0])
    override_at = {key: f"profiles.{profile}.{key}" for key in overrides}
    run_sets, sweep, seeds = parse_sets(sets or [], sweep, seeds, file)
    base = copy.deepcopy(doc.get("base") or {})
    set_all(base, overrides)
    task = doc.get("task", DEFAULT_TASK)
    get_task(task, file=file)  # an unknown task is an error before anything else
    base["task"] = task
    report = doc.get("report") or {}
    bad = [k for k in report if k not in schema.REPORT_KEYS]
    if bad:
        raise ConfigError(unknown_choice("report key", bad[0], list(schema.REPORT_KEYS)), file=file, key=f"report.{bad[0]}")

    track = doc.get("track") or []
    if not isinstance(track, list) or not all(isinstance(t, str) for t in track):
        raise ConfigError(f"expected a list of tracker names (allowed: {', '.join(TRACKERS)}), got {track!r}",
                          file=file, key="track")
    for i, name in enumerate(track):
        if name not in TRACKERS:
            raise ConfigError(unknown_choice("tracker", name, list(TRACKERS)), file=file, key=f"track[{i}]")

    runs, errors = [], {}
    expanded = expand_axes(sweep, seeds, file, at=sweep_at)
    section_axes = {k for swept in expanded for k, v in swept.items() if isinstance(v, dict)}
    grid_axes = set(sweep.get("grid") or {}).union(*(g for g in sweep.get("groups") or [] if isinstance(g, dict)))
    for swept in expanded:
        config = copy.deepcopy(base)
        set_all(config, swept)
        set_all(config, run_sets)  # after the sweep: may refine a swept section, never an axis
        reset_companions(config, base, {**swept, **run_sets})
        origins = {**override_at, "seed": seeds_at, **axis_origins(sweep, swept, sweep_at),
                   **{key: f"--set {key}" for key in run_sets}}
        try:
            resolved = validate_run(config, registry, file=file, prefix="base")
        except (ConfigError, ConfigErrors) as exc:
            for e in exc.errors if isinstance(exc, ConfigErrors) else [exc]:
                e = as_written(e, origins)
                errors[str(e)] = e
            continue
        shown = {}
        for k, v in swept.items():
            if k not in section_axes:
                shown[k] = v
            elif k in grid_axes and isinstance(v, dict) and "name" in v:
                shown[f"{k}.name"] = v["name"]  # no companion can pair with a grid axis: its plugin names it
        runs.append(Run(run_id(shown), swept, resolved, shown))
    if errors:
        errs = list(errors.values())
        raise errs[0] if len(errs) == 1 else ConfigErrors(errs)
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"two runs resolve to the same run id {dup!r}; a swept mapping needs a scalar companion "
                          "axis (e.g. a label) in the same zip", file=file, key="sweep")
    axes = [k for sw in [doc.get("sweep"), *((p or {}).get("sweep") for p in profiles.values() if isinstance(p, dict))]
            if isinstance(sw, dict) for ax in [sw.get("grid"), sw.get("zip"), *(sw.get("groups") or [])]
            if isinstance(ax, dict) for k in ax]
    check_report(report, runs, axes, task, registry, file)
    name = doc.get("suite") or path.stem
    if not isinstance(name, str) or not SUITE_NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(f"{name!r} is not a suite name: results and cache go to results/<suite>/, so it must be "
                          "one folder name (letters, digits, _ . + -; no '/', no '..', not absolute)", file=file,
                          key="suite")
    version = doc.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise ConfigError(f"unknown suite format version {version!r}; allowed: {FORMAT_VERSION}", file=file, key="version")
    return Suite(name, path, profile, str(doc.get("description") or "").strip(), runs, report, task, tuple(track),
                 version)


def check_report(report: dict[str, Any], runs: list[Run], axes: list[str], task: str, registry: Registry,
                 file: str) -> None:
    """``report.x`` / ``report.hue`` name a key the suite sweeps (in any profile: a smoke profile may sweep
    less) or a column the runs write, ``report.metrics`` columns the runs write: a misspelling is an error,
    not a plot of the first swept key or a metric "without values"."""
    from rdmbench.columns import WALL_S

    swept = list(dict.fromkeys([*(k for r in runs for k in r.shown), *axes, "seed"]))
    columns = list(dict.fromkeys(str(c) for r in runs for c in [WALL_S, *get_task(task).result_columns(r.spec, registry)]))
    for axis in ("x", "hue"):
        value = report.get(axis)
        if value is not None and value not in swept and value not in columns:
            raise ConfigError(unknown_choice(f"report {axis}", value, swept + columns), file=file, key=f"report.{axis}")
    metrics = report.get("metrics")
    if metrics is None:
        return
    if not isinstance(metrics, list):
        raise ConfigError(f"expected a list of columns (allowed: {', '.join(columns)}), got {metrics!r}", file=file,
                          key="report.metrics")
    for i, metric in enumerate(metrics):
        if metric not in columns:
            raise ConfigError(unknown_choice("column", metric, columns), file=file, key=f"report.metrics[{i}]")


def validate_run(config: dict[str, Any], registry: Registry, *, file: str, prefix: str) -> Any:
    """Validate one run's config against its task's schema and checks; return it resolved (every
    plugin default filled in) as a frozen instance of that schema, which is all that describes the run."""
    import pydantic

    task = get_task(config.get("task", DEFAULT_TASK), file=file, key=f"{prefix}.task")
    model = task.schema
    try:
        run = model(**config)
    except pydantic.ValidationError as exc:
        errs = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                parent = _model_at(model, err["loc"][:-1])
                allowed = list(parent.model_fields) if parent else []
                msg = unknown_choice("key", err["loc"][-1], allowed)
            elif err["type"] == "missing":
                msg = "required key is missing"
            else:
                msg = f"{err['msg']} (got {err.get('input')!r})"
            errs.append(ConfigError(msg, file=file, key=f"{prefix}.{loc}"))
        raise (ConfigErrors(errs) if len(errs) > 1 else errs[0]) from None
    out = run.model_dump()
    checks = Checks(registry, file, prefix)
    task.validate(run, out, checks)
    checks.raise_errors()
    return model.model_validate(out)


def _model_at(model: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        field_info = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field_info is None:
            return None
        model = field_info.annotation
        # an optional section (``RetrieverSection | None``): the model inside it
        model = next((a for a in typing.get_args(model) if hasattr(a, "model_fields")), model)
    return model if hasattr(model, "model_fields") else None
