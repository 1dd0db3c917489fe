"""Suite loading: includes, profiles, sweeps and one-line errors before any work."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import yaml

from conftest import REPO, TINY_BASE, write_suite
from rdmbench.errors import ConfigError, ConfigErrors
from rdmbench.suite import load_suite


def errors_of(exc_info) -> str:
    return str(exc_info.value)


def line_of(path, text: str) -> int:
    """The line of ``path`` (from 1) where ``text`` is written."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def mutate(tmp_path, change) -> str:
    doc = yaml.safe_load(TINY_BASE)
    change(doc)
    path = write_suite(tmp_path, yaml.safe_dump(doc))
    with pytest.raises((ConfigError, ConfigErrors)) as exc:
        load_suite(path)
    return errors_of(exc)


def test_grid_expands_with_seeds_and_resolves_defaults(tiny_suite):
    suite = load_suite(tiny_suite)
    assert [r.run_id for r in suite.runs] == ["k_train=0_seed=0", "k_train=2_seed=0"]
    cfg = suite.runs[1].config
    assert cfg["k_train"] == 2 and cfg["sample"]["k"] == 2
    assert cfg["retriever"] == {"name": "exact", "build": {"metric": "cosine", "batch_size": 1024}, "query": {},
                                "train_neighbours": 16}
    assert cfg["head"]["cond_dropout"] > 0 and cfg["train"]["lr"] > 0  # defaults filled in, so cache keys see them
    from rdmbench.tasks.generation import neighbour_k

    assert {neighbour_k(r.spec) for r in suite.runs} == {16}  # every run's own k, floored at 16


def test_zip_and_seeds(tmp_path):
    doc = yaml.safe_load(TINY_BASE)
    doc["sweep"] = {"zip": {"k_train": [1, 2], "sample.guidance_scale": [1.0, 2.0]}}
    doc["seeds"] = [0, 1]
    suite = load_suite(write_suite(tmp_path, yaml.safe_dump(doc)))
    assert [(r.config["k_train"], r.config["sample"]["guidance_scale"], r.config["seed"]) for r in suite.runs] == [
        (1, 1.0, 0), (1, 1.0, 1), (2, 2.0, 0), (2, 2.0, 1)]


def test_unknown_key_is_named_with_allowed_values(tmp_path):
    msg = mutate(tmp_path, lambda d: d["base"]["sample"].update(nmu=3))
    assert f"s.yaml:{line_of(tmp_path / 's.yaml', 'nmu:')}: base.sample.nmu: unknown key 'nmu'" in msg
    assert "num" in msg


def test_unknown_plugin_suggests_closest(tmp_path):
    msg = mutate(tmp_path, lambda d: d["base"]["retriever"].update(name="exakt"))
    assert "base.retriever.name: unknown retriever 'exakt'" in msg and "did you mean 'exact'" in msg
    assert "allowed: exact, faiss" in msg and "build.name" not in msg


def test_suggestions_ignore_case(tmp_path):
    msg = mutate(tmp_path, lambda d: d["base"]["retriever"].update(name="hnswlib", build={"M": 16}))
    assert "base.retriever.build.M: unknown key 'M' (did you mean 'm'?" in msg


@pytest.mark.parametrize("value", ["64", True, 64.0])
def test_strings_booleans_and_floats_are_not_integers(tmp_path, value):
    msg = mutate(tmp_path, lambda d: d["base"]["train"].update(steps=value))
    assert "base.train.steps: Input should be a valid integer" in msg
    msg = mutate(tmp_path, lambda d: d["base"]["sample"].update(num=value))
    assert "base.sample.num: Input should be a valid integer" in msg


def test_an_int_where_a_float_is_expected_and_a_list_for_a_tuple_are_fine(tmp_path):
    doc = yaml.safe_load(TINY_BASE)
    doc["base"]["sample"]["guidance_scale"] = 2  # YAML writes 2 for 2.0
    doc["base"]["head"]["block_out_channels"] = [8, 16]
    suite = load_suite(write_suite(tmp_path, yaml.safe_dump(doc)))
    assert suite.runs[0].config["sample"]["guidance_scale"] == 2.0


