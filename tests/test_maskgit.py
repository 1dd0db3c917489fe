"""MaskGIT head: the shared head contract, then what is MaskGIT's own: the decoding schedule's mask counts, the
masked-only loss, the sampler options and that it learns to read its neighbours (tests/test_rarm.py's toy).
Tiny configs on the CPU, seconds each."""

from __future__ import annotations

import numpy as np
import pytest

from rdmbench.api import HeadInputs, SampleRequest, TrainingData, TrainSettings
from rdmbench.testing import HeadContract
from rdmbench_plugins.heads.maskgit import MaskGITHead, masked_after
from test_rarm import DIM, GRID, VOCAB, losses_with_own_and_shifted_neighbours, toy


class TestMaskGITContract(HeadContract):
    spec = {"name": "maskgit", "n_layer": 1, "n_embd": 32, "n_head": 2}
    train = {"steps": 3, "batch_size": 4}
    sampler = {"iterations": 4, "schedule": "linear"}
    bad_sampler = {"iterations": 0}


def make(k: int = 4, seed: int = 0, **cfg) -> MaskGITHead:
    head = MaskGITHead(**{"n_layer": 1, "n_embd": 32, "n_head": 2, **cfg})
    head.setup(HeadInputs(GRID, DIM, k, VOCAB), "cpu", seed)
    return head


def request(data: TrainingData, num: int = 12, **kw) -> SampleRequest:
    return SampleRequest(context=data.context(np.arange(num)), num=num, **{"seed": 3, "batch_size": 5, **kw})


@pytest.fixture(scope="module")
def trained():
    """A head trained 150 steps of the shared loop on the toy (a few seconds)."""
    data, labels, patterns = toy()
    head = make()
    info = head.fit(data, seed=0, settings=TrainSettings(steps=150, batch_size=32, lr=3e-3, warmup_steps=10))
    return head, data, labels, patterns, info


def test_decoding_schedule():
    # 49 tokens (7x7) in 8 steps: floor(49 cos(pi/2 t/8)), then all at the last step (MaskGIT's counts)
    assert masked_after(49, 8) == [48, 45, 40, 34, 27, 18, 9, 0]
    assert masked_after(49, 7, "linear") == [42, 35, 28, 21, 14, 7, 0]
    assert masked_after(16, 1) == [0]
    # more steps than tokens: one revealed per step until one is left, which the last step reveals
    assert masked_after(3, 5) == [2, 1, 1, 1, 0]


def test_loss_is_on_the_masked_positions_only():
    """Each item draws its own mask ratio (at least one token masked), and the loss is the cross-entropy at the
    positions the model saw as [MASK], whatever it predicts at the visible ones."""
    import torch

    head = make(cond_dropout=0.0)
    data, *_ = toy(n=8)
    seen = []
    forward = head.model.forward
    head.model.forward = lambda ids, *a: seen.append(ids) or forward(ids, *a)
    loss = head.loss(head.model, data, torch.arange(8), torch.Generator().manual_seed(0))
    masked = seen[0] == head.mask_id
    assert masked.any(dim=1).all() and (~masked).any() and len(set(masked.sum(dim=1).tolist())) > 1
    targets = torch.from_numpy(data.latents[:8].reshape(8, -1))
    logits = forward(seen[0], torch.from_numpy(data.context(np.arange(8))))
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits[masked], targets[masked]))
    assert (seen[0][~masked] == targets[~masked]).all()


def test_sampler_options_matter(trained):
    head, data, *_ = trained
    plain = head.sample(request(data))
    assert not np.array_equal(plain, head.sample(request(data), iterations=2))
    assert not np.array_equal(plain, head.sample(request(data), schedule="linear"))
    assert not np.array_equal(plain, head.sample(request(data), temperature=4.5))
    greedy = head.sample(request(data), temperature=0.0)
    np.testing.assert_array_equal(greedy, head.sample(request(data), temperature=0.0))


def test_sampler_errors():
    head = make()
    assert head.check_sampler(VOCAB) is None and head.check_sampler(VOCAB, temperature=0.0) is None
    for bad, key in ((dict(iterations=0), "iterations"), (dict(temperature=-1.0), "temperature"),
                     (dict(schedule="square"), "schedule")):
        problem = head.check_sampler(VOCAB, **bad)
        assert problem and key in problem and "\n" not in problem
        with pytest.raises(ValueError, match=key):
            head.sample(SampleRequest(context=None, num=1), **bad)
    with pytest.raises(ValueError, match="guidance_batching"):
        head.sample(SampleRequest(context=None, num=1, guidance_batching="both"))


def test_guidance_batched_and_split_agree(trained):
    head, data, *_ = trained
    guided = {m: head.sample(request(data, num=100, batch_size=50, guidance_scale=3.0, guidance_batching=m))
              for m in ("split", "batched")}
    assert (guided["split"] == guided["batched"]).mean() > 0.95  # the two differ in the last bits only


def test_learns_from_neighbours(trained):
    """Masked-token loss falls, is far higher with another class's neighbours, and samples follow the
    neighbours' class."""
    head, data, labels, patterns, info = trained
    true, shifted = losses_with_own_and_shifted_neighbours(head, data, info)
    assert shifted > true + 0.5, (true, shifted)
    out = head.sample(request(data, num=40, batch_size=40))
    assert (out == patterns[labels[:40]]).mean() > 0.7
