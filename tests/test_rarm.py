"""RARM head: the shared head contract, then what is RARM's own: the KV cache, guidance on logits, the
exactly equal baseline, sampler and config errors, and that it learns to read its neighbours (a toy whose
tokens the neighbours determine). Tiny configs on the CPU, seconds each."""

from __future__ import annotations

import numpy as np
import pytest

from rdmbench.api import HeadInputs, SampleRequest, TrainingData, TrainSettings
from rdmbench.errors import ConfigError
from rdmbench.testing import HeadContract
from rdmbench_plugins.heads.rarm import RARMHead

GRID, VOCAB, DIM, CLASSES = (4, 4), 16, 12, 4
TINY = dict(n_layer=1, n_embd=32, n_head=2)


class TestRARMContract(HeadContract):
    spec = {"name": "rarm", "n_layer": 1, "n_embd": 32, "n_head": 2}
    train = {"steps": 3, "batch_size": 4}
    sampler = {"top_k": 8}
    bad_sampler = {"top_k": 10 ** 6}


def make(k: int = 4, seed: int = 0, **cfg) -> RARMHead:
    head = RARMHead(**{**TINY, **cfg})
    head.setup(HeadInputs(GRID, DIM, k, VOCAB), "cpu", seed)
    return head


def toy(k: int = 4, n: int = 256, noise: float = 0.25, seed: int = 0) -> tuple[TrainingData, np.ndarray, np.ndarray]:
    """Items of CLASSES classes: each class has a token pattern (a quarter of its tokens replaced at
    random) and a prototype embedding; an item's neighbours are database entries of its class."""
    rng = np.random.default_rng(seed)
    patterns = rng.integers(0, VOCAB, (CLASSES, *GRID))
    prototypes = rng.standard_normal((CLASSES, DIM))
    db_class = np.arange(40) % CLASSES
    database = (prototypes[db_class] + 0.1 * rng.standard_normal((40, DIM))).astype(np.float32)
    labels = np.arange(n) % CLASSES
    tokens = patterns[labels].copy()
    flip = rng.random(tokens.shape) < noise
    tokens[flip] = rng.integers(0, VOCAB, int(flip.sum()))
    neighbours = np.stack([rng.choice(np.flatnonzero(db_class == c), 4, replace=False) for c in labels])
    return TrainingData(tokens.astype(np.int64), neighbours, database, k), labels, patterns


@pytest.fixture(scope="module")
def trained():
    """A head trained 300 steps of the shared loop on the toy (about 3 s)."""
    data, labels, patterns = toy()
    head = make()
    info = head.fit(data, seed=0, settings=TrainSettings(steps=300, batch_size=32, lr=3e-3, warmup_steps=10))
    return head, data, labels, patterns, info


def request(data: TrainingData, num: int = 12, **kw) -> SampleRequest:
    return SampleRequest(context=data.context(np.arange(num)), num=num, **{"seed": 3, "batch_size": 5, **kw})


def test_save_load_round_trip_guided(trained, tmp_path):
    head, data, *_ = trained
    head.save(tmp_path)
    again = make(seed=1)  # other initial weights: only loading can make the samples equal
    assert not np.array_equal(head.sample(request(data)), again.sample(request(data)))
    again.load(tmp_path)
    np.testing.assert_array_equal(head.sample(request(data, guidance_scale=2.0)),
                                  again.sample(request(data, guidance_scale=2.0)))


def test_cached_decoding_matches_full_forward():
    import torch

    head = make()
    rng = np.random.default_rng(0)
    tokens = torch.from_numpy(rng.integers(0, VOCAB, (3, 16)))
    inputs = torch.cat([torch.full((3, 1), head.bos), tokens[:, :-1]], dim=1)
    context = torch.from_numpy(rng.standard_normal((3, 4, DIM)).astype(np.float32))
    with torch.inference_mode():
        full = head.model(inputs, context)
        states, cache, steps = head.model.conditioning(context, None, 3), None, []
        for i in range(16):
            logits, cache = head.model.step(inputs[:, i:i + 1], states, cache)
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_baseline_has_exactly_the_same_parameters():
    assert make(k=0).parameter_count() == make(k=4).parameter_count()
    # GPT-2 ties its output layer to the token embedding: counted once, saved once
    assert make().parameter_count() == sum(p.numel() for p in make().model.parameters())


def test_guidance(trained):
    head, data, labels, patterns, _ = trained
    assert head.supports_guidance() and not make(cond_dropout=0.0).supports_guidance()
    req = dict(num=200, batch_size=100)
    plain = head.sample(request(data, **req))
    unit = head.sample(request(data, **req, guidance_scale=1.0, guidance_batching="batched"))
    np.testing.assert_array_equal(plain, unit)
    guided = {m: head.sample(request(data, **req, guidance_scale=3.0, guidance_batching=m))
              for m in ("split", "batched")}
    assert (guided["split"] == guided["batched"]).mean() > 0.95  # the two differ in the last bits only
    # guidance sharpens towards what the neighbours say: more of each class's pattern, fewer random tokens
    # (measured +0.02 to +0.03 over seeds; scale 5 over-guides and falls below unguided)
    truth = patterns[labels[:200]]
    agree = {"plain": (plain == truth).mean(), "guided": (guided["split"] == truth).mean()}
    assert agree["guided"] > agree["plain"] + 0.01, agree
    # scale 0 is the unconditional (null token) prediction
    uncond = head.sample(request(data, **req, guidance_scale=0.0))
    assert (uncond == head.sample(SampleRequest(context=None, **req, seed=3))).mean() > 0.95


