"""Splits larger than RAM: the data, database and first-stage stages stream; D ∩ reference is checked.

The data stage picks rows by index (``Dataset.count``) and stores them a chunk at a time
(``Dataset.read`` → ``rdmbench.chunks.write_rows``); later stages read the stored arrays
memory-mapped. The subset drawn is the one drawn when a split was loaded whole, so cached data
stages of in-memory datasets keep their meaning. Peak memory is measured in subprocesses.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rdmbench.chunks as chunks
from rdmbench import schema
from rdmbench.cache import StageCache, load_array, read_json
from rdmbench.chunks import write_rows
from rdmbench import stages
from rdmbench.errors import ConfigError
from rdmbench.overlap import content_hashes
from rdmbench.pipeline import Pipeline
from rdmbench.progress import Progress
from rdmbench.registry import get_registry
from rdmbench.tasks.generation import stages as gen
from rdmbench_plugins.datasets.image_folder import ImageFolder
from rdmbench_plugins.datasets.synthetic_shapes import SyntheticShapes
from rdmbench_plugins.first_stages.identity import IdentityFirstStage

SHAPES = {"name": "synthetic-shapes", "train_size": 300, "test_size": 100}


def stage_config(dataset: dict, database: dict, **data) -> dict:
    """The parts of a resolved run config that the data, database and first-stage stages read."""
    registry = get_registry()
    section = schema.DataSection(dataset=registry.validate("dataset", dataset), **data)
    return {"data": section, "database": registry.validate("database", database), "first_stage": {"name": "identity"}}


def pipeline(tmp_path: Path) -> Pipeline:
    return Pipeline(StageCache(tmp_path / "cache"), get_registry(), Progress(), "cpu")


def make_folder(root: Path, counts: dict[str, int], size: int, classes: int = 4, seed: int = 0) -> None:
    """An ImageNet-style folder of random RGB JPEGs, ``counts[split]`` images per split."""
    rng = np.random.default_rng(seed)
    for split, n in counts.items():
        for i in range(n):
            folder = root / split / f"class{i % classes}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)  # 10x faster than PNG for noise


# --- the chunked .npy writer ---------------------------------------------------------------------


def test_write_rows_is_np_save_byte_for_byte(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (10, 5, 4, 3), dtype=np.uint8)
    write_rows(tmp_path / "a.npy", 10, iter([array[:3], array[3:4], array[4:]]))
    expected = io.BytesIO()
    np.save(expected, array)
    assert (tmp_path / "a.npy").read_bytes() == expected.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]  # no temporary file left


@pytest.mark.parametrize("count, parts, message", [
    (5, [np.zeros((3, 2), np.uint8)], "3 rows written, 5 announced"),
    (2, [np.zeros((3, 2), np.uint8)], "more than the 2 rows"),
    (4, [np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8)], "a chunk of uint8"),
    (4, [np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.float32)], "a chunk of float32"),
    (0, [], "no chunk arrived"),
])
def test_write_rows_refuses_what_it_did_not_announce(tmp_path, count, parts, message):
    with pytest.raises(ValueError, match=message):
        write_rows(tmp_path / "a.npy", count, iter(parts))
    assert not any(tmp_path.iterdir())  # nothing half-written under any name


# --- same subsets as before streaming -------------------------------------------------------------


def test_in_memory_datasets_give_the_images_they_gave_when_loaded_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 20 * 28 * 28)  # 20 images a chunk: many chunks
    cfg = stage_config(SHAPES, {"name": "from-dataset", "dataset": SHAPES, "size": 90}, train_size=50,
                       reference_size=40, seed=3)
    pipe = pipeline(tmp_path)
    data = stages.data(pipe, cfg["data"])
    database = stages.database(pipe, cfg["database"], cfg["data"], data)

    # what the data stage and from-dataset computed when they loaded each split whole
    shapes = SyntheticShapes(train_size=300, test_size=100)
    rng = np.random.default_rng(3)
    train = shapes.load("train").subset(np.sort(rng.permutation(300)[:50]))
    reference = shapes.load("test").subset(np.sort(rng.permutation(100)[:40]))
    source = shapes.load("train")
    available = np.flatnonzero(~np.isin(content_hashes(source.images), content_hashes(train.images)))
    d = source.subset(np.random.default_rng(3 + 1).permutation(available)[:90])

    for path, name, expected in ((data, "train", train), (data, "reference", reference), (database, "database", d)):
        buffer = io.BytesIO()
        np.save(buffer, expected.images)
        assert (path / f"{name}_images.npy").read_bytes() == buffer.getvalue(), name  # the very same file
        assert np.array_equal(load_array(path / f"{name}_labels.npy"), expected.labels), name
    assert read_json(data / "meta.json")["class_names"] == list(shapes.class_names)


def test_image_folder_is_read_a_chunk_at_a_time(tmp_path, monkeypatch):
    make_folder(tmp_path / "folder", {"train": 40, "test": 10}, size=12)
    spec = {"name": "image-folder", "root": str(tmp_path / "folder"), "image_size": 8}
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 5 * 8 * 8 * 3)  # 5 images a chunk
    asked: list[int] = []
    read = ImageFolder.read

    def spy(self, split, indices):
        asked.append(len(indices))
        return read(self, split, indices)

    monkeypatch.setattr(ImageFolder, "read", spy)
    data = stages.data(pipeline(tmp_path), stage_config(spec, {"name": "from-dataset", "dataset": spec}, train_size=30)["data"])
    assert max(asked) == 5 and sum(asked) == 30 + 10  # never more than a chunk decoded at once
    monkeypatch.setattr(ImageFolder, "read", read)
    whole = ImageFolder(root=str(tmp_path / "folder"), image_size=8).load("train")
    pick = np.sort(np.random.default_rng(0).permutation(40)[:30])
    assert np.array_equal(load_array(data / "train_images.npy"), whole.images[pick])
    assert np.array_equal(load_array(data / "train_labels.npy"), whole.labels[pick])


def test_first_stage_encodes_the_memory_mapped_set_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 16 * 28 * 28)  # 16 images a chunk
    encode, seen = IdentityFirstStage.encode, []

    def spy(self, images):
        seen.append(len(images))
        return encode(self, images)

    monkeypatch.setattr(IdentityFirstStage, "encode", spy)
    cfg = stage_config(SHAPES, {"name": "from-dataset", "dataset": SHAPES}, train_size=50)
    pipe = pipeline(tmp_path)
    data = stages.data(pipe, cfg["data"])
    latents = load_array(gen.first_stage(pipe, cfg["first_stage"], cfg["data"].seed, data) / "latents.npy")
    assert seen == [16, 16, 16, 2]
    assert np.array_equal(latents, encode(IdentityFirstStage(), load_array(data / "train_images.npy")))


def test_autoencoder_fits_a_memory_mapped_set_as_an_in_memory_one(tmp_path):
    from rdmbench_plugins.first_stages.autoencoder import AutoencoderFirstStage

    images = SyntheticShapes(image_size=8, train_size=24, test_size=1).load("train").images
    np.save(tmp_path / "x.npy", images)
    mapped = load_array(tmp_path / "x.npy", mmap=True)  # read-only, as stages read stored images

    def fitted(x):
        stage = AutoencoderFirstStage(block_out_channels=(8,), norm_num_groups=4, latent_channels=2, train_steps=3,
                                      batch_size=4, device="cpu")
        return stage, stage.fit(x, seed=0)

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*not writable.*")  # torch wrapping the read-only map
        a, info_mapped = fitted(mapped)
        latents_mapped = a.encode(mapped)
    b, info = fitted(images)
    assert info_mapped["recon_mse"] == info["recon_mse"] and info_mapped["train_loss"] == info["train_loss"]
    assert np.array_equal(latents_mapped, b.encode(images))


# --- peak memory stays flat as the folder grows -----------------------------------------------------

PROBE = r"""
import json, sys, time, tracemalloc
from pathlib import Path
import rdmbench.chunks as chunks
from rdmbench.cache import StageCache
from rdmbench import stages
from rdmbench.pipeline import Pipeline
from rdmbench.tasks.generation import stages as gen
from rdmbench.progress import Progress
from rdmbench.registry import get_registry
sys.path.insert(0, sys.argv[3])
from test_streaming import stage_config

