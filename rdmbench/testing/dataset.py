"""The dataset contract: what every dataset passes (``rdmbench.api.Dataset``).

    from rdmbench.testing import DatasetContract

    class TestMyDataset(DatasetContract):
        spec = {"name": "my-dataset", "train_size": 300}

A dataset that reads files writes them in ``prepare(root)`` and overrides ``make(root)`` to point at
them (``tests/test_datasets.py``'s image-folder test is an example).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rdmbench.registry import get_registry
from rdmbench.testing.common import assert_cheap, assert_missing_library_explained, assert_registered


class DatasetContract:
    """What every dataset plugin promises. Subclass it and set, as class attributes:

    - ``spec``: the dataset spec (``{"name": ..., **constructor arguments}``), small enough to load in a
      second; or override ``make(root)`` (and ``prepare(root)`` to write the files it reads);
    - ``library``: the module the plugin wraps, hidden in one test (None: needs no extra library).

    Checked: it is registered and described; every split loads, non-empty, as uint8 NHWC images of one
    shape (1 or 3 channels) with int64 labels indexing class names that are the same in every split; a
    fresh instance loads the same arrays (no hidden state); ``count`` and ``read`` (what the pipeline
    streams through, in any order, and for no rows) agree with ``load``; the constructor reads no file and
    takes under 0.1 s (the registry builds datasets while validating a suite); ``fingerprint`` is JSON and
    the same for two instances.
    """

    spec: dict = {}
    library: str | None = None

    def prepare(self, root: Path) -> None:
        """Write any files the dataset reads (runs once per class, outside the constructor check)."""

    def make(self, root: Path):
        """A fresh dataset instance (``root``: the folder ``prepare`` wrote)."""
        registry = get_registry()
        return registry.create("dataset", registry.validate("dataset", self.spec))

    @pytest.fixture(scope="class")
    def root(self, tmp_path_factory) -> Path:
        root = tmp_path_factory.mktemp(type(self).__name__)
        self.prepare(root)
        return root

    @pytest.fixture(scope="class")
    def loaded(self, root) -> dict:
        dataset = self.make(root)
        return {split: dataset.load(split) for split in dataset.splits}

    def test_registered_and_described(self, root):
        assert_registered("dataset", type(self.make(root)))

    def test_each_split_loads(self, root, loaded):
        dataset = self.make(root)
        assert dataset.splits and set(loaded) == set(dataset.splits)
        empty = [split for split, s in loaded.items() if len(s) == 0]
        assert not empty, f"splits {empty} are empty"

    def test_images_are_uint8_nhwc(self, loaded):
        shapes = {s.images.shape[1:] for s in loaded.values()}
        assert len(shapes) == 1, f"every split has the same image shape, got {shapes}"
        for split, s in loaded.items():
            assert s.images.dtype == np.uint8 and s.images.ndim == 4 and s.images.shape[-1] in (1, 3), (
                f"split {split!r}: images must be uint8 (N, H, W, 1 or 3), got {s.images.dtype} {s.images.shape}")

    def test_labels_index_class_names(self, loaded):
        names = {s.class_names for s in loaded.values()}
        assert len(names) == 1, "labels mean the same in every split: give every split the same class names"
        for split, s in loaded.items():
            assert s.labels is not None and s.labels.dtype == np.int64 and s.labels.shape == (len(s),), (
                f"split {split!r}: labels must be int64 (N,)")
            assert s.class_names and all(isinstance(c, str) for c in s.class_names), "class names are strings"
            assert 0 <= s.labels.min() and s.labels.max() < len(s.class_names), (
                f"split {split!r}: labels {s.labels.min()}..{s.labels.max()} for {len(s.class_names)} class names")

    def test_deterministic(self, root, loaded):
        again = self.make(root)  # a fresh instance: nothing may depend on hidden state
        for split, first in loaded.items():
            second = again.load(split)
            assert np.array_equal(first.images, second.images) and np.array_equal(first.labels, second.labels), (
                f"split {split!r} loads differently the second time")

    def test_count_and_read_agree_with_load(self, root, loaded):
        """What the pipeline streams through (count, read in chunks) is what load returns."""
        dataset = self.make(root)
        for split, whole in loaded.items():
            assert dataset.count(split) == len(whole)
            pick = np.array([len(whole) - 1, 0, len(whole) // 2])  # any order
            part = dataset.read(split, pick)
            assert np.array_equal(part.images, whole.images[pick]) and np.array_equal(part.labels, whole.labels[pick])
            assert part.class_names == whole.class_names
            assert dataset.read(split, pick[:0]).images.shape == (0, *whole.images.shape[1:])

    def test_constructor_is_cheap(self, root):
        self.make(root)  # warm: the registry's entry points and argument models are loaded once per process
        assert_cheap(lambda: self.make(root))

    def test_fingerprint_is_json_and_stable(self, root):
        first = self.make(root).fingerprint()
        json.dumps(first)
        assert self.make(root).fingerprint() == first, "two instances of one spec must key the cache alike"

    def test_missing_library_says_how_to_install(self, root):
        if self.library is None:
            pytest.skip("needs no extra library")
        cls = type(self.make(root))
        assert_missing_library_explained(self.library, "dataset", cls, cls.name)
