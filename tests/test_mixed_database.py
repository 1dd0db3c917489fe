"""The `mixed` database: parts concatenated, labels offset, shapes checked, seeded, streamed."""

from __future__ import annotations

import numpy as np
import pytest

from rdmbench import chunks
from rdmbench.errors import ConfigError
from rdmbench.overlap import overlap_count
from rdmbench.registry import get_registry
from rdmbench_plugins.databases.mixed import Mixed
from rdmbench_plugins.datasets.synthetic_shapes import SyntheticShapes

SHAPES = {"name": "synthetic-shapes", "train_size": 200, "test_size": 20}
DIGITS = {"name": "sklearn-digits"}


def part(dataset: dict, size: int | None) -> dict:
    return {"name": "from-dataset", "dataset": dataset, "size": size}


@pytest.fixture(scope="module")
def x():
    return SyntheticShapes(train_size=200, test_size=20).load("train").subset(np.arange(0, 200, 4))


def test_labels_are_offset_and_class_names_prefixed(x):
    database = Mixed(parts=[part(SHAPES, 60), part(DIGITS, 30)])
    assert database.size_hint() == 90
    d = database.build(x, seed=0).load()
    assert d.images.shape == (90, 28, 28, 1) and overlap_count(x.images, d.images) == 0
    assert d.class_names[0] == "synthetic-shapes/circle" and d.class_names[10] == "sklearn-digits/digit 0"
    assert len(d.class_names) == 20
    assert d.labels[:60].max() < 10 and d.labels[60:].min() >= 10
    assert Mixed(parts=[part(SHAPES, None), part(DIGITS, 30)]).size_hint() is None


def test_seeded_with_a_seed_per_part(x):
    twice = Mixed(parts=[part(SHAPES, 40), part(SHAPES, 40)])
    d = twice.build(x, seed=0).load()
    assert d.class_names[0] == "synthetic-shapes[0]/circle" and d.class_names[10] == "synthetic-shapes[1]/circle"
    assert not np.array_equal(d.images[:40], d.images[40:])  # the same source, not the same draw
    assert np.array_equal(d.images, twice.build(x, seed=0).load().images)
    assert not np.array_equal(d.images, twice.build(x, seed=1).load().images)


def test_streamed_chunks_and_any_order_match_the_whole(x, monkeypatch):
    view = Mixed(parts=[part(SHAPES, 30), part(DIGITS, 20)]).build(x, seed=3)
    whole = view.load()
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 7 * 28 * 28)  # chunks of 7 rows, some across the parts' border
    streamed = list(view.chunks())
    assert len(streamed) > 2 and all(c.class_names == whole.class_names for c in streamed)
    assert np.array_equal(np.concatenate([c.images for c in streamed]), whole.images)
    assert np.array_equal(np.concatenate([c.labels for c in streamed]), whole.labels)
    pick = np.array([45, 2, 31, 29])
    got = view.dataset.read(view.split, pick)
    assert np.array_equal(got.images, whole.images[pick]) and np.array_equal(got.labels, whole.labels[pick])


def test_parts_of_different_shapes_are_one_error_naming_them(x):
    database = Mixed(parts=[part({**SHAPES, "image_size": 16}, 20), part(DIGITS, 20)])
    with pytest.raises(ConfigError) as err:
        database.build(x, seed=0)
    message = str(err.value)
    assert err.value.key == "parts" and "\n" not in message
    assert "parts[0] (synthetic-shapes) 16x16x1" in message and "parts[1] (sklearn-digits) 28x28x1" in message


def test_nested_errors_are_keyed_and_the_fingerprint_lists_resolved_parts():
    registry = get_registry()
    with pytest.raises(ConfigError) as err:
        registry.validate("database", {"name": "mixed", "parts": [part(SHAPES, 5), part({"name": "sklearn-digit"}, 5)]},
                          key="database")
    assert err.value.key == "database.parts[1].dataset.name" and "did you mean 'sklearn-digits'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        test_split = {**part(DIGITS, 5), "split": "test"}
        registry.validate("database", {"name": "mixed", "parts": [part(SHAPES, 5), test_split]}, key="database")
    assert err.value.key == "database.parts[1].split" and "allowed: train" in str(err.value)
    with pytest.raises(ConfigError, match="at least two"):
        Mixed(parts=[part(SHAPES, 5)])
    fingerprint = Mixed(parts=[part(SHAPES, 5), part(DIGITS, 5)]).fingerprint()["parts"]
    assert [p["spec"]["name"] for p in fingerprint] == ["from-dataset", "from-dataset"]
    assert fingerprint[1]["dataset"]["spec"] == {"name": "sklearn-digits", "image_size": 28, "channels": 1}
