"""Shared fixtures: small suites on the generated synthetic-shapes dataset (no files needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True, scope="session")
def _no_onednn_for_toy_models():
    """oneDNN spends seconds planning every new conv shape; the toy models of tests never repay it.

    Real runs keep it on (it doubles UNet training throughput at 28x28, benchmarks/RESULTS.md).
    """
    import torch

    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = previous

TINY_BASE = """
suite: tiny
version: 1
base:
  seed: 0
  k_train: 2
  data:
    dataset: {name: synthetic-shapes, image_size: 16, train_size: 240, test_size: 80}
    train_size: 120
    reference_size: 60
  database: {name: from-dataset, dataset: {name: synthetic-shapes, image_size: 16, train_size: 240, test_size: 80}, size: 100}
  first_stage: {name: identity}
  encoder: {name: efficientnet-lite, variant: lite0, image_size: 32, batch_size: 64}
  retriever: {name: exact}
  head: {name: rdm, block_out_channels: [8, 16], attention_levels: [false, true], norm_num_groups: 8,
         cross_attention_dim: 16, train_steps: 3, batch_size: 8}
  sample: {num: 24, steps: 2, batch_size: 12}
  metrics:
    feature_extractor: {name: efficientnet-lite, variant: lite2, image_size: 32, batch_size: 64}
    use: {fid: {}, kid: {subset_size: 10, subsets: 5}, precision-recall: {}, class-agreement: {}}
sweep:
  grid:
    k_train: [0, 2]
"""


@pytest.fixture
def tiny_suite(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_BASE)
    return path


def write_suite(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path