chunks.CHUNK_BYTES = 1 << 20
root, cache = sys.argv[1], Path(sys.argv[2])
spec = {"name": "image-folder", "root": root, "image_size": 96}
n = len(list(Path(root, "train").rglob("*.jpg")))
# X is half of train; D is the other half (from-dataset drops X by content hash)
cfg = stage_config(spec, {"name": "from-dataset", "dataset": spec}, train_size=n // 2)
pipe = Pipeline(StageCache(cache), get_registry(), Progress(), "cpu")


def peak():
    # VmHWM, the peak resident set, reset first: imports peak far higher than the stages
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))


def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


pipe.plugin("dataset", spec).count("train")  # listing and imports before the baseline
pipe.fingerprint("dataset", spec)
reset_peak()
before = peak()
data = stages.data(pipe, cfg["data"])
data_growth = peak() - before
# the database stage reads X memory-mapped, whose file pages count as resident: count the heap instead
tracemalloc.start()
stages.database(pipe, cfg["database"], cfg["data"], data)
database_peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
reset_peak()
before = peak()
whole = pipe.plugin("dataset", spec).load("train")  # the control: what holding a split costs
control_growth = peak() - before
print(json.dumps({"data": data_growth, "database": database_peak, "control": control_growth,
                  "split_bytes": whole.images.nbytes}))
