"""What makes the embedded default cheaper on a CPU, each lever a ratio measured in one run of this script.

- the RDM head's training step (the default head, batch 64, random inputs of the default's shapes): float32
  against bf16 autocast (``train.mixed_precision: bf16``) and against ``torch.compile``d (its compile time too);
- the EfficientNet-Lite encoder (lite0 at 64 px, batch 256): contiguous against channels-last tensors, and the
  largest difference of the embeddings (a lever that moved them would move every neighbour);
- the machine's two cores: one process training at two threads against two processes at one thread each
  (total images per second), what a suite with two runs at a time would buy.

Variants are interleaved step by step, so a busy moment costs each the same.

    python benchmarks/bench_cpu_levers.py [--steps 30] [--compile]

Prints a markdown table to paste into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_heads import DIM, K, LATENT, default_spec, training_data  # noqa: E402


def trainer(data, mixed_precision: str = "no", compile_unet: bool = False):
    import torch

    from rdmbench.api import HeadInputs
    from rdmbench.registry import get_registry
    from rdmbench.training import Trainer

    registry = get_registry()
    spec, train = default_spec("rdm")
    head = registry.create("head", registry.validate("head", spec))
    head.setup(HeadInputs(LATENT, DIM, K, None), "cpu", seed=0)
    if compile_unet:
        head.model.unet = torch.compile(head.model.unet, dynamic=False)
    return Trainer(head, data, seed=0, settings=head.train_defaults.resolve({**train, "mixed_precision": mixed_precision}))


def training_levers(steps: int, with_compile: bool) -> list[tuple[str, float, str]]:
    tmp = Path(tempfile.mkdtemp())
    data = training_data(tmp, LATENT, False)
    variants = {"float32": trainer(data), "bf16 autocast": trainer(data, "bf16")}
    notes = {"float32": "", "bf16 autocast": ""}
    if with_compile:
        start = time.perf_counter()
        variants["torch.compile"] = t = trainer(data, compile_unet=True)
        t.step()
        notes["torch.compile"] = f"compiling took {time.perf_counter() - start:.0f} s"
    for t in variants.values():
        t.step()
        t.step()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(steps):
        for name, t in variants.items():
            start = time.perf_counter()
            t.step()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["float32"])
    return [(f"RDM training step, {name}", base / statistics.median(ts),
             f"{64 / statistics.median(ts):.0f} img/s {notes[name]}".strip()) for name, ts in times.items()]


def encoder_lever(rounds: int = 5) -> tuple[str, float, str]:
    """The network's forward on one batch as the encoder feeds it (oneDNN on), in either memory layout."""
    import copy

    import torch

    from rdmbench.registry import get_registry

    registry = get_registry()
    enc = registry.create("encoder", registry.validate("encoder", {"name": "efficientnet-lite", "variant": "lite0",
                                                                    "image_size": 64}))
    model = copy.deepcopy(enc._load()).to(memory_format=torch.contiguous_format)
    x = torch.randn(256, 3, 64, 64)
    torch.backends.mkldnn.enabled = True

    def run(layout) -> tuple[float, np.ndarray]:
        net, batch = model.to(memory_format=layout), x.contiguous(memory_format=layout)
        ts = []
        with torch.inference_mode():
            out = net.extract_features(batch).mean(dim=(2, 3)).numpy()
            for _ in range(rounds):
                start = time.perf_counter()
                net.extract_features(batch)
                ts.append(time.perf_counter() - start)
        return statistics.median(ts), out

    plain, a = run(torch.contiguous_format)
    last, b = run(torch.channels_last)
    return ("EfficientNet-Lite0 at 64 px, the network's forward (batch 256), channels-last", plain / last,
            f"{256 / last:.0f} against {256 / plain:.0f} img/s; embeddings differ by at most "
            f"{np.abs(a - b).max():.1e} (largest |value| {np.abs(a).max():.1f})")


WORKER = """
import sys, time, tempfile
from pathlib import Path
import torch
torch.set_num_threads(int(sys.argv[1]))
sys.path.insert(0, {bench!r})
from bench_cpu_levers import trainer
from bench_heads import LATENT, training_data
t = trainer(training_data(Path(tempfile.mkdtemp()), LATENT, False))
for _ in range(3):
    t.step()
print("READY", flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[2])):
    t.step()
print("DONE", flush=True)
"""


def processes_lever(steps: int) -> tuple[str, float, str]:
    """Images per second of every process together, started at once after each has warmed up."""
    code = WORKER.format(bench=str(Path(__file__).resolve().parent))

    def launch(threads: int, count: int) -> float:
        procs = [subprocess.Popen([sys.executable, "-c", code, str(threads), str(steps)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True) for _ in range(count)]
        for p in procs:
            while "READY" not in p.stdout.readline():
                pass
        start = time.perf_counter()
        for p in procs:
            p.stdin.write("\n")
            p.stdin.flush()
        for p in procs:
            while "DONE" not in p.stdout.readline():
                pass
            p.wait()
        return count * steps * 64 / (time.perf_counter() - start)

    one, two = [], []
    for _ in range(2):
        one.append(launch(2, 1))
        two.append(launch(1, 2))
    return ("two runs at one thread each, against one at two threads (total training throughput)",
            statistics.median(two) / statistics.median(one),
            f"{statistics.median(two):.0f} against {statistics.median(one):.0f} img/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (about a minute to compile)")
    args = parser.parse_args()
    rows = [*training_levers(args.steps, args.compile), encoder_lever(), processes_lever(args.steps)]
    print("| lever | ratio (higher: faster) | measured |\n|---|---|---|")
    for name, ratio, note in rows:
        print(f"| {name} | {ratio:.2f}× | {note} |")


if __name__ == "__main__":
    main()
