"""The metric contract: what every metric passes (``rdmbench.api.Metric``).

    from rdmbench.testing import MetricContract

    class TestMyMetric(MetricContract):
        spec = {"name": "my-metric", "neighbourhood": 3}
        identical = {"my_score": 0.0}   # each column's value when the generated set is the reference set

Features are small synthetic Gaussians of ``CLASSES`` well-separated classes (``labelled_features``), so a
metric's expected values can be computed independently; ``make_inputs`` builds ``MetricInputs`` over any
arrays for a plugin's own reference-value tests.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rdmbench.registry import get_registry
from rdmbench.testing.common import assert_missing_library_explained, assert_registered

#: feature width and number of classes of the contract's synthetic features
DIM, CLASSES = 16, 10


def labelled_features(n: int, rng: np.random.Generator, labels: np.ndarray | None = None,
                      spread: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """float32 (n, DIM) features of ``CLASSES`` well-separated classes: class c sits at 4 * e_c plus Gaussian
    noise of std ``spread``; labels are ``i % CLASSES`` unless given. Returns (features, labels)."""
    labels = np.arange(n) % CLASSES if labels is None else labels
    centres = 4.0 * np.eye(CLASSES, DIM)
    return (centres[labels] + rng.normal(0, spread, (n, DIM))).astype(np.float32), labels


def make_inputs(generated, reference, *, generated_logits=None, reference_labels=None, query_labels=None,
                seed=0, requested=None, text=None):
    """``MetricInputs`` over fixed arrays (the "embedding" of each role, the generated "logits");
    ``requested``, a set, collects the (role, output) pairs asked for."""
    from rdmbench.api import MetricInputs

    table = {("generated", "embedding"): generated, ("reference", "embedding"): reference,
             ("generated", "logits"): generated_logits}

    def features(role, output):
        if requested is not None:
            requested.add((role, output))
        value = table.get((role, output))
        if value is None:
            raise KeyError((role, output))
        return value

    return MetricInputs(features, "test-encoder", reference_labels, query_labels, seed, text)


def text_inputs(generated, reference, prompt_of_sample):
    """``TextInputs`` with one prompt per class, embedded at its class's centre (``labelled_features``), and
    the samples' and references' features as their image embeddings in that space."""
    from rdmbench.api import TextInputs

    prompts = 4.0 * np.eye(CLASSES, DIM, dtype=np.float32)
    table = {"generated": generated, "reference": reference, "prompts": prompts}
    return TextInputs(lambda role: table[role], tuple(f"a photo of class {c}" for c in range(CLASSES)),
                      np.asarray(prompt_of_sample), np.arange(CLASSES), "test space", {"image_to_text": 0.9})


class MetricContract:
    """What every metric plugin promises. Subclass it and set, as class attributes:

    - ``spec``: the metric spec (``{"name": ..., **constructor arguments}``); or override ``make()``;
    - ``identical``: each column's value when the generated set equals the reference set, within
      ``tolerance`` (or override ``test_identical_sets_score_as_identical`` and say why);
    - ``resample_rel``: relative tolerance between ``resampler`` at the identity and ``compute``;
    - ``other_values``: columns whose value is not a float (a label such as the space's name, or one that
      may be None): any JSON value; every other column must be a finite float;
    - ``library``: the module the plugin wraps, hidden in one test (None: needs no extra library).

    The inputs: 200 generated and 200 reference features (``labelled_features``, query and reference labels
    ``i % CLASSES``), random generated logits, and for a metric with ``needs_text`` prompts embedded at the
    class centres (``text_inputs``).

    Checked: it is registered and described; its declarations are consistent (``columns`` are
    ``rdmbench.columns.Column`` declarations, ``interval_columns`` among them); ``compute`` returns exactly
    ``columns``, in order, finite floats but for ``other_values``; it is deterministic for a seed; it asks only for the feature outputs its
    ``needs`` names; identical sets score as ``identical`` says; the bootstrap's resampler at the identity
    resample reproduces ``compute`` for every interval column.
    """

    spec: dict = {}
    identical: dict[str, float] = {}
    tolerance = 1e-6
    resample_rel = 1e-6
    other_values: tuple[str, ...] = ()
    library: str | None = None

    def make(self):
        """A fresh metric instance."""
        registry = get_registry()
        return registry.create("metric", registry.validate("metric", self.spec))

    def inputs(self, generated, reference, seed=0, requested=None):
        rng = np.random.default_rng(seed + 100)
        logits = rng.normal(0, 3, (len(generated), CLASSES)).astype(np.float32)
        query_labels = np.arange(len(generated)) % CLASSES
        text = text_inputs(generated, reference, query_labels) if self.make().needs_text else None
        return make_inputs(generated, reference, generated_logits=logits,
                           reference_labels=np.arange(len(reference)) % CLASSES, query_labels=query_labels,
                           seed=seed, requested=requested, text=text)

    @pytest.fixture(scope="class")
    def data(self):
        rng = np.random.default_rng(0)
        return labelled_features(200, rng)[0], labelled_features(200, rng)[0]

    def test_registered_and_described(self):
        assert_registered("metric", type(self.make()))

    def test_declarations(self):
        from rdmbench.columns import Column

        metric = self.make()
        assert metric.columns, "declare the result keys in `columns`"
        plain = [c for c in metric.columns if not isinstance(c, Column)]
        assert not plain, f"declare {plain} as rdmbench.columns.Column (label, better direction, description)"
        if metric.interval_columns is not None:
            stray = set(metric.interval_columns) - set(metric.columns)
            assert not stray, f"interval_columns {sorted(stray)} are not among columns"
        assert all(isinstance(n, str) for n in metric.needs)

    def test_columns_are_finite_floats(self, data):
        metric = self.make()
        out = metric.compute(self.inputs(*data))
        assert set(out) == set(metric.columns), f"compute gave {tuple(out)}, columns declares {metric.columns}"
        json.dumps(out)
        bad = {c: v for c, v in out.items()
               if c not in self.other_values and not (isinstance(v, float) and math.isfinite(v))}
        assert not bad, f"columns must be finite floats (list any other in other_values), got {bad}"

    def test_columns_in_declared_order(self, data):
        metric = self.make()
        out = metric.compute(self.inputs(*data))
        assert tuple(out) == metric.columns, f"compute gave {tuple(out)}, columns declares {metric.columns}"

    def test_deterministic(self, data):
        assert self.make().compute(self.inputs(*data, seed=3)) == self.make().compute(self.inputs(*data, seed=3))

    def test_asks_only_for_what_it_needs(self, data):
        metric, requested = self.make(), set()
        metric.compute(self.inputs(*data, requested=requested))
        assert {output for _, output in requested} <= set(metric.needs), (
            f"it asked for {sorted(requested)}; declare the outputs in `needs`: {metric.needs}")

    def test_identical_sets_score_as_identical(self, data):
        assert self.identical, "name the columns' values for identical sets, or override this test"
        out = self.make().compute(self.inputs(data[0], data[0]))
        for column, expected in self.identical.items():
            assert out[column] == pytest.approx(expected, abs=self.tolerance), column

    def test_resampler_at_the_identity_reproduces_compute(self, data):
        """The bootstrap's fast path computes the same statistic as ``compute`` (up to KID's subsets)."""
        metric = self.make()
        inputs = self.inputs(*data)
        point = metric.compute(inputs)
        reps = metric.resampler(inputs)(np.arange(len(data[0]))[None])
        wanted = metric.columns if metric.interval_columns is None else metric.interval_columns
        assert set(reps) >= set(wanted)
        for column in wanted:
            assert reps[column].shape == (1,)
            assert reps[column][0] == pytest.approx(point[column], rel=self.resample_rel, abs=1e-9), column

    def test_a_shared_reference_scores_each_generated_set_as_afresh(self, data):
        """Runs of one reference share what ``MetricInputs.of_reference`` keeps: only values of the reference."""
        import uuid
        from dataclasses import replace

        metric = self.make()
        other = data[0][::-1].copy() + 0.5  # another run's samples
        key = uuid.uuid4().hex  # kept process-wide: a key no earlier test used
        first = metric.compute(replace(self.inputs(*data), reference_key=key))
        second = metric.compute(replace(self.inputs(other, data[1]), reference_key=key))
        assert first == metric.compute(self.inputs(*data))
        assert second == self.make().compute(self.inputs(other, data[1])), "kept a value of the generated set"
        resampled = metric.resampler(replace(self.inputs(other, data[1]), reference_key=key))(np.arange(len(other))[None])
        afresh = self.make().resampler(self.inputs(other, data[1]))(np.arange(len(other))[None])
        assert {c: v.tolist() for c, v in resampled.items()} == {c: v.tolist() for c, v in afresh.items()}

    def test_missing_library_says_how_to_install(self):
        if self.library is None:
            pytest.skip("needs no extra library")
        cls = type(self.make())
        assert_missing_library_explained(self.library, "metric", cls, cls.name)
