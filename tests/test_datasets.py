"""Dataset plugins, the from-dataset database, content overlap and `data fetch`.

Every dataset passes the public contract (``rdmbench.testing.DatasetContract``, the from-dataset database
``DatabaseContract`` in test_databases.py); the rest checks what the contract cannot: where Fashion-MNIST
is looked for and what the error says, IDX parsing, the download path (with a stand-in for the network),
and that the database built from a dataset never contains an image of X.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rdmbench.api import Dataset, ImageSet
from rdmbench.errors import ConfigError, DataNotFound, RdmbenchError
from rdmbench.fetch import fetch as fetch_dataset
from rdmbench.overlap import content_hashes, overlap_count
from rdmbench.registry import get_registry
from rdmbench.testing import DatasetContract
from rdmbench_plugins.databases.from_dataset import FromDataset
from rdmbench_plugins.datasets import fashion_mnist as fm
from rdmbench_plugins.datasets.image_folder import ImageFolder
from rdmbench_plugins.datasets.skimage_patches import PHOTOS, SkimagePatches
from rdmbench_plugins.datasets.sklearn_digits import SklearnDigits
from rdmbench_plugins.datasets.synthetic_shapes import SyntheticShapes

from conftest import needs_fashion_mnist, register_for_test

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
needs_debian = needs_fashion_mnist  # skipped without Debian's files locally, a failure in CI (conftest)


class TestSyntheticShapes(DatasetContract):
    spec = {"name": "synthetic-shapes", "train_size": 300, "test_size": 100}


class TestSyntheticShapesColour(DatasetContract):
    spec = {"name": "synthetic-shapes", "image_size": 16, "train_size": 50, "test_size": 20, "channels": 3, "seed": 3}


@needs_debian
class TestFashionMNIST(DatasetContract):
    spec = {"name": "fashion-mnist"}


class TestClassSubset(DatasetContract):
    spec = {"name": "class-subset", "dataset": {"name": "synthetic-shapes", "train_size": 100, "test_size": 40},
            "classes": [3, 0]}


class TestConcat(DatasetContract):
    spec = {"name": "concat", "parts": [{"name": "synthetic-shapes", "train_size": 60, "test_size": 20},
                                        {"name": "sklearn-digits"}]}


def test_concat_offsets_labels_and_refuses_what_cannot_be_joined():
    from rdmbench.errors import ConfigError
    from rdmbench.registry import get_registry

    registry = get_registry()
    shapes = {"name": "synthetic-shapes", "train_size": 30, "test_size": 10}
    both = registry.create("dataset", {"name": "concat", "parts": [shapes, {"name": "sklearn-digits"}]})
    n_shapes = len(SyntheticShapes(train_size=30, test_size=10).class_names)
    rows = both.read("train", np.array([0, 30, 31]))  # the first shape, then the first two digits
    digits = SklearnDigits().read("train", np.array([0, 1]))
    np.testing.assert_array_equal(rows.images[1:], digits.images)
    np.testing.assert_array_equal(rows.labels[1:], digits.labels + n_shapes)
    assert rows.class_names[n_shapes] == "sklearn-digits/digit 0" and rows.class_names[0].startswith("synthetic-shapes/")
    assert both.count("train") == 30 + SklearnDigits().count("train")
    with pytest.raises(ConfigError, match="at least two"):
        registry.create("dataset", {"name": "concat", "parts": [shapes]})
    odd = registry.create("dataset", {"name": "concat", "parts": [shapes, {"name": "sklearn-digits", "image_size": 16}]})
    with pytest.raises(ConfigError, match="one shape"):
        odd.read("train", np.array([0, 30]))


class TestImageFolder(DatasetContract):
    def prepare(self, root):
        rng = np.random.default_rng(0)
        # test lacks `dog`: labels must still index the classes of every split
        for split, classes in (("train", ("cat", "dog", "eel")), ("test", ("cat", "eel"))):
            for c in classes:
                (root / split / c).mkdir(parents=True)
                for i, (w, h) in enumerate(((20, 12), (9, 16), (12, 12))):
                    ext = "png" if i != 1 else "PNG"  # extensions are case-insensitive
                    pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                    Image.fromarray(pixels).save(root / split / c / f"{i}.{ext}")
        (root / "train" / "cat" / "notes.txt").write_text("not an image")

    def make(self, root):
        return ImageFolder(root=str(root), image_size=8)

    def test_layout(self, root, loaded):
        assert loaded["train"].class_names == ("cat", "dog", "eel")
        assert loaded["train"].images.shape == (9, 8, 8, 3)
        assert loaded["test"].labels.tolist() == [0, 0, 0, 2, 2, 2]
        gray = ImageFolder(root=str(root), image_size=6, channels=1, max_per_class=1).load("train")
        assert gray.images.shape == (3, 6, 6, 1) and gray.labels.tolist() == [0, 1, 2]

    def test_read_decodes_only_the_rows_asked_for(self, tmp_path):
        (tmp_path / "train" / "cat").mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((6, 6, 3), 40 * i, np.uint8)).save(tmp_path / "train" / "cat" / f"{i}.png")
        (tmp_path / "train" / "cat" / "1.png").write_bytes(b"not a png")
        dataset = ImageFolder(root=str(tmp_path), image_size=4, splits=("train",))
        assert dataset.count("train") == 3  # listing decodes nothing
        assert dataset.read("train", np.array([2, 0])).images[:, 0, 0, 0].tolist() == [80, 0]
        with pytest.raises(RdmbenchError, match="cannot read .*1.png"):
            dataset.read("train", np.array([1]))

    def test_missing_or_empty(self, tmp_path):
        with pytest.raises(DataNotFound, match="expected layout: <root>/<split>/<class>"):
            ImageFolder(root=str(tmp_path / "nowhere")).load("train")
        (tmp_path / "train" / "cat").mkdir(parents=True)
        with pytest.raises(DataNotFound, match="no images under"):
            ImageFolder(root=str(tmp_path)).load("train")


class TestSklearnDigits(DatasetContract):
    spec = {"name": "sklearn-digits"}

    def test_the_bundled_digits_scaled_to_uint8(self, loaded):
        import sklearn
        from sklearn.datasets import load_digits

        from rdmbench_plugins.datasets import sklearn_digits

        train, digits = loaded["train"], load_digits()
        assert train.images.shape == (1797, 28, 28, 1) and np.array_equal(train.labels, digits.target)
        assert train.images.max() == 255 and train.class_names[3] == "digit 3"
        assert SklearnDigits(image_size=8, channels=3).load("train").images[5, :, :, 2].tolist() == \
            np.round(digits.images[5] * 255 / 16).astype(int).tolist()  # 8x8: no resampling, just the scale
        fingerprint = SklearnDigits().fingerprint()
        assert fingerprint["sklearn"] == sklearn.__version__
        assert fingerprint["sha256"] == hashlib.sha256(sklearn_digits._data_file().read_bytes()).hexdigest()


class TestSkimagePatches(DatasetContract):
    spec = {"name": "skimage-patches", "sizes": {"train": 280, "test": 30}, "seed": 1}

    def test_balanced_labels_name_photos_and_seeds_differ(self, loaded):
        train = loaded["train"]
        assert train.class_names == tuple(p for p in PHOTOS if p not in ("motorcycle", "retina"))
        assert np.bincount(train.labels).tolist() == [20] * 14
        other = SkimagePatches(sizes={"train": 280}, seed=2).load("train")
        assert not np.array_equal(other.images, train.images)
        colour = SkimagePatches(sizes={"train": 20}, photos=("chelsea",), channels=3).load("train").images
        assert colour.shape == (20, 28, 28, 3) and (colour[..., 0] != colour[..., 2]).any()

    def test_bad_arguments_are_keyed_errors(self):
        registry = get_registry()
        for spec, key in (({"photos": ["camra"]}, "photos.0"), ({"crop_size": [200, 300]}, "crop_size"),
                          ({"crop_size": [64, 32]}, "crop_size"), ({"sizes": {"train": 0}}, "sizes.train")):
            with pytest.raises(ConfigError) as err:
                registry.validate("dataset", {"name": "skimage-patches", **spec})
            assert err.value.key == key, (spec, str(err.value))
        assert set(SkimagePatches(photos=("moon", "text")).fingerprint()["sha256"]) == {"moon", "text"}


# --- Fashion-MNIST: finding, parsing, fetching ---------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fake_fashion(folder: Path, n_train: int = 5, n_test: int = 3) -> dict[str, np.ndarray]:
    """Tiny IDX files, mixing gzip and raw so both are read."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for i, (stem, array) in enumerate(arrays.items()):
        data = idx_bytes(array)
        if i % 2:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return arrays


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Search only under tmp_path: no system folder, env var or user cache of this machine."""
    monkeypatch.setattr(fm, "SYSTEM_DIRS", (tmp_path / "system",))
    monkeypatch.setenv("RDMBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


def test_not_found_lists_every_place_and_the_fixes(isolated):
    empty = isolated / "empty"
    empty.mkdir()
    write_fake_fashion(isolated / "data" / "fashion-mnist")
    (isolated / "data" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()  # 3 of 4 is not enough
    with pytest.raises(DataNotFound) as err:
        fm.FashionMNIST().load("train")
    message = str(err.value)
    for place in (isolated / "data" / "fashion-mnist", isolated / "system",
                  isolated / "xdg" / "rdmbench" / "fashion-mnist"):
        assert str(place) in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "rdmbench data fetch fashion-mnist" in message
    assert "root:" in message


def test_search_order(isolated):
    write_fake_fashion(isolated / "xdg" / "rdmbench" / "fashion-mnist", n_train=2)
    assert len(fm.FashionMNIST(allow_unofficial=True).load("train")) == 2  # the user cache is the last resort
    write_fake_fashion(isolated / "data" / "fashion-mnist", n_train=4)
    assert len(fm.FashionMNIST(allow_unofficial=True).load("train")) == 4  # $RDMBENCH_DATA comes before it
    write_fake_fashion(isolated / "mine", n_train=6)
    assert len(fm.FashionMNIST(root=str(isolated / "mine"), allow_unofficial=True).load("train")) == 6  # root first


def test_an_explicit_root_is_the_only_place_looked_in(isolated):
    """Asking for one folder and silently reading another would be a fallback nobody sees."""
    write_fake_fashion(isolated / "data" / "fashion-mnist")
    empty = isolated / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFound) as err:
        fm.FashionMNIST(root=str(empty), allow_unofficial=True).load("train")
    assert str(empty) in str(err.value) and str(isolated / "data") not in str(err.value)


def test_unofficial_content_is_an_error_unless_allowed(isolated):
    write_fake_fashion(isolated / "mine")
    for step in ("load", "fingerprint"):
        dataset = fm.FashionMNIST(root=str(isolated / "mine"))
        with pytest.raises(DataNotFound, match=r"has content sha256 [0-9a-f]{64}, not the official release's .*"
                                               r"allow_unofficial: true"):
            dataset.load("train") if step == "load" else dataset.fingerprint()
    assert len(fm.FashionMNIST(root=str(isolated / "mine"), allow_unofficial=True).load("train")) == 5


def test_gz_and_raw_idx_both_parse(isolated, caplog):
    arrays = write_fake_fashion(isolated / "mine")
    dataset = fm.FashionMNIST(root=str(isolated / "mine"), allow_unofficial=True)
    with caplog.at_level(logging.WARNING):
        train, test = dataset.load("train"), dataset.load("test")
    assert np.array_equal(train.images[..., 0], arrays["train-images-idx3-ubyte"])  # raw
    assert np.array_equal(train.labels, arrays["train-labels-idx1-ubyte"])  # gzip
    assert np.array_equal(test.images[..., 0], arrays["t10k-images-idx3-ubyte"])  # raw
    assert np.array_equal(test.labels, arrays["t10k-labels-idx1-ubyte"])  # gzip
    assert set(dataset.fingerprint()["sha256"]) == set(fm.CONTENT_SHA256)


def test_read_idx_checks_sizes():
    data = idx_bytes(np.zeros((2, 3), np.uint8))
    assert fm.read_idx(data).shape == (2, 3)
    with pytest.raises(ValueError, match="implies"):
        fm.read_idx(data[:-1])
    with pytest.raises(ValueError, match="not an IDX file"):
        fm.read_idx(b"\x1f\x8b\x08\x00" + data)


@needs_debian
def test_fashion_mnist_matches_the_release():
    dataset = fm.FashionMNIST(root=str(DEBIAN))
    test = dataset.load("test")
    assert len(test) == 10_000 and np.bincount(test.labels).tolist() == [1000] * 10
    assert test.class_names[0] == "T-shirt/top" and test.class_names[9] == "Ankle boot"
    assert dataset.fingerprint() == {"sha256": dict(sorted(fm.CONTENT_SHA256.items()))}


class FakeMirror:
    """Stands in for urllib.request.urlopen, serving given bytes per file name."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests = files, []

    def __call__(self, url, timeout=None):
        self.requests.append(url)
        return io.BytesIO(self.files[url.rsplit("/", 1)[-1]])


