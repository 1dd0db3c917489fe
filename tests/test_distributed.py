"""Training across processes: a suite launched by ``torchrun`` with two CPU processes (gloo).

The two processes split every batch of the same effective size and average their gradients (DDP through
accelerate); each draws its own diffusion noise, so the weights differ from a one-process run in their
noise, not in what was learnt. Tolerance, measured on this head (40 steps, batch 16, the tiny suite): the
two heads' losses on a fixed evaluation set (1.24 untrained) are 0.34631 and 0.34635, 0.01 % apart; a
one-process head trained at half the effective batch (8) lands 3.8 % away (0.3594). The test allows 2 %:
it tells a changed effective batch apart, and asks both heads to have learnt (below 60 % of untrained).
The two processes must also end with bit-equal weights: the training stage records each process's digest
of them (``train_weights_digests``), and the saved head is the one they agree on. A process that trained
alone, or on other batches, would differ there even where the losses cannot tell.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_BASE

SUITE = TINY_BASE.replace("train: {steps: 3, batch_size: 8}",
                          "train: {steps: 40, batch_size: 16, lr: 0.001, warmup_steps: 0, ema_decay: 0}") \
    .replace("    k_train: [0, 2]", "    k_train: [2]")
RUN = "k_train=2_seed=0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(tmp: Path, results: str, processes: int, suite: str = "suite.yaml") -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = ["-m", "rdmbench", "run", str(tmp / suite), "--results", str(tmp / results),
               "--cache", str(tmp / "cache"), "--no-report"]
    if processes > 1:
        command = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                   "--master_port", str(_free_port()), *command]
    return subprocess.run([sys.executable, *command], env=env, capture_output=True, text=True, timeout=1800)


def _row(tmp: Path, results: str) -> dict:
    rows = list(csv.DictReader(open(tmp / results / "results.csv")))
    assert len(rows) == 1, rows  # one writer: the other process wrote no row
    return rows[0]


def _stages(tmp: Path, results: str) -> dict[str, dict]:
    return {s["stage"]: s for s in json.loads((tmp / results / "runs" / RUN / "stages.json").read_text())}


def _digest(network) -> str:
    """SHA-256 of a network's weights, as rdmbench.training.Trainer.digests computes it."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in network.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _head(tmp: Path, results: str, trained: bool = True):
    import yaml

    from rdmbench.api import HeadInputs
    from rdmbench.cache import load_array
    from rdmbench.registry import get_registry

    cfg = yaml.safe_load((tmp / results / "runs" / RUN / "config.yaml").read_text())
    cache, stages = tmp / "cache", _stages(tmp, results)
    latents = load_array(cache / "first_stage" / stages["first_stage"]["key"] / "latents.npy")
    emb = load_array(cache / "embeddings" / stages["embeddings"]["key"] / "embeddings.npy")
    head = get_registry().create("head", cfg["head"])
    head.setup(HeadInputs(tuple(latents.shape[1:]), emb.shape[1], 2, None), "cpu", cfg["seed"])
    if trained:
        head.load(cache / "train" / stages["train"]["key"])
    return head