@pytest.mark.parametrize("batching", ["split", "batched"])
def test_guidance_formula(trained, batching):
    """The first decoding step's logits are uncond + scale * (cond - uncond), the null token as uncond."""
    import torch

    head, data, *_ = trained
    context = torch.from_numpy(data.context(np.arange(5)))
    ids = torch.full((5, 1), head.bos)
    with torch.inference_mode():
        stream = head._logits_stream(context, 5, SampleRequest(context=None, num=5, guidance_scale=3.0, guidance_batching=batching))
        cond, uncond = head.model(ids, context)[:, -1], head.model(ids, None)[:, -1]
        torch.testing.assert_close(stream(ids), uncond + 3.0 * (cond - uncond), atol=1e-4, rtol=1e-4)
        assert (cond - uncond).abs().max() > 0.1  # the neighbours do change the prediction


def losses_with_own_and_shifted_neighbours(head, data: TrainingData, info: dict) -> tuple[float, float]:
    """The trained toy head's loss on its own neighbours and on another class's (ids rolled by one row), after
    checking that training cut the loss curve by at least 40 %."""
    import torch

    curve = info["train_loss_curve"]
    assert curve[-1] < 0.6 * curve[0], curve
    wrong = TrainingData(data.latents, np.roll(data.neighbour_ids, 1, axis=0), data.database_embeddings, data.k)
    index = torch.arange(len(data.latents))
    with torch.no_grad():
        true, shifted = (float(head.loss(head.model, d, index, torch.Generator().manual_seed(0)))
                         for d in (data, wrong))
    return true, shifted


def test_learns_from_neighbours(trained):
    """Loss falls to about the toy's noise floor (1.18 nats: a quarter of the tokens random), and is far
    higher with another class's neighbours (the earlier tokens still hint at the class)."""
    head, data, labels, patterns, info = trained
    true, shifted = losses_with_own_and_shifted_neighbours(head, data, info)
    assert true < 1.3 and shifted > true + 0.5, (true, shifted)
    # and samples follow the neighbours' class
    out = head.sample(request(data, num=40, batch_size=40), top_k=4)
    assert (out == patterns[labels[:40]]).mean() > 0.7


def test_sampler_errors():
    head = make()
    assert head.check_sampler(VOCAB) is None
    assert head.check_sampler(VOCAB, top_k=VOCAB) is None
    for bad, key in ((dict(top_k=0), "top_k"), (dict(top_k=VOCAB + 1), "top_k"), (dict(temperature=0.0), "temperature"),
                     (dict(temperature=-1.0), "temperature")):
        problem = head.check_sampler(VOCAB, **bad)
        assert problem and key in problem and "\n" not in problem
        with pytest.raises(ValueError, match=key):
            head.sample(SampleRequest(context=None, num=1), **bad)
    with pytest.raises(ValueError, match="guidance_batching"):
        head.sample(SampleRequest(context=None, num=1, guidance_batching="both"))


@pytest.mark.parametrize("cfg, key", [(dict(n_embd=30, n_head=4), "n_embd"), (dict(n_head=0), "n_head"),
                                      (dict(cond_dropout=1.0), "cond_dropout"), (dict(dropout=-0.1), "dropout"),
                                      (dict(n_layer=0), "n_layer")])
def test_config_errors(cfg, key):
    with pytest.raises(ConfigError) as err:
        RARMHead(**cfg)
    assert err.value.key == key and "\n" not in str(err.value)


def test_needs_a_codebook():
    with pytest.raises(ConfigError, match="codebook") as err:
        RARMHead(**TINY).setup(HeadInputs((1, 8, 8), DIM, 4, None), "cpu")
    assert err.value.key == "first_stage"


@pytest.mark.parametrize("sample", [{"mode": {"name": "held-out"}, "k": 1, "head": {"top_k": 8}},
                                    {"mode": {"name": "uniform"}, "guidance_scale": 2.0, "head": {"temperature": 0.7}},
                                    {"database": {"name": "from-dataset", "size": 60,
                                                  "dataset": {"name": "synthetic-shapes", "image_size": 16,
                                                              "train_size": 80, "test_size": 20, "seed": 3}}}])
def test_a_run_samples_rarm_in_every_mode(sample, tmp_path):
    """RARM through the pipeline over a tiny VQ first stage: held-out queries with k at sampling
    below k_train, uniform pseudo-queries with guidance, a database swapped at sampling time."""
    import yaml

    from conftest import TINY_BASE
    from rdmbench.cache import StageCache, load_array
    from rdmbench.pipeline import Pipeline
    from rdmbench.progress import Progress
    from rdmbench.registry import get_registry
    from rdmbench.suite import load_suite

    doc = yaml.safe_load(TINY_BASE)
    doc.pop("sweep")
    doc["base"].update(
        first_stage={"name": "autoencoder", "kind": "vq", "block_out_channels": [8, 16], "norm_num_groups": 8,
                     "latent_channels": 4, "num_vq_embeddings": 16, "train_steps": 3, "batch_size": 8},
        head={"name": "rarm", "n_layer": 1, "n_embd": 16, "n_head": 2},
        encoder={"name": "pixels", "normalize": True},
        metrics={"feature_extractor": {"name": "pixels"}, "use": {"fid": {}}})
    doc["base"]["sample"].pop("head")  # rdm's sampler settings: rarm samples with its own defaults
    doc["base"]["sample"].update(sample)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    cfg = load_suite(tmp_path / "s.yaml").runs[0].spec
    row, paths = Pipeline(StageCache(tmp_path / "cache"), get_registry(), Progress(), "cpu").run(cfg)
    images = load_array(paths["samples.png"].parent / "samples_images.npy")
    assert images.shape == (24, 16, 16, 1) and images.dtype == np.uint8
    assert row["head_parameters"] > 0 and np.isfinite(row["fid"])
