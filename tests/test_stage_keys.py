"""Stage keys cover what changes a result, and nothing else.

Editing a plugin's source recomputes exactly its stage and those downstream; upgrading a library
recomputes exactly the stages whose code imports it; another run of the suite changes no key; a
finished run re-run with nothing changed keeps its row. Every project module whose code runs while a
stage computes is in that stage's key (traced, not assumed); a line appended to any module of rdmbench/
re-keys exactly the stages whose code reaches it; every argument of the sampler, of every sampling mode
and every query argument of every retriever is in the samples stage's key.
"""

from __future__ import annotations

import ast
import inspect
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, TINY_BASE
from rdmbench import provenance, runner
from rdmbench.cache import StageCache, read_json
from rdmbench.pipeline import Pipeline
from rdmbench.progress import Progress
from rdmbench.registry import arguments, get_registry
from rdmbench.suite import load_suite

ONE_RUN = TINY_BASE.replace("k_train: [0, 2]", "k_train: [2]")
#: the head, what it samples, their features, the metrics and the novelty measure
DOWNSTREAM_OF_HEAD = {"train", "samples", "features", "metrics", "novelty"}
RUN_ID = "k_train=2_seed=0"


def project_module(filename: str) -> str | None:
    """``rdmbench.x.y`` / ``rdmbench_plugins.a.b`` of a source file of this checkout, else None."""
    path = Path(filename)
    for folder, package in ((REPO / "rdmbench", "rdmbench"), (REPO / "plugins", "rdmbench_plugins")):
        if path.is_relative_to(folder) and path.suffix == ".py":
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return None


def traced_run(suite: Path, out: Path, cache: Path) -> dict[str, set[str]]:
    """Run a suite; while each stage computes, record the project modules whose code runs (entry key ->
    modules), by sys.setprofile: what actually ran, not what the key's static reach assumes."""
    executed: dict[str, set[str]] = {}
    real = Pipeline._compute

    def traced(self, name, key, config, code, inputs, compute):
        seen: set[str] = set()

        def compute_traced(out):
            def profile(frame, event, arg):
                if event == "call":
                    seen.add(frame.f_code.co_filename)

            sys.setprofile(profile)
            try:
                return compute(out)
            finally:
                sys.setprofile(None)

        path = real(self, name, key, config, code, inputs, compute_traced)
        executed[key] = {m for m in map(project_module, seen) if m}
        return path

    Pipeline._compute = traced
    try:
        rows = runner.run_suite(load_suite(suite), out, cache)
    finally:
        Pipeline._compute = real
    assert all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
    return executed


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """The one-run tiny suite computed once, traced, into a cache the tests below reuse."""
    tmp = tmp_path_factory.mktemp("keys")
    (tmp / "s.yaml").write_text(ONE_RUN)
    cache = tmp / "cache"
    return tmp, cache, traced_run(tmp / "s.yaml", tmp / "first", cache)


def recomputed(tmp: Path, cache: Path, text: str = ONE_RUN, out: str = "again", only=None) -> dict[str, bool]:
    path = tmp / f"{out}.yaml"
    path.write_text(text)
    suite = load_suite(path)
    runner.run_suite(suite, tmp / out, cache, only=only)
    run_id = only[0] if only else suite.runs[0].run_id
    stages = json.loads((tmp / out / "runs" / run_id / "stages.json").read_text())
    return {s["stage"] for s in stages if not s["cached"]}


def test_editing_a_plugin_recomputes_its_stage_and_downstream_only(warm, tmp_path, monkeypatch):
    tmp, cache, _ = warm
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
    tmp, cache, _ = warm
    real = provenance.library_versions

    def upgraded(names):
        versions = real(names)
        if "torch-fidelity" in versions:
            versions["torch-fidelity"] += ".post1"
        return versions

    monkeypatch.setattr(provenance, "library_versions", upgraded)
    provenance.clear()
    try:
        assert recomputed(tmp, cache, out="upgraded") == {"metrics"}
    finally:
        provenance.clear()


