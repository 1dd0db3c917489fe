"""EfficientNet-Lite encoding with oneDNN off vs on, one thread, in one process.

Why the encoder turns oneDNN on for itself: the test suite (and ``RDMBENCH_ONEDNN=0``) switches
oneDNN off for toy models, and PyTorch's own CPU depthwise convolutions, which EfficientNet is
made of, are far slower than oneDNN's. Encodes the same Fashion-MNIST images both ways, checks the
embeddings agree, and prints images/s and the ratio.

    python benchmarks/bench_encoder_onednn.py [--images 500] [--image-size 32 64]
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def encode(encoder, images: np.ndarray, onednn: bool) -> tuple[np.ndarray, float]:
    import torch

    # encode_batch turns oneDNN on for itself; its body, _encode, runs under the setting given here
    torch.backends.mkldnn.enabled = onednn
    encoder._encode(images[:8])  # load the weights and plan the shapes outside the timing
    start = time.perf_counter()
    out = np.concatenate([encoder._encode(images[i:i + 256])["embedding"] for i in range(0, len(images), 256)])
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--image-size", type=int, nargs="+", default=[32, 64])
    args = parser.parse_args()

    import torch
    from rdmbench_plugins.encoders.efficientnet_lite import EfficientNetLiteEncoder

    torch.set_num_threads(1)
    images = np.frombuffer(gzip.open(FASHION).read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)[:args.images].copy()
    print("| variant | px | oneDNN off img/s | oneDNN on img/s | on / off | max abs diff |\n|---|---|---|---|---|---|")
    for variant in ("lite0", "lite2"):
        for size in args.image_size:
            enc = EfficientNetLiteEncoder(variant=variant, image_size=size)
            off, t_off = encode(enc, images, onednn=False)
            on, t_on = encode(enc, images, onednn=True)
            print(f"| {variant} | {size} | {len(images) / t_off:.0f} | {len(images) / t_on:.0f} | "
                  f"{t_off / t_on:.1f} | {np.abs(off - on).max():.2g} |")


if __name__ == "__main__":
    main()
