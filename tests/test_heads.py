"""The RDM head: the public head contract (rdmbench.testing.HeadContract), and for RDM
the guidance formula, head sizes, equal-parameter baselines and top-m pseudo-queries in a real run."""

from __future__ import annotations

import numpy as np
import pytest

from rdmbench.api import HeadInputs, TrainSettings
from rdmbench.cache import StageCache, read_json, save_array, write_json
from rdmbench.errors import ConfigError
from rdmbench.pipeline import Pipeline
from rdmbench.tasks.generation import stages as gen
from rdmbench.progress import Progress
from rdmbench.registry import get_registry
from rdmbench.testing import HeadContract

from conftest import REPO, TINY_BASE


class TestRDM(HeadContract):
    spec = {"name": "rdm", "block_out_channels": [8, 16], "attention_levels": [False, True], "norm_num_groups": 8,
            "cross_attention_dim": 16}
    sampler = {"steps": 2}
    bad_sampler = {"solver": "dpm++", "eta": 0.5}

    def test_guidance_batched_equals_split(self):
        head = self.fitted()
        batched = self.draw(head, self.request(2, guidance_scale=3.0, guidance_batching="batched"))
        split = self.draw(head, self.request(2, guidance_scale=3.0, guidance_batching="split"))
        np.testing.assert_allclose(batched, split, atol=1e-4)
        assert not np.allclose(batched, self.draw(head, self.request(2)))

    def test_guided_sampling_is_byte_identical(self):
        """Same config, fresh heads: the same bytes (the path is the pipeline's resolved choice, never a timed pick)."""
        a, b = self.make(), self.make()
        first = self.draw(a, self.request(2, guidance_scale=2.0, guidance_batching="split"))
        assert first.tobytes() == self.draw(b, self.request(2, guidance_scale=2.0, guidance_batching="split")).tobytes()
        assert first.tobytes() == self.draw(a, self.request(2, guidance_scale=2.0)).tobytes()  # split is the default
        with pytest.raises(ValueError, match="guidance_batching"):
            self.draw(a, self.request(2, guidance_scale=2.0, guidance_batching="auto"))  # must come resolved


def test_solvers_are_diffusers_schedulers_by_name_and_seeded():
    head, request = TestRDM().fitted(), TestRDM().request()
    out = head.sample(request, solver="dpm++", steps=3)
    assert out.shape == (6, 1, 8, 8) and np.isfinite(out).all()
    assert out.tobytes() == head.sample(request, solver="dpm++", steps=3).tobytes()
    assert not np.allclose(out, head.sample(request, steps=3))  # not DDIM's path
    # any diffusers scheduler by its class name; DDIM by name is the short name's
    euler = head.sample(request, solver="EulerDiscreteScheduler", steps=3)
    assert np.isfinite(euler).all() and not np.allclose(euler, out)
    assert head.sample(request, solver="DDIMScheduler", steps=3).tobytes() == head.sample(request, steps=3).tobytes()
    assert "eta" in head.check_sampler(None, solver="dpm++", eta=0.5)
    assert "not a diffusers scheduler" in head.check_sampler(None, solver="dpm+")


def test_rdm_rejects_inconsistent_levels():
    with pytest.raises(ConfigError, match="attention_levels"):
        get_registry().validate("head", {"name": "rdm", "block_out_channels": [8, 16], "attention_levels": [True],
                                         "norm_num_groups": 8}, key="head")


# -- classifier-free guidance, pinned with a stub network ------------------------------------------------
def _stub_unet():
    """Stands in for the diffusers UNet: predicts the mean of its cross-attention context everywhere,
    so the conditional prediction is +3 (the neighbours) and the unconditional one -1 (the null token)."""
    from types import SimpleNamespace

    import torch

    class Stub(torch.nn.Module):
        def forward(self, x, t, encoder_hidden_states):
            value = encoder_hidden_states.mean(dim=(1, 2))[:, None, None, None]
            return SimpleNamespace(sample=value.expand_as(x).clone())

    return Stub()


