"""First stages: the public contract every plugin passes (``rdmbench.testing.FirstStageContract``), plus
checks that the autoencoder learns and that dead-code restarts keep a VQ codebook in use."""

from __future__ import annotations

import numpy as np
import pytest

from rdmbench.registry import get_registry
from rdmbench.testing import FirstStageContract, random_images
from rdmbench_plugins.first_stages.autoencoder import AutoencoderFirstStage


def blobs(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    """Grey images each holding one bright gaussian blob at a random place and width."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    cy, cx = rng.uniform(3, size - 3, (2, n, 1, 1))
    r = rng.uniform(1.5, 4.0, (n, 1, 1))
    img = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
    return (img[..., None] * 255).round().astype(np.uint8)


class TestIdentity(FirstStageContract):
    spec = {"name": "identity"}

    def test_exact_round_trip_and_range(self):
        stage = self.make()
        images = random_images(4, 5, 7, 3)
        z = stage.encode(images)
        assert z.shape == (4, 3, 5, 7) and z.min() >= -1 and z.max() <= 1
        np.testing.assert_array_equal(stage.decode(z), images)
        np.testing.assert_array_equal(stage.decode(z * 3), stage.decode(np.clip(z * 3, -1, 1)))  # clamps


class TestAutoencoderKL(FirstStageContract):
    spec = {"name": "autoencoder", "kind": "kl", "block_out_channels": [8, 16], "norm_num_groups": 8,
            "latent_channels": 3, "train_steps": 5, "batch_size": 8, "device": "cpu"}

    def test_fit_reports_scaling(self):
        stage, images = self.fitted()
        stats = self.fit_report()
        assert {"recon_mse", "scaling_factor"} <= set(stats)
        assert all(isinstance(v, float) for v in stats.values())
        z = stage.encode(images)  # the stats subset is all 32 images here: std is exactly 1 after scaling
        assert z.std() == pytest.approx(1.0, rel=1e-3)

    def test_odd_sizes_are_padded_then_cropped(self):
        stage = AutoencoderFirstStage(kind="kl", block_out_channels=(8, 8, 8), norm_num_groups=8,
                                      train_steps=1, batch_size=4, device="cpu")
        images = random_images(6, 13, 10, 1)
        stage.fit(images, seed=0)
        z = stage.encode(images)
        assert z.shape == (6, 4, 4, 3) == (6, *stage.latent_shape((13, 10, 1)))
        assert stage.decode(z).shape == images.shape

    def test_not_fitted_and_wrong_channels(self):
        with pytest.raises(RuntimeError):
            self.make().encode(random_images(1, 16, 16, 3))
        stage, _ = self.fitted()
        with pytest.raises(ValueError):
            stage.encode(random_images(1, 16, 16, 1))


class TestAutoencoderVQ(TestAutoencoderKL):
    """Codes 3 wide from 4 latent channels, no mid-block attention, and a restart every 2 steps, so that
    the contract (determinism included) covers them."""

    has_tokens = True

    spec = {"name": "autoencoder", "kind": "vq", "block_out_channels": [8, 16], "norm_num_groups": 8,
            "latent_channels": 4, "vq_embed_dim": 3, "mid_block_attention": False, "num_vq_embeddings": 16,
            "dead_code_restart": 2, "train_steps": 5, "batch_size": 8, "device": "cpu"}

    def test_fit_reports_codebook_use(self):
        stats = self.fit_report()
        assert 1 <= stats["codebook_used"] <= 16
        assert 1 <= stats["codebook_perplexity"] <= stats["codebook_used"]
        assert stats["codebook_restarted"] > 0  # 16 random codes, 2 steps of 8 images: some go unpicked

    def test_tokens_are_the_nearest_codes(self):
        """Recomputed here in float64 from the codebook: a mixed-up axis or id would not survive."""
        stage, images = self.fitted()
        z = stage.encode(images[:6]) / stage.scaling_factor
        codes = stage._model.quantize.embedding.weight.detach().double().numpy()
        vectors = z.astype(np.float64).transpose(0, 2, 3, 1)[..., None, :]
        expected = ((vectors - codes) ** 2).sum(-1).argmin(-1)
        np.testing.assert_array_equal(stage.encode_tokens(images[:6]), expected)

    def test_odd_sized_tokens_are_padded_then_cropped(self):
        stage = AutoencoderFirstStage(kind="vq", block_out_channels=(8, 8, 8), norm_num_groups=8,
                                      num_vq_embeddings=8, train_steps=1, batch_size=4, device="cpu")
        images = random_images(6, 13, 10, 1)
        stage.fit(images, seed=0)
        tokens = stage.encode_tokens(images)
        assert tokens.shape == (6, 4, 3)
        assert stage.decode_tokens(tokens).shape == images.shape
        assert stage.decode_tokens(np.zeros((2, 5, 5), np.int64)).shape == (2, 20, 20, 1)  # another grid: uncropped

    def test_decode_quantises(self, monkeypatch):
        stage, images = self.fitted()
        z = stage.encode(images[:4])
        quantizer = stage._model.quantize
        calls = []
        forward = quantizer.forward
        monkeypatch.setattr(quantizer, "forward", lambda h: calls.append(h.shape) or forward(h))
        stage.decode(z)
        assert calls, "VQ decode must snap latents to the codebook"


@pytest.mark.parametrize("spec, message", [
    ({"block_out_channels": [8, 16]}, "divisible by norm_num_groups"),
    ({"train_steps": 0}, "must be positive"),
    ({"device": "gpu"}, "expected auto"),
    ({"kind": "vae"}, "kind"),
    ({"dead_code_restart": -1}, "dead_code_restart"),
    ({"vq_embed_dim": 4}, "vq_embed_dim"),  # kind kl has no codebook
    ({"kind": "vq", "vq_embed_dim": 0}, "vq_embed_dim"),
])
def test_autoencoder_config_errors(spec, message):
    from rdmbench.errors import ConfigError, RdmbenchError

    with pytest.raises((ConfigError, RdmbenchError), match=message):
        get_registry().validate("first_stage", {"name": "autoencoder", **spec})


def test_kl_autoencoder_learns_blobs():
    """20 steps on 256 blobs bring the reconstruction error well below that of the untrained network."""
    images = blobs(256)
    untrained = AutoencoderFirstStage(kind="kl", block_out_channels=(16, 32), norm_num_groups=8,
                                      train_steps=1, lr=1e-12, batch_size=32, device="cpu")
    before = untrained.fit(images, seed=0)["recon_mse"]
    trained = AutoencoderFirstStage(kind="kl", block_out_channels=(16, 32), norm_num_groups=8,
                                    train_steps=20, lr=3e-3, batch_size=32, device="cpu")
    after = trained.fit(images, seed=0)["recon_mse"]
    assert after < 0.5 * before, (before, after)


def test_dead_code_restarts_keep_the_codebook_in_use():
    """Without restarts a 64-code book collapses on blobs (10 codes used after 40 steps); restarting
    unused codes every 10 steps keeps nearly all in use and spreads the use (perplexity)."""
    images = blobs(256)

    def fit(restart: int) -> dict[str, float]:
        stage = AutoencoderFirstStage(kind="vq", block_out_channels=(16, 32), norm_num_groups=8, latent_channels=4,
                                      num_vq_embeddings=64, mid_block_attention=False, train_steps=40, lr=3e-3,
                                      batch_size=32, dead_code_restart=restart, device="cpu")
        return stage.fit(images, seed=0)

    plain, restarted = fit(0), fit(10)
    assert plain["codebook_restarted"] == 0 and restarted["codebook_restarted"] > 0
    assert restarted["codebook_used"] >= plain["codebook_used"] + 16, (plain, restarted)
    assert restarted["codebook_perplexity"] > 2 * plain["codebook_perplexity"], (plain, restarted)