def test_another_run_of_the_suite_changes_no_key(warm):
    tmp, cache, _ = warm
    wider = ONE_RUN.replace("k_train: [2]", "k_train: [2, 32]")
    assert recomputed(tmp, cache, wider, out="wider", only=[RUN_ID]) == set()


def test_unchanged_rerun_keeps_the_row(warm):
    tmp, cache, _ = warm
    before = (tmp / "first" / "runs" / RUN_ID / "row.json").read_text()
    runner.run_suite(load_suite(tmp / "s.yaml"), tmp / "first", cache)
    assert (tmp / "first" / "runs" / RUN_ID / "row.json").read_text() == before


# -- what runs is keyed ------------------------------------------------------------------------------------

def entry(cache: Path, key: str) -> Path:
    return next(cache.glob(f"*/{key}"))


def own_keyed_modules(meta: dict[str, Any]) -> set[str]:
    """The project modules an entry's key holds itself: its code's and its plugins' (``modules`` anywhere in
    its recorded config and code)."""
    found: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("modules"), list):
                found.update(node["modules"])
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect({"config": meta["config"], "code": meta["code"]})
    return found


def keyed_modules(cache: Path, key: str, through_inputs: bool = True) -> set[str]:
    """The project modules an entry's key holds, with those of its inputs' entries (held through their keys)."""
    meta = read_json(entry(cache, key) / "stage.json")
    found = own_keyed_modules(meta)
    for upstream in meta["inputs"].values() if through_inputs else ():
        found |= keyed_modules(cache, upstream)
    return found


def assert_what_ran_is_keyed(cache: Path, executed: dict[str, set[str]], stages: int) -> None:
    assert len(executed) >= stages, executed  # every stage of the run was computed and traced
    missing = {}
    for key, modules in executed.items():
        unkeyed = modules - keyed_modules(cache, key) - set(provenance.ENGINE)
        if unkeyed:
            missing[f"{entry(cache, key).parent.name}/{key}"] = sorted(unkeyed)
    assert not missing, f"code that ran while these stages computed is in no key: {missing}"


def test_every_module_that_runs_while_a_stage_computes_is_in_its_key(warm):
    """Traced while each stage of a real run computed: a module whose code ran but whose source no key holds
    could change the entry without changing its key."""
    _, cache, executed = warm
    assert_what_ran_is_keyed(cache, executed, 12)


OTHER_PLUGINS = ONE_RUN.replace("first_stage: {name: identity}", """first_stage: {name: autoencoder, kind: vq, block_out_channels: [8, 16], norm_num_groups: 8,
                latent_channels: 4, num_vq_embeddings: 16, train_steps: 2, batch_size: 8}""").replace(
    "retriever: {name: exact}", "retriever: {name: faiss, build: {index_type: ivf-flat, nlist: 4}, query: {nprobe: 2}}").replace(
    "head: {name: rdm, block_out_channels: [8, 16], attention_levels: [false, true], norm_num_groups: 8,\n"
    "         cross_attention_dim: 16}\n  train: {steps: 3, batch_size: 8}",
    "head: {name: rarm, n_layer: 1, n_embd: 16, n_head: 2}\n  train: {steps: 2, batch_size: 8}").replace(
    "sample: {num: 24, head: {steps: 2}, batch_size: 12}", "sample: {num: 24, batch_size: 12, mode: {name: held-out}}")


@pytest.mark.parametrize("suite", [OTHER_PLUGINS, RETRIEVAL_RUN := """
suite: tiny-retrieval
task: retrieval
base:
  data: {dataset: {name: synthetic-shapes, image_size: 16, train_size: 60, test_size: 20}, train_size: 40}
  database: {name: from-dataset, dataset: {name: synthetic-shapes, image_size: 16, train_size: 60, test_size: 20},
             split: train, size: 20}
  encoder: {name: pixels}
  retriever: {name: hnswlib}
  benchmark: {label: shapes, k: 5, metric: l2, num_queries: 10, single_queries: 3, repeats: 1}
"""], ids=["rarm-vq-faiss-held-out", "retrieval-task"])
def test_what_runs_is_keyed_with_other_plugins_and_tasks(suite, tmp_path):
    assert all(w in OTHER_PLUGINS for w in ("kind: vq", "faiss", "rarm", "held-out"))  # every replacement took
    (tmp_path / "s.yaml").write_text(suite)
    executed = traced_run(tmp_path / "s.yaml", tmp_path / "out", tmp_path / "cache")
    assert_what_ran_is_keyed(tmp_path / "cache", executed, 12 if suite is OTHER_PLUGINS else 6)


