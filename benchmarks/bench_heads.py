"""RDM and RARM heads side by side, measured in one run of this script (the machine is noisy).

For each head at the embedded default's settings (suites/base/fashion_mnist.yaml: RDM over the VQ
first stage's 16x7x7 latents, RARM over its 7x7 grid of 256 codes): training throughput of the shared loop
(``rdmbench.training.Trainer.step``: images/s, and tokens/s for RARM), sampling throughput
(images/s of ``Head.sample`` at the default sampler settings, guidance 2), and where the time goes:
the share of a training step spent gathering the batch (X's rows and the neighbours' embeddings
from memory-mapped float16, as the pipeline stores them) against model compute, and the share of
sampling spent decoding to pixels. Inputs are random arrays of the default's shapes (X 20k, D 35k
x 1280-d): throughput does not depend on the values.

    python benchmarks/bench_heads.py [--steps 20] [--samples 200]

Prints a markdown table to paste into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
X, D, DIM, K, LATENT, CODES = 20000, 35000, 1280, 4, (16, 7, 7), 256
BASE = yaml.safe_load((REPO / "suites/base/fashion_mnist.yaml").read_text())["base"]


def default_spec(name: str) -> tuple[dict, dict]:
    """The base's head and train: settings if it is this one, else the plugin's defaults (what `head.name: NAME`
    gives)."""
    return (BASE["head"], BASE["train"]) if BASE["head"]["name"] == name else ({"name": name}, {})


def training_data(tmp: Path, shape: tuple[int, ...], tokens: bool):
    from rdmbench.api import TrainingData
    from rdmbench.cache import load_array, save_array

    rng = np.random.default_rng(0)
    x = rng.integers(0, CODES, (X, *shape)) if tokens else rng.standard_normal((X, *shape)).astype(np.float32)
    save_array(tmp / "emb.npy", rng.standard_normal((D, DIM)).astype(np.float16))
    return TrainingData(x, rng.integers(0, D, (X, 16)), load_array(tmp / "emb.npy", mmap=True), K)


def measure(name: str, steps: int, samples: int, tmp: Path) -> dict:
    import torch

    from rdmbench.api import HeadInputs, SampleRequest
    from rdmbench.registry import get_registry
    from rdmbench.training import Trainer

    registry = get_registry()
    spec, train = default_spec(name)
    head = registry.create("head", registry.validate("head", spec))
    tokens = head.generates == "tokens"
    shape = LATENT[1:] if tokens else LATENT
    head.setup(HeadInputs(shape, DIM, K, CODES if tokens else None), "cpu", seed=0)
    data = training_data(tmp, shape, tokens)
    trainer = Trainer(head, data, seed=0, settings=head.train_defaults.resolve(train))
    batch = trainer.settings.batch_size
    trainer.step()  # warm-up
    step_s, gather_s = [], []
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        start = time.perf_counter()
        trainer.step()
        step_s.append(time.perf_counter() - start)
        index = torch.randint(0, X, (batch,), generator=gen).numpy()
        start = time.perf_counter()
        np.asarray(data.latents[index]), data.context(index)  # what each step's loss gathers
        gather_s.append(time.perf_counter() - start)
    trainer.finish()
    step, gather = statistics.median(step_s), statistics.median(gather_s)

    sampler = {"top_k": 50} if tokens else {"steps": 20}
    request = SampleRequest(context=data.context(np.arange(samples)), num=samples, guidance_scale=2.0, seed=0,
                            batch_size=250)
    start = time.perf_counter()
    out = head.sample(request, None, **sampler)
    sample_s = time.perf_counter() - start
    decode_s = decode_time(out, tokens)
    per_image = int(np.prod(shape[-2:])) if tokens else None
    return {"name": name, "params": head.parameter_count(), "train_img_s": batch / step,
            "train_tok_s": batch * per_image / step if tokens else None, "data_share": gather / step,
            "sample_img_s": samples / (sample_s + decode_s), "decode_share": decode_s / (sample_s + decode_s)}


def decode_time(out: np.ndarray, tokens: bool) -> float:
    """Seconds to turn the samples into pixels through the default's VQ first stage (its architecture,
    fitted one step: decoding costs the same with any weights)."""
    from rdmbench.registry import get_registry

    registry = get_registry()
    fs = registry.create("first_stage", registry.validate("first_stage", {**BASE["first_stage"], "train_steps": 1}))
    fs.fit(np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), np.uint8), seed=0)
    start = time.perf_counter()
    fs.decode_tokens(out) if tokens else fs.decode(out)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--samples", type=int, default=200)
    args = p.parse_args()

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("rdm", "rarm"):
            rows.append(measure(name, args.steps, args.samples, Path(tmp)))
    print("| head | parameters | train images/s | train tokens/s | step in data handling | "
          "sample images/s (guidance 2) | sampling in decoding |\n|---|---|---|---|---|---|---|")
    for r in rows:
        tok = f"{r['train_tok_s']:.0f}" if r["train_tok_s"] else "—"
        print(f"| {r['name']} | {r['params']:,} | {r['train_img_s']:.1f} | {tok} | {r['data_share']:.1%} | "
              f"{r['sample_img_s']:.1f} | {r['decode_share']:.1%} |")
    rdm, rarm = rows
    print(f"\nRARM / RDM: training images/s {rarm['train_img_s'] / rdm['train_img_s']:.2f}x, "
          f"sampling images/s {rarm['sample_img_s'] / rdm['sample_img_s']:.2f}x")


if __name__ == "__main__":
    main()