@pytest.mark.parametrize("mode", ["batched", "split"])
def test_guidance_formula(mode):
    """uncond + s (cond - uncond): s = 0 is unconditional, 1 conditional, linear between and beyond."""
    import torch

    head = get_registry().create("head", get_registry().validate("head", TestRDM.spec))
    head.setup(HeadInputs((1, 8, 8), 12, 2), "cpu")
    head.model.unet = _stub_unet()
    with torch.no_grad():
        head.model.null.fill_(-1.0)
    x, context = torch.zeros(5, 1, 8, 8), torch.full((5, 2, 12), 3.0)
    for scale, expected in [(0.0, -1.0), (1.0, 3.0), (0.5, 1.0), (0.25, 0.0), (2.0, 7.0)]:
        out = head._guided_forward(x, 10, context, scale, mode)
        assert torch.allclose(out, torch.full_like(x, expected)), (scale, float(out.mean()))


# -- head sizes as the paper gives them ------------------------------------------------------------------
def test_head_channels_sets_heads_per_level():
    spec = get_registry().validate("head", {"name": "rdm", "block_out_channels": [32, 64, 96],
                                            "attention_levels": [False, True, True], "head_channels": 16,
                                            "cross_attention_dim": 16, "norm_num_groups": 16})
    head = get_registry().create("head", spec)
    head.setup(HeadInputs((1, 8, 8), 12, 2), "cpu")
    attns = [m for m in head.model.unet.modules() if type(m).__name__ == "Attention"]
    assert attns and all(a.inner_dim // a.heads == 16 for a in attns), [(a.heads, a.inner_dim) for a in attns]
    assert {a.heads for a in attns} == {4, 6}  # 64 / 16 and 96 / 16 (middle block included)


@pytest.mark.parametrize("channels, levels, head_channels", [([32, 48], [False, True], 32),  # 48 % 32
                                                             ([32, 48], [True, False], 32),  # middle block: 48
                                                             ([32, 64], [False, True], 0)])
def test_head_channels_must_divide_attention_widths(channels, levels, head_channels):
    with pytest.raises(ConfigError, match=r"head\.head_channels: head_channels=.*allowed: 1, 2"):
        get_registry().validate("head", {"name": "rdm", "block_out_channels": channels, "attention_levels": levels,
                                         "head_channels": head_channels, "norm_num_groups": 16}, key="head")


def test_attention_head_dim_is_gone():
    with pytest.raises(ConfigError, match="attention_head_dim"):
        get_registry().validate("head", {"name": "rdm", "attention_head_dim": 8}, key="head")


# -- equal-parameter baselines ---------------------------------------------------------------------------
def _fake_inputs(tmp_path, n=8, k=16, dim=1280):
    """The stage folders ``tasks.generation.stages.train`` reads, at the default's shapes: the VQ first
    stage's 16x7x7 latents and 7x7 tokens of 256 codes, EfficientNet-Lite0's 1280-d embeddings."""
    rng = np.random.default_rng(0)
    folders = {name: tmp_path / name for name in ("first_stage", "neighbours", "embeddings")}
    for folder in folders.values():
        folder.mkdir()
    save_array(folders["first_stage"] / "latents.npy", rng.standard_normal((n, 16, 7, 7)).astype(np.float32))
    save_array(folders["first_stage"] / "tokens.npy", rng.integers(0, 256, (n, 7, 7)))
    write_json(folders["first_stage"] / "info.json", {"codebook_size": 256})
    save_array(folders["neighbours"] / "ids.npy", rng.integers(0, 20, (n, k)))
    save_array(folders["embeddings"] / "embeddings.npy", rng.standard_normal((20, dim)).astype(np.float16))
    return folders


def test_baselines_match_their_heads_parameters(tmp_path):
    """heads.yaml's four runs, built through the train stage at the default's shapes: each parametric
    baseline (k = 0) within 2 % of its retrieval head's parameter count (exactly equal, by construction)."""
    from rdmbench.suite import load_suite

    suite = load_suite(REPO / "suites" / "heads.yaml")
    f = _fake_inputs(tmp_path)
    pipeline = Pipeline(StageCache(tmp_path / "cache"), get_registry(), Progress(), "cpu")
    params = {}
    for run in suite.runs:
        k, head = run.spec.k_train, run.spec.head
        untrained = TrainSettings(**{**run.spec.train.model_dump(), "steps": 0})  # counting needs no training
        out = gen.train(pipeline, head, untrained, k, run.spec.seed, f["first_stage"], f["neighbours"] if k else None,
                        f["embeddings"])
        params[(head["name"], k)] = read_json(out / "info.json")["head_parameters"]
    assert set(params) == {(n, k) for n in ("rdm", "rarm", "maskgit") for k in (4, 0)}
    for name in ("rdm", "rarm", "maskgit"):
        assert params[(name, 4)] > 1e6 and abs(params[(name, 0)] - params[(name, 4)]) <= 0.02 * params[(name, 4)], params


# -- a whole tiny run: top-m pseudo-queries, guidance 2, head_parameters in the row, same bytes twice ----
def test_tiny_run_draws_pseudo_queries_from_top_m(tmp_path, monkeypatch):
    import yaml

    from rdmbench import proposal
    from rdmbench.suite import load_suite

    doc = yaml.safe_load(TINY_BASE)
    doc["base"]["sample"].update(mode={"name": "unconditional", "top_m": 0.1}, guidance_scale=2.0)
    # raw pixels instead of EfficientNets: what is checked here does not depend on the features
    doc["base"]["encoder"] = {"name": "pixels"}
    doc["base"]["metrics"] = {"feature_extractor": {"name": "pixels"}, "use": {"fid": {}}}
    doc.pop("sweep")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    cfg = load_suite(tmp_path / "s.yaml").runs[0].spec
    assert cfg.k_train == 2 and cfg.sample.k == 2
    seen: dict = {}
    original = gen.samples

    def spy(pipe, cfg, paths, *rest):
        seen.update(paths, samples=original(pipe, cfg, paths, *rest))
        return seen["samples"]

    monkeypatch.setattr(gen, "samples", spy)
    pipeline = Pipeline(StageCache(tmp_path / "cache"), get_registry(), Progress(), "cpu")
    row, _ = pipeline.run(cfg)

    ids = np.load(seen["samples"] / "query_ids.npy")
    nbrs = np.load(seen["proposal"] / "ids.npy")[:, :2]
    counts = np.bincount(nbrs.reshape(-1), minlength=100)  # p_D up to its normaliser, counted here
    top = set(np.argsort(-counts, kind="stable")[:10].tolist())  # ceil(0.1 * |D| = 100)
    assert len(ids) == 24 and set(ids.tolist()) <= top, sorted(set(ids.tolist()) - top)
    # the set is a real restriction: the untruncated proposal would draw outside it
    full = proposal.draw_pseudo_queries(counts / counts.sum(), 24, cfg.seed)
    assert not set(full.tolist()) <= top

    assert row["head_parameters"] == read_json(seen["train"] / "info.json")["head_parameters"] > 0

    # the samples stage again, from scratch, into two fresh folders: the same bytes
    monkeypatch.setattr(gen, "samples", original)
    computed = []

    def capture(name, config, inputs, compute, **_):
        computed.append(config)
        for i in range(2):
            (tmp_path / f"again{i}").mkdir()
            compute(tmp_path / f"again{i}")
        return tmp_path / "again0"

    monkeypatch.setattr(pipeline, "stage", capture)
    gen.samples(pipeline, cfg, {k: v for k, v in seen.items() if k != "samples"})
    assert computed[0]["sample"]["guidance_batching"] == "split"  # auto on a CPU, resolved into the key
    again = [(tmp_path / f"again{i}" / "samples_images.npy").read_bytes() for i in range(2)]
    assert again[0] == again[1] == (seen["samples"] / "samples_images.npy").read_bytes()


def test_samples_key_names_the_guidance_path(tmp_path, monkeypatch):
    """auto resolves by device type into the key; the two explicit paths are two keys; unguided, none."""
    from rdmbench.suite import load_suite
    import yaml

    doc = yaml.safe_load(TINY_BASE)
    doc["base"]["sample"]["guidance_scale"] = 2.0
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    runs = {r.spec.k_train: r.spec for r in load_suite(tmp_path / "s.yaml").runs}

    def key_config(spec, device, **sample):
        cfg = spec.model_copy(update={"sample": spec.sample.model_copy(update=sample)})
        pipeline = Pipeline(StageCache(tmp_path), get_registry(), Progress(), device)
        seen = []
        monkeypatch.setattr(pipeline, "stage", lambda name, config, inputs, compute, **_: seen.append(config))
        gen.samples(pipeline, cfg, {})
        return seen[0]["sample"]["guidance_batching"]

    rdm = runs[2]
    assert key_config(rdm, "cpu", guidance_batching="auto") == key_config(rdm, "cpu", guidance_batching="split") == "split"
    assert key_config(rdm, "cuda:0", guidance_batching="auto") == "batched"
    assert key_config(rdm, "cpu", guidance_batching="batched") == "batched"
    assert key_config(rdm, "cpu", guidance_scale=1.0) is None
    assert key_config(runs[0], "cpu", guidance_batching="batched") is None  # the baseline is never guided