def _evaluation_loss(tmp: Path, results: str, trained: bool = True) -> float:
    """The head's loss on 128 fixed training items with fixed noise: a function of its weights alone."""
    import torch

    from rdmbench.api import TrainingData
    from rdmbench.cache import load_array

    cache, stages = tmp / "cache", _stages(tmp, results)
    latents = load_array(cache / "first_stage" / stages["first_stage"]["key"] / "latents.npy")
    emb = load_array(cache / "embeddings" / stages["embeddings"]["key"] / "embeddings.npy")
    ids = load_array(cache / "neighbours" / stages["neighbours"]["key"] / "ids.npy")
    head = _head(tmp, results, trained)
    data, generator = TrainingData(latents, ids, emb, 2), torch.Generator().manual_seed(123)
    index = torch.randint(0, len(latents), (128,), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        return float(head.loss(head.network().eval(), data, index, generator))


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("launch")
    (tmp / "suite.yaml").write_text(SUITE)
    one = _launch(tmp, "one", 1)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _launch(tmp, "two", 2)
    assert two.returncode == 0, two.stderr[-3000:]
    (tmp / "half.yaml").write_text(SUITE.replace("batch_size: 16", "batch_size: 8"))
    half = _launch(tmp, "half", 1, "half.yaml")
    assert half.returncode == 0, half.stderr[-3000:]
    return tmp, two


def test_two_processes_train_one_head_that_matches_one_process(launched):
    tmp, _ = launched
    one, two = _row(tmp, "one"), _row(tmp, "two")
    assert one["status"] == two["status"] == "ok"
    assert (one["train_processes"], two["train_processes"]) == ("1", "2")
    untrained = _evaluation_loss(tmp, "one", trained=False)
    a, b = _evaluation_loss(tmp, "one"), _evaluation_loss(tmp, "two")
    assert a < 0.6 * untrained and b < 0.6 * untrained, (untrained, a, b)
    assert abs(a - b) / a < 0.02, (a, b)
    half = _evaluation_loss(tmp, "half")  # the control: another effective batch is told apart
    assert abs(a - half) / a > 0.02, (a, half)


def test_the_processes_end_with_the_same_weights(launched):
    tmp, _ = launched
    train = tmp / "cache" / "train" / _stages(tmp, "two")["train"]["key"]
    digests = json.loads((train / "info.json").read_text())["train_weights_digests"]
    assert len(digests) == 2 and digests[0] == digests[1], digests
    assert _digest(_head(tmp, "two").network()) == digests[0]  # the saved head is the one they agree on
    assert _digest(_head(tmp, "one").network()) != digests[0]  # the control: another head's digest differs


def test_the_launch_computes_shared_stages_once_and_writes_one_entry(launched):
    tmp, two = launched
    stages = _stages(tmp, "two")
    # everything before training came from the one-process run's cache; training is keyed on the processes
    assert all(s["cached"] for name, s in stages.items() if name not in ("train", "samples", "generated_features",
                                                                           "metrics", "novelty"))
    assert not stages["train"]["cached"]
    assert stages["train"]["key"] != _stages(tmp, "one")["train"]["key"]
    entries = sorted(p.name for p in (tmp / "cache" / "train").iterdir())
    assert len(entries) == 3 and not any(n.startswith(".") for n in entries), entries  # one, two, half: none torn
    env = json.loads((tmp / "two" / "runs" / RUN / "env.json").read_text())
    assert env["processes"] == 2
    assert two.stdout.count("1 ok, 0 failed") == 1  # one voice: the other process printed nothing


def test_a_batch_that_does_not_split_over_the_processes_is_refused(tmp_path):
    from rdmbench.errors import ConfigError
    from rdmbench.training import Trainer

    from rdmbench.api import TrainSettings

    class Head:
        def network(self):
            import torch

            return torch.nn.Linear(2, 2)

    with pytest.raises(ConfigError, match=r"batch_size 10 must be divisible by processes \(1\) × grad_accumulation \(4\)"):
        Trainer(Head(), type("Data", (), {"latents": np.zeros((4, 2))})(), 0,
                TrainSettings(steps=1, batch_size=10, lr=1e-3, grad_accumulation=4))


@pytest.mark.parametrize("options", [{"grad_accumulation": 2}, {"mixed_precision": "bf16"}], ids=str)
def test_launch_options_train_the_head(options):
    """Gradient accumulation (same effective batch, in two micro-batches) and bf16 autocast each learn."""
    import torch

    from rdmbench.api import HeadInputs, TrainingData, TrainSettings
    from rdmbench.registry import get_registry

    head = get_registry().create("head", {
        "name": "rdm", "block_out_channels": [8, 16], "attention_levels": [False, True], "norm_num_groups": 8,
        "cross_attention_dim": 16})
    head.setup(HeadInputs((1, 8, 8), 4, 2, None), "cpu", 0)
    rng = np.random.default_rng(0)
    latents = np.repeat(rng.normal(size=(4, 1, 8, 8)), 16, axis=0).astype(np.float32)  # four images, learnable
    data = TrainingData(latents, rng.integers(0, 10, (64, 2)), rng.normal(size=(10, 4)).astype(np.float32), 2)

    def loss() -> float:
        with torch.no_grad():
            return float(head.loss(head.network().eval(), data, torch.arange(64), torch.Generator().manual_seed(1)))

    before = loss()
    info = head.fit(data, 0, settings=TrainSettings(steps=30, batch_size=16, lr=1e-3, ema_decay=0, **options))
    assert info["train_processes"] == 1 and info["train_steps"] == 30
    assert loss() < 0.75 * before
