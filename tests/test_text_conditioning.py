"""Text- and class-conditional sampling of image-only models (issue 10): the prompt lists, the text modes
through the sampling-mode contract, the lit joint space, the image–text metrics, and a tiny run of each
condition end to end."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from conftest import TINY_BASE
from rdmbench.api import ImageSet, MetricInputs, TextInputs
from rdmbench.errors import ConfigError
from rdmbench.prompts import expand
from rdmbench.registry import get_registry
from rdmbench.testing import SamplingModeContract

# -- the modes through the shared contract -----------------------------------------------------------


class TestTextAlone(SamplingModeContract):
    name = "text"
    args = {"prompts": ["a photo of a {class}.", "the letter a"]}
    seeded = False


class TestTextPlusNeighbours(SamplingModeContract):
    name = "text"
    args = {"condition": "text+neighbours"}
    seeded = False


class TestTextNeighbours(SamplingModeContract):
    name = "text"
    args = {"condition": "neighbours", "prompts": [{"text": "something round", "class": "b"}]}
    seeded = False


class TestClassPool(SamplingModeContract):
    name = "class-pool"
    args = {"pool": 8}
    seeded = False


def test_text_queries_cycle_through_prompts_with_their_classes():
    _, q = TestTextAlone().queries(num=9)
    assert q.texts[:4] == ("a photo of a a.", "a photo of a b.", "a photo of a c.", "the letter a")
    assert q.condition == "query" and q.images is None and q.source == "prompts"
    # "the letter a" names class "a" as a whole word: every prompt is labelled
    np.testing.assert_array_equal(q.labels, [0, 1, 2, 0, 0, 1, 2, 0, 0])
    np.testing.assert_array_equal(q.embeddings[0], q.embeddings[4])  # the same prompt, the same vector


def test_class_pool_queries_are_the_class_prompt_with_a_pool():
    _, q = TestClassPool().queries(num=6)
    assert q.texts[:3] == ("An image of a a.", "An image of a b.", "An image of a c.")
    assert q.pool == 8 and q.condition == "neighbours"
    np.testing.assert_array_equal(q.labels, [0, 1, 2, 0, 1, 2])


def test_text_alone_samples_with_one_embedding_and_refuses_another_k():
    mode = TestTextAlone().make()
    assert mode.default_k(8) == 1 and mode.check_k(1, 8) is None
    assert "drop sample.k" in mode.check_k(4, 8)
    assert "k_train must be >= 1" in mode.check_k(1, 0)
    assert TestTextPlusNeighbours().make().default_k(8) == 8


def test_pool_smaller_than_k_is_refused():
    assert "pool (l = 8) is smaller than sample.k = 16" in TestClassPool().make().check_k(16, 4)


def test_unknown_class_names_the_closest_one():
    mode = TestTextAlone().make(classes=["circel"])
    assert "unknown class 'circel' (did you mean 'circle'?" in mode.check_classes(("circle", "square"))
    pool = TestClassPool().make(classes=["Sqare"])
    assert "did you mean 'square'?" in pool.check_classes(("circle", "square"))


def test_empty_and_blank_prompts_are_refused(tmp_path):
    registry = get_registry()
    with pytest.raises(ConfigError, match="the prompt list is empty"):
        registry.create("sampling_mode", {"name": "text", "prompts": []})
    with pytest.raises(ConfigError, match="blank"):
        registry.create("sampling_mode", {"name": "text", "prompts": ["  "]})
    empty = tmp_path / "prompts.txt"
    empty.write_text("# only a comment\n\n")
    with pytest.raises(ConfigError, match="holds no prompt"):
        registry.create("sampling_mode", {"name": "text", "prompts_file": str(empty)})


def test_prompts_file_lines_are_the_prompts(tmp_path):
    listed = tmp_path / "prompts.txt"
    listed.write_text("# prompts\nAn image of a {class}.\n\na thing\n")
    mode = get_registry().create("sampling_mode", {"name": "text", "prompts_file": str(listed)})
    assert mode.prompts == ["An image of a {class}.", "a thing"]
    assert mode.fingerprint() == {"prompts": mode.prompts}


def test_expand_labels_templates_named_classes_and_mentions():
    names = ("T-shirt/top", "Sneaker", "Ankle boot", "boot")
    texts, labels = expand(["a {class}", {"text": "a running shoe", "class": "sneaker"}, "an ankle boot, worn"],
                           names, ["Sneaker", "boot"])
    assert texts == ["a Sneaker", "a boot", "a running shoe", "an ankle boot, worn"]
    np.testing.assert_array_equal(labels, [1, 3, 1, 2])  # "ankle boot" is not also a "boot"
    assert expand(["a shoe"], names)[1] is None  # names no class: the run has no class labels
    with pytest.raises(ConfigError, match="names no classes"):
        expand(["a {class}"], None)


# -- the lit joint space ---------------------------------------------------------------------------


def _labelled_images(n: int = 120, size: int = 16) -> ImageSet:
    """Three classes a pixel tower separates: bright left half, bright right half, bright centre."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 3
    images = rng.integers(0, 60, (n, size, size, 1))
    for i, c in enumerate(labels):
        cols = [slice(0, size // 2), slice(size // 2, size), slice(size // 4, 3 * size // 4)][c]
        images[i, :, cols] += 150
    return ImageSet(images.astype(np.uint8), labels, ("left", "right", "centre"))


@pytest.fixture(scope="module")
def lit():
    enc = get_registry().create("encoder", {"name": "lit", "image": {"name": "pixels"}, "dim": 32, "steps": 60,
                                            "batch_size": 64, "lr": 0.01})
    report = enc.fit(_labelled_images(), seed=0)
    return enc, report


def test_lit_fit_reports_its_held_out_quality(lit):
    _, report = lit
    assert set(report) >= {"image_to_text", "text_to_image", "image_to_text_seen_templates", "final_loss"}
    assert report["held_out_images"] == 12 and report["fit_images"] == 108
    # three separable classes and captions naming them: far above the 1/3 of chance on unseen templates
    assert report["image_to_text"] > 0.8 and report["text_to_image"] > 0.8


def test_lit_holding_out_a_class_fits_on_the_others_alone():
    # the class never fit (images or captions) shows in what the fit reports, and in nothing else it used
    images = _labelled_images()
    spec = {"name": "lit", "image": {"name": "pixels"}, "dim": 32, "steps": 60, "batch_size": 64, "lr": 0.01}
    enc = get_registry().create("encoder", {**spec, "held_out_classes": ["centre"]})
    report = enc.fit(images, seed=0)
    held = np.random.default_rng(0).permutation(120)[:12]  # the held-out images, drawn first (lit's seed 0)
    assert report["fit_images"] == 108 - (40 - np.sum(images.labels[held] == 2))  # no centre image is fit on
    assert 0.0 <= report["image_to_text_unseen_classes"] <= 1.0
    assert "never shown centre" in enc.identity()
    assert enc.check_classes(("left", "right", "centre")) is None
    assert "'middle', which the dataset does not have (allowed: left, right, centre)" in \
        get_registry().create("encoder", {**spec, "held_out_classes": ["middle"]}).check_classes(
            ("left", "right", "centre"))
    assert "at least two classes" in get_registry().create("encoder", {**spec, "held_out_classes": ["left", "right"]}
                                                           ).check_classes(("left", "right", "centre"))


def test_lit_embeds_images_and_text_in_one_space(lit):
    enc, _ = lit
    images = enc.features(_labelled_images(6).images)["embedding"]
    text = enc.encode_text(["An image of a left.", "An image of a right.", "An image of a centre."])
    assert images.shape == (6, 32) and text.shape == (3, 32) and text.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1, rtol=1e-5)
    assert ((images @ text.T).argmax(1) == np.arange(6) % 3).all()


def test_lit_save_load_round_trip(lit, tmp_path):
    enc, _ = lit
    enc.save(tmp_path)
    again = get_registry().create("encoder", {"name": "lit", "image": {"name": "pixels"}, "dim": 32})
    again.load(tmp_path)
    images = _labelled_images(4).images
    np.testing.assert_array_equal(again.features(images)["embedding"], enc.features(images)["embedding"])
    np.testing.assert_array_equal(again.encode_text(["a left"]), enc.encode_text(["a left"]))


def test_lit_refuses_unlabelled_data_and_unfit_use():
    enc = get_registry().create("encoder", {"name": "lit", "image": {"name": "pixels"}})
    with pytest.raises(RuntimeError, match="fit\\(\\) or load\\(\\)"):
        enc.encode_text(["a"])
    images = _labelled_images(9)
    with pytest.raises(Exception, match="no labels"):
        enc.fit(ImageSet(images.images), seed=0)


def test_lit_identity_says_what_it_is_not():
    enc = get_registry().create("encoder", {"name": "lit"})
    assert "not CLIP" in enc.identity() and "all-MiniLM-L6-v2" in enc.identity()
    assert "efficientnet-lite0" in enc.identity()
    with pytest.raises(ConfigError, match="frozen image encoder"):
        get_registry().create("encoder", {"name": "lit", "image": {"name": "lit"}})
    with pytest.raises(ConfigError, match="\\{class\\}"):
        get_registry().create("encoder", {"name": "lit", "templates": ["a photo"]})


# -- the image–text metrics ------------------------------------------------------------------------


def _text_inputs(shuffle: bool, labels: bool = True) -> MetricInputs:
    rng = np.random.default_rng(0)
    prompts = np.eye(4, 8)  # four prompts, orthogonal
    of = np.arange(40) % 4
    generated = prompts[rng.permutation(of) if shuffle else of] + rng.normal(0, 0.1, (40, 8))
    reference = prompts[np.arange(20) % 4] + rng.normal(0, 0.1, (20, 8))
    arrays = {"generated": generated, "reference": reference, "prompts": prompts}
    text = TextInputs(arrays.__getitem__, ("p0", "p1", "p2", "p3"), of, np.arange(4) if labels else None,
                      "a test space", {"image_to_text": 0.9})
    return MetricInputs(lambda role, output: None, "fe", np.arange(20) % 4, of if labels else None, 0, text)


def test_text_agreement_rewards_samples_that_match_their_prompts():
    metric = get_registry().create("metric", {"name": "text-agreement"})
    good, bad = metric.compute(_text_inputs(False)), metric.compute(_text_inputs(True))
    assert good["text_match"] == 1.0 and bad["text_match"] < 0.5
    assert good["text_similarity"] > 0.9 > bad["text_similarity"]
    assert good["text_similarity_reference"] > 0.9 and good["text_space"] == "a test space"
    assert good["text_space_image_to_text"] == 0.9
    assert 0.2 < good["text_match_chance"] < 0.3  # four equally used classes
    unlabelled = metric.compute(_text_inputs(False, labels=False))
    assert unlabelled["text_match"] == 1.0 and unlabelled["text_similarity_reference"] is None


def test_text_agreement_resampler_agrees_with_compute():
    metric = get_registry().create("metric", {"name": "text-agreement"})
    inputs = _text_inputs(True)
    values = metric.compute(inputs)
    whole = metric.resampler(inputs)(np.arange(40)[None])
    for col in metric.interval_columns:
        assert whole[col][0] == pytest.approx(values[col])


def test_few_sample_frechet_distance_equals_torch_fidelity():
    from rdmbench_plugins.metrics.fid import frechet_distance_few

    rng = np.random.default_rng(2)
    fid = get_registry().create("metric", {"name": "fid"})
    for n_gen, n_ref, d in ((12, 40, 64), (30, 20, 8), (50, 300, 128)):  # fewer and more vectors than dimensions
        gen, ref = rng.normal(size=(n_gen, d)) + 0.5, rng.normal(size=(n_ref, d)) * 1.3
        arrays = {"generated": gen, "reference": ref}
        theirs = fid.compute(MetricInputs(lambda role, o, arrays=arrays: arrays[role], "fe", None, None, 0))["fid"]
        assert frechet_distance_few(gen, ref) == pytest.approx(theirs, rel=1e-6)


def test_per_class_is_the_class_mean_of_fid_and_precision_recall():
    rng = np.random.default_rng(1)
    gen, ref = rng.normal(size=(30, 6)), rng.normal(size=(45, 6))
    gen[10:20] += 3  # class 1's samples are far from class 1's reference
    q, r = np.arange(30) // 10, np.arange(45) // 15
    arrays = {"generated": gen, "reference": ref}
    inputs = MetricInputs(lambda role, output: arrays[role], "fe", r, q, 0)
    registry = get_registry()
    values = registry.create("metric", {"name": "per-class"}).compute(inputs)
    fid = registry.create("metric", {"name": "fid"})
    per = [fid.compute(MetricInputs(lambda role, o, c=c: arrays[role][(q if role == "generated" else r) == c],
                                    "fe", None, None, 0))["fid"] for c in range(3)]
    assert values["class_fid"] == pytest.approx(np.mean(per), rel=1e-6)
    assert values["class_samples"] == 10 and 0 <= values["class_precision"] <= 1


# -- end to end on the tiny synthetic base ---------------------------------------------------------

TEXT_SPACE = {"name": "lit", "image": {"name": "pixels", "normalize": True}, "steps": 30, "seed": 1}


def _text_suite(tmp_path, sweep: dict, sample: dict | None = None) -> str:
    doc = yaml.safe_load(TINY_BASE)
    doc["base"]["encoder"] = {"name": "lit", "image": {"name": "pixels"}, "steps": 30, "dim": 16}
    doc["base"]["sample"].update(sample or {})
    doc["base"]["metrics"]["text_space"] = TEXT_SPACE
    doc["base"]["metrics"]["use"].update({"text-agreement": {}, "per-class": {"min_samples": 2, "neighborhood": 1}})
    doc["sweep"] = sweep
    path = tmp_path / "text.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def test_each_condition_end_to_end(tmp_path):
    import pandas as pd

    from rdmbench.cli import main

    modes = [{"name": "text", "condition": c} for c in ("text", "text+neighbours", "neighbours")]
    modes += [{"name": "class-pool", "pool": 5}, {"name": "text", "condition": "text+neighbours"}, {"name": "held-out"}]
    # text + k - 1 neighbours at k = 1 (k_train = 1 in text_to_image) is the text alone; held-out image queries
    # are no prompts, and their row says the text metrics were skipped
    suite = _text_suite(tmp_path, {"zip": {"label": ["text", "text+nn", "nn", "pool", "text+0", "images"],
                                           "sample.mode": modes, "sample.k": [None, None, None, None, 1, None]}})
    assert main(["run", suite, "--cache", str(tmp_path / "c"), "--results", str(tmp_path / "r")]) == 0
    rows = pd.read_csv(tmp_path / "r" / "results.csv").set_index("label")
    assert (rows["status"] == "ok").all()
    images = rows.loc["images"]
    assert "text-agreement" in images["skipped_metrics"] and "not prompts" in images["skipped_metrics"]
    rows = rows.drop("images")
    assert (rows["queries"].str.startswith(("prompts", "class pools"))).all()
    for col in ("class_agreement", "text_match", "text_similarity", "class_fid", "encoder_image_to_text"):
        assert rows[col].notna().all(), col
    assert rows["text_space"].str.contains("pixels").all() and rows["encoder"].str.contains("lit").all()
    runs = tmp_path / "r" / "runs"
    assert all((runs / rid / "prompts.png").is_file() for rid in rows["run_id"])
    # what conditioned each sample: nothing retrieved for the text alone, k - 1 or k neighbours otherwise
    for label, width in (("text", None), ("text+nn", 1), ("nn", 2), ("pool", 2), ("text+0", None)):
        stages = yaml.safe_load((runs / rows.loc[label, "run_id"] / "stages.json").read_text())
        path = next(tmp_path / "c" / "samples" / s["key"] for s in stages if s["stage"] == "samples")
        ids = path / "neighbour_ids.npy"
        assert (np.load(ids).shape[1] if ids.exists() else None) == width, label
    pool = np.load(next(p for p in (tmp_path / "c" / "samples").iterdir()
                        if (p / "info.json").read_text().count('"pool": 5')) / "neighbour_ids.npy")
    assert len({tuple(r) for r in pool[::3]}) > 1  # one class's samples draw different neighbours from its pool
