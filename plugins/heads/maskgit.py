"""MaskGIT: a retrieval-augmented masked-token head over a VQ first stage's codebook tokens (Chang et al. 2022,
"MaskGIT: Masked Generative Image Transformer", arXiv 2202.04200), the third head beside RDM and RARM
(Blattmann et al. 2022 show the retrieval approach is independent of the head).

A bidirectional transformer (torch's ``TransformerDecoderLayer`` without a causal mask, in
``masked_transformer``) predicts the masked tokens of the h x w grid from the visible ones, while
cross-attending to the k neighbour embeddings {phi(y) : y in xi_k(x, D)} projected to its width by a Linear
(as RARM). ``[MASK]`` is one learned id past the codes (``codebook_size``). Training is MaskGIT's: per item a
mask ratio r = cos(pi/2 * u), u ~ U(0, 1), masks ceil(r * h * w) random tokens (so at least one), and the loss
is the cross-entropy on the masked positions only. As in RDM and RARM, a learned null token replaces the whole
neighbour set with probability ``cond_dropout``, which gives classifier-free guidance on logits and, with
``k = 0``, the fully parametric baseline: the same network, null token and projection included, built with the
retrieval head's ``context_dim``, so both have exactly the same parameter count.

Sampler options (``sample.head``): MaskGIT's iterative parallel decoding. It starts from an all-masked grid;
each of ``iterations`` steps samples every masked token from the softmax of its logits, then keeps the most
confident ones and re-masks the rest, so that the share still masked follows ``schedule`` ("cosine", the
paper's, or "linear") from 1 down to 0 at the last step. Confidence is the sampled token's log-probability
plus Gumbel noise scaled by ``temperature``, annealed linearly to 0 over the steps (the paper's "choice
temperature", 4.5 in its ImageNet sampler; 0 keeps the most probable draws outright).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Literal

import numpy as np

from rdmbench.api import HeadInputs, SampleRequest, TrainingData, TrainSettings
from rdmbench.device import float_tensor
from rdmbench.hookspecs import hookimpl
from rdmbench_plugins.heads.token_head import TokenHead

#: the share of the grid still masked at progress r in [0, 1] of decoding
SCHEDULES = {"cosine": lambda r: math.cos(math.pi / 2 * r), "linear": lambda r: 1.0 - r}


def masked_after(length: int, iterations: int, schedule: str = "cosine") -> list[int]:
    """Tokens still masked after each decoding step, as MaskGIT counts them: floor(length * schedule((t+1)/T)),
    at least one fewer than before but never below one until the last step, which unmasks all."""
    counts, masked = [], length
    for t in range(iterations):
        planned = int(length * SCHEDULES[schedule]((t + 1) / iterations))
        masked = 0 if t == iterations - 1 else max(1, min(masked - 1, planned))
        counts.append(masked)
    return counts


class MaskGITHead(TokenHead):
    """Bidirectional masked-token transformer over VQ codebook tokens cross-attending to k neighbours (MaskGIT)."""

    name = "maskgit"
    #: the network module and the shared training loop: editing either recomputes what this head trained
    code_modules = ("rdmbench_plugins.heads.masked_transformer", "rdmbench.training", "rdmbench.device")
    #: ~4 min on 2 cores as rarm's 400 (a step costs 0.87 of its)
    train_defaults = TrainSettings(steps=450, batch_size=64, lr=1e-3, warmup_steps=100, weight_decay=0.01)

    # -- building -------------------------------------------------------------------------------------
    def setup(self, inputs: HeadInputs, device: str, seed: int = 0) -> None:
        import torch

        from rdmbench_plugins.heads.masked_transformer import MaskedTokenTransformer

        c = self.config
        self.codebook_size, self.shape = self.grid(inputs)
        h, w = self.shape
        self.mask_id = self.codebook_size  # one id past the codes: fed, never predicted
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = MaskedTokenTransformer(self.codebook_size, h * w, inputs.context_dim, c["n_embd"],
                                                c["n_layer"], c["n_head"], c["dropout"]).to(device)
        self.model.eval()
        self.k, self.device, self.context_dim = inputs.k, device, inputs.context_dim

    # -- training (the loop is rdmbench.training's, shared by every head) --------------------------------
    def network(self):
        return self.model

    def loss(self, model, data: TrainingData, index, gen):
        """Mean cross-entropy (nats per token) over the masked positions of the batch, each item masked at
        its own cosine-drawn ratio."""
        import torch

        rows = index.numpy()
        tokens = torch.from_numpy(np.asarray(data.latents[rows], dtype=np.int64)).reshape(len(rows), -1)
        n, length = tokens.shape
        ratio = torch.cos(torch.pi / 2 * torch.rand(n, generator=gen))
        count = torch.ceil(ratio * length).clamp(1, length)
        # mask the `count` positions of lowest random rank in each row
        rank = torch.rand(n, length, generator=gen).argsort(dim=1).argsort(dim=1)
        masked = (rank < count[:, None]).to(self.device)
        tokens = tokens.to(self.device)
        context = float_tensor(data.context(rows), self.device)
        drop = self.null_mask(n, gen).to(self.device)
        logits = model(torch.where(masked, self.mask_id, tokens), context, drop)
        return torch.nn.functional.cross_entropy(logits[masked], tokens[masked])

    # -- sampling -------------------------------------------------------------------------------------
    def check_sampler(self, codebook_size: int | None, *, iterations: int = 8, temperature: float = 1.0,
                      schedule: Literal["cosine", "linear"] = "cosine") -> str | None:
        if iterations < 1:
            return f"iterations={iterations} must be at least 1"
        if not temperature >= 0:
            return f"temperature={temperature} must be >= 0 (0: keep the most confident tokens outright)"
        if schedule not in SCHEDULES:
            return f"schedule={schedule!r} must be one of {', '.join(SCHEDULES)}"
        return None

    def sample(self, request: SampleRequest, progress=None, *, iterations: int = 8, temperature: float = 1.0,
               schedule: Literal["cosine", "linear"] = "cosine") -> np.ndarray:
        """Args:
            iterations: decoding steps, each unmasking a share of the grid (MaskGIT: 8 to 12).
            temperature: Gumbel noise on the confidence that picks the tokens kept, annealed linearly to 0.
            schedule: how the share still masked falls over the steps: "cosine" (the paper's) or "linear".
        """
        import torch

        problem = self.check_sampler(self.codebook_size, iterations=iterations, temperature=temperature,
                                     schedule=schedule)
        if request.guidance_batching not in ("batched", "split"):
            problem = f"guidance_batching must be 'batched' or 'split', got {request.guidance_batching!r}"
        if problem:
            raise ValueError(problem)
        request = self.conditioned(request)
        gen = torch.Generator().manual_seed(request.seed)
        length = self.shape[0] * self.shape[1]
        counts = masked_after(length, iterations, schedule)
        out = np.empty((request.num, length), dtype=np.int64)
        batches = range(0, request.num, request.batch_size)
        self.model.eval()
        ctx_progress = progress.task("sample", len(batches) * iterations) if progress else nullcontext()
        with torch.inference_mode(), ctx_progress as advance:
            for s in batches:
                n = min(request.batch_size, request.num - s)
                context = float_tensor(None if request.context is None else request.context[s:s + n], self.device)
                predict = self._predictor(context, n, request)
                ids = torch.full((n, length), self.mask_id, dtype=torch.long, device=self.device)
                for t, count in enumerate(counts):
                    logp = torch.log_softmax(predict(ids), dim=-1)
                    # every token drawn by inverse CDF from uniforms of the CPU generator: the same draws for a
                    # seed on any device, and only (n, L) numbers cross to it, never (n, L, codebook) logits
                    cdf = logp.exp().cumsum(dim=-1)
                    u = self._uniform(gen, n, length)[..., None] * cdf[..., -1:]
                    drawn = torch.searchsorted(cdf, u, right=True)[..., 0].clamp_(max=self.codebook_size - 1)
                    unknown = ids == self.mask_id
                    drawn = torch.where(unknown, drawn, ids)
                    if count:
                        gumbel = -torch.log(-torch.log(self._uniform(gen, n, length).clamp(1e-20, 1 - 1e-7)))
                        noise = temperature * (1 - (t + 1) / iterations) * gumbel  # annealed to 0
                        confidence = logp.gather(-1, drawn[..., None])[..., 0] + noise
                        confidence = confidence.masked_fill(~unknown, float("inf"))  # what is known stays
                        remask = confidence.sort(dim=1, stable=True).indices[:, :count]
                        drawn = drawn.scatter(1, remask, self.mask_id)
                    ids = drawn
                    if advance:
                        advance(1)
                out[s:s + n] = ids.cpu().numpy()
        return out.reshape(request.num, *self.shape)

    def _uniform(self, gen, n: int, length: int):
        import torch

        return torch.rand(n, length, generator=gen).to(self.device)

    def _predictor(self, context, n: int, request: SampleRequest):
        """A function of a grid of ids (n, L) giving the logits (n, L, codebook_size), guided when asked: the
        unconditional (null token) and conditional rows as one batch of 2n ("batched") or as two ("split")."""
        import torch

        model, scale, path = self.model, request.guidance_scale, self.guidance_path(request)
        if path == "none":
            states = model.conditioning(context, None, n)
            return lambda ids: model.logits(ids, states)
        null = torch.ones(n, dtype=torch.bool, device=self.device)
        if path == "batched":
            both = model.conditioning(torch.cat([context, context]), torch.cat([null, ~null]), 2 * n)

            def batched(ids):
                uncond, cond = model.logits(torch.cat([ids, ids]), both).chunk(2)
                return self.guide(uncond, cond, scale)
            return batched
        uncond_states, cond_states = model.conditioning(context, null, n), model.conditioning(context, None, n)
        return lambda ids: self.guide(model.logits(ids, uncond_states), model.logits(ids, cond_states), scale)

@hookimpl
def rdmbench_heads():
    return [MaskGITHead]
