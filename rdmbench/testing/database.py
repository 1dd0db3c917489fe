"""The database contract: what every retrieval database passes (``rdmbench.api.Database``).

    from rdmbench.testing import DatabaseContract

    class TestMyDatabase(DatabaseContract):
        spec = {"name": "my-database", "source": {"name": "synthetic-shapes", "image_size": 16}}
        train_from = {"name": "synthetic-shapes", "image_size": 16}   # X comes from D's own source
        expected_excluded = 40                                         # and so D must drop X's 40 images

X, the training set D is built against, is every ``train_every``-th image of the ``train_split`` of the
``train_from`` dataset, with read-only arrays as the pipeline's memory-mapped X has. Draw it from the
database's own source where you can, so that excluding X has something to do.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rdmbench.api import ImageSet, SplitView
from rdmbench.registry import get_registry
from rdmbench.testing.common import assert_cheap, assert_missing_library_explained, assert_registered


class DatabaseContract:
    """What every database plugin promises. Subclass it and set, as class attributes:

    - ``spec``: the database spec (``{"name": ..., **constructor arguments}``), small enough to build in a second;
    - ``train_from``, ``train_split``, ``train_every``: the dataset spec, split and stride X is drawn from;
    - ``expected_excluded``: how many images of X the build must drop (its ``excluded``); None: not checked;
    - ``disjoint``: False only for a spec that opts out of excluding X (``exclude_train: false``);
    - ``seeded``: False for a database that draws nothing at random (then seeds 0 and 1 may agree);
    - ``labelled``: False for a database whose images have no labels;
    - ``library``: the module the plugin wraps, hidden in one test (None: needs no extra library).

    Checked: it is registered and described; ``build(X, seed)`` gives a non-empty ``ImageSet`` or
    ``SplitView`` of uint8 NHWC images whose streamed chunks (several, as the pipeline reads them) equal
    its whole; labels are int64 and index class names; D holds no image of X (by content) and says how many
    it dropped (``excluded``, where it has one); two instances built with one seed give the same D and
    another seed another; ``size_hint()`` and ``image_shape()``, where they answer, tell the truth; X's arrays
    are only read; the constructor reads no file and takes under 0.1 s; ``fingerprint`` is JSON and stable.
    """

    spec: dict = {}
    train_from: dict = {"name": "synthetic-shapes", "image_size": 16, "train_size": 120, "test_size": 40}
    train_split = "train"
    train_every = 3
    expected_excluded: int | None = None
    disjoint = True
    seeded = True
    labelled = True
    library: str | None = None

    def make(self):
        """A fresh database instance."""
        registry = get_registry()
        return registry.create("database", registry.validate("database", self.spec))

    def train(self) -> ImageSet:
        """X: read-only, as the pipeline hands over its memory-mapped training set."""
        registry = get_registry()
        source = registry.create("dataset", registry.validate("dataset", self.train_from)).load(self.train_split)
        x = source.subset(np.arange(0, len(source), self.train_every))
        x.images.setflags(write=False)
        if x.labels is not None:
            x.labels.setflags(write=False)
        return x

    @staticmethod
    def whole(built: ImageSet | SplitView) -> ImageSet:
        return built.load() if isinstance(built, SplitView) else built

    @pytest.fixture(scope="class")
    def built(self):
        """(database, what build returned, D loaded whole, X), built with seed 0."""
        x, database = self.train(), self.make()
        out = database.build(x, seed=0)
        return database, out, self.whole(out), x

    def test_registered_and_described(self):
        assert_registered("database", type(self.make()))

    def test_build_gives_images(self, built):
        _, out, d, _ = built
        assert isinstance(out, (ImageSet, SplitView)), f"build returned {type(out).__name__}: an ImageSet or SplitView"
        assert len(out) == len(d) > 0, "the database built no images"
        assert d.images.dtype == np.uint8 and d.images.ndim == 4 and d.images.shape[-1] in (1, 3), (
            f"images must be uint8 (N, H, W, 1 or 3), got {d.images.dtype} {d.images.shape}")

    def test_streamed_chunks_equal_the_whole(self, built, monkeypatch):
        from rdmbench import chunks

        _, out, d, _ = built
        if not isinstance(out, SplitView):
            pytest.skip("build returns an ImageSet: the pipeline stores it whole")
        monkeypatch.setattr(chunks, "CHUNK_BYTES", 7 * d.images[0].nbytes)  # 7 rows a chunk: several chunks
        streamed = list(out.chunks())
        assert len(streamed) >= min(len(d), 3) and all(c.class_names == d.class_names for c in streamed)
        assert np.array_equal(np.concatenate([c.images for c in streamed]), d.images)
        if d.labels is not None:
            assert np.array_equal(np.concatenate([c.labels for c in streamed]), d.labels)

    def test_labels_index_class_names(self, built):
        _, _, d, _ = built
        if d.labels is None:
            assert not self.labelled, "D has no labels (set labelled = False if none are meant)"
            return
        assert d.labels.dtype == np.int64 and d.labels.shape == (len(d),), "labels must be int64 (N,)"
        assert d.class_names and all(isinstance(c, str) for c in d.class_names), "class names are strings"
        assert 0 <= d.labels.min() and d.labels.max() < len(d.class_names), (
            f"labels {d.labels.min()}..{d.labels.max()} for {len(d.class_names)} class names")

    def test_disjoint_from_x(self, built):
        from rdmbench.overlap import overlap_count

        database, _, d, x = built
        if self.disjoint:
            shared = overlap_count(x.images, d.images)
            assert shared == 0, f"D holds {shared} images of X: D and X must be disjoint by content"
        excluded = getattr(database, "excluded", None)
        assert excluded is None or (isinstance(excluded, int) and excluded >= 0), (
            f"excluded (images of X dropped, stored beside every row) must be a count, got {excluded!r}")
        if self.expected_excluded is not None:
            assert excluded == self.expected_excluded, f"excluded = {excluded}, expected {self.expected_excluded}"

    def test_deterministic_for_a_seed(self, built):
        _, _, d, x = built
        again = self.whole(self.make().build(x, seed=0))  # a fresh instance: nothing may depend on hidden state
        assert np.array_equal(again.images, d.images), "one seed must build the same D"
        assert (again.labels is None) == (d.labels is None)
        if d.labels is not None:
            assert np.array_equal(again.labels, d.labels) and again.class_names == d.class_names
        if self.seeded:
            other = self.whole(self.make().build(x, seed=1))
            assert not np.array_equal(other.images, d.images), "seed 1 built the same D as seed 0 (seeded = True)"

    def test_size_hint_and_image_shape(self, built):
        _, _, d, _ = built
        database = self.make()  # asked before any build, as the suite's checks do
        hint, shape = database.size_hint(), database.image_shape()
        assert hint is None or hint == len(d), f"size_hint() = {hint}, but build gave {len(d)} images"
        assert shape is None or tuple(shape) == d.images.shape[1:], (
            f"image_shape() = {shape}, but build gave {d.images.shape[1:]}")

    def test_constructor_is_cheap(self):
        self.make()  # warm: the registry's entry points and argument models are loaded once per process
        assert_cheap(self.make)

    def test_fingerprint_is_json_and_stable(self):
        first = self.make().fingerprint()
        json.dumps(first)
        assert self.make().fingerprint() == first, "two instances of one spec must key the cache alike"

    def test_missing_library_says_how_to_install(self):
        if self.library is None:
            pytest.skip("needs no extra library")
        cls = type(self.make())
        assert_missing_library_explained(self.library, "database", cls, cls.name)
