"""Contract test classes a plugin's tests subclass, in this package or in an outside one.

    from rdmbench.testing import RetrieverContract

    class TestMyRetriever(RetrieverContract):
        name = "my-retriever"            # the registered plugin name
        build = {"trees": 8}             # constructor arguments
        query = {"search_k": 2000}       # query-time arguments
        library = "mylib"                # the module whose absence must give an install hint

Needs pytest (the ``dev`` extra).
"""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

from rdmbench.errors import MissingDependency, RdmbenchError
from rdmbench.registry import get_registry


def clustered(n: int, dim: int = 32, centers: int = 20, seed: int = 0) -> np.ndarray:
    """L2-normalised points around random centres: neighbours are well defined, as in real embeddings."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim))
    x = c[rng.integers(0, centers, n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_ids(db: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(q @ db.T), axis=1, kind="stable")[:, :k]


class RetrieverContract:
    name = ""
    build: dict = {}
    query: dict = {}
    #: the importable module the plugin wraps; None for a plugin that needs no extra library
    library: str | None = None
    min_recall = 0.95
    #: False for compressed indices (PQ) whose returned scores are estimates
    exact_scores = True
    #: False where the library draws random state it exposes no seed for: then only the same index
    #: (and its saved copy) must answer identically, not a second build
    deterministic_build = True

    def make(self, **overrides):
        spec = get_registry().validate("retriever", {"name": self.name, **self.build, **overrides})
        return get_registry().create("retriever", spec)

    def test_recall_against_exact(self):
        db, q = clustered(2000), clustered(100, seed=1)
        r = self.make()
        r.build(db)
        sims, ids = r.search(q, 10, **self.query)
        truth = exact_ids(db, q, 10)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)])
        assert recall >= self.min_recall
        assert sims.dtype == np.float32 and ids.dtype == np.int64 and sims.shape == ids.shape == (100, 10)
        assert (np.diff(sims, axis=1) <= 1e-5).all(), "results must be best first"

    def test_l2_metric_ranks_by_distance(self):
        rng = np.random.default_rng(0)
        db = (rng.standard_normal((500, 16)) * rng.uniform(0.5, 3, (500, 1))).astype(np.float32)
        q = rng.standard_normal((20, 16)).astype(np.float32)
        r = self.make(metric="l2")
        r.build(db)
        scores, ids = r.search(q, 5, **self.query)
        truth = np.argsort(((q[:, None] - db[None]) ** 2).sum(-1), axis=1)[:, :5]
        assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ids, truth)]) >= min(0.9, self.min_recall)
        if self.exact_scores:
            true_sq = ((q - db[ids[:, 0]]) ** 2).sum(-1)
            np.testing.assert_allclose(scores[:, 0], -true_sq, rtol=1e-3, atol=1e-3)

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
        if self.deterministic_build:
            np.testing.assert_array_equal(a.search(q, 5, **self.query)[1], b.search(q, 5, **self.query)[1])
        np.testing.assert_array_equal(a.search(q, 5, **self.query)[1], a.search(q, 5, **self.query)[1])

    def test_missing_library_says_how_to_install(self, monkeypatch):
        if self.library is None:
            pytest.skip("needs no extra library")
        monkeypatch.setitem(sys.modules, self.library, None)  # makes `import library` raise ImportError
        module = importlib.import_module(type(self.make()).__module__)
        with pytest.raises(MissingDependency, match="pip install"):
            self.make().build(clustered(10))
        assert "built-in" in str(getattr(module, "INSTALL", "built-in")), "name a built-in to use instead"