class KeyWalk(Pipeline):
    """Walks a run and computes its keys, computing nothing: a stage not in the cache is recorded and the
    reference run's entry at the same place of the walk stands in for it, so that each stage's key changes
    only where its own code or config does."""

    def __init__(self, cache: Path, reference: list[str]):
        super().__init__(StageCache(cache), get_registry(), Progress(), "cpu")
        self.reference = reference

    def _compute(self, name, key, config, code, inputs, compute):
        at = len(self.stage_log)
        self.stage_log.append({"stage": name, "key": key, "cached": True, "seconds": 0.0})
        if self.cache.done(name, key) or at >= len(self.reference):
            return self.cache.path(name, key)
        return self.cache.path(*self.reference[at].split("/"))

    def keys(self, cfg: Any) -> list[str]:
        self.run(cfg)
        return [f"{s['stage']}/{s['key']}" for s in self.stage_log]


@pytest.fixture(scope="module")
def walk(warm):
    tmp, cache, _ = warm
    reference = read_json(tmp / "first" / "runs" / RUN_ID / "row.json")["stage_keys"]
    cfg = load_suite(tmp / "s.yaml").runs[0].spec
    walker = KeyWalk(cache, reference)
    assert walker.keys(cfg) == reference  # the walk retraces the run it stands in for
    return walker, cfg, reference


def own_modules() -> list[str]:
    return sorted(m for m in map(project_module, map(str, (REPO / "rdmbench").rglob("*.py"))) if m)


def rekeyed_by(walker: KeyWalk, cfg: Any, monkeypatch, module: str, tmp_path: Path,
               edit=lambda text: text + "\n_APPENDED_BY_A_TEST = 1\n") -> set[int]:
    """Positions in the walk whose key changes when ``module``'s source is edited (a copy stands in for it)."""
    edited = tmp_path / f"{module}.py"
    edited.write_text(edit(Path(provenance.module_file(module)).read_text()))
    real = provenance.module_file
    monkeypatch.setattr(provenance, "module_file", lambda m: str(edited) if m == module else real(m))
    try:
        after = walker.keys(cfg)
    finally:
        monkeypatch.setattr(provenance, "module_file", real)
    return {i for i, (a, b) in enumerate(zip(walker.reference, after)) if a != b}


@pytest.mark.parametrize("module", own_modules())
def test_a_line_appended_to_a_module_rekeys_the_stages_that_reach_it(walk, monkeypatch, tmp_path, module):
    """An unused module constant appended to ``module``: exactly the stages whose key lists it (its code,
    a plugin's or an input's reach it) get a new key. With the trace above, every module that runs is listed."""
    walker, cfg, reference = walk
    cache = walker.cache.root
    expected = {i for i, at in enumerate(reference) if module in keyed_modules(cache, at.split("/")[1], False)}
    assert rekeyed_by(walker, cfg, monkeypatch, module, tmp_path) == expected


def test_editing_the_bootstrap_rekeys_the_metrics_alone(walk, monkeypatch, tmp_path):
    walker, cfg, reference = walk
    changed = rekeyed_by(walker, cfg, monkeypatch, "rdmbench.stats", tmp_path)
    assert {reference[i].split("/")[0] for i in changed} == {"metrics"}


def test_a_module_constant_is_keyed(walk, monkeypatch, tmp_path):
    """SHARD_ROWS at 1 << 10 instead of 1 << 17 re-keys the embeddings (with every stage whose code reaches
    rdmbench.stages: a module's top-level statements are keyed whole, which an appended line needs)."""
    walker, cfg, reference = walk
    changed = rekeyed_by(walker, cfg, monkeypatch, "rdmbench.stages", tmp_path,
                         lambda text: text.replace("SHARD_ROWS = 1 << 17", "SHARD_ROWS = 1 << 10"))
    assert "embeddings" in {reference[i].split("/")[0] for i in changed}
    assert changed == rekeyed_by(walker, cfg, monkeypatch, "rdmbench.stages", tmp_path)


