"""The `patches` database: seeded crops resized to the image size, labels kept, size checked early, streamed;
and a tiny run with a class-subset X and a patches D over a class-subset."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from rdmbench import chunks
from rdmbench.api import Dataset, ImageSet
from rdmbench.cache import StageCache, load_array, read_json
from rdmbench.errors import ConfigError
from rdmbench.pipeline import Pipeline
from rdmbench.progress import Progress
from rdmbench.registry import get_registry
from rdmbench.suite import load_suite
from rdmbench_plugins.databases.from_dataset import FromDataset
from rdmbench_plugins.databases.patches import Patches

from conftest import TINY_BASE, register_for_test

EMPTY_X = ImageSet(np.zeros((0, 28, 28, 3), np.uint8))
STEP = 9  # ramp step: 27 * 9 = 243 fits a byte


class Ramps(Dataset):
    """Test fixture: channel 0 is 9 x row, channel 1 is 9 x column, channel 2 the image's number, so a
    crop's position, size and source image can be read off its pixels; labels are the number mod 3."""

    name = "test-ramps"
    splits = ("train",)
    class_names = ("a", "b", "c")

    def load(self, split):
        grid = np.arange(28, dtype=np.uint8) * STEP
        images = np.empty((40, 28, 28, 3), np.uint8)
        images[..., 0], images[..., 1] = grid[:, None], grid[None, :]
        images[..., 2] = np.arange(40, dtype=np.uint8)[:, None, None]
        return ImageSet(images, np.arange(40) % 3, self.class_names)


@pytest.fixture
def ramps(request, monkeypatch):
    register_for_test(request, monkeypatch, "rdmbench_datasets", Ramps)
    return {"name": "from-dataset", "dataset": {"name": "test-ramps"}, "size": 30}


def crop_boxes(images: np.ndarray) -> np.ndarray:
    """(top, left, rows spanned, columns spanned) of each crop, read from the ramps (bilinear upsampling keeps
    the border pixels' values exactly, so min and max are the crop's first and last row / column)."""
    rows, cols = images[..., 0].astype(int) // STEP, images[..., 1].astype(int) // STEP
    return np.stack([rows.min((1, 2)), cols.min((1, 2)), rows.max((1, 2)) - rows.min((1, 2)) + 1,
                     cols.max((1, 2)) - cols.min((1, 2)) + 1], axis=1)


def test_crops_of_each_source_image_resized_to_its_size_with_labels_kept(ramps):
    source = FromDataset(**{k: v for k, v in ramps.items() if k != "name"}).build(EMPTY_X, seed=5).load()
    database = Patches(database=ramps, size=10, per_image=3)
    assert database.size_hint() == 90
    d = database.build(EMPTY_X, seed=5).load()
    assert d.images.shape == (90, 28, 28, 3) and d.class_names == ("a", "b", "c")
    # row r is a crop of the inner database's image r // per_image (same seed: the same source rows)
    assert np.array_equal(d.images[:, 0, 0, 2], np.repeat(source.images[:, 0, 0, 2], 3))
    assert np.array_equal(d.labels, np.repeat(source.labels, 3))
    boxes = crop_boxes(d.images)
    assert (boxes[:, 2:] == 10).all() and (boxes[:, :2] >= 0).all() and (boxes[:, :2] <= 18).all()
    assert len({(top, left) for top, left in boxes[:, :2]}) > 30  # positions drawn, not fixed
    # resized back with bilinear: values between the crop's border values, monotone along each ramp
    assert (np.diff(d.images[..., 0].astype(int), axis=1) >= 0).all()


def test_full_size_is_the_image_itself(ramps):
    source = FromDataset(**{k: v for k, v in ramps.items() if k != "name"}).build(EMPTY_X, seed=1).load()
    d = Patches(database=ramps, size=28).build(EMPTY_X, seed=1).load()
    assert np.array_equal(d.images, source.images) and np.array_equal(d.labels, source.labels)


def test_seeded_and_streamed(ramps, monkeypatch):
    database = Patches(database=ramps, size=12, per_image=2)
    view = database.build(EMPTY_X, seed=0)
    whole = view.load()
    assert np.array_equal(whole.images, database.build(EMPTY_X, seed=0).load().images)
    other = crop_boxes(database.build(EMPTY_X, seed=1).load().images)
    assert not np.array_equal(crop_boxes(whole.images), other)
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 7 * 28 * 28 * 3)  # 7 rows a chunk: splits an image's crops
    streamed = list(view.chunks())
    assert len(streamed) > 2
    assert np.array_equal(np.concatenate([c.images for c in streamed]), whole.images)
    assert np.array_equal(np.concatenate([c.labels for c in streamed]), whole.labels)
    pick = np.array([33, 4, 5, 4, 59])
    got = view.dataset.read(view.split, pick)
    assert np.array_equal(got.images, whole.images[pick]) and np.array_equal(got.labels, whole.labels[pick])


