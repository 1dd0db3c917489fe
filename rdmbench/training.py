"""The one training loop every head shares: AdamW, linear warm-up, gradient clipping, EMA, progress.

A head supplies its model (``Head.network()``), its loss on a batch (``Head.loss``) and its settings
(``Head.train_settings()``); this module does the rest, so RDM, RARM and their parametric baselines
are trained by the same code and differ only in what they compute. Backward passes and clipping go
through Hugging Face ``accelerate``'s ``Accelerator``, which is what lets a later multi-process run
wrap the same loop (DDP, mixed precision) without changing it. The head keeps its device: the
accelerator is told not to move anything (``device_placement=False``), because the pipeline has
already resolved the device, and on one process ``prepare`` then only wraps the optimizer.

Batches are drawn with replacement by a seeded ``torch.Generator``, indices only: ``TrainingData``
may be memory-mapped and is gathered a batch at a time. The same seed gives the same weights.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # rdmbench.api's Head.fit imports this module
    from rdmbench.api import Head, TrainingData, TrainSettings

#: points of the loss curve kept in the training stage's info (means over equal stretches of steps)
CURVE_POINTS = 10


class Trainer:
    """The loop's state for one head; ``step()`` is one optimisation step (benchmarks time it alone)."""

    def __init__(self, head: Head, data: TrainingData, seed: int):
        import torch
        from accelerate import Accelerator
        from diffusers.optimization import get_scheduler
        from diffusers.training_utils import EMAModel

        self.head, self.data = head, data
        self.settings: TrainSettings = head.train_settings()
        s = self.settings
        model = head.network()
        device = next(model.parameters()).device
        self.accelerator = Accelerator(cpu=device.type == "cpu", device_placement=False)
        torch.manual_seed(seed)  # anything a head draws outside the generator (dropout) is seeded too
        self.generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        schedule = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=s.warmup_steps)
        self.model, self.optimizer, self.schedule = self.accelerator.prepare(model, optimizer, schedule)
        self.model.train()
        self.ema = EMAModel(model.parameters(), decay=s.ema_decay, use_ema_warmup=True, power=s.ema_power) \
            if s.ema_decay > 0 else None
        self.n = len(data.latents)

    def step(self) -> float:
        import torch

        s = self.settings
        index = torch.randint(0, self.n, (s.batch_size,), generator=self.generator)
        loss = self.head.loss(self.model, self.data, index, self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        if s.grad_clip > 0:
            self.accelerator.clip_grad_norm_(self.model.parameters(), s.grad_clip)
        self.optimizer.step()
        self.schedule.step()
        if self.ema is not None:
            self.ema.step(self.model.parameters())
        return float(loss.detach())

    def finish(self) -> None:
        """Leave the head's network holding the EMA weights, in eval mode: what is sampled and saved."""
        model = self.accelerator.unwrap_model(self.model)
        if self.ema is not None:
            self.ema.copy_to(model.parameters())
        model.eval()


def fit(head: Head, data: TrainingData, seed: int, progress: Any = None) -> dict[str, Any]:
    """Train ``head`` for its ``train_settings().steps``; returns what the training stage records."""
    trainer = Trainer(head, data, seed)
    steps = trainer.settings.steps
    losses: list[float] = []
    start = time.perf_counter()
    with progress.task("train head", steps) if progress else nullcontext() as advance:
        for _ in range(steps):
            losses.append(trainer.step())
            if advance:
                advance(1)
    seconds = time.perf_counter() - start
    trainer.finish()
    tail = losses[-max(1, len(losses) // 10):]
    curve = [float(np.mean(part)) for part in np.array_split(np.asarray(losses), min(CURVE_POINTS, steps))
             if len(part)] if steps else []
    return {"train_loss_last10pct": float(np.mean(tail)) if tail else None, "train_steps": steps,
            "train_images_per_s": steps * trainer.settings.batch_size / max(seconds, 1e-9),
            "train_loss_curve": curve, "head_parameters": head.parameter_count()}
