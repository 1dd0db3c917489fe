"""The first-stage contract: what every first stage passes (``rdmbench.api.FirstStage``).

    from rdmbench.testing import FirstStageContract

    class TestMyStage(FirstStageContract):
        spec = {"name": "my-stage", "train_steps": 5, "batch_size": 8, "device": "cpu"}
        has_tokens = False
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rdmbench.registry import get_registry
from rdmbench.testing.common import assert_missing_library_explained, assert_registered


def random_images(n: int, h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    """uint8 (n, h, w, c) uniform noise."""
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


#: (test class, channels, seed) -> (stage, images, fit report): fitted stages the tests only read
_FITTED: dict = {}


class FirstStageContract:
    """What every first stage promises. Subclass it and set, as class attributes:

    - ``spec``: the first-stage spec (``{"name": ..., **constructor arguments}``), small enough to fit in
      seconds; or override ``make()``;
    - ``size``: (height, width) of the images it is fitted on and encodes; ``n_fit``: how many;
    - ``channels``: the channel counts it takes (a pretrained RGB model: ``(3,)``);
    - ``has_tokens``: whether it quantises to a codebook, and so has token ids;
    - ``library``: the module the plugin wraps, hidden in one test (None: needs no extra library).

    Checked: it is registered and described; ``encode`` gives finite float32 latents of ``latent_shape``;
    ``decode(encode(x))`` gives uint8 NHWC images of x's shape; ``fit`` reports finite numbers (JSON) and
    is deterministic for a seed (saved files byte for byte, and the latents); ``save``/``load`` round-trips
    encode and decode exactly; ``codebook_size()`` is known before fitting, and only with ``has_tokens``;
    tokens are int64 ids in range whose ``decode_tokens`` equals ``decode(encode(x))`` to the bit, and bad
    ids are refused; without a codebook, ``encode_tokens`` says so.
    """

    spec: dict = {}
    size: tuple[int, int] = (16, 16)
    n_fit: int = 32
    channels: tuple[int, ...] = (1, 3)
    #: whether the stage quantises to a codebook, and so has token ids
    has_tokens: bool = False
    library: str | None = None

    def make(self):
        """A fresh, unfitted stage."""
        registry = get_registry()
        return registry.create("first_stage", registry.validate("first_stage", self.spec))

    def fitted(self, channels: int = 3, seed: int = 0, fresh: bool = False):
        """(stage, images) fitted on ``n_fit`` random images; shared between tests (they only read it) unless
        ``fresh``. ``fit_report`` gives what its fit returned."""
        key = (type(self), channels, seed)
        if fresh or key not in _FITTED:
            stage = self.make()
            images = random_images(self.n_fit, *self.size, channels, seed=1)
            stats = stage.fit(images, seed=seed)
            if fresh:
                return stage, images
            _FITTED[key] = (stage, images, stats)
        return _FITTED[key][:2]

    def fit_report(self, channels: int = 3, seed: int = 0) -> dict:
        """What ``fit`` returned for ``fitted(channels, seed)``."""
        self.fitted(channels, seed)
        return _FITTED[(type(self), channels, seed)][2]

    def _channels(self, channels: int) -> None:
        if channels not in self.channels:
            pytest.skip(f"takes {self.channels} channels")

    def test_registered_and_described(self):
        stage = self.make()
        assert_registered("first_stage", type(stage))

    @pytest.mark.parametrize("channels", [1, 3])
    def test_latent_shape_matches_encode(self, channels):
        self._channels(channels)
        stage, images = self.fitted(channels)
        z = stage.encode(images[:5])
        assert z.dtype == np.float32
        assert z.shape == (5, *stage.latent_shape((*self.size, channels)))
        assert np.isfinite(z).all()

    @pytest.mark.parametrize("channels", [1, 3])
    def test_decode_encode_gives_uint8_nhwc(self, channels):
        self._channels(channels)
        stage, images = self.fitted(channels)
        out = stage.decode(stage.encode(images[:5]))
        assert out.dtype == np.uint8
        assert out.shape == images[:5].shape

    def test_fit_reports_numbers(self):
        report = self.fit_report(self.channels[-1])
        assert isinstance(report, dict), f"fit must return a dict, got {type(report).__name__}"
        json.dumps(report)  # stored beside the stage
        bad = {k: v for k, v in report.items() if not (isinstance(v, (int, float)) and math.isfinite(v))}
        assert not bad, f"fit must report finite numbers, got {bad}"

    def test_save_load_round_trip(self, tmp_path):
        stage, images = self.fitted(self.channels[-1])
        stage.save(tmp_path)
        other = self.make()
        other.load(tmp_path)
        np.testing.assert_array_equal(other.encode(images[:8]), stage.encode(images[:8]))
        np.testing.assert_array_equal(other.decode(stage.encode(images[:8])), stage.decode(stage.encode(images[:8])))

    def test_codebook_size_is_known_before_fit(self):
        size = self.make().codebook_size()
        assert (size is not None) == self.has_tokens
        assert size == self.fitted(self.channels[-1])[0].codebook_size()

    def test_tokens(self):
        channels = self.channels[-1]
        stage, images = self.fitted(channels)
        size = stage.codebook_size()
        if size is None:
            with pytest.raises(NotImplementedError, match="no codebook"):
                stage.encode_tokens(images[:2])
            return
        tokens = stage.encode_tokens(images[:5])
        assert tokens.dtype == np.int64
        assert tokens.shape == (5, *stage.latent_shape((*self.size, channels))[1:])
        assert tokens.min() >= 0 and tokens.max() < size
        # the codes decode snaps encode's latents to: one image either way, to the bit
        np.testing.assert_array_equal(stage.decode_tokens(tokens), stage.decode(stage.encode(images[:5])))
        assert stage.decode_tokens(tokens[:0]).shape == (0, *images.shape[1:])

    def test_bad_tokens_are_refused(self):
        stage, images = self.fitted(self.channels[-1])
        size = stage.codebook_size()
        if size is None:
            return
        tokens = stage.encode_tokens(images[:2])
        for bad in (tokens + size, tokens - size, tokens.astype(np.float32), tokens[0]):
            with pytest.raises(ValueError, match="token ids"):
                stage.decode_tokens(bad)

    def test_fit_is_deterministic(self, tmp_path):
        channels = self.channels[-1]
        a, images = self.fitted(channels, seed=0)
        b, _ = self.fitted(channels, seed=0, fresh=True)
        for name, stage in (("a", a), ("b", b)):
            (tmp_path / name).mkdir()
            stage.save(tmp_path / name)
        for f in sorted(p.name for p in (tmp_path / "a").iterdir()):
            assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
        np.testing.assert_array_equal(a.encode(images[:4]), b.encode(images[:4]))

    def test_missing_library_says_how_to_install(self):
        if self.library is None:
            pytest.skip("needs no extra library")
        cls = type(self.make())
        assert_missing_library_explained(self.library, "first_stage", cls, cls.name)
