"""Head contract: fit, save/load, seeded sampling, guidance and the parametric baseline."""

from __future__ import annotations

import numpy as np
import pytest

from rdmbench.api import SampleRequest, TrainingData
from rdmbench.registry import get_registry


def data(k: int, n: int = 32, dim: int = 12, seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)
    latents = rng.standard_normal((n, 1, 8, 8)).astype(np.float32)
    db = rng.standard_normal((50, dim)).astype(np.float16)
    return TrainingData(latents, rng.integers(0, 50, (n, 4)), db, k)


class HeadContract:
    spec: dict = {}

    def make(self, k: int = 2, dim: int = 12):
        head = get_registry().create("head", get_registry().validate("head", self.spec))
        head.setup((1, 8, 8), dim, k, "cpu")
        return head

    def fitted(self, k: int = 2):
        head = self.make(k)
        head.fit(data(k), seed=0)
        return head

    def request(self, k: int, **kw) -> SampleRequest:
        context = data(k).context(np.arange(6))
        return SampleRequest(context, 6, steps=2, seed=3, batch_size=4, **kw)

    def test_fit_is_seeded(self):
        a, b = self.fitted(), self.fitted()
        np.testing.assert_array_equal(a.sample(self.request(2)), b.sample(self.request(2)))

    def test_sample_shape_and_seed(self):
        head = self.fitted()
        out = head.sample(self.request(2))
        assert out.shape == (6, 1, 8, 8) and out.dtype == np.float32 and np.isfinite(out).all()
        other = head.sample(SampleRequest(self.request(2).context, 6, steps=2, seed=4, batch_size=4))
        assert not np.allclose(out, other)

    def test_save_load_round_trip(self, tmp_path):
        head = self.fitted()
        head.save(tmp_path)
        again = self.make()
        again.load(tmp_path)
        np.testing.assert_array_equal(head.sample(self.request(2)), again.sample(self.request(2)))

    def test_guidance_batched_equals_split(self):
        head = self.fitted()
        batched = head.sample(self.request(2, guidance_scale=3.0, extra={"guidance_batching": "batched"}))
        split = head.sample(self.request(2, guidance_scale=3.0, extra={"guidance_batching": "split"}))
        np.testing.assert_allclose(batched, split, atol=1e-4)
        assert not np.allclose(batched, head.sample(self.request(2)))

    def test_parametric_baseline(self):
        head = self.fitted(k=0)
        out = head.sample(SampleRequest(None, 3, steps=2, seed=0, batch_size=3))
        assert out.shape == (3, 1, 8, 8)


class TestRDM(HeadContract):
    spec = {"name": "rdm", "block_out_channels": [8, 16], "attention_levels": [False, True], "norm_num_groups": 8,
            "cross_attention_dim": 16, "train_steps": 2, "batch_size": 4}


def test_rdm_rejects_inconsistent_levels():
    from rdmbench.errors import ConfigError

    with pytest.raises(ConfigError, match="attention_levels"):
        get_registry().validate("head", {"name": "rdm", "block_out_channels": [8, 16], "attention_levels": [True],
                                         "norm_num_groups": 8}, key="head")