def test_the_device_type_and_thread_count_are_keyed_where_results_depend_on_them(walk, monkeypatch):
    walker, cfg, reference = walk
    monkeypatch.setattr(walker, "runs_on", lambda: {"device": "cuda", "threads": 1})
    changed = {k.split("/")[0] for k, r in zip(walker.keys(cfg), reference) if k != r}
    assert "data" not in changed and "database" not in changed  # copied and counted: the same everywhere
    assert {"embeddings", "train", "samples", "features", "metrics"} <= changed


def changed(spec: Any, dotted: str, value: Any) -> Any:
    """The resolved spec with one value changed (validated again, as the suite loader would)."""
    from rdmbench.suite import set_dotted

    out = spec.model_dump()
    set_dotted(out, dotted, value)
    return type(spec).model_validate(out)


@pytest.mark.parametrize("dotted,value,stages", [
    ("data.train_size", 100, {"data"}), ("train.lr", 0.5, {"train"}), ("seed", 1, {"train", "samples", "metrics"}),
    ("encoder.image_size", 48, {"embeddings"}), ("retriever.train_neighbours", 20, {"neighbours"}),
    ("sample.num", 20, {"samples"}), ("metrics.feature_extractor.image_size", 48, {"features"}),
    ("metrics.bootstrap", 7, {"metrics"}), ("metrics.near_copy_quantile", 0.1, {"novelty"}),
])
def test_a_config_value_rekeys_the_stages_that_read_it(walk, dotted, value, stages):
    """One resolved value changed: the stages that read it get new keys (those downstream then follow
    through their inputs' keys, which the walk stands in for), no other stage does."""
    walker, cfg, reference = walk
    after = walker.keys(changed(cfg, dotted, value))
    assert {a.split("/")[0] for a, r in zip(after, reference) if a != r} == stages


# -- every argument of sampling is in the samples key -----------------------------------------------------

def other_values(arg: Any, tmp_path: Path) -> list[Any]:
    """Values other than an argument's default to try, by its type as written."""
    default = None if arg.default == "(required)" else ast.literal_eval(arg.default)  # a literal's repr
    if arg.type.startswith("Literal["):
        return [c for c in ast.literal_eval(arg.type[len("Literal"):]) if c != default]
    if arg.name.endswith("_file"):
        (tmp_path / "lines.txt").write_text("An image of a shirt.\n")
        return [str(tmp_path / "lines.txt")]
    if isinstance(default, bool):
        return [not default]
    if isinstance(default, int):
        return [default + 1, max(default - 1, 1)]
    if isinstance(default, float):
        return [default / 2, default + 0.5]
    if isinstance(default, str):
        return [f"x {default}", "x"]
    if "list" in arg.type:
        return [["An image of a shirt."], [{"text": "An image of a shirt.", "class": "shirt"}]]
    if "int" in arg.type:
        return [3, 1]
    if "float" in arg.type:
        return [0.5]
    if "str" in arg.type:
        return ["x"]
    return []


def samples_key(walker: KeyWalk, cfg: Any) -> str:
    from rdmbench.tasks.generation import stages as gen

    paths = {n: walker.cache.root / n for n in ("data", "first_stage", "train", "db_embeddings",
                                                 "sampling_database", "sampling_embeddings", "sampling_index")}
    walker.stage_log = []
    gen.samples(walker, cfg, paths)
    return walker.stage_log[-1]["key"]


def with_sample(spec: Any, **changes: Any) -> Any:
    return type(spec).model_validate({**spec.model_dump(), "sample": {**spec.sample.model_dump(), **changes}})


SAMPLER = ("num", "k", "guidance_scale", "batch_size", "guidance_batching")