def test_errors_in_sweep_values_are_reported_where_they_were_written(tmp_path):
    msg = mutate(tmp_path, lambda d: d["sweep"]["grid"].update({"train.steps": ["3"]}))
    at = line_of(tmp_path / "s.yaml", "train.steps:")
    assert f"s.yaml:{at}: sweep.grid.train.steps: Input should be a valid integer (got '3')" in msg
    assert "base." not in msg
    msg = mutate(tmp_path, lambda d: d["sweep"].update(groups=[{"retriever.name": ["exact"]},
                                                               {"retriever.name": ["exakt"]}]))
    at = [i for i, t in enumerate((tmp_path / "s.yaml").read_text().splitlines(), 1) if "retriever.name:" in t][1]
    assert f"s.yaml:{at}: sweep.groups[1].retriever.name: unknown retriever 'exakt'" in msg
    msg = mutate(tmp_path, lambda d: d.update(profiles={"cpu": {"sweep": {"zip": {"sample.num": [0]}}}}))
    assert "profiles.cpu.sweep.zip.sample.num: Input should be greater than 0" in msg
    msg = mutate(tmp_path, lambda d: d.update(profiles={"cpu": {"train.batch_size": "8"}}))
    assert "profiles.cpu.train.batch_size: Input should be a valid integer" in msg
    msg = mutate(tmp_path, lambda d: d.update(seeds=["1"]))
    assert "seeds: Input should be a valid integer (got '1')" in msg


def test_unknown_plugin_argument(tmp_path):
    msg = mutate(tmp_path, lambda d: d["base"]["head"].update(channels=[1]))
    assert "base.head.channels: unknown key 'channels'" in msg and "block_out_channels" in msg


def test_wrong_type(tmp_path):
    msg = mutate(tmp_path, lambda d: d["base"]["head"].update(cond_dropout="many"))
    assert "base.head.cond_dropout" in msg and "number" in msg


def test_wrong_choice_lists_allowed(tmp_path):
    msg = mutate(tmp_path, lambda d: d["base"]["sample"].update(mode={"name": "textual"}))
    assert "base.sample.mode" in msg and "unconditional" in msg and "held-out" in msg


def test_k_larger_than_database(tmp_path):
    msg = mutate(tmp_path, lambda d: d["sweep"]["grid"].update(k_train=[2, 500]))
    assert "sweep.grid.k_train: k = 500 is larger than the database (100 entries)" in msg


def test_unknown_top_level_key_and_profile(tmp_path):
    msg = mutate(tmp_path, lambda d: d.update(sweeps={}))
    assert "unknown top-level key 'sweeps'" in msg and "did you mean 'sweep'" in msg
    path = write_suite(tmp_path, TINY_BASE, "ok.yaml")
    with pytest.raises(ConfigError, match="unknown profile 'gpu'"):
        load_suite(path, "gpu")


def test_include_merges_and_detects_cycles(tmp_path):
    write_suite(tmp_path, TINY_BASE, "base.yaml")
    child = write_suite(tmp_path, "include: base.yaml\nsuite: child\nsweep: {grid: {k_train: [1]}}\n", "child.yaml")
    suite = load_suite(child)
    assert suite.name == "child" and [r.config["k_train"] for r in suite.runs] == [1]
    write_suite(tmp_path, "include: b.yaml\n", "a.yaml")
    write_suite(tmp_path, "include: a.yaml\n", "b.yaml")
    with pytest.raises(ConfigError, match="include cycle"):
        load_suite(tmp_path / "a.yaml")


def test_profile_overrides_and_own_sweep(tmp_path):
    doc = yaml.safe_load(TINY_BASE)
    doc["profiles"] = {"cpu": {}, "smoke": {"train.steps": 1, "sweep": {"grid": {"k_train": [1]}}}}
    path = write_suite(tmp_path, yaml.safe_dump(doc))
    smoke = load_suite(path, "smoke")
    assert [r.config["train"]["steps"] for r in smoke.runs] == [1]
    assert len(load_suite(path).runs) == 2


def test_missing_suite_file(tmp_path):
    with pytest.raises(ConfigError, match="suite file not found"):
        load_suite(tmp_path / "nope.yaml")


@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_shipped_suites_validate(profile):
    for path in sorted((REPO / "suites").glob("*.yaml")):
        suite = load_suite(path, profile)
        assert suite.runs, path


def test_unknown_metric_is_named_by_its_key(tmp_path):
    msg = mutate(tmp_path, lambda d: d["base"]["metrics"]["use"].update({"fdi": {}}))
    assert "base.metrics.use.fdi: unknown metric 'fdi' (did you mean 'fid'?" in msg


def test_setting_a_plugin_name_switches_the_plugin():
    """`head.name: rarm` (a sweep value, a profile key or --set) replaces the rdm spec by rarm's defaults,
    keeping what is set beside it in the same layer, whatever the order the keys were written in."""
    from rdmbench.suite import set_all, set_dotted

    config = {"head": {"name": "rdm", "block_out_channels": [8, 16], "cond_dropout": 0.2}}
    set_all(config, {"head.n_layer": 2, "head.name": "rarm"})
    assert config["head"] == {"name": "rarm", "n_layer": 2}
    set_dotted(config, "head.name", "rarm")  # the same plugin: arguments kept
    assert config["head"] == {"name": "rarm", "n_layer": 2}