@needs_debian
def test_fetch_downloads_checks_and_skips_present_files(tmp_path, monkeypatch):
    mirror = FakeMirror({f"{stem}.gz": (DEBIAN / f"{stem}.gz").read_bytes() for stem in fm.CONTENT_SHA256})
    monkeypatch.setattr(urllib.request, "urlopen", mirror)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    dest = fm.fetch()
    assert dest == tmp_path / "xdg" / "rdmbench" / "fashion-mnist"
    assert sorted(mirror.requests) == sorted(fm.OFFICIAL_MIRROR + f"{s}.gz" for s in fm.CONTENT_SHA256)
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{s}.gz" for s in fm.CONTENT_SHA256)  # no temp files left
    assert fm.FashionMNIST(root=str(dest)).fingerprint()["sha256"] == fm.CONTENT_SHA256
    mirror.requests.clear()
    assert fetch_dataset("fashion-mnist", None) == dest  # through the CLI's dispatcher
    assert mirror.requests == []  # present and verified: nothing downloaded again


def test_fetch_rejects_wrong_content(tmp_path, monkeypatch):
    bad = gzip.compress(idx_bytes(np.zeros((1, 28, 28), np.uint8)))
    monkeypatch.setattr(urllib.request, "urlopen", FakeMirror({f"{s}.gz": bad for s in fm.CONTENT_SHA256}))
    with pytest.raises(DataNotFound, match="expected"):
        fm.fetch(tmp_path / "dest")
    assert not (tmp_path / "dest").exists() or not any((tmp_path / "dest").iterdir())