"""


def test_peak_memory_stays_flat_as_the_folder_grows(tmp_path):
    measured = {}
    for n in (200, 800):
        root = tmp_path / f"folder{n}"
        make_folder(root, {"train": n, "test": 20}, size=96, seed=n)
        result = subprocess.run([sys.executable, "-c", PROBE, str(root), str(tmp_path / f"cache{n}"),
                                 str(Path(__file__).parent)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        measured[n] = json.loads(result.stdout.strip().splitlines()[-1])
    small, large = measured[200], measured[800]
    more = large["split_bytes"] - small["split_bytes"]  # 600 images of 96 x 96 x 3: 16.6 MB
    # the measurement can see a split held whole: loading it does show
    assert large["control"] - small["control"] > 0.7 * more, measured
    # the stages' peaks grow far less than the data (X alone grows by half of it)
    assert large["data"] - small["data"] < 0.1 * more, measured
    assert large["database"] - small["database"] < 0.1 * more, measured


# --- D ∩ reference ---------------------------------------------------------------------------------


def test_database_overlapping_the_reference_set_is_an_error(tmp_path):
    cfg = stage_config(SHAPES, {"name": "from-dataset", "dataset": SHAPES, "split": "test", "size": 60},
                       train_size=100)
    pipe = pipeline(tmp_path)
    data = stages.data(pipe, cfg["data"])
    with pytest.raises(ConfigError) as err:
        stages.database(pipe, cfg["database"], cfg["data"], data)
    assert err.value.key == "database" and "allow_reference_overlap" in str(err.value)
    assert "60 reference images" in str(err.value)  # reference = the whole test split, D = 60 of it
    assert not list((tmp_path / "cache" / "database").glob("*/stage.json"))  # no entry was stored


def test_reference_overlap_opt_in_is_recorded(tmp_path):
    database = {"name": "from-dataset", "dataset": SHAPES, "split": "test", "size": 60}
    pipe = pipeline(tmp_path)
    cfg = stage_config(SHAPES, database, train_size=100, allow_reference_overlap=True)
    info = read_json(stages.database(pipe, cfg["database"], cfg["data"], stages.data(pipe, cfg["data"])) / "info.json")
    assert info["overlap_with_reference"] == 60 and info["allow_reference_overlap"] is True
    clean = stage_config(SHAPES, {**database, "split": "train"}, train_size=100)
    info = read_json(stages.database(pipe, clean["database"], clean["data"], stages.data(pipe, clean["data"])) / "info.json")
    assert info["overlap_with_reference"] == 0 and info["overlap_with_train"] == 0
