"""Token ids of a diffusers ``VQModel``: the codebook side shared by ``autoencoder`` and ``pretrained-autoencoder``.

A VQ autoencoder (van den Oord et al. 2017, arXiv 1711.00937; the VQ-f4 first stage of latent
diffusion, Rombach et al. 2022) snaps every latent vector to its nearest codebook entry, so an image
is also a grid of code ids: what an autoregressive token head (RARM) models. Ids come from the
model's own quantiser (``VectorQuantizer.forward``, nearest entry by ``torch.cdist``) and go back to
images through its codebook and ``decode(..., force_not_quantize=True)``, so a first stage's
``decode`` and ``decode_tokens`` share one path.

Dead-code restarts (Dhariwal et al. 2020, Jukebox, arXiv 2005.00341; Zeghidour et al. 2021,
SoundStream, arXiv 2107.03312): codes no batch has picked since the last restart are moved onto randomly chosen
encoder outputs of the current batch, so they start being picked and trained. Imports torch lazily.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def token_ids(model: Any, latents: Any) -> Any:
    """Pre-quantisation latents (N, D, h, w) -> int64 (N, h, w) ids of their nearest codebook entries."""
    _, _, (_, _, ids) = model.quantize(latents)
    return ids.reshape(latents.shape[0], *latents.shape[2:])


def decode_ids(model: Any, ids: Any) -> Any:
    """int64 (N, h, w) ids -> the decoder's output (N, C, H, W), in [-1, 1] when the model is trained."""
    n, h, w = ids.shape
    shape = (n, h, w, model.quantize.vq_embed_dim)
    if getattr(model.config, "lookup_from_codebook", False):  # the model looks the entries up itself
        return model.decode(ids.reshape(-1), force_not_quantize=True, shape=shape).sample
    quant = model.quantize.get_codebook_entry(ids.reshape(-1), shape)
    return model.decode(quant, force_not_quantize=True).sample


def check_tokens(tokens: np.ndarray, size: int) -> np.ndarray:
    """Integer (N, h, w) ids in [0, size), as int64; anything else is a ValueError naming what it got."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 3 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"expected integer token ids (N, h, w), got {tokens.dtype} {tokens.shape}")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= size):
        raise ValueError(f"token ids must lie in [0, {size}), got [{tokens.min()}, {tokens.max()}]")
    return tokens.astype(np.int64, copy=False)


def usage(ids: np.ndarray, size: int) -> dict[str, float]:
    """How many codes the ids use, and the perplexity exp(H) of their frequencies (size: all equally used)."""
    counts = np.bincount(np.asarray(ids).reshape(-1), minlength=size)
    p = counts[counts > 0] / max(1, counts.sum())
    return {"codebook_used": float(len(p)), "codebook_perplexity": float(math.exp(-(p * np.log(p)).sum()))}


def restart_dead_codes(quantizer: Any, used: Any, latents: Any, generator: Any) -> int:
    """Move every code not in ``used`` (bool (size,)) onto a pre-quantisation latent vector of this batch
    (``latents`` (B, D, h, w)), chosen with ``generator`` (CPU) without repeats while the batch has enough
    vectors. Returns how many codes moved. The optimizer's moments of a dead code are left as they are:
    an unpicked code gets zero gradients, so they have decayed already."""
    import torch

    dead = torch.nonzero(~used).reshape(-1)
    if len(dead) == 0:
        return 0
    vectors = latents.detach().permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    rows = len(vectors)
    pick = (torch.randperm(rows, generator=generator)[: len(dead)] if len(dead) <= rows
            else torch.randint(0, rows, (len(dead),), generator=generator))
    with torch.no_grad():
        weight = quantizer.embedding.weight
        weight[dead.to(weight.device)] = vectors[pick.to(vectors.device)].to(weight.dtype)
    return len(dead)