@pytest.mark.parametrize("field", SAMPLER)
def test_every_sampler_setting_is_in_the_samples_key(walk, field):
    walker, cfg, _ = walk
    value = getattr(cfg.sample, field)
    named = {"guidance_batching": "batched"}
    other = named[field] if field in named else type(value)(value + 1)
    assert other != value
    cfg = with_sample(cfg, guidance_scale=2.0) if field == "guidance_batching" else cfg
    assert samples_key(walker, cfg) != samples_key(walker, with_sample(cfg, **{field: other}))


def head_sampler_arguments() -> list[tuple[str, str]]:
    registry = get_registry()
    return [(name, a.name) for name in registry.names("head")
            for a in arguments(registry.info("head", name).cls.sample, skip=3)]


@pytest.mark.parametrize("head,argument", head_sampler_arguments())
def test_every_sampler_argument_of_every_head_is_in_the_samples_key(walk, head, argument):
    """A head's own sampler settings (``sample.head``, its ``sample``'s keyword arguments) are keyed."""
    walker, cfg, _ = walk
    registry = get_registry()
    arg = next(a for a in arguments(registry.info("head", head).cls.sample, skip=3) if a.name == argument)
    spec = type(cfg).model_validate({**cfg.model_dump(), "head": {"name": head}, "sample": {
        **cfg.sample.model_dump(), "head": {}}})
    named = {"solver": ["dpm++"], "top_k": [5]}
    for value in named.get(argument, []) + other_values(arg, Path(".")):
        changed = with_sample(spec, head={argument: value})
        if changed.sample.head[argument] == arg.default:
            continue
        assert samples_key(walker, spec) != samples_key(walker, changed)
        return
    pytest.fail(f"no other value of {head}.sample's {argument} could be built: teach other_values() one")


def mode_arguments() -> list[tuple[str, str]]:
    registry = get_registry()
    return [(name, a.name) for name in registry.names("sampling_mode")
            for a in arguments(registry.info("sampling_mode", name).cls.__init__)]


@pytest.mark.parametrize("mode,argument", mode_arguments())
def test_every_sampling_mode_argument_is_in_the_samples_key(walk, mode, argument, tmp_path):
    walker, cfg, _ = walk
    registry = get_registry()
    arg = next(a for a in arguments(registry.info("sampling_mode", mode).cls.__init__) if a.name == argument)
    base = with_sample(cfg, mode={"name": mode})
    before = samples_key(walker, base)
    for value in other_values(arg, tmp_path):
        spec = {"name": mode, argument: value}
        try:
            registry.validate("sampling_mode", spec)
            registry.create("sampling_mode", spec)
        except Exception:  # not a value this argument takes: try the next
            continue
        assert samples_key(walker, with_sample(cfg, mode=spec)) != before
        return
    pytest.fail(f"no other value of {mode}.{argument} ({arg.type}, default {arg.default}) could be built: "
                "teach other_values() one")


def query_arguments() -> list[tuple[str, str]]:
    registry = get_registry()
    out = []
    for name in registry.names("retriever"):
        cls = registry.info("retriever", name).cls
        for p in inspect.signature(cls.search_index).parameters.values():
            if p.kind is p.KEYWORD_ONLY:
                out.append((name, p.name))
    return out


@pytest.mark.parametrize("retriever,argument", query_arguments())
def test_every_query_argument_of_every_retriever_is_in_the_samples_key(walk, retriever, argument):
    """held-out queries search the sampling index with the query arguments: nprobe 1 and 64 are two rows."""
    walker, cfg, _ = walk
    cls = get_registry().info("retriever", retriever).cls
    p = inspect.signature(cls.search_index).parameters[argument]
    default = p.default if p.default is not p.empty else None
    other = (not default) if isinstance(default, bool) else (default or 1) * 2 if isinstance(default, (int, float)) \
        else default + "x" if isinstance(default, str) else 4
    section = {"name": retriever, "build": {}, "query": {}, "train_neighbours": 16}
    held_out = {"name": "held-out"}
    before = samples_key(walker, with_sample(cfg, mode=held_out, retriever=section))
    after = samples_key(walker, with_sample(cfg, mode=held_out, retriever={**section, "query": {argument: other}}))
    assert before != after


