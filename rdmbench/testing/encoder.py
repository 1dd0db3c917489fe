"""The encoder contract: what every encoder passes (``rdmbench.api.Encoder``), frozen or trained.

    from rdmbench.testing import EncoderContract

    class TestMyEncoder(EncoderContract):
        spec = {"name": "my-encoder", "dim": 16}
        dims = {"embedding": 16}

A trained encoder (``trainable = True``) is fitted once per test class on a small labelled training set
(``labelled_images``), saved, and loaded into every other instance the tests use, as the pipeline does:
it fits once in a cached stage, and loads that fit before every use. An encoder built on the run's first
stage (``uses_first_stage``) gets the ``first_stage`` spec's, fitted on the same images.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rdmbench.registry import get_registry
from rdmbench.testing.common import (RecordingProgress, assert_missing_library_explained, assert_registered,
                                     labelled_images, photo_like)


class EncoderContract:
    """What every encoder plugin promises. Subclass it and set, as class attributes:

    - ``spec``: the encoder spec (``{"name": ..., **constructor arguments}``), small enough to run in
      seconds; or override ``make()`` (a fixture may set what it needs on the class first);
    - ``dims``: the width of each output (``{"embedding": 1280, "logits": 1000}``), checked where named;
    - ``num_images``, ``image_size``: the test images encoded (photo-like, 3 channels, the first two grey);
    - ``grey_as_rgb``: False where a one-channel image need not embed as its three-channel copy does (raw
      pixels: 784 values against 2,352); say why;
    - ``train_size``: images a trainable encoder fits on; ``first_stage``: the first stage spec handed to
      an encoder with ``uses_first_stage``;
    - ``texts``: what ``encode_text`` is tried on, for an encoder with ``encodes_text``;
    - ``library``: the module the plugin wraps, hidden in one test (None: needs no extra library).

    Checked, for every encoder: it is registered and described; its declarations are consistent (``provides``
    names ``embedding``; ``normalize``, ``trainable`` and ``encodes_text`` are booleans; only a trainable
    encoder declares ``fit_columns``, each a ``rdmbench.columns.Column`` named ``encoder_<key>``); every
    output in ``provides`` is float32 (N, width) and finite; features are deterministic, independent of the
    batch size, the same for a grey image and its RGB copy, different for different images; progress is
    reported once for all images; an empty input gives (0, width) outputs; non-uint8 input is refused; the
    identity is a non-empty string and the fingerprint JSON; ``encode_text`` gives (N, width of embedding)
    float32 vectors in the image space (and raises NotImplementedError where ``encodes_text`` is False).
    And for a trainable encoder: ``fit`` reports JSON numbers holding every fit column's key (``encoder_<key>``
    holds the report's ``<key>``) and no key ``encoder``; fitting twice with one seed gives the same
    features; ``save`` then ``load`` into a fresh instance gives the same features (and text vectors) exactly.
    """

    spec: dict = {}
    dims: dict[str, int] = {}
    num_images = 8
    image_size = 32
    grey_as_rgb = True
    train_size = 48
    first_stage: dict = {"name": "identity"}
    texts = ("a photo of a square.", "a disc.", "stripes")
    library: str | None = None

    def make(self, **overrides):
        """A fresh encoder, not yet fitted or attached (``ready`` does that)."""
        registry = get_registry()
        return registry.create("encoder", registry.validate("encoder", {**self.spec, **overrides}))

    # -- fixtures: the pipeline's order (fit once, save; load and attach before each use) ------------------
    @pytest.fixture(scope="class")
    def images(self):
        return photo_like(self.num_images, self.image_size)

    @pytest.fixture(scope="class")
    def training(self):
        return labelled_images(self.train_size, self.image_size)

    @pytest.fixture(scope="class")
    def fitted(self, training, tmp_path_factory):
        """(encoder fitted on ``training`` with seed 0, its fit report, the folder it saved to); None for a
        frozen encoder."""
        encoder = self.make()
        if not encoder.trainable:
            return None
        self.attach(encoder, training)
        report = encoder.fit(training, seed=0)
        folder = tmp_path_factory.mktemp("encoder-fit")
        encoder.save(folder)
        return encoder, report, folder

    def attach(self, encoder, training) -> None:
        """Hand an encoder built on the first stage a fitted ``first_stage`` (as the generation task does)."""
        if encoder.uses_first_stage:
            registry = get_registry()
            stage = registry.create("first_stage", registry.validate("first_stage", self.first_stage))
            stage.fit(training.images, seed=0)
            encoder.attach_first_stage(stage)

    def ready(self, fitted, training, **overrides):
        """A fresh encoder as the pipeline uses it: its fit loaded, its first stage attached."""
        encoder = self.make(**overrides)
        if encoder.trainable:
            encoder.load(fitted[2])
        self.attach(encoder, training)
        return encoder

    @pytest.fixture(scope="class")
    def base(self, images, fitted, training):
        encoder, progress = self.ready(fitted, training), RecordingProgress()
        encoder.batch_size = 7
        return encoder, encoder.features(images, progress=progress), progress

    # -- every encoder ---------------------------------------------------------------------------------
    def test_registered_and_described(self):
        assert_registered("encoder", type(self.make()))

    def test_declarations(self):
        from rdmbench.columns import Column

        encoder = self.make()
        assert "embedding" in encoder.provides and all(isinstance(p, str) for p in encoder.provides)
        for flag in ("normalize", "trainable", "encodes_text", "uses_first_stage"):
            assert isinstance(getattr(encoder, flag), bool), f"{flag} must be True or False"
        columns = type(encoder).fit_columns
        if not encoder.trainable:
            assert not columns, "fit_columns are read from fit, which only a trainable encoder's pipeline calls"
        for c in columns:
            assert isinstance(c, Column), (f"fit column {c!r}: declare a rdmbench.columns.Column (label, better "
                                           "direction, description): the report reads them from it")
            assert c.startswith("encoder_") and len(c) > len("encoder_"), (
                f"fit column {c!r}: name it encoder_<key>, <key> the fit report's key it shows")

    def test_outputs(self, base, images):
        encoder, out, _ = base
        assert set(out) >= set(encoder.provides), f"features gave {sorted(out)}, provides says {encoder.provides}"
        for key, value in out.items():
            assert value.dtype == np.float32 and value.ndim == 2 and len(value) == len(images), (
                f"{key}: expected float32 ({len(images)}, width), got {value.dtype} {value.shape}")
            assert np.isfinite(value).all(), key
        for key, dim in self.dims.items():
            assert out[key].shape == (len(images), dim), key

    def test_deterministic(self, base, images):
        encoder, out, _ = base
        again = encoder.features(images)
        for key in encoder.provides:
            np.testing.assert_array_equal(again[key], out[key])

    def test_batch_size_independent(self, base, images, fitted, training):
        _, out, _ = base
        other = self.ready(fitted, training)
        other.batch_size = 3
        other = other.features(images)
        for key in out:
            np.testing.assert_allclose(other[key], out[key], rtol=1e-4, atol=1e-4 * np.abs(out[key]).max())

    def test_grayscale_equals_replicated_rgb(self, base, images):
        if not self.grey_as_rgb:
            pytest.skip("grey_as_rgb = False")
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
        encoder, out, _ = base
        empty = encoder.features(np.zeros((0, self.image_size, self.image_size, 3), np.uint8))
        for key, value in out.items():
            assert empty[key].shape == (0, value.shape[1]) and empty[key].dtype == np.float32, key

    def test_rejects_non_uint8(self):
        with pytest.raises(ValueError, match="uint8"):
            self.make().features(np.zeros((2, 8, 8, 3), np.float32))

    def test_identity_and_fingerprint(self, base):
        encoder, _, _ = base
        assert isinstance(encoder.identity(), str) and encoder.identity()
        json.dumps(encoder.fingerprint())

    def test_encode_text(self, base):
        encoder, out, _ = base
        if not encoder.encodes_text:
            with pytest.raises(NotImplementedError):
                encoder.encode_text(list(self.texts))
            return
        text = encoder.encode_text(list(self.texts))
        width = out["embedding"].shape[1]
        assert text.shape == (len(self.texts), width) and text.dtype == np.float32, (
            f"encode_text: expected float32 ({len(self.texts)}, {width}): the image embeddings' space, got "
            f"{text.dtype} {text.shape}")
        assert np.isfinite(text).all() and not np.allclose(text[0], text[1])
        np.testing.assert_array_equal(encoder.encode_text(list(self.texts)), text)

    def test_missing_library_says_how_to_install(self):
        if self.library is None:
            pytest.skip("needs no extra library")
        cls = type(self.make())
        assert_missing_library_explained(self.library, "encoder", cls, cls.name)

    # -- a trainable encoder ---------------------------------------------------------------------------
    def test_fit_reports_its_columns(self, fitted):
        if fitted is None:
            pytest.skip("a frozen encoder (trainable = False)")
        encoder, report, _ = fitted
        assert isinstance(report, dict), f"fit must return a dict, got {type(report).__name__}"
        json.dumps(report)  # stored as the fit stage's info.json
        assert "encoder" not in report, "the fit stage stores the encoder's identity under 'encoder'; use another key"
        for column in type(encoder).fit_columns:
            key = column.removeprefix("encoder_")
            assert key in report, f"fit column {column!r} shows the fit report's {key!r}, and fit reported {sorted(report)}"
            value = report[key]
            assert isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value), (
                f"fit report {key!r} = {value!r}: a finite number")

    def test_fit_is_deterministic(self, fitted, training, images):
        if fitted is None:
            pytest.skip("a frozen encoder (trainable = False)")
        trained, report, _ = fitted
        again = self.make()
        self.attach(again, training)
        assert again.fit(training, seed=0) == report, "two fits with one seed report differently"
        for key, value in trained.features(images).items():
            np.testing.assert_array_equal(again.features(images)[key], value,
                                          err_msg=f"two fits with one seed give different {key}")

    def test_save_load_round_trip(self, fitted, training, images):
        if fitted is None:
            pytest.skip("a frozen encoder (trainable = False)")
        trained = fitted[0]
        loaded = self.ready(fitted, training)  # a fresh instance, loaded from what ``trained`` saved
        for key, value in trained.features(images).items():
            np.testing.assert_array_equal(loaded.features(images)[key], value, err_msg=f"{key} after save and load")
        if trained.encodes_text:
            np.testing.assert_array_equal(loaded.encode_text(list(self.texts)), trained.encode_text(list(self.texts)),
                                          err_msg="text vectors after save and load")
