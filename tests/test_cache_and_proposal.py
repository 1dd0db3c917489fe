"""Stage cache atomicity and the proposal p_D with top-m truncation."""

from __future__ import annotations

import numpy as np
import pytest

from rdmbench import proposal
from rdmbench.cache import StageCache, make_key


def test_key_depends_on_config_and_inputs():
    assert make_key("s", {"a": 1}) == make_key("s", {"a": 1})
    assert make_key("s", {"a": 1}) != make_key("s", {"a": 2})
    assert make_key("s", {"a": 1}, {"x": "k1"}) != make_key("s", {"a": 1}, {"x": "k2"})


def test_interrupted_write_leaves_nothing(tmp_path):
    cache = StageCache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with cache.write("stage", "k", {}) as tmp:
            (tmp / "half.npy").write_bytes(b"x")
            raise KeyboardInterrupt
    assert not cache.done("stage", "k")
    assert list((tmp_path / "stage").iterdir()) == []
    with cache.write("stage", "k", {}) as tmp:
        (tmp / "out").write_text("ok")
    assert cache.done("stage", "k") and (cache.path("stage", "k") / "out").read_text() == "ok"


def test_proposal_counts_neighbour_frequency():
    ids = np.array([[0, 1], [0, 2], [0, 1]])
    p = proposal.proposal(ids, 2, 4)
    np.testing.assert_allclose(p, [3 / 6, 2 / 6, 1 / 6, 0])
    np.testing.assert_allclose(proposal.proposal(ids, 1, 4), [1, 0, 0, 0])


def test_top_m_keeps_most_likely_fraction():
    p = np.array([0.1, 0.4, 0.2, 0.3])
    np.testing.assert_allclose(proposal.truncate_top_m(p, 0.5), [0, 4 / 7, 0, 3 / 7])
    np.testing.assert_allclose(proposal.truncate_top_m(p, 1.0), p)
    with pytest.raises(ValueError):
        proposal.truncate_top_m(p, 0.0)


def test_pseudo_queries_follow_proposal_and_are_seeded():
    p = np.array([0.0, 0.75, 0.25])
    a = proposal.draw_pseudo_queries(p, 4000, 1)
    assert (a == proposal.draw_pseudo_queries(p, 4000, 1)).all()
    assert (a != 0).all() and abs((a == 1).mean() - 0.75) < 0.03


def test_draws_never_leave_the_top_m_set():
    rng = np.random.default_rng(0)
    p = proposal.proposal(rng.integers(0, 1000, (2000, 4)) ** 2 // 1000, 4, 1000)  # skewed, with ties
    kept = proposal.truncate_top_m(p, 0.01)
    top = set(np.flatnonzero(kept))
    assert len(top) == 10 and min(p[list(top)]) >= np.sort(p)[-10]
    assert set(proposal.draw_pseudo_queries(kept, 5000, 0).tolist()) <= top
    assert not set(proposal.draw_pseudo_queries(p, 5000, 0).tolist()) <= top