def test_size_larger_than_the_image_is_refused_by_check_before_building(ramps, monkeypatch):
    database = Patches(database=ramps, size=29)
    with monkeypatch.context() as patched, pytest.raises(ConfigError) as err:
        patched.setattr(FromDataset, "build", lambda *a: pytest.fail("check() built the database"))
        database.check()
    message = str(err.value)
    assert err.value.key == "size" and "\n" not in message
    assert "size 29 is larger than the 28x28 images" in message and "allowed: 2..28" in message
    with pytest.raises(ConfigError, match=r"allowed: 2\.\.28") as err:
        Patches(database=ramps, size=29).build(EMPTY_X, seed=0)
    assert err.value.key == "size"
    Patches(database=ramps, size=28).check()  # the largest allowed


def test_bad_arguments_and_nested_specs_are_keyed():
    registry = get_registry()
    inner = {"name": "from-dataset", "dataset": {"name": "synthetic-shapes"}}
    for args, key in (({"size": 1}, "database.size"), ({"per_image": 0}, "database.per_image"),
                      ({"database": {**inner, "split": "val"}}, "database.database.split")):
        with pytest.raises(ConfigError) as err:
            registry.validate("database", {"name": "patches", "database": inner, **args}, key="database")
        assert err.value.key == key
    nested = {"name": "patches", "database": {"name": "patches", "database": inner, "size": 20}, "size": 24}
    with pytest.raises(ConfigError, match="allowed: 2..28"):  # patches keep their source's shape
        registry.create("database", registry.validate("database", {**nested, "size": 30})).check()
    fingerprint = registry.create("database", registry.validate("database", nested)).fingerprint()["database"]
    assert fingerprint["spec"]["size"] == 20 and fingerprint["database"]["spec"]["name"] == "from-dataset"


# -- a tiny run: X from a class subset, D the patches of the same subset -----------------------------
SUBSET = {"name": "class-subset", "dataset": {"name": "synthetic-shapes", "image_size": 16, "train_size": 400,
                                              "test_size": 200}, "classes": ["circle", "cross", 6]}


def test_a_run_on_a_class_subset_with_a_patches_database(tmp_path):
    doc = yaml.safe_load(TINY_BASE)
    doc.pop("sweep")
    base = doc["base"]
    base["data"] = {"dataset": SUBSET, "train_size": 60, "reference_size": 45}
    base["database"] = {"name": "patches", "size": 12, "per_image": 2,
                        "database": {"name": "from-dataset", "dataset": SUBSET, "size": 30}}
    base["encoder"] = base["metrics"]["feature_extractor"] = {"name": "pixels"}
    base["metrics"]["use"] = {"fid": {}, "class-agreement": {}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    cfg = load_suite(tmp_path / "s.yaml").runs[0].spec
    pipeline = Pipeline(StageCache(tmp_path / "cache"), get_registry(), Progress(), "cpu")
    row, _ = pipeline.run(cfg)
    names = ["circle", "cross", "ring"]
    (data,) = (tmp_path / "cache").glob("data/*")
    (db,) = (tmp_path / "cache").glob("database/*")
    assert read_json(data / "meta.json")["class_names"] == read_json(db / "meta.json")["class_names"] == names
    assert set(load_array(data / "reference_labels.npy")) == set(load_array(db / "database_labels.npy")) == {0, 1, 2}
    assert load_array(db / "database_images.npy").shape == (60, 16, 16, 1)
    # chance = sum over classes of p(query class) p(predicted class): with the classifier knowing only the
    # three kept classes it lies between the rarest and the commonest query class's share (not near a tenth)
    (samples,) = (tmp_path / "cache").glob("samples/*")
    share = np.bincount(load_array(samples / "query_labels.npy"), minlength=3) / 24
    assert len(share) == 3  # query labels are the kept classes, 0..2
    assert share.min() - 1e-9 <= row["class_agreement_chance"] <= share.max() + 1e-9, (share, row)
    assert 0.0 <= row["class_agreement"] <= 1.0 and "class_agreement" not in row.get("skipped_metrics", "")
