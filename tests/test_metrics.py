"""Metric plugins: one contract every metric passes, then reference values for each.

Features are small synthetic Gaussians, so expected values can be computed independently here.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from rdmbench.api import MetricInputs
from rdmbench.errors import RdmbenchError
from rdmbench_plugins.metrics.class_agreement import ClassAgreementMetric
from rdmbench_plugins.metrics.fid import FidMetric
from rdmbench_plugins.metrics.inception_score import InceptionScoreMetric
from rdmbench_plugins.metrics.kid import KidMetric
from rdmbench_plugins.metrics.precision_recall import PrecisionRecallMetric

DIM, CLASSES = 16, 10


def make_inputs(generated, reference, *, generated_logits=None, reference_labels=None, query_labels=None,
                seed=0, requested=None):
    """MetricInputs over fixed arrays; ``requested`` collects the (role, output) pairs asked for."""
    table = {("generated", "embedding"): generated, ("reference", "embedding"): reference,
             ("generated", "logits"): generated_logits}

    def features(role, output):
        if requested is not None:
            requested.add((role, output))
        value = table[(role, output)]
        if value is None:
            raise KeyError((role, output))
        return value

    return MetricInputs(features, "test-encoder", reference_labels, query_labels, seed)


def labelled_features(n, rng, labels=None, spread=0.5):
    """Features of 10 well-separated classes: class c sits at 4 * e_c plus Gaussian noise."""
    labels = np.arange(n) % CLASSES if labels is None else labels
    centres = 4.0 * np.eye(CLASSES, DIM)
    return (centres[labels] + rng.normal(0, spread, (n, DIM))).astype(np.float32), labels


class MetricContract:
    """Subclasses set ``make`` and ``identical`` (column -> value when generated == reference)."""

    identical: dict[str, float] = {}
    tolerance = 1e-6

    def make(self):
        raise NotImplementedError

    def inputs(self, generated, reference, seed=0, requested=None):
        rng = np.random.default_rng(seed + 100)
        logits = rng.normal(0, 3, (len(generated), CLASSES)).astype(np.float32)
        labels = np.arange(len(reference)) % CLASSES
        return make_inputs(generated, reference, generated_logits=logits, reference_labels=labels,
                           query_labels=np.arange(len(generated)) % CLASSES, seed=seed, requested=requested)

    @pytest.fixture(scope="class")
    def data(self):
        rng = np.random.default_rng(0)
        return labelled_features(200, rng)[0], labelled_features(200, rng)[0]

    def test_columns_are_finite_floats(self, data):
        metric = self.make()
        out = metric.compute(self.inputs(*data))
        assert tuple(out) == metric.columns
        assert all(isinstance(v, float) and np.isfinite(v) for v in out.values())

    def test_deterministic(self, data):
        assert self.make().compute(self.inputs(*data, seed=3)) == self.make().compute(self.inputs(*data, seed=3))

    def test_asks_only_for_what_it_needs(self, data):
        metric, requested = self.make(), set()
        metric.compute(self.inputs(*data, requested=requested))
        assert {output for _, output in requested} <= set(metric.needs)

    def test_identical_sets_score_as_identical(self, data):
        out = self.make().compute(self.inputs(data[0], data[0]))
        for column, expected in self.identical.items():
            assert out[column] == pytest.approx(expected, abs=self.tolerance), column


def frechet_reference(a, b):
    """Fréchet distance between Gaussian fits, straight from the definition (Dowson & Landau 1982)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def gaussians(shift=0.0, n=300, seed=0):
    rng = np.random.default_rng(seed)
    scale = np.linspace(0.5, 2.0, 8)
    return (rng.normal(0, 1, (n, 8)) * scale).astype(np.float32), (rng.normal(shift, 1, (n, 8)) * scale).astype(
        np.float32)


# --- FID --------------------------------------------------------------------------------------------


class TestFid(MetricContract):
    identical = {"fid": 0.0}

    def make(self):
        return FidMetric()


def test_fid_matches_direct_computation():
    a, b = gaussians(shift=0.3)
    assert FidMetric().compute(make_inputs(a, b))["fid"] == pytest.approx(
        frechet_reference(a.astype(np.float64), b.astype(np.float64)), rel=1e-6)


def test_fid_and_kid_grow_with_shift():
    scores = [(FidMetric().compute(make_inputs(*gaussians(s)))["fid"],
               KidMetric(subsets=20, subset_size=100).compute(make_inputs(*gaussians(s)))["kid"]) for s in (0, 0.5, 1)]
    assert scores[0][0] < scores[1][0] < scores[2][0]
    assert scores[0][1] < scores[1][1] < scores[2][1]
    assert abs(scores[0][1]) < 0.1 * scores[1][1]  # same distribution: KID is unbiased around 0


# --- KID --------------------------------------------------------------------------------------------


class TestKid(MetricContract):
    identical = {"kid": 0.0}
    # Subsets of one set drawn twice share samples, which biases MMD^2 slightly negative; on these
    # features that is ~-0.1, against ~1.7 for a shift of 0.5 per dimension.
    tolerance = 0.15

    def make(self):
        return KidMetric(subsets=10, subset_size=100)


