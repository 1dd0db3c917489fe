"""Retriever contract: every retriever subclasses RetrieverContract in a few lines."""

from __future__ import annotations

import numpy as np
import pytest

from rdmbench.registry import get_registry


def clustered(n: int, dim: int = 32, centers: int = 20, seed: int = 0) -> np.ndarray:
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
    min_recall = 0.95

    def make(self):
        spec = get_registry().validate("retriever", {"name": self.name, **self.build})
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

    def test_save_load_round_trip(self, tmp_path):
        db, q = clustered(500), clustered(20, seed=1)
        r = self.make()
        r.build(db)
        r.save(tmp_path)
        again = self.make()
        again.load(tmp_path, db)
        np.testing.assert_array_equal(r.search(q, 5, **self.query)[1], again.search(q, 5, **self.query)[1])

    def test_k_larger_than_database_pads_with_minus_one(self):
        r = self.make()
        r.build(clustered(3))
        sims, ids = r.search(clustered(2, seed=1), 5, **self.query)
        assert (ids[:, :3] >= 0).all() and (ids[:, 3:] == -1).all()

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
        np.testing.assert_array_equal(a.search(q, 5, **self.query)[1], b.search(q, 5, **self.query)[1])


class TestExact(RetrieverContract):
    name = "exact"
    min_recall = 1.0


class TestFaissHNSW(RetrieverContract):
    name = "faiss"
    build = {"index_type": "hnsw"}


class TestFaissIVF(RetrieverContract):
    name = "faiss"
    build = {"index_type": "ivf-flat"}
    query = {"nprobe": 8}


def test_faiss_refuses_a_stale_index(tmp_path):
    from rdmbench.errors import RdmbenchError

    r = get_registry().create("retriever", {"name": "faiss", "index_type": "flat"})
    r.build(clustered(100))
    r.save(tmp_path)
    with pytest.raises(RdmbenchError, match="other embeddings"):
        get_registry().create("retriever", {"name": "faiss", "index_type": "flat"}).load(tmp_path, clustered(100, seed=5))
