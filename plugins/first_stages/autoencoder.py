"""A small diffusers autoencoder (KL or VQ) trained once on the training images: latent diffusion.

The head of a latent-diffusion RDM generates in the latent space of a pretrained autoencoder
(Rombach et al. 2022). This plugin trains diffusers' ``AutoencoderKL`` or ``VQModel`` on X with a
plain loop (L1 + MSE reconstruction, plus the KL term or the VQ codebook/commitment loss; no
perceptual or adversarial loss), then stores a ``scaling_factor`` = 1 / std of the latents, as
LDM does, so the head sees roughly unit-variance latents.

Shapes. Every extra entry of ``block_out_channels`` adds one stride-2 downsampling, so the
downsampling factor is ``f = 2 ** (len(block_out_channels) - 1)``. diffusers' encoder and decoder
only round-trip sizes that are multiples of ``f``, so images whose height or width is not a
multiple of ``f`` are padded at the bottom/right by edge replication up to the next multiple
before encoding, and ``decode`` crops the result back to the fitted image size. The latent of an
H x W image is therefore ``ceil(H / f) x ceil(W / f)`` (Fashion-MNIST 28 x 28: 14 x 14 at f=2,
7 x 7 at f=4, 4 x 4 at f=8 from a 32 x 32 padded image).

Latents. ``encode`` returns the KL posterior mean (its mode), or the VQ model's pre-quantisation
latents (``vq_embed_dim`` channels), times ``scaling_factor``. ``decode`` divides by it and, for VQ,
quantises to the nearest codebook entry before decoding (so generated latents are snapped to the
codebook, as in LDM).

Tokens (VQ). ``encode_tokens`` gives the ids of the codebook entries ``decode`` would snap
``encode``'s latents to, on the same padded grid, and ``decode`` is ``decode_tokens`` of those ids
(``codebook.py``), so ``decode_tokens(encode_tokens(x)) == decode(encode(x))`` exactly. While
training, codes unused for ``dead_code_restart`` steps are moved onto encoder outputs of the
current batch (Jukebox's random restarts): without them a small codebook collapses to a few dozen
codes. ``fit`` reports how many codes the stats subset uses and their perplexity.

KL weight. The reconstruction loss is averaged over pixels; the KL divergence (summed over the
latent per image) is divided by the number of pixels per image too, so ``kl_weight`` means what it
means in LDM, whose reconstruction loss is summed over pixels (1e-6 there: a very light prior,
the scale being fixed afterwards by ``scaling_factor``).

Stored as ``autoencoder.safetensors`` (the state dict) plus ``autoencoder.json`` (config, image
shape, scaling factor): no pickles.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rdmbench.api import FirstStage
from rdmbench.errors import ConfigError
from rdmbench.device import resolve_device
from rdmbench.hookspecs import hookimpl

WEIGHTS = "autoencoder.safetensors"
META = "autoencoder.json"
#: images used after training to measure the latent std (scaling factor) and the reconstruction error
STATS_IMAGES = 1024
INFERENCE_BATCH = 256


class AutoencoderFirstStage(FirstStage):
    """Latent space of a small diffusers autoencoder (KL or VQ) trained on the training images."""

    name = "autoencoder"
    trainable = True
    version = 1
    code_modules = ("rdmbench_plugins.first_stages.codebook",)

    def __init__(
        self,
        kind: Literal["kl", "vq"] = "kl",
        block_out_channels: tuple[int, ...] = (32, 64),
        latent_channels: int = 4,
        layers_per_block: int = 1,
        norm_num_groups: int = 16,
        num_vq_embeddings: int = 256,
        vq_embed_dim: int | None = None,
        mid_block_attention: bool = True,
        dead_code_restart: int = 25,
        kl_weight: float = 1e-6,
        train_steps: int = 1000,
        batch_size: int = 64,
        lr: float = 1e-3,
        device: str = "auto",
    ):
        block_out_channels = tuple(int(c) for c in block_out_channels)
        if not block_out_channels or any(c <= 0 for c in block_out_channels):
            raise ConfigError("must be a non-empty list of positive channel counts", key="block_out_channels")
        if norm_num_groups <= 0:
            raise ConfigError("must be positive", key="norm_num_groups")
        bad = [c for c in block_out_channels if c % norm_num_groups]
        if bad:
            raise ConfigError(f"every entry of block_out_channels {list(block_out_channels)} must be divisible by "
                              f"norm_num_groups={norm_num_groups} (group norm); {bad} are not", key="norm_num_groups")
        for key, value in (("latent_channels", latent_channels), ("layers_per_block", layers_per_block),
                           ("num_vq_embeddings", num_vq_embeddings), ("train_steps", train_steps),
                           ("batch_size", batch_size)):
            if value <= 0:
                raise ConfigError("must be positive", key=key)
        if vq_embed_dim is not None and (kind != "vq" or vq_embed_dim <= 0):
            raise ConfigError("must be a positive code width for kind vq, or null (= latent_channels)",
                              key="vq_embed_dim")
        if dead_code_restart < 0:
            raise ConfigError("must be >= 0 (steps between dead-code restarts; 0 disables them)",
                              key="dead_code_restart")
        if kl_weight < 0:
            raise ConfigError("must be >= 0", key="kl_weight")
        if not lr > 0:
            raise ConfigError("must be positive", key="lr")
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
            raise ConfigError(f"expected auto, cpu, cuda, cuda:N or mps, got {device!r}", key="device")
        self.kind = kind
        self.block_out_channels = block_out_channels
        self.latent_channels = latent_channels
        self.layers_per_block = layers_per_block
        self.norm_num_groups = norm_num_groups
        self.num_vq_embeddings = num_vq_embeddings
        self.vq_embed_dim = latent_channels if vq_embed_dim is None else vq_embed_dim
        #: channels of encode's latents: VQModel's quant_conv maps latent_channels to the code width
        self.latent_dim = self.vq_embed_dim if kind == "vq" else latent_channels
        self.mid_block_attention = mid_block_attention
        self.dead_code_restart = dead_code_restart
        self.kl_weight = kl_weight
        self.train_steps = train_steps
        self.batch_size = batch_size
        self.lr = lr
        self.device = device
        self.factor = 2 ** (len(block_out_channels) - 1)
        self._model = None
        self._device: str | None = None
        self._image_shape: tuple[int, int, int] | None = None  # (H, W, C) the model was fitted on
        self.scaling_factor = 1.0

    # -- configuration -------------------------------------------------------------------------

    def _arch(self) -> dict[str, Any]:
        """Everything that determines the network's parameter shapes (checked again on load)."""
        return {
            "kind": self.kind,
            "block_out_channels": list(self.block_out_channels),
            "latent_channels": self.latent_channels,
            "layers_per_block": self.layers_per_block,
            "norm_num_groups": self.norm_num_groups,
            "num_vq_embeddings": self.num_vq_embeddings if self.kind == "vq" else None,
            "vq_embed_dim": self.vq_embed_dim if self.kind == "vq" else None,
            "mid_block_attention": self.mid_block_attention,
        }

    def _build(self, channels: int):
        from diffusers import AutoencoderKL, VQModel

        n = len(self.block_out_channels)
        common = dict(
            in_channels=channels,
            out_channels=channels,
            down_block_types=("DownEncoderBlock2D",) * n,
            up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=self.block_out_channels,
            layers_per_block=self.layers_per_block,
            latent_channels=self.latent_channels,
            norm_num_groups=self.norm_num_groups,
            mid_block_add_attention=self.mid_block_attention,
        )
        if self.kind == "kl":
            model = AutoencoderKL(**common)
        else:
            model = VQModel(**common, num_vq_embeddings=self.num_vq_embeddings, vq_embed_dim=self.vq_embed_dim)
        self._device = resolve_device(self.device)
        return model.to(self._device)  # built in float32

    def latent_shape(self, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        h, w, _ = (int(v) for v in image_shape)
        f = self.factor
        return (self.latent_dim, -(-h // f), -(-w // f))

    def codebook_size(self) -> int | None:
        return self.num_vq_embeddings if self.kind == "vq" else None

    # -- pixels <-> network tensors ------------------------------------------------------------

    def _to_input(self, images: np.ndarray):
        """uint8 NHWC (numpy or torch) -> float32 NCHW in [-1, 1] on the device, padded to a multiple of f."""
        import torch
        import torch.nn.functional as F

        if isinstance(images, np.ndarray):  # a copy: the caller's array may be read-only (memory-mapped)
            images = torch.from_numpy(np.array(images, dtype=np.uint8))
        # made NCHW-contiguous so convolutions see the standard layout, not permuted channels-last strides
        x = images.to(self._device).permute(0, 3, 1, 2).contiguous().float().div_(127.5).sub_(1.0)
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.factor, (-w) % self.factor
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return x

    def _check_images(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 images (N, H, W, C), got {images.dtype} {images.shape}")
        if self._model is None:
            raise RuntimeError("the autoencoder is not trained: call fit() or load() first")
        if images.shape[3] != self._image_shape[2]:
            raise ValueError(f"the autoencoder was fitted on {self._image_shape[2]}-channel images, "
                             f"got {images.shape[3]} channels")
        return images

    def _encode_raw(self, x):
        """Unscaled latents of a batch: KL posterior mode, or VQ pre-quantisation latents."""
        if self.kind == "kl":
            return self._model.encode(x).latent_dist.mode()
        return self._model.encode(x).latents

    # -- training ------------------------------------------------------------------------------

    def fit(self, images: np.ndarray, seed: int, progress=None) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        from rdmbench.progress import Progress
        from rdmbench_plugins.first_stages import codebook

        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
            raise ValueError(f"expected non-empty uint8 images (N, H, W, C), got {images.dtype} {images.shape}")
        progress = progress or Progress()
        n, h, w, c = images.shape
        self._image_shape = (h, w, c)
        with torch.random.fork_rng(devices=[]):  # seeded init without disturbing the caller's RNG
            torch.manual_seed(seed)
            model = self._build(c)
        self._model = model
        self.scaling_factor = 1.0

        # each batch is gathered from `images`, which may be memory-mapped: the set is never copied whole
        batch_gen = torch.Generator().manual_seed(seed)
        noise_gen = torch.Generator(device=self._device).manual_seed(seed + 1)
        restart_gen = torch.Generator().manual_seed(seed + 2)
        restart_every = self.dead_code_restart if self.kind == "vq" else 0
        used = torch.zeros(self.num_vq_embeddings, dtype=torch.bool, device=self._device)  # since the last restart
        restarted = 0
        # not the heads' shared loop (rdmbench.training): VQ dead-code restarts run between its steps and noise has a
        # generator of its own; moving it would retrain the first stage every committed result was measured on
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        pixels_per_image = c * h * w
        bs = min(self.batch_size, n)
        running: dict[str, float] = {}
        tail = max(1, min(50, self.train_steps // 10))  # steps averaged into the reported losses

        model.train()
        start = time.monotonic()
        with progress.task("first stage", total=self.train_steps) as advance:
            for step in range(self.train_steps):
                idx = torch.randint(0, n, (bs,), generator=batch_gen)
                x = self._to_input(images[idx.numpy()])
                if self.kind == "kl":
                    posterior = model.encode(x).latent_dist
                    recon = model.decode(posterior.sample(generator=noise_gen)).sample
                    reg = posterior.kl().mean() / pixels_per_image
                    reg_loss = self.kl_weight * reg
                else:  # VQModel.decode(latents) in two steps, to see which codes were picked
                    latents = model.encode(x).latents
                    quant, reg, (_, _, ids) = model.quantize(latents)
                    recon = model.decode(quant, force_not_quantize=True).sample
                    reg_loss = reg
                    used[ids] = True
                recon = recon[..., :h, :w]
                x = x[..., :h, :w]
                l1, mse = F.l1_loss(recon, x), F.mse_loss(recon, x)
                loss = l1 + mse + reg_loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                # none after the last step: a moved code would go into the model untrained
                if restart_every and (step + 1) % restart_every == 0 and step + 1 < self.train_steps:
                    restarted += codebook.restart_dead_codes(model.quantize, used, latents, restart_gen)
                    used.zero_()
                if step >= self.train_steps - tail:
                    for k, v in (("loss", loss), ("l1", l1), ("mse", mse), ("kl" if self.kind == "kl" else "vq_loss", reg)):
                        running[k] = running.get(k, 0.0) + float(v.detach()) / tail
                advance(1)
        train_seconds = time.monotonic() - start
        model.eval()

        # scaling factor and reconstruction error on a fixed subset of the training images
        pick = torch.randperm(n, generator=batch_gen)[:STATS_IMAGES].sort().values.numpy()
        subset = images[pick]
        with torch.inference_mode():
            raw = torch.cat([self._encode_raw(self._to_input(subset[s : s + INFERENCE_BATCH])).cpu()
                             for s in range(0, len(subset), INFERENCE_BATCH)])
        std = float(raw.std()) if raw.numel() > 1 else 1.0
        self.scaling_factor = 1.0 / std if std > 0 and math.isfinite(std) else 1.0
        latents = raw.numpy() * self.scaling_factor
        if self.kind == "vq":
            ids = self._token_ids(latents)
            rec = self.decode_tokens(ids)
            vq_stats = {**codebook.usage(ids, self.num_vq_embeddings), "codebook_restarted": float(restarted)}
        else:
            rec, vq_stats = self.decode(latents), {}
        recon_mse = float(np.mean((rec.astype(np.float32) / 255.0 - subset.astype(np.float32) / 255.0) ** 2))
        return {
            "recon_mse": recon_mse,
            **vq_stats,
            "scaling_factor": self.scaling_factor,
            "latent_std": std,
            "latent_mean": float(raw.mean()),
            **{f"train_{k}": v for k, v in running.items()},
            "train_seconds": train_seconds,
        }

    # -- inference -----------------------------------------------------------------------------

    def encode(self, images: np.ndarray) -> np.ndarray:
        import torch

        images = self._check_images(images)
        out = []
        with torch.inference_mode():
            for s in range(0, len(images), INFERENCE_BATCH):
                z = self._encode_raw(self._to_input(images[s : s + INFERENCE_BATCH]))
                out.append((z * self.scaling_factor).float().cpu().numpy())
        if not out:
            return np.zeros((0, *self.latent_shape(self._image_shape)), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        if self._model is None:
            raise RuntimeError("the autoencoder is not trained: call fit() or load() first")
        z_all = np.asarray(latents, dtype=np.float32)
        if z_all.ndim != 4 or z_all.shape[1] != self.latent_dim:
            raise ValueError(f"expected latents (N, {self.latent_dim}, H', W'), got shape {z_all.shape}")
        if self.kind == "vq":  # snapped to the codebook through the ids, as decode_tokens
            return self.decode_tokens(self._token_ids(z_all))
        return self._pixels(z_all, lambda z: self._model.decode(z / self.scaling_factor).sample)

    def encode_tokens(self, images: np.ndarray) -> np.ndarray:
        if self.kind != "vq":
            return super().encode_tokens(images)
        return self._token_ids(self.encode(images))

    def decode_tokens(self, tokens: np.ndarray) -> np.ndarray:
        from rdmbench_plugins.first_stages import codebook

        if self.kind != "vq":
            return super().decode_tokens(tokens)
        if self._model is None:
            raise RuntimeError("the autoencoder is not trained: call fit() or load() first")
        tokens = codebook.check_tokens(tokens, self.num_vq_embeddings)
        return self._pixels(tokens, lambda ids: codebook.decode_ids(self._model, ids))

    def _token_ids(self, latents: np.ndarray) -> np.ndarray:
        """Scaled VQ latents (N, D, h, w) -> int64 (N, h, w) ids of the codes decode snaps them to."""
        import torch

        from rdmbench_plugins.first_stages import codebook

        out = [np.zeros((0, *latents.shape[2:]), np.int64)]
        with torch.inference_mode():
            for s in range(0, len(latents), INFERENCE_BATCH):
                z = torch.from_numpy(latents[s : s + INFERENCE_BATCH]).to(self._device) / self.scaling_factor
                out.append(codebook.token_ids(self._model, z).cpu().numpy())
        return np.ascontiguousarray(np.concatenate(out), dtype=np.int64)

    def _pixels(self, inputs: np.ndarray, network) -> np.ndarray:
        """uint8 NHWC images of ``network`` (a batch of ``inputs`` on the device -> NCHW in [-1, 1]), cropped
        to the fitted image size when the inputs' grid is that of its latents (else f times the grid)."""
        import torch

        h, w, c = self._image_shape
        grid = tuple(inputs.shape[-2:])
        crop = grid == self.latent_shape(self._image_shape)[1:]  # crop the padding away
        out = [np.zeros((0, *((h, w) if crop else (grid[0] * self.factor, grid[1] * self.factor)), c), np.uint8)]
        with torch.inference_mode():
            for s in range(0, len(inputs), INFERENCE_BATCH):
                x = network(torch.from_numpy(inputs[s : s + INFERENCE_BATCH]).to(self._device))
                if crop:
                    x = x[..., :h, :w]
                x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
                out.append(x.permute(0, 2, 3, 1).cpu().numpy())
        return np.ascontiguousarray(np.concatenate(out))

    # -- storage -------------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        if self._model is None:
            raise RuntimeError("nothing to save: call fit() first")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self._model.state_dict().items()}
        save_file(state, str(directory / WEIGHTS))
        meta = {"arch": self._arch(), "image_shape": list(self._image_shape),
                "scaling_factor": self.scaling_factor, "version": self.version}
        (directory / META).write_text(json.dumps(meta, indent=2) + "\n")

    def load(self, directory: Path) -> None:
        from safetensors.torch import load_file

        directory = Path(directory)
        meta = json.loads((directory / META).read_text())
        if meta["arch"] != self._arch():
            raise ValueError(f"{directory} holds an autoencoder built as {meta['arch']}, "
                             f"this plugin is configured as {self._arch()}")
        self._image_shape = tuple(int(v) for v in meta["image_shape"])
        model = self._build(self._image_shape[2])
        model.load_state_dict(load_file(str(directory / WEIGHTS), device=self._device), strict=True)
        model.eval()
        self._model = model
        self.scaling_factor = float(meta["scaling_factor"])


@hookimpl
def rdmbench_first_stages():
    return [AutoencoderFirstStage]
