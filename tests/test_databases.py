"""Every built-in database through the public contract (``rdmbench.testing.DatabaseContract``); what is
particular to each is in test_datasets.py (from-dataset), test_mixed_database.py and test_patches_database.py.

X is every third image of a 120-image synthetic-shapes train split, and each database draws from that same
split, so that excluding X by content has 40 images to drop.
"""

from __future__ import annotations

import pytest

from rdmbench.api import Database
from rdmbench.testing import DatabaseContract

from conftest import register_for_test

SHAPES = {"name": "synthetic-shapes", "image_size": 16, "train_size": 120, "test_size": 40}


class TestFromDataset(DatabaseContract):
    spec = {"name": "from-dataset", "dataset": SHAPES, "split": "train", "size": 50}
    expected_excluded = 40


class TestFromDatasetEverythingLeft(DatabaseContract):
    spec = {"name": "from-dataset", "dataset": SHAPES, "split": "train"}
    expected_excluded = 40


class TestFromDatasetKeepingX(DatabaseContract):
    spec = {"name": "from-dataset", "dataset": SHAPES, "split": "train", "exclude_train": False}
    disjoint = False  # the opt-in: X stays in D
    expected_excluded = 0


class TestMixed(DatabaseContract):
    spec = {"name": "mixed", "parts": [{"name": "from-dataset", "dataset": SHAPES, "size": 30},
                                       {"name": "from-dataset", "dataset": SHAPES, "split": "test", "size": 20}]}


class TestPatches(DatabaseContract):
    spec = {"name": "patches", "database": {"name": "from-dataset", "dataset": SHAPES, "size": 30}, "size": 8,
            "per_image": 2}
    expected_excluded = 40


# --- the contract fails a database that breaks its promises, saying what it found --------------------


def test_the_contract_catches_a_database_that_keeps_x(request, monkeypatch):
    class Leaky(Database):
        """Test fixture: D is X itself, and its size_hint is wrong."""

        name = "test-leaky"

        def size_hint(self):
            return 7

        def build(self, train, seed):
            return train

    register_for_test(request, monkeypatch, "rdmbench_databases", Leaky)

    class Contract(DatabaseContract):
        spec = {"name": "test-leaky"}

    contract, x = Contract(), Contract().train()
    built = (contract.make(), x, x, x)
    with pytest.raises(AssertionError, match="D holds 40 images of X"):
        contract.test_disjoint_from_x(built)
    with pytest.raises(AssertionError, match=r"size_hint\(\) = 7, but build gave 40"):
        contract.test_size_hint_and_image_shape(built)
    with pytest.raises(AssertionError, match="seed 1 built the same D"):
        contract.test_deterministic_for_a_seed(built)
