"""The head contract: what every head passes (``rdmbench.api.Head``), a diffusion head or a token head.

    from rdmbench.testing import HeadContract

    class TestMyHead(HeadContract):
        spec = {"name": "my-head"}
        train = {"steps": 2, "batch_size": 4}  # the shared loop's settings (a suite's train:), over its defaults
        sampler = {"steps": 2}          # its sample()'s keyword arguments (a suite's sample.head)
        bad_sampler = {"steps": 0}      # settings its check_sampler must refuse
"""

from __future__ import annotations

import numpy as np
import pytest

from rdmbench.registry import get_registry


class HeadContract:
    """What every head must do, a diffusion head (latents) or a token head (codebook ids). Subclass it and
    set, as class attributes:

    - ``spec``: the head spec (``{"name": ..., **constructor arguments}``), small enough to fit in seconds;
    - ``train``: the shared loop's settings it is fitted with (a suite's ``train:`` section, over the head's
      ``train_defaults``; default: 2 steps of batch 4);
    - ``sampler``: the head's own sampler settings, the keyword-only arguments of its ``sample`` (what a suite
      writes under ``sample.head``: ``{"steps": 2}`` for rdm, ``{"top_k": 8}`` for rarm);
    - ``bad_sampler``: sampler settings of the right types that ``check_sampler`` must refuse (``{}``: none);
    - ``shape``, ``codebook_size``, ``context_dim``: what the head is built for (defaults: a 1x8x8 latent
      or a 4x4 grid of 16 codes, 12-d neighbour embeddings).

    Checked: the plugin is registered and described; samples have the head's shape and dtype (token ids in
    range); fitting and sampling are deterministic for a seed and the sampling seed matters; fitting
    changes the weights and reports ``head_parameters``; save/load round-trips samples exactly; the
    parametric baseline (k = 0, same ``context_dim``) has a parameter count within 2 % of the retrieval
    head's and ignores any neighbours it is given; guidance (when the head supports it) changes samples
    and scale 1 equals no guidance; the sampler settings validate against ``sample``'s signature (an unknown
    one is refused naming the allowed ones) and ``check_sampler`` refuses ``bad_sampler`` in one line; the
    head's ``train_defaults`` pass the loop's checks.
    """

    spec: dict = {}
    train: dict = {"steps": 2, "batch_size": 4}
    sampler: dict = {}
    bad_sampler: dict = {}
    shape: tuple[int, ...] | None = None
    codebook_size = 16
    context_dim = 12
    num = 6

    @property
    def tokens(self) -> bool:
        return get_registry().info("head", self.spec["name"]).cls.generates == "tokens"

    def inputs(self, k: int):
        from rdmbench.api import HeadInputs

        shape = self.shape or ((4, 4) if self.tokens else (1, 8, 8))
        return HeadInputs(tuple(shape), self.context_dim, k, self.codebook_size if self.tokens else None)

    def make(self, k: int = 2, seed: int = 0):
        head = get_registry().create("head", get_registry().validate("head", self.spec))
        head.setup(self.inputs(k), "cpu", seed)
        return head

    def data(self, k: int, n: int = 32, seed: int = 0):
        from rdmbench.api import TrainingData

        rng = np.random.default_rng(seed)
        shape = self.inputs(k).shape
        x = rng.integers(0, self.codebook_size, (n, *shape)) if self.tokens \
            else rng.standard_normal((n, *shape)).astype(np.float32)
        db = rng.standard_normal((50, self.context_dim)).astype(np.float16)
        return TrainingData(x, rng.integers(0, 50, (n, 4)), db, k)

    def fitted(self, k: int = 2, seed: int = 0):
        head = self.make(k)
        head.info = head.fit(self.data(k), seed=seed, settings=head.train_defaults.resolve(self.train))
        return head

    def request(self, k: int = 2, **kw):
        from rdmbench.api import SampleRequest

        context = self.data(k).context(np.arange(self.num)) if k else None
        return SampleRequest(context=context, num=self.num, **{"seed": 3, "batch_size": 4, **kw})

    def draw(self, head, request):
        """``head.sample`` with the class's sampler settings, as the samples stage calls it."""
        return head.sample(request, None, **self.sampler)

    def weights(self, head) -> np.ndarray:
        return np.concatenate([p.detach().cpu().numpy().ravel() for p in head.network().parameters()])

    def test_registered_and_described(self):
        info = get_registry().info("head", self.spec["name"])
        assert info.cls.description(), "the first docstring line is what `rdmbench plugins` shows"
        assert info.cls.generates in ("latents", "tokens")

    def test_sample_shape_dtype_and_seed(self):
        head = self.fitted()
        out = self.draw(head, self.request())
        assert out.shape == (self.num, *self.inputs(2).shape), out.shape
        if self.tokens:
            assert out.dtype == np.int64 and out.min() >= 0 and out.max() < self.codebook_size
        else:
            assert out.dtype == np.float32 and np.isfinite(out).all()
        assert not np.array_equal(out, self.draw(head, self.request(seed=4))), "the sampling seed must matter"

    def test_fit_is_seeded_and_trains(self):
        a, b = self.fitted(), self.fitted()
        np.testing.assert_array_equal(self.draw(a, self.request()), self.draw(b, self.request()))
        assert not np.array_equal(self.weights(a), self.weights(self.make())), "fit left the weights as they were"
        assert a.info["head_parameters"] == a.parameter_count() > 0
        assert not np.array_equal(self.weights(a), self.weights(self.fitted(seed=1))), "the fit seed must matter"

    def test_save_load_round_trip(self, tmp_path):
        head = self.fitted()
        head.save(tmp_path)
        again = self.make(seed=5)
        again.load(tmp_path)
        np.testing.assert_array_equal(self.draw(head, self.request()), self.draw(again, self.request()))

    def test_baseline_has_the_same_parameters(self):
        retrieval, baseline = self.make(k=4).parameter_count(), self.make(k=0).parameter_count()
        assert abs(baseline - retrieval) <= 0.02 * retrieval, f"baseline {baseline} vs retrieval head {retrieval}"

    def test_baseline_ignores_neighbours(self):
        from dataclasses import replace

        head = self.fitted(k=0)
        plain = self.draw(head, self.request(k=0))
        rng = np.random.default_rng(1)
        for _ in range(2):
            context = rng.standard_normal((self.num, 2, self.context_dim)).astype(np.float32)
            assert self.draw(head, replace(self.request(k=0), context=context)).tobytes() == plain.tobytes()

    def test_guidance(self):
        head = self.fitted()
        if not head.supports_guidance():
            pytest.skip("this head as configured has no null conditioning")
        plain = self.draw(head, self.request())
        assert self.draw(head, self.request(guidance_scale=1.0)).tobytes() == plain.tobytes()
        assert not np.array_equal(self.draw(head, self.request(guidance_scale=3.0)), plain)

    def test_sampler_settings_validate_against_sample_s_signature(self):
        from rdmbench.errors import ConfigError
        from rdmbench.registry import validate_kwargs

        cls = get_registry().info("head", self.spec["name"]).cls
        resolved = validate_kwargs(cls.sample, self.sampler, file=None, key="sample.head", what="sampler", skip=3)
        assert self.sampler.items() <= resolved.items()  # defaults filled in around what was given
        with pytest.raises(ConfigError, match="not_a_sampler_setting"):
            validate_kwargs(cls.sample, {"not_a_sampler_setting": 1}, file=None, key="sample.head", what="sampler",
                            skip=3)

    def test_check_sampler_answers_in_one_line(self):
        head = self.make()
        codebook = self.codebook_size if self.tokens else None
        assert head.check_sampler(codebook, **self.sampler) is None
        if not self.bad_sampler:
            pytest.skip("no bad_sampler given for this head")
        problem = head.check_sampler(codebook, **{**self.sampler, **self.bad_sampler})
        assert isinstance(problem, str) and problem and "\n" not in problem

    def test_train_defaults_pass_the_loop_s_checks(self):
        from rdmbench.api import TrainSettings

        defaults = get_registry().info("head", self.spec["name"]).cls.train_defaults
        assert isinstance(defaults, TrainSettings)
        assert defaults.resolve({}) == defaults