def unbiased_mmd2_poly(x, y, degree=3):
    """Unbiased MMD^2 with the KID kernel (x.y / d + 1) ** degree (Bińkowski et al. 2018, eq. 2)."""
    k = lambda p, q: (p @ q.T / p.shape[1] + 1) ** degree  # noqa: E731
    m = len(x)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()


def test_kid_matches_direct_computation_on_whole_sets():
    a, b = gaussians(shift=0.3, n=60)
    # a subset as large as the sets is a permutation of them, and MMD ignores order
    out = KidMetric(subsets=3, subset_size=60).compute(make_inputs(a, b))
    expected = unbiased_mmd2_poly(a.astype(np.float64), b.astype(np.float64))
    assert out["kid"] == pytest.approx(expected, rel=1e-6)
    assert out["kid_std"] == pytest.approx(0.0, abs=1e-9)


def test_kid_clamps_subset_size_to_the_smaller_set():
    a, b = gaussians(shift=0.3, n=50)
    assert KidMetric(subsets=4, subset_size=1000).compute(make_inputs(a, b[:40])) == \
        KidMetric(subsets=4, subset_size=40).compute(make_inputs(a, b[:40]))


# --- Inception Score --------------------------------------------------------------------------------


class TestInceptionScore(MetricContract):
    identical = {}  # uses only the generated set

    def make(self):
        return InceptionScoreMetric(splits=2)


def test_inception_score_reference_values():
    n = 100
    uniform = np.zeros((n, CLASSES), np.float32)  # every sample undecided: p(y|x) = p(y)
    confident = 50.0 * np.eye(CLASSES, dtype=np.float32)[np.arange(n) % CLASSES]  # sure, all classes used
    metric = InceptionScoreMetric(splits=1)
    ones = np.zeros((n, DIM), np.float32)
    assert metric.compute(make_inputs(ones, ones, generated_logits=uniform))["is"] == pytest.approx(1.0)
    assert metric.compute(make_inputs(ones, ones, generated_logits=confident))["is"] == pytest.approx(CLASSES)


def test_inception_score_tiny_run_clamps_splits():
    logits = np.random.default_rng(0).normal(0, 1, (4, CLASSES)).astype(np.float32)
    out = InceptionScoreMetric(splits=10).compute(make_inputs(logits, logits, generated_logits=logits))
    assert np.isfinite(out["is"])


# --- Precision / recall -----------------------------------------------------------------------------


class TestPrecisionRecall(MetricContract):
    identical = {"precision": 1.0, "recall": 1.0, "f_score": 1.0}

    def make(self):
        return PrecisionRecallMetric()


def test_precision_recall_roles():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, (400, 4)).astype(np.float32)
    collapsed = rng.normal(0, 0.05, (400, 4)).astype(np.float32)  # mode collapse onto the centre
    out = PrecisionRecallMetric().compute(make_inputs(collapsed, reference))
    assert out["precision"] == pytest.approx(1.0)  # every generated sample is realistic...
    assert out["recall"] < 0.2  # ...but most of the reference is not covered
    far = PrecisionRecallMetric().compute(make_inputs(reference + 100, reference))
    assert far["precision"] == far["recall"] == 0.0


def test_precision_recall_needs_more_samples_than_neighbours():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(RdmbenchError, match="more than 3"):
        PrecisionRecallMetric().compute(make_inputs(x, x))


# --- Class agreement --------------------------------------------------------------------------------


class TestClassAgreement(MetricContract):
    identical = {"class_agreement": 1.0, "classifier_acc": 1.0}

    def make(self):
        return ClassAgreementMetric()


def test_class_agreement_follows_the_query():
    rng = np.random.default_rng(0)
    reference, reference_labels = labelled_features(500, rng)
    query_labels = rng.integers(0, CLASSES, 1000)
    generated, _ = labelled_features(1000, rng, labels=query_labels)  # each sample shows its query's class
    out = ClassAgreementMetric().compute(make_inputs(generated, reference, reference_labels=reference_labels,
                                                     query_labels=query_labels))
    assert out["class_agreement"] > 0.98 and out["classifier_acc"] > 0.98
    assert out["class_agreement_chance"] == pytest.approx(0.1, abs=0.02)

    shuffled = rng.permutation(query_labels)  # samples no longer follow their queries
    out = ClassAgreementMetric().compute(make_inputs(generated, reference, reference_labels=reference_labels,
                                                     query_labels=shuffled))
    assert out["class_agreement"] == pytest.approx(out["class_agreement_chance"], abs=0.04)


@pytest.mark.parametrize("missing", ["query_labels", "reference_labels"])
def test_class_agreement_without_labels_explains(missing):
    x, labels = labelled_features(50, np.random.default_rng(0))
    kwargs = {"reference_labels": labels, "query_labels": labels, missing: None}
    with pytest.raises(RdmbenchError, match="labels are missing"):
        ClassAgreementMetric().compute(make_inputs(x, x, **kwargs))


def test_registered():
    from rdmbench.registry import get_registry

    registry = get_registry()
    assert {"fid", "kid", "inception-score", "precision-recall", "class-agreement"} <= set(registry.names("metric"))
    assert registry.validate("metric", {"name": "kid"}) == {"name": "kid", "subsets": 100, "subset_size": 1000,
                                                            "degree": 3}
    assert registry.info("metric", "inception-score").cls.needs == ("logits",)
