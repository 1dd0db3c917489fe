"""For a lent GPU: retrieval at the paper's database size, and head training as a share of the GPU's own rate.

1. bf16 matmul rate: the median of ``--rounds`` products of two ``--matmul`` square bf16 matrices.
2. 20 neighbours of ``--queries`` queries over ``--n`` x ``--dim`` float16 vectors (clustered, normalised,
   generated on the device), searched exactly by parts merged (the exact retriever's algorithm, on the
   device): ms per query against the paper's 0.95 ms per query over its 20M-entry database.
3. Head training throughput: the RDM head of the paper profile (suites/base, 64x64x3 VQ-f4 latents, k = 4
   CLIP-sized neighbours) trained by the shared loop (``rdmbench.training``) with bf16 autocast; its
   FLOPs per step counted by ``torch.utils.flop_counter`` and divided by the step time: achieved TFLOP/s
   and their share of the measured matmul rate.

    python benchmarks/bench_gpu_scale.py                         # on a GPU: 20M vectors, the paper head
    python benchmarks/bench_gpu_scale.py --device cpu --n 200000 --head smoke --matmul 1024   # checks the script

Prints a markdown table to paste into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

PAPER_MS_PER_QUERY = 0.95
HEADS = {
    # the paper profile of suites/base/fashion_mnist.yaml
    "paper": dict(block_out_channels=[192, 384, 576, 960], attention_levels=[False, True, True, True],
                  layers_per_block=2, cross_attention_dim=512, head_channels=32, norm_num_groups=32,
                  latent=(3, 64, 64), batch_size=50),
    "smoke": dict(block_out_channels=[32, 64], attention_levels=[False, True], layers_per_block=1,
                  cross_attention_dim=64, head_channels=8, norm_num_groups=16, latent=(1, 16, 16), batch_size=16),
}


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_rate(device: str, size: int, rounds: int) -> float:
    import torch

    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    a @ b
    times = []
    for _ in range(rounds):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(times) / 1e12


def search(device: str, n: int, dim: int, queries: int, k: int, part: int) -> tuple[float, float]:
    """ms per query of an exact k-NN search by parts merged, and the seconds spent generating the database."""
    import torch

    g = torch.Generator(device=device).manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(4096, dim, device=device, generator=g), dim=1)
    start = time.perf_counter()
    parts = []
    for s in range(0, n, part):
        m = min(part, n - s)
        x = centres[torch.randint(0, 4096, (m,), device=device, generator=g)]
        x = x + torch.randn(m, dim, device=device, generator=g) * (0.5 / dim ** 0.5)
        parts.append(torch.nn.functional.normalize(x, dim=1).half())
    q = torch.nn.functional.normalize(centres[torch.randint(0, 4096, (queries,), device=device, generator=g)]
                                      + torch.randn(queries, dim, device=device, generator=g) * 0.02, dim=1).half()
    sync(device)
    generated = time.perf_counter() - start
    start = time.perf_counter()
    best = torch.full((queries, k), -torch.inf, device=device)
    best_ids = torch.full((queries, k), -1, dtype=torch.int64, device=device)
    for i, p in enumerate(parts):
        top, idx = torch.topk((q @ p.T).float(), k, dim=1)
        merged, merged_ids = torch.cat([best, top], 1), torch.cat([best_ids, idx + i * part], 1)
        keep = torch.topk(merged, k, dim=1)
        best, best_ids = keep.values, torch.gather(merged_ids, 1, keep.indices)
    sync(device)
    return 1000 * (time.perf_counter() - start) / queries, generated


def head_throughput(device: str, name: str, steps: int) -> tuple[float, float, int]:
    """(images per second, TFLOP per second achieved, parameters) of the head trained in bf16."""
    from torch.utils.flop_counter import FlopCounterMode

    from rdmbench.api import HeadInputs, TrainingData
    from rdmbench.registry import get_registry
    from rdmbench.training import Trainer

    spec = dict(HEADS[name])
    latent, batch = spec.pop("latent"), spec.pop("batch_size")
    head = get_registry().create("head", {"name": "rdm", **spec})
    settings = head.train_defaults.resolve({"steps": steps, "batch_size": batch,
                                            "mixed_precision": "bf16" if device.startswith("cuda") else "no"})
    dim = spec["cross_attention_dim"]
    head.setup(HeadInputs(latent, dim, 4, None), device, 0)
    rng = np.random.default_rng(0)
    data = TrainingData(rng.standard_normal((4 * batch, *latent), dtype=np.float32),
                        rng.integers(0, 1000, (4 * batch, 4)), rng.standard_normal((1000, dim), dtype=np.float32), 4)
    trainer = Trainer(head, data, 0, settings)
    with FlopCounterMode(display=False) as counter:
        trainer.step()
    flops = counter.get_total_flops()
    trainer.step()  # warm
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    sync(device)
    seconds = (time.perf_counter() - start) / steps
    return batch / seconds, flops / seconds / 1e12, head.parameter_count()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--n", type=int, default=20_000_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--part", type=int, default=1_000_000)
    p.add_argument("--matmul", type=int, default=8192)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--head", choices=list(HEADS), default="paper")
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    import torch

    device = args.device
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    rate = matmul_rate(device, args.matmul, args.rounds)
    ms, generated = search(device, args.n, args.dim, args.queries, args.k, args.part)
    images, achieved, params = head_throughput(device, args.head, args.steps)
    print(f"device: {name}; torch {torch.__version__}\n")
    print("| measure | value |\n|---|---|")
    print(f"| bf16 matmul ({args.matmul}³), median of {args.rounds} | {rate:.1f} TFLOP/s |")
    print(f"| {args.k} neighbours over {args.n:,} × {args.dim} float16, exact by parts of {args.part:,}, "
          f"{args.queries:,} queries | {ms:.3f} ms/query ({ms / PAPER_MS_PER_QUERY:.2f}× the paper's "
          f"{PAPER_MS_PER_QUERY} ms; database generated in {generated:.0f} s) |")
    precision = "bf16 autocast" if device.startswith("cuda") else "float32"
    print(f"| head `{args.head}` ({params / 1e6:.0f}M parameters), {precision}, shared loop | {images:.0f} "
          f"images/s, {achieved:.1f} TFLOP/s = {achieved / rate:.1%} of the matmul rate |")


if __name__ == "__main__":
    main()