def test_a_switched_head_trains_and_samples_with_its_own_defaults_except_what_is_written_beside_it(tmp_path):
    """The base's train: and sample.head settings are rdm's; a run that switches to rarm starts from rarm's
    (Head.train_defaults, its sample's defaults), keeping only the companion keys the same sweep writes."""
    from rdmbench_plugins.heads.rarm import RARMHead

    doc = yaml.safe_load(TINY_BASE)
    doc["base"]["train"]["lr"] = 0.005
    doc["sweep"] = {"zip": {"head.name": ["rdm", "rarm", "rarm"], "label": ["a", "b", "c"],
                            "train.steps": [3, 3, 5]},
                    "grid": {"k_train": [2]}}
    doc["base"]["first_stage"] = {"name": "autoencoder", "kind": "vq", "block_out_channels": [8, 16],
                                  "norm_num_groups": 8, "latent_channels": 4, "num_vq_embeddings": 16}
    runs = load_suite(write_suite(tmp_path, yaml.safe_dump(doc))).runs
    rdm, rarm, rarm5 = (r.config for r in runs)
    assert rdm["train"]["lr"] == 0.005 and rdm["train"]["batch_size"] == 8 and rdm["sample"]["head"]["steps"] == 2
    defaults = RARMHead.train_defaults
    assert rarm["train"] == {**asdict(defaults), "steps": 3} and rarm["sample"]["head"] == {"top_k": None,
                                                                                             "temperature": 1.0}
    assert rarm5["train"]["steps"] == 5 and rarm5["train"]["lr"] == defaults.lr


