"""Every retriever subclasses the contract in rdmbench.testing in a few lines."""

from __future__ import annotations

from rdmbench.testing import RetrieverContract


class TestExact(RetrieverContract):
    name = "exact"
    min_recall = 1.0


class TestFaissHNSW(RetrieverContract):
    name = "faiss"
    build = {"index_type": "hnsw"}
    library = "faiss"


class TestFaissIVF(RetrieverContract):
    name = "faiss"
    build = {"index_type": "ivf-flat"}
    query = {"nprobe": 8}
    library = "faiss"


class TestFaissIVFPQ(RetrieverContract):
    name = "faiss"
    build = {"index_type": "ivf-pq", "pq_m": 8}
    query = {"nprobe": 16}
    min_recall = 0.6  # 8 bytes per 32-d vector: PQ is lossy by design
    exact_scores = False


class TestScannDefault(RetrieverContract):
    name = "scann"
    library = "scann"


class TestScannAH(RetrieverContract):
    name = "scann"
    build = {"mode": "ah"}
    query = {"reorder": 200}


class TestScannTreeAH(RetrieverContract):
    name = "scann"
    build = {"mode": "tree-ah", "num_leaves": 20}
    query = {"leaves_to_search": 15, "reorder": 200}
    min_recall = 0.9  # 0.95-1.0 over builds: the tree's k-means differs from build to build
    deterministic_build = False  # ScaNN seeds its tree training internally; its Python API takes no seed


class TestHnswlib(RetrieverContract):
    name = "hnswlib"
    library = "hnswlib"
