"""The one training loop every head shares: AdamW, linear warm-up, gradient clipping, EMA, progress.

A head supplies its model (``Head.network()``) and its loss on a batch (``Head.loss``); the run supplies the
settings (its ``train:`` section over the head's ``train_defaults``); this module does the rest, so RDM, RARM
and their parametric baselines are trained by the same code and differ only in what they compute. Backward
passes, clipping, autocast (``mixed_precision``), gradient accumulation and several processes go through
Hugging Face ``accelerate``'s ``Accelerator``. The head keeps its device: the accelerator is told not to move
anything (``device_placement=False``), because the pipeline has already resolved it (one GPU per
process under a launcher, rdmbench.device).

Batches are drawn with replacement by a seeded ``torch.Generator``, indices only: ``TrainingData``
may be memory-mapped and is gathered a batch at a time. The same seed gives the same weights.
``batch_size`` is the effective batch whatever the launch: every process draws the same indices and
takes its share, in ``grad_accumulation`` micro-batches, and DDP averages the gradients. Alone, a process
draws its noise from the index generator (as it always did); with others, from a generator of its own
rank, so two processes do not put the same noise on different images. The effective batch is the
same; the draws, and so the weights, differ in their noise (tests/test_distributed.py states by how much).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np

from rdmbench.failpoints import failpoint

if TYPE_CHECKING:  # rdmbench.api's Head.fit imports this module
    from rdmbench.api import Head, TrainingData, TrainSettings

#: points of the loss curve kept in the training stage's info (means over equal stretches of steps)
CURVE_POINTS = 10


class Trainer:
    """The loop's state for one head; ``step()`` is one optimisation step (benchmarks time it alone)."""

    def __init__(self, head: Head, data: TrainingData, seed: int, settings: TrainSettings):
        import torch
        from accelerate import Accelerator, DistributedDataParallelKwargs
        from accelerate.state import AcceleratorState, GradientState
        from diffusers.optimization import get_scheduler
        from diffusers.training_utils import EMAModel

        from rdmbench.errors import ConfigError

        self.head, self.data = head, data
        self.settings = settings
        s = self.settings
        model = head.network()
        device = next(model.parameters()).device
        # accelerate keeps one state per process and refuses another mixed precision in it; runs of a suite may
        # differ, so each loop starts a fresh one (its own tests do the same); the process group is kept
        AcceleratorState._reset_state(reset_partial_state=False)
        GradientState._reset_state()
        # a batch may leave parameters unused in one process and not another (the null context of conditioning
        # dropout when none of its share is dropped): DDP must be told to look, or the processes fall out of step
        self.accelerator = Accelerator(cpu=device.type == "cpu", device_placement=False,
                                       mixed_precision=s.mixed_precision,
                                       gradient_accumulation_steps=s.grad_accumulation,
                                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        self.world, self.rank = self.accelerator.num_processes, self.accelerator.process_index
        parts = self.world * s.grad_accumulation
        if s.batch_size % parts:
            raise ConfigError(f"batch_size {s.batch_size} must be divisible by processes ({self.world}) × "
                              f"grad_accumulation ({s.grad_accumulation}) = {parts}", key="train.batch_size")
        self.micro = s.batch_size // parts
        torch.manual_seed(seed + self.rank)  # anything a head draws outside the generators (dropout) is seeded too
        self.generator = torch.Generator().manual_seed(seed)
        self.noise = self.generator if self.world == 1 else torch.Generator().manual_seed(seed + 7919 * self.rank)
        optimizer = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        # stepped here once per optimisation step: accelerate would step a prepared one once per process
        self.schedule = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=s.warmup_steps)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.model.train()
        self.ema = EMAModel(model.parameters(), decay=s.ema_decay, use_ema_warmup=True, power=s.ema_power) \
            if s.ema_decay > 0 else None
        self.n = len(data.latents)

    def step(self) -> float:
        """One optimisation step over the effective batch; returns its mean loss over every process."""
        import torch

        s = self.settings
        index = torch.randint(0, self.n, (s.batch_size,), generator=self.generator)
        share = len(index) // self.world
        mine = index[self.rank * share:(self.rank + 1) * share]
        losses = []
        for part in torch.split(mine, self.micro):
            with self.accelerator.accumulate(self.model):
                loss = self.head.loss(self.model, self.data, part, self.noise)
                self.accelerator.backward(loss)
                if s.grad_clip > 0 and self.accelerator.sync_gradients:
                    self.accelerator.clip_grad_norm_(self.model.parameters(), s.grad_clip)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach().float())
        self.schedule.step()
        if self.ema is not None:
            self.ema.step(self.accelerator.unwrap_model(self.model).parameters())
        mean = torch.stack(losses).mean()
        if self.world > 1:
            mean = self.accelerator.reduce(mean, "mean")
        return float(mean)

    def finish(self) -> None:
        """Leave the head's network holding the EMA weights, in eval mode: what is sampled and saved."""
        model = self.accelerator.unwrap_model(self.model)
        if self.ema is not None:
            self.ema.copy_to(model.parameters())
        model.eval()

    def digests(self) -> list[str]:
        """Every process's SHA-256 of its finished weights, in rank order: DDP keeps them equal, so a process
        that trained on other data, or did not train with the others, shows here (the training stage records it)."""
        import hashlib

        import torch
        import torch.distributed as dist

        digest = hashlib.sha256()
        for name, tensor in self.accelerator.unwrap_model(self.model).state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        if self.world == 1:
            return [digest.hexdigest()]
        every: list[Any] = [None] * self.world
        dist.all_gather_object(every, digest.hexdigest())
        return every


def fit(head: Head, data: TrainingData, seed: int, settings: TrainSettings, progress: Any = None) -> dict[str, Any]:
    """Train ``head`` for ``settings.steps``; returns what the training stage records."""
    trainer = Trainer(head, data, seed, settings)
    steps = trainer.settings.steps
    losses: list[float] = []
    start = time.perf_counter()
    with progress.task("train head", steps) if progress else nullcontext() as advance:
        for _ in range(steps):
            losses.append(trainer.step())
            failpoint("train.step")
            if advance:
                advance(1)
    seconds = time.perf_counter() - start
    trainer.finish()
    tail = losses[-max(1, len(losses) // 10):]
    curve = [float(np.mean(part)) for part in np.array_split(np.asarray(losses), min(CURVE_POINTS, steps))
             if len(part)] if steps else []
    info = {"train_loss_last10pct": float(np.mean(tail)) if tail else None, "train_steps": steps,
            "train_images_per_s": steps * trainer.settings.batch_size / max(seconds, 1e-9),
            "train_loss_curve": curve, "head_parameters": head.parameter_count(),
            "train_processes": trainer.world}
    if trainer.world > 1:  # one digest per process, all equal when they trained as one (the stage's info.json)
        info["train_weights_digests"] = trainer.digests()
    return info
