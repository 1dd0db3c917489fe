"""First stages: one contract every plugin passes, plus a check that the autoencoder learns."""

from __future__ import annotations


import numpy as np
import pytest

from rdmbench.api import FirstStage
from rdmbench.registry import get_registry
from rdmbench_plugins.first_stages.autoencoder import AutoencoderFirstStage
from rdmbench_plugins.first_stages.identity import IdentityFirstStage


def random_images(n: int, h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def blobs(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    """Grey images each holding one bright gaussian blob at a random place and width."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    cy, cx = rng.uniform(3, size - 3, (2, n, 1, 1))
    r = rng.uniform(1.5, 4.0, (n, 1, 1))
    img = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
    return (img[..., None] * 255).round().astype(np.uint8)


_FITTED: dict = {}


class FirstStageContract:
    """What every first stage promises. Subclasses override ``make()`` (and may set sizes)."""

    size: tuple[int, int] = (16, 16)
    n_fit: int = 32

    def make(self) -> FirstStage:
        raise NotImplementedError

    def fitted(self, channels: int = 3, seed: int = 0, fresh: bool = False) -> tuple[FirstStage, np.ndarray]:
        """A stage fitted on random images; shared between tests (they only read it) unless ``fresh``."""
        key = (type(self), channels, seed)
        if fresh or key not in _FITTED:
            stage = self.make()
            images = random_images(self.n_fit, *self.size, channels, seed=1)
            stats = stage.fit(images, seed=seed)
            if fresh:
                return stage, images
            _FITTED[key] = (stage, images, stats)
        return _FITTED[key][:2]

    def test_registered_and_described(self):
        stage = self.make()
        info = get_registry().info("first_stage", stage.name)
        assert info.cls is type(stage)
        assert stage.description()

    @pytest.mark.parametrize("channels", [1, 3])
    def test_latent_shape_matches_encode(self, channels):
        stage, images = self.fitted(channels)
        z = stage.encode(images[:5])
        assert z.dtype == np.float32
        assert z.shape == (5, *stage.latent_shape((*self.size, channels)))
        assert np.isfinite(z).all()

    @pytest.mark.parametrize("channels", [1, 3])
    def test_decode_encode_gives_uint8_nhwc(self, channels):
        stage, images = self.fitted(channels)
        out = stage.decode(stage.encode(images[:5]))
        assert out.dtype == np.uint8
        assert out.shape == images[:5].shape

    def test_save_load_round_trip(self, tmp_path):
        stage, images = self.fitted()
        stage.save(tmp_path)
        other = self.make()
        other.load(tmp_path)
        np.testing.assert_array_equal(other.encode(images[:8]), stage.encode(images[:8]))
        np.testing.assert_array_equal(other.decode(stage.encode(images[:8])), stage.decode(stage.encode(images[:8])))

    def test_fit_is_deterministic(self, tmp_path):
        a, images = self.fitted(seed=0)
        b, _ = self.fitted(seed=0, fresh=True)
        for name, stage in (("a", a), ("b", b)):
            (tmp_path / name).mkdir()
            stage.save(tmp_path / name)
        for f in sorted(p.name for p in (tmp_path / "a").iterdir()):
            assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
        np.testing.assert_array_equal(a.encode(images[:4]), b.encode(images[:4]))


class TestIdentity(FirstStageContract):
    def make(self):
        return IdentityFirstStage()

    def test_exact_round_trip_and_range(self):
        stage = self.make()
        images = random_images(4, 5, 7, 3)
        z = stage.encode(images)
        assert z.shape == (4, 3, 5, 7) and z.min() >= -1 and z.max() <= 1
        np.testing.assert_array_equal(stage.decode(z), images)
        np.testing.assert_array_equal(stage.decode(z * 3), stage.decode(np.clip(z * 3, -1, 1)))  # clamps


class TestAutoencoderKL(FirstStageContract):
    def make(self):
        return AutoencoderFirstStage(kind="kl", block_out_channels=(8, 16), norm_num_groups=8,
                                     latent_channels=3, train_steps=5, batch_size=8, device="cpu")

    def test_fit_reports_scaling(self):
        stage, images = self.fitted()
        stats = _FITTED[(type(self), 3, 0)][2]
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
    def make(self):
        return AutoencoderFirstStage(kind="vq", block_out_channels=(8, 16), norm_num_groups=8,
                                     num_vq_embeddings=16, train_steps=5, batch_size=8, device="cpu")

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
