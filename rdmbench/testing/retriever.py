"""The retriever contract: what every retriever passes (``rdmbench.api.Retriever``).

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

import numpy as np
import pytest

from rdmbench.errors import RdmbenchError
from rdmbench.registry import get_registry
from rdmbench.testing.common import assert_missing_library_explained, clustered, exact_ids, recall


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
        out = assert_missing_library_explained(self.library, "retriever", type(r), self.name, dict(r.config),
                                               ("build", "plugin.build(np.ones((10, 8), np.float32))"))
        assert "built-in" in out["build"], f"name a built-in to use instead in the hint: {out['build']!r}"