def test_fetch_without_network_says_what_to_do(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataNotFound) as err:
        fm.fetch(tmp_path / "dest")
    message = str(err.value)
    assert "no network" in message and "apt-get install dataset-fashion-mnist" in message
    assert str(tmp_path / "dest") in message and fm.OFFICIAL_MIRROR in message


def test_fetch_dispatch(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "fetch", lambda dest: Path(dest))
    assert fetch_dataset("fashion-mnist", str(tmp_path)) == tmp_path
    with pytest.raises(ConfigError, match="has no download.*fashion-mnist"):
        fetch_dataset("synthetic-shapes", None)
    with pytest.raises(ConfigError, match="did you mean 'fashion-mnist'"):
        fetch_dataset("fashion-mnst", None)


# --- content overlap and the from-dataset database -------------------------------------------------


def test_content_hashes_and_overlap_count():
    images = SyntheticShapes(train_size=50, test_size=10).load("train").images
    hashes = content_hashes(images)
    assert hashes.shape == (50,) and hashes.dtype == np.dtype("S16") and len(set(hashes.tolist())) == 50
    assert np.array_equal(content_hashes(images.copy()), hashes)
    assert overlap_count(images[:10], images[5:20]) == 5
    assert overlap_count(hashes[:10], images[5:20]) == 5  # hashes and images mix
    assert overlap_count(images[:10], images[10:]) == 0
    assert overlap_count(images[:0], images) == 0
    same_bytes = np.zeros((2, 4, 12, 1), np.uint8)
    assert overlap_count(same_bytes, same_bytes.reshape(2, 4, 4, 3)) == 0  # the shape is part of the content


