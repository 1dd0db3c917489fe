"""Databases larger than memory: embeddings in resumable float16 shards, indices trained on a sample and
filled a chunk at a time, exact search by parts merged, neighbour tables written as they are searched.

Chunk and shard sizes are lowered here so that a few hundred vectors cross every boundary; each test
checks that the parted computation gives what the whole one gives. Peak memory at 5M vectors is measured
by ``benchmarks/bench_large_database.py`` (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numpy as np
import pytest

import rdmbench.chunks as chunks
from rdmbench import stages
from rdmbench.cache import StageCache, load_array, save_array
from rdmbench.pipeline import Pipeline
from rdmbench.progress import Progress
from rdmbench.registry import get_registry


def _database(n=600, d=32, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, d))
    return (centres[rng.integers(0, 12, n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float16)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_exact_search_by_parts_is_the_whole_search(monkeypatch, metric):
    from rdmbench_plugins.retrievers.exact import ExactRetriever

    db, q = _database(), _database(50, seed=1).astype(np.float32)
    whole = ExactRetriever(metric=metric)
    whole.build(db)
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 32 * 4 * 70)  # parts of 70 vectors: 9 parts, the last short
    parted = ExactRetriever(metric=metric, batch_size=16)
    parted.build(np.asarray(db))
    assert parted._db is None  # not copied into memory
    (s1, i1), (s2, i2) = whole.search(q, 10), parted.search(q, 10)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2, rtol=1e-5, atol=1e-5)


def test_faiss_ivf_pq_trains_on_a_sample_and_adds_by_chunks(monkeypatch):
    pytest.importorskip("faiss")
    from rdmbench_plugins.retrievers.faiss_index import FaissRetriever

    db, q = _database(2000), _database(40, seed=1)
    spec = dict(index_type="ivf-pq", nlist=8, pq_m=8, pq_bits=6, train_size=500)
    one = FaissRetriever(**spec)
    one.build(db)
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 32 * 2 * 300)  # seven chunks of 300 rows
    seen = []
    parted = FaissRetriever(**spec)
    original = parted.vector_chunks
    monkeypatch.setattr(parted, "vector_chunks", lambda e: (seen.append(len(c)) or c for c in original(e)))
    parted.build(db)
    assert seen == [300] * 6 + [200]
    (_, i1), (_, i2) = one.search(q, 5, nprobe=8), parted.search(q, 5, nprobe=8)
    np.testing.assert_array_equal(i1, i2)  # the same sample, the same codes, whatever the chunks
    sample = parted.vector_sample(db, 500, 0)
    assert sample.shape == (500, 32) and np.allclose(np.linalg.norm(sample, axis=1), 1, atol=1e-3)


def test_hnswlib_inserted_by_chunks_builds_the_graph_inserted_whole(monkeypatch):
    pytest.importorskip("hnswlib")
    from rdmbench_plugins.retrievers.hnswlib_index import HnswlibRetriever

    db, q = _database(1500), _database(40, seed=1)
    whole = HnswlibRetriever(m=8, ef_construction=40)
    whole.build(db)
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 32 * 2 * 200)  # eight chunks of 200 float16 vectors
    parted = HnswlibRetriever(m=8, ef_construction=40)
    parted.build(db)
    for retriever in (whole, parted):
        retriever.search_threads = 1
    (s1, i1), (s2, i2) = whole.search(q, 5, ef=10), parted.search(q, 5, ef=10)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(s1, s2)


class CountingEncoder:
    """Stands in for the run's encoder: records the images of every call, fails when told to."""

    normalize, calls, fail_at = True, [], None

    def features(self, images, progress=None):
        if self.fail_at is not None and len(CountingEncoder.calls) == self.fail_at:
            raise KeyboardInterrupt  # the run is stopped mid-way
        CountingEncoder.calls.append(len(images))
        return {"embedding": images.reshape(len(images), -1)[:, :8].astype(np.float32) + 1}

    def identity(self):
        return "counting"


def test_embeddings_are_written_in_shards_and_an_interrupted_encoding_resumes(tmp_path, monkeypatch):
    pipe = Pipeline(StageCache(tmp_path / "cache"), get_registry(), Progress(), "cpu")
    images = np.random.default_rng(0).integers(0, 255, (250, 4, 4, 1), dtype=np.uint8)
    source = tmp_path / "source"
    source.mkdir()
    save_array(source / "train_images.npy", images)
    monkeypatch.setattr(stages, "SHARD_ROWS", 64)  # four shards, the last of 58 rows
    monkeypatch.setattr(stages, "encoder", lambda *a, **k: CountingEncoder())
    monkeypatch.setattr(pipe, "fingerprint", lambda kind, spec: spec)
    CountingEncoder.calls, CountingEncoder.fail_at = [], 2
    with pytest.raises(KeyboardInterrupt):
        stages.embeddings(pipe, {"name": "counting"}, source, "train")
    assert CountingEncoder.calls == [64, 64]  # two shards finished and kept
    CountingEncoder.fail_at = None
    entry = stages.embeddings(pipe, {"name": "counting"}, source, "train")
    assert CountingEncoder.calls == [64, 64, 64, 58]  # the resumed stage computed only the missing shards
    emb = load_array(entry / "embeddings.npy")
    want = images.reshape(250, -1)[:, :8].astype(np.float32) + 1
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert emb.dtype == np.float16 and emb.shape == (250, 8)
    np.testing.assert_allclose(emb, want, atol=1e-3)
    assert not list(entry.parent.glob(".partial-*"))  # the shards are gone once joined