def test_stage_code_is_hashed_per_function():
    from rdmbench import stages
    from rdmbench.tasks.generation import stages as gen

    data, train = provenance.function_provenance(stages.data), provenance.function_provenance(gen.train)
    assert data["code"] != train["code"]
    assert data["libraries"]["numpy"]  # what stages.py imports is versioned
    rdm = provenance.plugin_provenance(__import__("rdmbench_plugins.heads.rdm", fromlist=["RDMHead"]).RDMHead)
    assert {"torch", "diffusers"} <= set(rdm["libraries"]), rdm["libraries"]
    assert "rdmbench.training" in rdm["modules"]  # the loop every head shares, reached through the Head contract


def test_keying_code_records_a_library_without_importing_it(tmp_path, monkeypatch):
    # every process that keys a stage walks the code; importing what it names would cost seconds per process
    (tmp_path / "ownpkg").mkdir()
    (tmp_path / "ownpkg" / "__init__.py").write_text("")
    (tmp_path / "ownpkg" / "mod.py").write_text(
        "from somelib.sub import thing\nfrom somelib import other\n\n\ndef f():\n    return thing(other.x)\n")
    (tmp_path / "somelib" / "sub").mkdir(parents=True)
    imported = tmp_path / "imported"
    (tmp_path / "somelib" / "__init__.py").write_text(f"open({str(imported)!r}, 'w').close()\n")
    (tmp_path / "somelib" / "sub" / "__init__.py").write_text("thing = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        out = provenance.reach([("ownpkg.mod", "f")], own=("ownpkg",))
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] in ("ownpkg", "somelib")]:
            del sys.modules[name]
    assert "somelib" in out.libraries and not imported.exists()
    assert out.defs["ownpkg.mod"] == {"f"}


# -- data and weight fingerprints ---------------------------------------------------------------------------

def test_an_image_folder_is_keyed_by_content_unless_the_run_opts_into_sizes_and_times(tmp_path):
    """An image replaced by another of the same size and time changes the content fingerprint; the opt-in
    ``size+mtime`` cannot see it, and says so in a column of every row."""
    import os

    from PIL import Image

    from rdmbench import stages
    from rdmbench_plugins.datasets import image_folder
    from rdmbench_plugins.datasets.image_folder import ImageFolder

    image = tmp_path / "root" / "train" / "cat" / "a.png"
    image.parent.mkdir(parents=True)
    Image.new("L", (8, 8), 0).save(image)
    by_content, by_stat = ImageFolder(str(tmp_path / "root")), ImageFolder(str(tmp_path / "root"), fingerprint="size+mtime")
    before = (by_content.fingerprint(), by_stat.fingerprint())
    st = image.stat()
    with open(image, "r+b") as f:  # one byte of pixel data flipped: same size, same time
        f.seek(st.st_size - 20)
        byte = f.read(1)
        f.seek(st.st_size - 20)
        f.write(bytes([byte[0] ^ 1]))
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))
    image_folder._content.cache_clear()  # a new process would read the file afresh
    assert by_content.fingerprint() != before[0]
    assert by_stat.fingerprint() == before[1]
    assert "opt_in" not in before[0] and before[1]["opt_in"] == {"data_fingerprint": "size+mtime"}
    data = tmp_path / "data"
    data.mkdir()
    (data / "stage.json").write_text(json.dumps({"config": {"dataset": {"spec": {}, **before[1]}}}))
    assert stages.opt_ins({"data": data}) == {"data_fingerprint": "size+mtime"}


def test_a_local_text_model_is_keyed_by_every_file_of_it(tmp_path):
    """A sentence encoder's tokenizer or pooling config changes its vectors as much as its weights do."""
    from rdmbench.registry import get_registry

    model = tmp_path / "minilm"
    (model / "1_Pooling").mkdir(parents=True)
    for name, text in (("model.safetensors", "weights"), ("tokenizer.json", "{}"), ("1_Pooling/config.json", "{}")):
        (model / name).write_text(text)
    spec = {"name": "lit", "text_model": str(model)}
    before = get_registry().create("encoder", spec).fingerprint()["text_model_files_sha256"]
    (model / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": false}')
    assert get_registry().create("encoder", spec).fingerprint()["text_model_files_sha256"] != before
