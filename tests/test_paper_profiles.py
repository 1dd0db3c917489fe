"""Every shipped suite's `paper` profile runs end to end, scaled down with `--set` only.

The fixture has the paper's layout: an ImageNet-style folder with train/val, an OpenImages-style
database folder, and tiny random-weight checkpoint files for what the paper loads (LDM's VQ-f4
first stage as a CompVis model.ckpt + config.yaml, CLIP through open_clip, torch-fidelity's FID
Inception). Only sizes, steps and file locations are overridden; datasets, splits, plugins,
retrievers and metrics are the profile's own. Also: what `--set` accepts and refuses.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO
from rdmbench.cli import main
from rdmbench.errors import ConfigError
from rdmbench.suite import load_suite
from test_encoders import inception_weights  # noqa: F401 - a fixture, reused
from test_pretrained_autoencoder import tiny_autoencoder, write_single_file

PAPER_SUITES = ("k_train", "baselines", "retriever_effect", "retrievers")
TINY_CLIP = "rdmbench-test-paper-clip"
#: embedding width 64: the retrievers profile's IVF-PQ uses 64 sub-quantizers
CLIP_CONFIG = {"embed_dim": 64,
               "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
               "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 1, "layers": 1}}
#: 256+ database images: IVF-PQ trains 2^8 centroids per sub-quantizer
DATABASE_IMAGES, TRAIN_PER_CLASS, VAL_PER_CLASS, CLASSES, SIZE = 288, 12, 2, 2, 16
#: what each run generates and scores: the Inception forwards (299 px) and FID dominate the test's time
SAMPLES = CLASSES * VAL_PER_CLASS


def _write_images(folder: Path, count: int, rng: np.random.Generator) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    base = rng.integers(0, 256, 3)
    for i in range(count):  # a class colour plus noise: distinct images, a little class structure
        pixels = np.clip(base + rng.normal(0, 40, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:04d}.png")


@pytest.fixture(scope="module")
def paper_files(tmp_path_factory, inception_weights):  # noqa: F811
    import open_clip
    import torch

    root = tmp_path_factory.mktemp("paper")
    rng = np.random.default_rng(0)
    for c in range(CLASSES):
        _write_images(root / "imagenet" / "train" / f"n0{c}", TRAIN_PER_CLASS, rng)
        _write_images(root / "imagenet" / "val" / f"n0{c}", VAL_PER_CLASS, rng)
    for part in range(4):
        _write_images(root / "openimages" / "train" / f"part{part}", DATABASE_IMAGES // 4, rng)
    (root / f"{TINY_CLIP}.json").write_text(json.dumps(CLIP_CONFIG))
    open_clip.add_model_config(root / f"{TINY_CLIP}.json")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        torch.save(open_clip.create_model(TINY_CLIP, pretrained=None).state_dict(), root / "clip.bin")
    vq = write_single_file(tiny_autoencoder("vq"), "vq", root / "vq-f4")
    return {"root": root, "clip": root / "clip.bin", "vq": vq, "inception": inception_weights}


def scale_down(suite: str, f: dict) -> list[str]:
    """The --set items that shrink a paper profile to the fixture: locations, sizes, steps."""
    root = f["root"]
    sets = [f"data.dataset.root={root / 'imagenet'}", f"data.dataset.image_size={SIZE}",
            f"data.reference_size={SAMPLES}",
            f"database.dataset.root={root / 'openimages'}", f"database.dataset.image_size={SIZE}",
            f"encoder.model={TINY_CLIP}", f"encoder.pretrained={f['clip']}"]
    if suite == "retrievers":
        return sets + ["benchmark.num_queries=null", "benchmark.single_queries=4", "benchmark.repeats=1"]
    sets += [f"first_stage.path={f['vq']}",
             "head.block_out_channels=[32, 32]", "head.attention_levels=[false, true]", "head.layers_per_block=1",
             "head.cross_attention_dim=16", "train.batch_size=8",
             f"sample.num={SAMPLES}", "sample.head.steps=2", f"sample.batch_size={SAMPLES}",
             f"metrics.feature_extractor.weights_path={f['inception']}",
             f"metrics.use.kid.subset_size={SAMPLES - 1}", "metrics.use.inception-score.splits=2",
             "metrics.use.class-agreement.test_fraction=0.5", "metrics.bootstrap=0"]
    # a swept axis is scaled through the sweep; k = 4 heads are shared by k_train, baselines and
    # retriever_effect's exact group (same config, same cache), the ends of the k range are kept
    sets.append("seeds=[0]")  # the suites' three seeds would triple the test, not widen it
    if suite == "baselines":
        return sets + ["sweep.zip.train.steps=[0, 2, 2, 2, 2]", "sweep.zip.database.size=[null, null, null, null, 100]"]
    return sets + ["train.steps=2"] + (["sweep.grid.k_train=[4, 16]"] if suite == "k_train" else [])


@pytest.mark.parametrize("suite", PAPER_SUITES)
def test_paper_profile_runs_end_to_end(suite, paper_files, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "paper-cache"  # shared: the suites share their first stages
    out = tmp_path_factory.mktemp(suite)
    argv = ["run", str(REPO / "suites" / f"{suite}.yaml"), "--profile", "paper", "--results", str(out),
            "--cache", str(cache), "--no-report", "-q"]
    for item in scale_down(suite, paper_files):
        argv += ["--set", item]
    assert main(argv) == 0, (out / "results.csv").read_text() if (out / "results.csv").exists() else "no results"

    rows = list(csv.DictReader((out / "results.csv").open()))
    expected = load_suite(REPO / "suites" / f"{suite}.yaml", "paper", sets=scale_down(suite, paper_files))
    assert [r["run_id"] for r in rows] == [r.run_id for r in expected.runs] and len(rows) >= 2
    assert all(r["status"] == "ok" for r in rows)
    config = yaml.safe_load((out / "runs" / rows[0]["run_id"] / "config.yaml").read_text())
    # the paper's structure, as resolved and recorded for the run
    assert config["data"]["dataset"]["name"] == "image-folder" and config["data"]["reference_split"] == "val"
    assert config["encoder"]["name"] == "clip" and config["encoder"]["pretrained"] == str(paper_files["clip"])
    assert config["data"]["reference_size"] == SAMPLES  # a --set value, recorded in the resolved config
    if suite == "retrievers":
        assert {r["retriever"] for r in rows} >= {"exact", "scann", "faiss", "hnswlib"}
        assert all(float(r["recall"]) > 0 for r in rows)
        return
    assert config["first_stage"] == {"name": "pretrained-autoencoder", "path": str(paper_files["vq"]), "kind": "vq",
                                     "config": None, "scaling_factor": None, "batch_size": 32, "device": "auto"}
    assert all(r["feature_extractor"].startswith("inception-v3") for r in rows)
    assert all(int(r["num_reference"]) == CLASSES * VAL_PER_CLASS for r in rows)  # the val split
    assert all(np.isfinite(float(r["fid"])) for r in rows)


# --- --set ------------------------------------------------------------------------------------------


def test_set_refines_every_run_and_is_validated():
    path = REPO / "suites" / "k_train.yaml"
    suite = load_suite(path, "smoke", sets=["train.steps=3", "sample.num=30", "data.train_size=null"])
    assert {r.config["train"]["steps"] for r in suite.runs} == {3}
    assert {r.config["sample"]["num"] for r in suite.runs} == {30}
    assert {r.config["data"]["train_size"] for r in suite.runs} == {None}
    with pytest.raises(ConfigError, match=r"--set train\.stesp: unknown key 'stesp'.*steps"):
        load_suite(path, "smoke", sets=["train.stesp=3"])
    with pytest.raises(ConfigError, match=r"--set sample\.num: .*greater than 0"):
        load_suite(path, "smoke", sets=["sample.num=0"])
    with pytest.raises(ConfigError, match=r"--set: expected dotted\.key=VALUE"):
        load_suite(path, "smoke", sets=["train.steps"])


def test_set_changes_a_swept_axis_only_through_the_sweep():
    path = REPO / "suites" / "k_train.yaml"
    with pytest.raises(ConfigError, match=r"--set k_train: the suite sweeps k_train.*--set sweep\.grid\.k_train="):
        load_suite(path, "smoke", sets=["k_train=2"])
    suite = load_suite(path, "smoke", sets=["sweep.grid.k_train=[1, 3]", "seeds=[0, 1]"])
    assert [(r.config["k_train"], r.config["seed"]) for r in suite.runs] == [(1, 0), (1, 1), (3, 0), (3, 1)]
    with pytest.raises(ConfigError, match=r"swept axis.*sweep\.grid\.k_train"):
        load_suite(path, "smoke", sets=["sweep.grid.k_tran=[1]"])
    # a swept section can be refined: retrievers' paper profile sweeps whole `data` mappings
    suite = load_suite(REPO / "suites" / "retrievers.yaml", "paper", sets=["data.reference_size=5"])
    assert {r.config["data"]["reference_size"] for r in suite.runs} == {5}
    assert {r.config["data"]["reference_split"] for r in suite.runs} == {"val"}


def test_paper_split_mismatch_is_caught_before_any_work():
    with pytest.raises(ConfigError, match=r"data\.reference_split.*no split 'test'.*train, val"):
        load_suite(REPO / "suites" / "k_train.yaml", "paper", sets=["data.reference_split=test"])
