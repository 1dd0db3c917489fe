"""Contract test classes a plugin's tests subclass, in this package or in an outside one.

    from rdmbench.testing import RetrieverContract

    class TestMyRetriever(RetrieverContract):
        name = "my-retriever"            # the registered plugin name
        build = {"trees": 8}             # constructor arguments
        query = {"search_k": 2000}       # query-time arguments
        library = "mylib"                # the module whose absence must give an install hint

Needs pytest (the ``dev`` extra). Every option is a class attribute, documented below where it is
declared; a failing check says what it measured (``recall@10 = 0.83 < min_recall 0.95``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rdmbench.errors import RdmbenchError
from rdmbench.registry import get_registry


def clustered(n: int, dim: int = 32, centers: int = 20, seed: int = 0) -> np.ndarray:
    """L2-normalised points around random centres: neighbours are well defined, as in real embeddings."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim))
    x = c[rng.integers(0, centers, n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_ids(db: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(q @ db.T), axis=1, kind="stable")[:, :k]


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, truth)]))


# Run in a fresh interpreter with the plugin's library hidden: importing the plugin module and listing
# plugins must still work (the library is imported inside methods), and using it must say how to install.
_WITHOUT_LIBRARY = r"""
import importlib, json, sys
library, module_name, class_name, build = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
top = library.split(".")[0]

class Hide:
    def find_spec(self, name, path=None, target=None):
        if name == top or name.startswith(top + "."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Hide())
import numpy as np
from rdmbench.errors import MissingDependency
from rdmbench.registry import get_registry

reg = get_registry()
out = {"broken": reg.broken, "names": reg.names("retriever")}
try:
    cls = getattr(importlib.import_module(module_name), class_name)
except Exception as exc:
    out["import"] = f"{type(exc).__name__}: {exc}"
else:
    plugin = cls(**build)
    for step, call in (("check_requirements", cls.check_requirements),
                       ("build", lambda: plugin.build(np.ones((10, 8), np.float32)))):
        try:
            call()
            out[step] = "no error"
        except MissingDependency as exc:
            out[step] = f"MissingDependency: {exc}"
        except Exception as exc:
            out[step] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


class RetrieverContract:
    """What every retriever must do. Subclass it and set, as class attributes:

    - ``name``: the registered plugin name; ``build``: constructor arguments (``retriever.build``);
      ``query``: query-time arguments (``retriever.query``) passed to every search;
    - ``library``: the module the plugin wraps, hidden in one test (None: needs no extra library);
    - ``min_recall``: recall@10 against exact search on 2,000 clustered points must reach it
      (lower it for lossy indices such as PQ, and say why in a comment);
    - ``exact_scores``: False for indices whose scores are estimates (compressed codes);
    - ``deterministic_build``: False where the library draws random state it takes no seed for;
    - ``l2_check``: True runs ``test_l2_metric_ranks_by_distance``, which rebuilds this class's
      ``build`` with ``metric: l2``; False where the configuration has no L2 mode (say why).
    """

    name = ""
    #: constructor arguments: the suite's ``retriever.build``
    build: dict = {}
    #: query-time arguments: the suite's ``retriever.query``, passed to every search
    query: dict = {}
    #: the importable module the plugin wraps; None for a plugin that needs no extra library
    library: str | None = None
    #: recall@10 against exact search on 2,000 clustered points must be at least this
    min_recall = 0.95
    #: False for compressed indices (PQ) whose returned scores are estimates
    exact_scores = True
    #: False where the library draws random state it exposes no seed for: then only the same index
    #: (and its saved copy) must answer identically, not a second build
    deterministic_build = True
    #: True: also rebuild ``build`` with ``metric: l2`` and check it ranks by distance
    l2_check = True

    def make(self, **overrides):
        spec = get_registry().validate("retriever", {"name": self.name, **self.build, **overrides})
        return get_registry().create("retriever", spec)

    def test_recall_against_exact(self):
        db, q = clustered(2000), clustered(100, seed=1)
        r = self.make()
        r.build(db)
        sims, ids = r.search(q, 10, **self.query)
        measured = recall(ids, exact_ids(db, q, 10))
        assert measured >= self.min_recall, f"recall@10 = {measured:.3f} < min_recall {self.min_recall} ({self.build})"
        assert sims.dtype == np.float32 and ids.dtype == np.int64, f"got {sims.dtype} scores, {ids.dtype} ids"
        assert sims.shape == ids.shape == (100, 10), f"got {sims.shape} scores, {ids.shape} ids for (100, 10)"
        worst = float(np.diff(sims, axis=1).max())
        assert worst <= 1e-5, f"results must be best first: a score rises by {worst:.3g} down a row"

    def test_l2_metric_ranks_by_distance(self):
        if not self.l2_check:
            pytest.skip("l2_check = False")
        rng = np.random.default_rng(0)
        db = (rng.standard_normal((500, 16)) * rng.uniform(0.5, 3, (500, 1))).astype(np.float32)
        q = rng.standard_normal((20, 16)).astype(np.float32)
        r = self.make(metric="l2")
        r.build(db)
        scores, ids = r.search(q, 5, **self.query)
        truth = np.argsort(((q[:, None] - db[None]) ** 2).sum(-1), axis=1)[:, :5]
        want = min(0.9, self.min_recall)
        measured = recall(ids, truth)
        assert measured >= want, f"metric l2: recall@5 = {measured:.3f} < {want} (set l2_check = False if l2 is unsupported)"
        if self.exact_scores:
            true_sq = ((q - db[ids[:, 0]]) ** 2).sum(-1)
            np.testing.assert_allclose(scores[:, 0], -true_sq, rtol=1e-3, atol=1e-3,
                                       err_msg="metric l2: scores must be minus the squared distance")

    def test_save_load_round_trip(self, tmp_path):
        db, q = clustered(500), clustered(20, seed=1)
        r = self.make()
        r.build(db)
        r.save(tmp_path)
        again = self.make()
        again.load(tmp_path, db)
        np.testing.assert_array_equal(r.search(q, 5, **self.query)[1], again.search(q, 5, **self.query)[1])

    def test_refuses_a_stale_or_corrupted_index(self, tmp_path):
        db = clustered(200)
        r = self.make()
        r.build(db)
        r.save(tmp_path)
        with pytest.raises(RdmbenchError, match="other embeddings"):
            self.make().load(tmp_path, clustered(200, seed=5))
        with pytest.raises(RdmbenchError, match="holds 200 x 32"):
            self.make().load(tmp_path, clustered(201))
        with pytest.raises(RdmbenchError, match="built with"):
            self.make(metric="l2").load(tmp_path, db)
        files = [p for p in tmp_path.iterdir() if p.name != r.MANIFEST and p.is_file()]
        if files:
            with open(files[0], "ab") as f:
                f.write(b"\0")
            with pytest.raises(RdmbenchError, match="checksum"):
                self.make().load(tmp_path, db)

    def test_k_larger_than_database_pads_with_minus_one(self):
        r = self.make()
        r.build(clustered(3))
        sims, ids = r.search(clustered(2, seed=1), 5, **self.query)
        assert (ids[:, :3] >= 0).all() and (ids[:, 3:] == -1).all() and np.isinf(sims[:, 3:]).all()

    def test_empty_database(self, tmp_path):
        r = self.make()
        r.build(np.zeros((0, 32), np.float32))
        sims, ids = r.search(clustered(2, seed=1), 3, **self.query)
        assert (ids == -1).all() and sims.shape == (2, 3)
        r.save(tmp_path)
        again = self.make()
        again.load(tmp_path, np.zeros((0, 32), np.float32))
        assert (again.search(clustered(1), 1, **self.query)[1] == -1).all()

    def test_one_item_database(self):
        r = self.make()
        r.build(clustered(1))
        assert r.search(clustered(2, seed=1), 1, **self.query)[1].tolist() == [[0], [0]]

    def test_dimension_mismatch_is_an_error(self):
        r = self.make()
        r.build(clustered(50, dim=32))
        with pytest.raises(ValueError, match="dimension"):
            r.search(clustered(2, dim=16), 1, **self.query)

    @pytest.mark.parametrize("dtype", [np.float16, np.float32])
    def test_dtypes_and_determinism(self, dtype):
        db, q = clustered(300).astype(dtype), clustered(10, seed=1).astype(dtype)
        a, b = self.make(), self.make()
        a.build(db)
        b.build(db)
        first = a.search(q, 5, **self.query)[1]
        if self.deterministic_build:
            differ = float(np.mean(first != b.search(q, 5, **self.query)[1]))
            assert differ == 0, f"two builds answer differently in {differ:.1%} of slots (deterministic_build = True)"
        differ = float(np.mean(first != a.search(q, 5, **self.query)[1]))
        assert differ == 0, f"one index answers the same queries differently in {differ:.1%} of slots"

    def test_missing_library_says_how_to_install(self):
        if self.library is None:
            pytest.skip("needs no extra library")
        r = self.make()
        cls = type(r)
        build = {k: v for k, v in r.config.items()}
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.run([sys.executable, "-c", _WITHOUT_LIBRARY, self.library, cls.__module__, cls.__qualname__,
                               json.dumps(build)], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = json.loads(proc.stdout.splitlines()[-1])
        top = self.library.split(".")[0]
        assert "import" not in out, (f"without {top}, importing {cls.__module__} fails ({out.get('import')}): import "
                                     "the library inside methods (rdmbench.errors.require), not at module top level")
        broken = {ep: why for ep, why in out["broken"].items() if cls.__module__ in ep}
        assert not broken, f"without {top}, `rdmbench plugins` lists the plugin as failed to load: {broken}"
        if get_registry().info("retriever", self.name).package != "(registered in-process)":
            assert self.name in out["names"], f"without {top}, {self.name!r} is not listed: {out['names']}"
        for step in ("check_requirements", "build"):
            assert out[step].startswith("MissingDependency") and "pip install" in out[step], (
                f"without {top}, {step}() gave {out[step]!r}: declare `requires = {{{self.library!r}: INSTALL}}` "
                "with the install command in INSTALL")
        assert "built-in" in out["build"], f"name a built-in to use instead in the hint: {out['build']!r}"


class SamplingModeContract:
    """What every sampling mode must do. Subclass it and set, as class attributes:

    - ``name``: the registered plugin name; ``args``: constructor arguments (``sample.mode`` minus name);
    - ``seeded``: True when the queries depend on the seed (drawn), False when they do not (a fixed list).

    The mode reads a small fake source (a 60-entry sampling database, 40 training images' neighbours,
    25 held-out images, classes "a", "b", "c", and a text embedder: a fixed 16-d vector per text); reading
    anything its ``needs`` does not name fails.
    """

    name = ""
    args: dict = {}
    seeded = True

    def make(self, **overrides):
        spec = get_registry().validate("sampling_mode", {"name": self.name, **self.args, **overrides})
        return get_registry().create("sampling_mode", spec)

    def source(self, needs: tuple[str, ...]):
        from rdmbench.api import SamplingSource

        rng = np.random.default_rng(0)
        values = {
            "database_embeddings": clustered(60, 16), "database_images": rng.integers(0, 256, (60, 8, 8, 1), np.uint8),
            "database_labels": rng.integers(0, 3, 60), "database_class_names": ("a", "b", "c"),
            "proposal_ids": rng.integers(0, 60, (40, 16)),
            "reference_embeddings": clustered(25, 16, seed=2),
            "reference_images": rng.integers(0, 256, (25, 8, 8, 1), np.uint8),
            "reference_labels": rng.integers(0, 3, 25), "reference_class_names": ("a", "b", "c"),
        }
        gated = {"proposal_ids": "proposal", **{k: "reference" for k in values if k.startswith("reference_")}}

        values["class_names"] = ("a", "b", "c")

        def load(name):
            if name not in values:
                raise AttributeError(name)
            if name in gated and gated[name] not in needs:
                raise AssertionError(f"the mode read {name} but its needs {needs} do not name {gated[name]!r}")
            return values[name]

        def embed_text(texts):
            if "text" not in needs:
                raise AssertionError(f"the mode embedded text but its needs {needs} do not name 'text'")
            rows = [np.random.default_rng(list(t.encode())).normal(size=16) for t in texts]
            x = np.asarray(rows, np.float32).reshape(len(texts), 16)
            return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)

        return SamplingSource(load, embed_text)

    def queries(self, num=30, k=4, seed=0, **overrides):
        mode = self.make(**overrides)
        return mode, mode.queries(self.source(type(mode).needs), num, k, seed)

    def test_one_query_per_sample(self):
        mode, q = self.queries(num=30)
        assert len(q.ids) == 30
        if q.embeddings is not None:
            assert q.embeddings.shape == (30, 16) and q.embeddings.dtype == np.float32
        if q.images is not None:
            assert q.images.shape == (30, 8, 8, 1) and q.images.dtype == np.uint8
        if q.labels is not None:
            assert len(q.labels) == 30 and q.class_names
        if q.omit is not None:
            assert q.omit.shape == (30,) and ((q.omit == -1) | ((q.omit >= 0) & (q.omit < 60))).all()
            assert mode.extra_neighbours() >= 1, "a mode that omits ids must search extra neighbours"
        if q.texts is not None:
            assert len(q.texts) == 30 and all(isinstance(t, str) and t for t in q.texts)
        if q.pool is not None:
            assert mode.searched(4) >= q.pool >= 4, "a pool of l must be searched and hold at least k"
        assert q.source, "say where the queries come from (a row column)"

    def test_reproducible_and_seeded(self):
        _, a = self.queries(seed=3)
        _, b = self.queries(seed=3)
        np.testing.assert_array_equal(a.ids, b.ids)
        _, c = self.queries(seed=4)
        assert (not np.array_equal(a.ids, c.ids)) == self.seeded

    def test_check_k_answers_in_one_line(self):
        mode = self.make()
        for k, k_train in ((0, 4), (4, 4), (16, 1), (0, 0)):
            problem = mode.check_k(k, k_train)
            assert problem is None or (isinstance(problem, str) and "\n" not in problem)
        assert mode.check_k(mode.default_k(4), 4) is None
        assert mode.check_classes(("a", "b", "c")) is None

    def test_registered_with_a_description(self):
        info = get_registry().info("sampling_mode", self.name)
        assert info.cls.description(), "the first docstring line is what `rdmbench plugins` shows"


class HeadContract:
    """What every head must do, a diffusion head (latents) or a token head (codebook ids). Subclass it and
    set, as class attributes:

    - ``spec``: the head spec (``{"name": ..., **constructor arguments}``), small enough to fit in seconds
      (``train_steps`` of a few, ``batch_size`` of 4);
    - ``sampler``: SampleRequest settings for this head (``{"steps": 2}`` for diffusion, ``{"top_k": 8}``);
    - ``shape``, ``codebook_size``, ``context_dim``: what the head is built for (defaults: a 1x8x8 latent
      or a 4x4 grid of 16 codes, 12-d neighbour embeddings).

    Checked: the plugin is registered and described; samples have the head's shape and dtype (token ids in
    range); fitting and sampling are deterministic for a seed and the sampling seed matters; fitting
    changes the weights and reports ``head_parameters``; save/load round-trips samples exactly; the
    parametric baseline (k = 0, same ``context_dim``) has a parameter count within 2 % of the retrieval
    head's and ignores any neighbours it is given; guidance (when the head supports it) changes samples
    and scale 1 equals no guidance; ``check_sampler`` answers in one line.
    """

    spec: dict = {}
    sampler: dict = {}
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
        head.info = head.fit(self.data(k), seed=seed)
        return head

    def request(self, k: int = 2, **kw):
        from rdmbench.api import SampleRequest

        context = self.data(k).context(np.arange(self.num)) if k else None
        return SampleRequest(context, self.num, **{"seed": 3, "batch_size": 4, **self.sampler, **kw})

    def weights(self, head) -> np.ndarray:
        return np.concatenate([p.detach().cpu().numpy().ravel() for p in head.network().parameters()])

    def test_registered_and_described(self):
        info = get_registry().info("head", self.spec["name"])
        assert info.cls.description(), "the first docstring line is what `rdmbench plugins` shows"
        assert info.cls.generates in ("latents", "tokens")

    def test_sample_shape_dtype_and_seed(self):
        head = self.fitted()
        out = head.sample(self.request())
        assert out.shape == (self.num, *self.inputs(2).shape), out.shape
        if self.tokens:
            assert out.dtype == np.int64 and out.min() >= 0 and out.max() < self.codebook_size
        else:
            assert out.dtype == np.float32 and np.isfinite(out).all()
        assert not np.array_equal(out, head.sample(self.request(seed=4))), "the sampling seed must matter"

    def test_fit_is_seeded_and_trains(self):
        a, b = self.fitted(), self.fitted()
        np.testing.assert_array_equal(a.sample(self.request()), b.sample(self.request()))
        assert not np.array_equal(self.weights(a), self.weights(self.make())), "fit left the weights as they were"
        assert a.info["head_parameters"] == a.parameter_count() > 0
        assert not np.array_equal(self.weights(a), self.weights(self.fitted(seed=1))), "the fit seed must matter"

    def test_save_load_round_trip(self, tmp_path):
        head = self.fitted()
        head.save(tmp_path)
        again = self.make(seed=5)
        again.load(tmp_path)
        np.testing.assert_array_equal(head.sample(self.request()), again.sample(self.request()))

    def test_baseline_has_the_same_parameters(self):
        retrieval, baseline = self.make(k=4).parameter_count(), self.make(k=0).parameter_count()
        assert abs(baseline - retrieval) <= 0.02 * retrieval, f"baseline {baseline} vs retrieval head {retrieval}"

    def test_baseline_ignores_neighbours(self):
        from dataclasses import replace

        head = self.fitted(k=0)
        plain = head.sample(self.request(k=0))
        rng = np.random.default_rng(1)
        for _ in range(2):
            context = rng.standard_normal((self.num, 2, self.context_dim)).astype(np.float32)
            assert head.sample(replace(self.request(k=0), context=context)).tobytes() == plain.tobytes()

    def test_guidance(self):
        head = self.fitted()
        if not head.supports_guidance():
            pytest.skip("this head as configured has no null conditioning")
        plain = head.sample(self.request())
        assert head.sample(self.request(guidance_scale=1.0)).tobytes() == plain.tobytes()
        assert not np.array_equal(head.sample(self.request(guidance_scale=3.0)), plain)

    def test_check_sampler_answers_in_one_line(self):
        head = self.make()
        assert head.check_sampler(self.request(), self.codebook_size if self.tokens else None) is None
        problem = head.check_sampler(self.request(top_k=10 ** 6, temperature=0.0), self.codebook_size)
        assert isinstance(problem, str) and problem and "\n" not in problem
