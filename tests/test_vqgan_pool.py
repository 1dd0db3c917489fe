"""The vqgan-pool encoder: pooled latents of the run's own first stage (the paper's VQGAN-pooled ablation)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from rdmbench.cache import StageCache, read_json
from rdmbench.errors import ConfigError
from rdmbench.pipeline import Pipeline
from rdmbench.progress import Progress
from rdmbench.registry import get_registry
from rdmbench.suite import load_suite
from rdmbench_plugins.encoders.vqgan_pool import VQGANPoolEncoder
from rdmbench_plugins.first_stages.identity import IdentityFirstStage

from conftest import TINY_BASE


def images(n=5, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 1), np.uint8)


def encoder(**kw):
    enc = VQGANPoolEncoder(**kw)
    enc.attach_first_stage(IdentityFirstStage())
    return enc


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_pools_the_first_stage_latent(pool):
    x = images()
    out = encoder(grid=2, pool=pool).features(x)["embedding"]
    pixels = x[..., 0].astype(np.float32) / 127.5 - 1  # the identity first stage's latent
    blocks = pixels.reshape(5, 2, 4, 2, 4)
    expected = (blocks.mean(axis=(2, 4)) if pool == "mean" else blocks.max(axis=(2, 4))).reshape(5, 4)
    assert out.shape == (5, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_needs_a_first_stage_and_a_grid_that_fits():
    with pytest.raises(RuntimeError, match="first stage"):
        VQGANPoolEncoder().features(images())
    with pytest.raises(ConfigError, match=r"grid 9 exceeds .* 8x8 latent; allowed: 1..8"):
        encoder(grid=9).features(images())
    with pytest.raises(ConfigError, match="grid"):
        get_registry().validate("encoder", {"name": "vqgan-pool", "grid": 0}, key="encoder")


def _doc(**base):
    doc = yaml.safe_load(TINY_BASE)
    doc.pop("sweep")
    doc["base"]["metrics"] = {"feature_extractor": {"name": "pixels"}, "use": {"fid": {}}}
    doc["base"].update(base)
    return doc


def test_refused_as_feature_extractor_before_work(tmp_path):
    doc = _doc()
    doc["base"]["metrics"]["feature_extractor"] = {"name": "vqgan-pool"}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=r"metrics\.feature_extractor.*built on the run's first stage"):
        load_suite(tmp_path / "s.yaml")


def test_a_run_retrieves_with_its_first_stage(tmp_path):
    """Every embeddings stage of the run is keyed on the run's first stage."""
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(_doc(encoder={"name": "vqgan-pool", "grid": 4})))
    cfg = load_suite(tmp_path / "s.yaml").runs[0].spec
    pipeline = Pipeline(StageCache(tmp_path / "cache"), get_registry(), Progress(), "cpu")
    row, _ = pipeline.run(cfg)
    assert row["encoder"].startswith("vqgan-pool (mean-pooled identity latents, 4x4)")
    # the encoder's own retrieval quality sits beside the generation metrics
    assert row["retrieval_recall"] == 1.0 and 0.0 < row["neighbour_class_agreement"] <= 1.0
    folders = list((tmp_path / "cache").glob("embeddings/*"))
    assert folders and all(read_json(f / "info.json")["dim"] == 16 for f in folders)  # 1 channel, 4x4 grid
    assert all("first_stage" in read_json(f / "stage.json")["inputs"] for f in folders), \
        [read_json(f / "stage.json") for f in folders]