SHAPES = {"name": "synthetic-shapes", "train_size": 300, "test_size": 100}


def test_from_dataset_is_disjoint_from_x_drawn_from_the_same_split():
    source = SyntheticShapes(train_size=300, test_size=100).load("train")
    x = source.subset(np.arange(0, 300, 3))  # X: every third image of the same split
    database = FromDataset(dataset=SHAPES, split="train")
    assert database.size_hint() is None
    d = database.build(x, seed=0).load()
    assert overlap_count(x.images, d.images) == 0
    assert database.excluded == 100 and len(d) == 200
    assert d.class_names == source.class_names
    again = FromDataset(dataset=SHAPES, split="train", size=50)
    assert again.size_hint() == 50
    first = again.build(x, seed=0).load()
    assert np.array_equal(first.images, again.build(x, seed=0).load().images)  # seeded
    assert not np.array_equal(first.images, again.build(x, seed=1).load().images)
    keep_all = FromDataset(dataset=SHAPES, split="train", exclude_train=False).build(x, seed=0)
    assert len(keep_all) == 300


class DuplicatesFixture(Dataset):
    """Shapes whose train split holds two extra copies of image 3 (and test one more)."""

    name = "test-duplicates"

    def __init__(self):
        pass

    def load(self, split):
        base = SyntheticShapes(train_size=20, test_size=5).load(split)
        images = np.concatenate([base.images, base.images[[3, 3]]]) if split == "train" else base.images
        labels = np.concatenate([base.labels, base.labels[[3, 3]]]) if split == "train" else base.labels
        return ImageSet(images, labels, base.class_names)


