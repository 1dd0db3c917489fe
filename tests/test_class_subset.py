"""The `class-subset` dataset: kept rows, relabelled in the order given, names or indices, keyed errors, streamed."""

from __future__ import annotations

import numpy as np
import pytest

from rdmbench import chunks
from rdmbench.api import Dataset, ImageSet, SplitView
from rdmbench.errors import ConfigError
from rdmbench.registry import get_registry
from rdmbench_plugins.datasets.class_subset import ClassSubset
from rdmbench_plugins.datasets.synthetic_shapes import SyntheticShapes

from conftest import register_for_test

SHAPES = {"name": "synthetic-shapes", "train_size": 200, "test_size": 50}


@pytest.mark.parametrize("split", ["train", "test"])
def test_keeps_the_classes_rows_relabelled_in_the_order_given(split):
    inner = SyntheticShapes(train_size=200, test_size=50).load(split)
    subset = ClassSubset(dataset=SHAPES, classes=[6, 0, 9])
    rows = np.flatnonzero(np.isin(inner.labels, [6, 0, 9]))
    assert subset.splits == ("train", "test") and subset.count(split) == len(rows) > 0
    got = subset.load(split)
    assert got.class_names == subset.class_names == ("ring", "circle", "dot")
    assert np.array_equal(got.images, inner.images[rows])  # the inner order, kept
    assert np.array_equal(got.labels, np.array([[6, 0, 9].index(c) for c in inner.labels[rows]]))
    assert sorted(np.unique(got.labels)) == [0, 1, 2]


def test_names_and_indices_give_the_same_subset():
    by_name = ClassSubset(dataset=SHAPES, classes=["ring", "circle", "dot"]).load("train")
    mixed = ClassSubset(dataset=SHAPES, classes=[6, "circle", 9]).load("train")
    by_index = ClassSubset(dataset=SHAPES, classes=[6, 0, 9]).load("train")
    for other in (mixed, by_index):
        assert np.array_equal(by_name.images, other.images) and np.array_equal(by_name.labels, other.labels)
        assert by_name.class_names == other.class_names


def test_streamed_chunks_and_any_order_match_the_whole(monkeypatch):
    subset = ClassSubset(dataset=SHAPES, classes=[1, 2, 3, 4])
    whole = subset.load("train")
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 9 * 28 * 28)
    streamed = list(SplitView(subset, "train", np.arange(subset.count("train"))).chunks())
    assert len(streamed) > 2
    assert np.array_equal(np.concatenate([c.images for c in streamed]), whole.images)
    assert np.array_equal(np.concatenate([c.labels for c in streamed]), whole.labels)
    pick = np.array([40, 3, 17, 3])
    got = subset.read("train", pick)
    assert np.array_equal(got.images, whole.images[pick]) and np.array_equal(got.labels, whole.labels[pick])


@pytest.mark.parametrize("classes, says", [
    ([], "list at least one class"),
    ([10], "has no class 10 (allowed: 0..9 or circle, square"),
    (["hexagon"], "has no class 'hexagon' (allowed: 0..9 or circle, square"),
    ([2, 2], "lists 'triangle' twice"),
    ([0, "circle"], "lists 'circle' twice"),
])
def test_bad_classes_are_one_line_keyed_classes_before_any_image_work(classes, says, monkeypatch):
    monkeypatch.setattr(SyntheticShapes, "load", lambda *a: pytest.fail("read images to check the classes"))
    with pytest.raises(ConfigError) as err:
        get_registry().validate("dataset", {"name": "class-subset", "dataset": SHAPES, "classes": classes},
                                key="data.dataset")
    assert err.value.key == "data.dataset.classes" and says in str(err.value) and "\n" not in str(err.value)


def test_nested_errors_are_keyed_and_the_fingerprint_is_the_resolved_inner_spec():
    registry = get_registry()
    with pytest.raises(ConfigError) as err:
        registry.validate("dataset", {"name": "class-subset", "dataset": {"name": "synthetic-shape"}, "classes": [0]},
                          key="data.dataset")
    assert err.value.key == "data.dataset.dataset.name" and "did you mean 'synthetic-shapes'" in str(err.value)
    inside = {"name": "from-dataset", "dataset": {"name": "class-subset", "dataset": SHAPES, "classes": [0, 99]}}
    with pytest.raises(ConfigError) as err:
        registry.validate("database", inside, key="database")
    assert err.value.key == "database.dataset.classes"
    fingerprint = ClassSubset(dataset={"name": "synthetic-shapes"}, classes=[0]).fingerprint()["dataset"]
    assert fingerprint["spec"] == {"name": "synthetic-shapes", "image_size": 28, "train_size": 2000,
                                   "test_size": 500, "seed": 0, "channels": 1}


# -- an inner dataset that names no classes without reading (like image-folder) -------------------------
class Unnamed(Dataset):
    """Test fixture: labels 0..2 and no class names, or no labels at all."""

    name = "test-unnamed"

    def __init__(self, labelled: bool = True):
        self.labelled = labelled

    def load(self, split):
        base = SyntheticShapes(train_size=30, test_size=10).load(split)
        labels = base.labels % 3 if self.labelled else None
        return ImageSet(base.images, labels)


@pytest.fixture
def unnamed(request, monkeypatch):
    register_for_test(request, monkeypatch, "rdmbench_datasets", Unnamed)
    return {"name": "test-unnamed"}


def test_without_class_names_indices_are_checked_against_the_labels(unnamed):
    subset = ClassSubset(dataset=unnamed, classes=[2, 0])
    assert subset.class_names is None  # unknown until read
    subset.check()
    assert subset.class_names == ("2", "0")
    got = subset.load("test")
    inner = Unnamed().load("test")
    assert np.array_equal(got.labels, np.where(inner.labels[np.isin(inner.labels, [2, 0])] == 2, 0, 1))
    with pytest.raises(ConfigError, match=r"has no class 3 \(allowed: 0..2"):
        ClassSubset(dataset=unnamed, classes=[3]).check()
    with pytest.raises(ConfigError, match="lists a class twice"):
        ClassSubset(dataset=unnamed, classes=[1, 1])
    with pytest.raises(ConfigError, match="no labels to choose classes by") as err:
        ClassSubset(dataset={**unnamed, "labelled": False}, classes=[0]).check()
    assert err.value.key == "dataset"
