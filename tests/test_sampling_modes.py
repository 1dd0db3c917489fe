"""Every sampling mode through the shared contract (rdmbench.testing.SamplingModeContract), plus what
only one mode does."""

from __future__ import annotations

import numpy as np
import pytest

from rdmbench.errors import ConfigError
from rdmbench.registry import get_registry
from rdmbench.testing import SamplingModeContract


class TestUnconditional(SamplingModeContract):
    name = "unconditional"
    args = {"top_m": 0.25}


class TestUnconditionalOmitQuery(SamplingModeContract):
    name = "unconditional"
    args = {"omit_query": True}


class TestUniform(SamplingModeContract):
    name = "uniform"


class TestHeldOut(SamplingModeContract):
    name = "held-out"
    seeded = False


def test_top_m_restricts_the_pseudo_queries():
    contract = TestUnconditional()
    _, narrow = contract.queries(num=200, top_m=0.05)
    _, wide = contract.queries(num=200, top_m=1.0)
    assert len(set(narrow.ids.tolist())) <= 3 < len(set(wide.ids.tolist()))  # ceil(0.05 * 60) entries


def test_omit_query_names_the_pseudo_query_itself():
    _, q = TestUnconditionalOmitQuery().queries()
    np.testing.assert_array_equal(q.omit, q.ids)


@pytest.mark.parametrize("top_m", [0.0, -0.1, 1.5])
def test_top_m_outside_0_1_is_refused(top_m):
    with pytest.raises(ConfigError, match="top_m"):
        get_registry().validate("sampling_mode", {"name": "unconditional", "top_m": top_m}, key="sample.mode")


def test_held_out_cycles_through_the_reference_set():
    _, q = TestHeldOut().queries(num=30)
    np.testing.assert_array_equal(q.ids, np.arange(30) % 25)
