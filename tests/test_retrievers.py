"""Every retriever subclasses the contract in rdmbench.testing in a few lines."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from rdmbench import registry
from rdmbench.errors import RdmbenchError
from rdmbench.testing import RetrieverContract, clustered


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
    build = {"index_type": "ivf-pq", "pq_m": 8, "small_database": "flat"}  # the contract's 1..200-item databases
    query = {"nprobe": 16}
    min_recall = 0.6  # 8 bytes per 32-d vector: PQ is lossy by design
    exact_scores = False


class TestScannDefault(RetrieverContract):
    name = "scann"
    library = "scann"


class TestScannAH(RetrieverContract):
    name = "scann"
    build = {"mode": "ah", "small_database": "brute-force"}  # the contract's 1..50-item databases
    query = {"reorder": 200}


class TestScannTreeAH(RetrieverContract):
    name = "scann"
    build = {"mode": "tree-ah", "num_leaves": 20, "small_database": "brute-force"}
    # every leaf searched: the tree's k-means is unseeded (0.86-1.0 at 15 of 20 leaves over builds), so a
    # partial search would test ScaNN's luck; this checks the plugin's tree wiring, scores and ids
    query = {"leaves_to_search": 20, "reorder": 200}
    deterministic_build = False  # ScaNN seeds its tree training internally; its Python API takes no seed


class TestHnswlib(RetrieverContract):
    name = "hnswlib"
    library = "hnswlib"


# -- the contract and the base class themselves ---------------------------------------------------

PLUGIN = '''
"""A test retriever over hnswlib."""
from typing import Literal
import numpy as np
{top_import}
from rdmbench.api import Retriever
from rdmbench.errors import require
from rdmbench.hookspecs import hookimpl

INSTALL = "pip install hnswlib; the built-in `exact` needs nothing"


class Probe(Retriever):
    """Brute force that remembers what it was built with."""

    name = "probe-{tag}"
    requires = {{"hnswlib": INSTALL}}

    def __init__(self, metric: Literal["cosine", "ip", "l2"] = "cosine", depth: int = 1):
        {init}

    def build_index(self, x):
        require("hnswlib", INSTALL)
        self.x = x

    def search_index(self, q, k):
        s = -((q[:, None] - self.x[None]) ** 2).sum(-1) if self.metric == "l2" else q @ self.x.T
        ids = np.argsort(-s, axis=1)[:, :k]
        return np.take_along_axis(s, ids, 1), ids


@hookimpl
def rdmbench_retrievers():
    return [Probe]
'''


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """Write a plugin module, register it in-process; the registry is restored afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_REGISTRY", None)

    def make(tag: str, init: str = "self.depth = depth", top_import: str = ""):
        (tmp_path / f"probe_{tag}.py").write_text(PLUGIN.format(tag=tag, init=init, top_import=top_import))
        module = importlib.import_module(f"probe_{tag}")
        registry.register_in_process(module)
        return module

    yield make
    monkeypatch.setattr(registry, "_REGISTRY", None)


def test_a_plugin_that_forgets_metric_still_searches_by_l2(plugin_module):
    plugin_module("forgets", init="self.depth = depth")  # never sets self.metric
    reg = registry.get_registry()
    r = reg.create("retriever", reg.validate("retriever", {"name": "probe-forgets", "metric": "l2"}))
    assert r.metric == "l2"
    db = np.array([[10.0, 0.0], [1.0, 0.1]], np.float32)  # cosine would pick row 0 for this query
    r.build(db)
    assert r.search(np.array([[1.0, 0.0]], np.float32), 1)[1].tolist() == [[1]]


def test_super_init_with_metric_works(plugin_module):
    plugin_module("super", init="super().__init__(metric=metric)\n        self.depth = depth")
    reg = registry.get_registry()
    assert reg.create("retriever", reg.validate("retriever", {"name": "probe-super", "metric": "ip"})).metric == "ip"


def test_a_retriever_without_a_metric_argument_is_refused_at_definition():
    from rdmbench.api import Retriever

    with pytest.raises(TypeError, match="must take a `metric` argument"):
        type("NoMetric", (Retriever,), {"name": "no-metric", "__init__": lambda self, depth=1: None})


def test_the_contract_catches_a_library_imported_at_module_top_level(plugin_module):
    plugin_module("top", top_import="import hnswlib")

    class Contract(RetrieverContract):
        name = "probe-top"
        library = "hnswlib"

    with pytest.raises(AssertionError, match="module top level"):
        Contract().test_missing_library_says_how_to_install()
    plugin_module("lazy")

    class Lazy(RetrieverContract):
        name = "probe-lazy"
        library = "hnswlib"

    Lazy().test_missing_library_says_how_to_install()  # the same plugin importing inside methods passes


def test_recall_failure_shows_the_measured_value():
    class TooStrict(RetrieverContract):
        name = "faiss"
        build = {"index_type": "ivf-pq", "pq_m": 8}
        min_recall = 0.99

    with pytest.raises(AssertionError, match=r"recall@10 = 0\.\d+ < min_recall 0.99"):
        TooStrict().test_recall_against_exact()


def test_faiss_ivf_pq_on_a_small_database_is_an_error_or_an_explicit_opt_in(tmp_path):
    reg = registry.get_registry()
    r = reg.create("retriever", reg.validate("retriever", {"name": "faiss", "index_type": "ivf-pq", "pq_m": 8}))
    with pytest.raises(RdmbenchError, match=r"ivf-pq: 100 vectors cannot train .*256.*small_database: flat"):
        r.build(clustered(100))
    r = reg.create("retriever", reg.validate("retriever", {"name": "faiss", "index_type": "ivf-pq", "pq_m": 8,
                                                           "small_database": "flat"}))
    r.build(clustered(100))
    r.save(tmp_path)
    assert '"built": "flat"' in (tmp_path / r.MANIFEST).read_text()


def test_scann_explicit_mode_on_a_small_database_is_an_error_or_an_explicit_opt_in():
    reg = registry.get_registry()
    r = reg.create("retriever", reg.validate("retriever", {"name": "scann", "mode": "ah"}))
    with pytest.raises(RdmbenchError, match=r"scann mode 'ah': 50 vectors .*small_database: brute-force"):
        r.build(clustered(50))
    r = reg.create("retriever", reg.validate("retriever", {"name": "scann", "mode": "ah",
                                                           "small_database": "brute-force"}))
    r.build(clustered(50))
    assert r.build_info() == {"built": "brute-force"}


def test_fewer_results_than_k_are_padded_even_when_none_came_back():
    """A ScaNN tree searching one small leaf can return no column for a query: padded, never a crash."""
    from rdmbench.api import Retriever

    class Sparse(Retriever):
        name = "sparse-test"

        def __init__(self, metric: str = "l2", found: int = 0):
            self.found = found

        def build_index(self, x):
            pass

        def search_index(self, q, k):
            return np.zeros((len(q), self.found), np.float32), np.zeros((len(q), self.found), np.int64)

    for found in (0, 2):
        r = Sparse(found=found)
        r.build(np.ones((10, 4), np.float32))
        scores, ids = r.search(np.ones((3, 4), np.float32), 5)
        assert ids.shape == (3, 5) and (ids[:, found:] == -1).all() and np.isneginf(scores[:, found:]).all()
