"""Pipeline benchmarks, each a ratio measured within one run of this script (the machine is noisy).

1. suite wall time with the stage cache against the same runs with it off;
2. the RDM head's training step against a bare diffusers loop on the same UNet and batch;
3. classifier-free guidance as one batched forward against two separate forwards.

    python benchmarks/bench_pipeline.py [--suite suites/k_train.yaml --profile smoke] [--steps 30]

Prints a markdown table to paste into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def suite_cache_ratio(suite_path: str, profile: str) -> tuple[float, float]:
    from rdmbench import runner
    from rdmbench.progress import Progress
    from rdmbench.suite import load_suite

    suite = load_suite(suite_path, profile)
    times = {}
    for use_cache in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            runner.run_suite(suite, Path(tmp) / "out", Path(tmp) / "cache", use_cache=use_cache, progress=Progress())
            times[use_cache] = time.perf_counter() - start
    return times[True], times[False]


def make_head(channels, k: int, dim: int):
    from rdmbench.api import HeadInputs
    from rdmbench.registry import get_registry

    spec = get_registry().validate("head", {"name": "rdm", "block_out_channels": list(channels),
                                            "attention_levels": [False] * (len(channels) - 1) + [True],
                                            "cond_dropout": 0.1})
    head = get_registry().create("head", spec)
    head.setup(HeadInputs((1, 28, 28), dim, k), "cpu", seed=0)
    return head


def train_step_ratio(steps: int, batch: int = 64, k: int = 4, dim: int = 1280, rounds: int = 3) -> tuple[float, float]:
    """images/s of a step of the shared training loop (rdmbench.training.Trainer: accelerate backward,
    clipping, lr schedule, EMA) with the RDM head's loss vs a bare diffusers loop, same UNet and batch."""
    import torch

    from rdmbench.api import TrainingData
    from rdmbench.training import Trainer

    rng = np.random.default_rng(0)
    latents = torch.from_numpy(rng.standard_normal((4096, 1, 28, 28)).astype(np.float32))
    db = rng.standard_normal((8192, dim)).astype(np.float16)
    data = TrainingData(latents.numpy(), rng.integers(0, 8192, (4096, 16)), db, k)

    head = make_head((32, 64, 64), k, dim)
    trainer = Trainer(head, data, seed=0, settings=head.train_defaults.resolve({"batch_size": batch}))

    bare = make_head((32, 64, 64), k, dim).model.unet
    bare_opt = torch.optim.AdamW(bare.parameters(), lr=1e-4)
    ctx = torch.randn(batch, k, dim)
    sched = head.scheduler

    def ours() -> None:
        trainer.step()

    def plain() -> None:
        idx = torch.randint(0, len(latents), (batch,))
        x0, noise = latents[idx], torch.randn(batch, 1, 28, 28)
        t = torch.randint(0, 1000, (batch,))
        pred = bare(sched.add_noise(x0, noise, t), t, encoder_hidden_states=ctx).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        bare_opt.zero_grad(set_to_none=True)
        loss.backward()
        bare_opt.step()

    rates = {"ours": [], "plain": []}
    for fn in (ours, plain):
        fn()  # warm-up
    for _ in range(rounds):  # interleaved, so load changes hit both alike
        for name, fn in (("ours", ours), ("plain", plain)):
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            rates[name].append(steps * batch / (time.perf_counter() - start))
    return statistics.median(rates["ours"]), statistics.median(rates["plain"])


def guidance_ratio(batch: int = 250, k: int = 4, dim: int = 1280, rounds: int = 5) -> tuple[float, float]:
    """seconds per guided denoising step: one batched forward (2B) vs two forwards (B each)."""
    import torch

    head = make_head((32, 64, 64), k, dim)
    head.model.eval()
    x = torch.randn(batch, 1, 28, 28)
    ctx = torch.randn(batch, k, dim)
    times = {"batched": [], "split": []}
    with torch.inference_mode():
        for mode in times:
            head._guided_forward(x, 500, ctx, 2.0, mode)
        for _ in range(rounds):
            for mode in times:
                start = time.perf_counter()
                head._guided_forward(x, 500, ctx, 2.0, mode)
                times[mode].append(time.perf_counter() - start)
    return statistics.median(times["batched"]), statistics.median(times["split"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default="suites/k_train.yaml")
    p.add_argument("--profile", default="smoke")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--skip-suite", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| benchmark | ours | reference | ratio |\n|---|---|---|---|")
    ours, plain = train_step_ratio(args.steps)
    print(f"| RDM train step vs bare diffusers loop (UNet (32,64,64), batch 64, k=4) | {ours:.1f} img/s | "
          f"{plain:.1f} img/s | {ours / plain:.3f} |")
    batched, split = guidance_ratio()
    print(f"| CFG one batched forward vs two forwards (batch 250) | {batched * 1e3:.0f} ms | {split * 1e3:.0f} ms | "
          f"{split / batched:.3f} (speed of batched relative to split) |")
    if not args.skip_suite:
        cached, uncached = suite_cache_ratio(args.suite, args.profile)
        print(f"| {args.suite} --profile {args.profile}: stage cache on vs off | {cached:.1f} s | {uncached:.1f} s | "
              f"{uncached / cached:.2f}x faster with the cache |")


if __name__ == "__main__":
    main()