def test_a_plugin_spec_swept_in_a_grid_shows_its_name(tmp_path):
    """No companion can pair with a grid axis, so a swept plugin spec there is named in the run id."""
    doc = yaml.safe_load(TINY_BASE)
    doc["sweep"] = {"grid": {"k_train": [0, 2],
                             "retriever": [{"name": "exact"}, {"name": "hnswlib", "build": {"m": 8}}]}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    suite = load_suite(path)
    assert [r.run_id for r in suite.runs] == ["k_train=0_name=exact_seed=0", "k_train=0_name=hnswlib_seed=0",
                                              "k_train=2_name=exact_seed=0", "k_train=2_name=hnswlib_seed=0"]
    assert suite.runs[1].shown["retriever.name"] == "hnswlib"


# -- include: what the including file replaces, and where an error was written -------------------------------

def test_a_sweep_written_in_a_profile_replaces_the_included_one_whole(tmp_path):
    """An outside suite that zips only its own encoders over suites/retrievers.yaml gets exactly its own vector
    sets: not the included profile's data, database and benchmark lists, nor its retriever groups."""
    mine = write_suite(tmp_path, f"""
suite: mine
include: {REPO / 'suites' / 'retrievers.yaml'}
profiles:
  smoke:
    sweep:
      zip:
        encoder: [{{name: pixels}}, {{name: efficientnet-lite, variant: lite0, image_size: 32}}]
        benchmark.label: [raw, lite0]
""")
    runs = load_suite(mine, "smoke").runs
    assert [r.config["encoder"]["name"] for r in runs] == ["pixels", "efficientnet-lite"]
    base = load_suite(REPO / "suites" / "retrievers.yaml", "cpu").runs[0].config  # the included base
    for run in runs:
        assert run.config["data"] == base["data"] and run.config["database"] == base["database"]
        assert run.config["benchmark"]["metric"] == "cosine" and run.config["retriever"]["name"] == "exact"
    top = write_suite(tmp_path, f"include: {REPO / 'suites' / 'retrievers.yaml'}\nsweep: {{grid: {{seed: [0]}}}}\n",
                      "top.yaml")
    assert len(load_suite(top).runs) == 1  # a top-level sweep replaces the included one too


def test_switching_a_plugin_drops_the_included_profiles_arguments_for_it(tmp_path):
    """k_train.yaml's smoke profile sets encoder.image_size (an EfficientNet argument): a suite that includes it
    and switches to pixels validates, and keeps the arguments its own profile writes for the new plugin."""
    path = write_suite(tmp_path, f"""
include: {REPO / 'suites' / 'k_train.yaml'}
base:
  encoder: {{name: pixels}}
profiles:
  smoke: {{encoder.batch_size: 7}}
""")
    runs = load_suite(path, "smoke").runs
    assert all(r.config["encoder"] == {"name": "pixels", "batch_size": 7, "normalize": False} for r in runs), \
        runs[0].config["encoder"]
    assert all(r.config["train"]["steps"] == 10 for r in runs)  # the rest of the included profile stays
    one_profile = write_suite(tmp_path, f"include: {REPO / 'suites' / 'k_train.yaml'}\n"
                                        "profiles: {smoke: {encoder.name: pixels}}\n", "one.yaml")
    assert load_suite(one_profile, "smoke").runs[0].config["encoder"]["name"] == "pixels"


def test_an_error_names_the_file_and_line_where_the_value_was_written(tmp_path):
    """A value of an included file is reported there, with its line; one of the suite at its own line."""
    path = write_suite(tmp_path, f"""
include: {REPO / 'suites' / 'k_train.yaml'}
base:
  sample: {{num: 10}}
profiles:
  smoke:
    train.steps: "3"
""")
    with pytest.raises(ConfigError) as err:
        load_suite(path, "smoke")
    assert str(err.value).startswith(f"{path}:7: profiles.smoke.train.steps: ")
    with pytest.raises(ConfigError) as err:
        load_suite(path)  # kid's subset of 250, written in the included base, against sample.num 10
    line = next(i for i, text in enumerate((REPO / "suites/base/fashion_mnist.yaml").read_text().splitlines(), 1)
                if "kid: {subset_size: 250}" in text)
    assert f"suites/base/fashion_mnist.yaml:{line}: base.metrics.use.kid.subset_size: " in str(err.value)


def test_a_constructor_error_for_a_set_value_is_reported_at_the_set_key():
    with pytest.raises(ConfigError) as err:
        load_suite(REPO / "suites" / "k_train.yaml", "smoke", sets=["encoder.image_size=-1"])
    assert str(err.value) == f"{REPO / 'suites' / 'k_train.yaml'}: --set encoder.image_size: image_size must be " \
                             "positive (encoder 'efficientnet-lite')"


@pytest.mark.parametrize("report,key,expected", [
    ({"x": "k_trian"}, "report.x", "unknown report x 'k_trian' (did you mean 'k_train'?"),
    ({"hue": "seeds"}, "report.hue", "unknown report hue 'seeds' (did you mean 'seed'?"),
    ({"metrics": ["fid", "presicion"]}, "report.metrics[1]", "unknown column 'presicion' (did you mean 'precision'?"),
    ({"metrics": "fid"}, "report.metrics", "expected a list of columns"),
])
def test_report_wishes_name_swept_keys_and_columns_the_runs_write(tmp_path, report, key, expected):
    msg = mutate(tmp_path, lambda d: d.update(report=report))
    lines = (tmp_path / "s.yaml").read_text().splitlines()
    start = lines.index("report:")
    written = "presicion" if "[" in key else key.split(".")[1] + ":"  # a list item is found at its own line
    at = next(i for i, t in enumerate(lines[start:], start + 1) if written in t)
    assert f"s.yaml:{at}: {key}: {expected}" in msg
    ok = yaml.safe_load(TINY_BASE)
    ok["report"] = {"x": "k_train", "hue": "seed", "metrics": ["fid", "precision", "wall_s"]}
    assert load_suite(write_suite(tmp_path, yaml.safe_dump(ok), "ok.yaml")).report == ok["report"]


@pytest.mark.parametrize("name", ["../../elsewhere/x", "/tmp/abs", "a/b", "..", 3])
def test_a_suite_name_is_one_folder_under_results(tmp_path, name):
    msg = mutate(tmp_path, lambda d: d.update(suite=name))
    assert f"s.yaml:{line_of(tmp_path / 's.yaml', 'suite:')}: suite: " in msg and "one folder name" in msg


def test_the_format_version_is_checked_and_recorded(tmp_path):
    msg = mutate(tmp_path, lambda d: d.update(version=2))
    assert "version: unknown suite format version 2; allowed: 1" in msg
    suite = load_suite(write_suite(tmp_path, TINY_BASE))
    assert suite.version == 1
    from rdmbench import runner
    from rdmbench.cache import StageCache, read_json
    from rdmbench.pipeline import Pipeline
    from rdmbench.progress import Progress
    from rdmbench.registry import get_registry

    pipeline = Pipeline(StageCache(tmp_path / "cache", False), get_registry(), Progress(), "cpu")
    runner.begin(suite, tmp_path / "out", pipeline)
    assert read_json(tmp_path / "out" / "suite.json")["version"] == 1