@pytest.fixture
def duplicates_dataset(request, monkeypatch):
    """Register the fixture dataset for one test, leaving the process-wide registry as it was."""
    register_for_test(request, monkeypatch, "rdmbench_datasets", DuplicatesFixture)
    return {"name": "test-duplicates"}


def test_from_dataset_drops_duplicates_of_x_inside_the_source(duplicates_dataset):
    source = DuplicatesFixture().load("train")
    x = source.subset(np.array([3, 7]))
    database = FromDataset(dataset=duplicates_dataset, split="train")
    d = database.build(x, seed=0).load()
    assert database.excluded == 4  # images 3 and 7, and the two copies of 3 at the end
    assert len(d) == 18 and overlap_count(x.images, d.images) == 0


def test_from_dataset_too_big_says_how_many_are_available():
    x = SyntheticShapes(train_size=300, test_size=100).load("train").subset(np.arange(40))
    with pytest.raises(ConfigError) as err:
        FromDataset(dataset=SHAPES, split="train", size=280).build(x, seed=0)
    assert err.value.key == "size" and "only 260" in str(err.value) and "excluding 40" in str(err.value)


def test_from_dataset_config_errors_are_keyed():
    registry = get_registry()
    with pytest.raises(ConfigError) as err:
        registry.validate("database", {"name": "from-dataset", "dataset": {"name": "synthetic-shape"}}, key="database")
    assert err.value.key == "database.dataset.name" and "synthetic-shapes" in str(err.value)
    with pytest.raises(ConfigError) as err:
        registry.validate("database", {"name": "from-dataset", "dataset": {**SHAPES, "train_size": 0}}, key="database")
    assert err.value.key == "database.dataset.train_size"
    with pytest.raises(ConfigError) as err:
        registry.validate("database", {"name": "from-dataset", "dataset": SHAPES, "split": "val"}, key="database")
    assert err.value.key == "database.split" and "train, test" in str(err.value)
    resolved = registry.validate("database", {"name": "from-dataset", "dataset": SHAPES, "size": 10})
    assert resolved["size"] == 10 and resolved["exclude_train"] is True


@needs_debian
def test_from_dataset_fingerprint_delegates():
    database = FromDataset(dataset={"name": "fashion-mnist"}, split="test")
    fingerprint = database.fingerprint()["dataset"]
    assert fingerprint["sha256"] == fm.FashionMNIST().fingerprint()["sha256"]
    resolved = get_registry().validate("dataset", {"name": "fashion-mnist"})
    assert fingerprint["spec"] == resolved and resolved["root"] is None  # defaults resolved


def test_from_dataset_fingerprint_resolves_the_nested_spec():
    explicit = FromDataset(dataset={**SHAPES, "seed": 0, "image_size": 28}).fingerprint()
    assert explicit == FromDataset(dataset=SHAPES).fingerprint()
    assert explicit["dataset"]["version"] == SyntheticShapes.version


# --- splits are checked before any work -----------------------------------------------------------


def test_a_split_the_dataset_lacks_is_a_config_error_at_validation(tmp_path):
    from conftest import TINY_BASE, write_suite
    from rdmbench.suite import load_suite

    imagenet = "{name: image-folder, root: /nowhere/imagenet, image_size: 16"  # validation reads no files
    text = TINY_BASE + f"""profiles:
  cpu: {{}}
  val: {{data.reference_split: val}}
  imagenet: {{data.dataset: {imagenet}}}, data.reference_split: val}}
  imagenet-val: {{data.dataset: {imagenet}, splits: [train, val]}}, data.reference_split: val}}
"""
    path = write_suite(tmp_path, text)
    for profile, dataset in (("val", "synthetic-shapes"), ("imagenet", "image-folder")):
        with pytest.raises(ConfigError) as err:
            load_suite(path, profile)
        assert err.value.key.endswith("data.reference_split"), err.value.key
        assert f"dataset {dataset!r} has no split 'val'; allowed: train, test" in str(err.value)
    assert {r.config["data"]["reference_split"] for r in load_suite(path, "imagenet-val").runs} == {"val"}
