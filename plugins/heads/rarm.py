"""RARM: the retrieval-augmented autoregressive head (Blattmann et al. 2022, sec. 3.3; arXiv 2204.11824).

A ``transformers`` GPT-2 predicts a VQ first stage's codebook tokens in row-major order, after a BOS
token, while cross-attending to the k neighbour embeddings {phi(y) : y in xi_k(x, D)}, projected from
the encoder's width to the transformer's by a Linear. Trained by next-token cross-entropy; sampled
token by token with the KV cache, top-k and temperature (the official sampler's options, as in
taming-transformers, Esser et al. 2021). As in RDM, a learned null token replaces the whole neighbour
set with probability ``cond_dropout`` in training, which gives classifier-free guidance on logits at
sampling time (``uncond + scale * (cond - uncond)``) and, with ``k = 0``, the fully parametric
baseline: the same network, projection and null token included, that only ever sees the null token,
built with the retrieval head's ``context_dim`` so both have the same parameter count (in the
baseline the null token and projection amount to one learned context vector: equal count, not more
capacity).

Positions: BOS sits at position 0 and token i at position i + 1; the last token is predicted, never
fed, so h*w positions suffice.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from rdmbench.api import HeadInputs, SampleRequest, TrainingData, TrainSettings
from rdmbench.device import float_tensor
from rdmbench.hookspecs import hookimpl
from rdmbench_plugins.heads.token_head import TokenHead


class RARMHead(TokenHead):
    """Autoregressive GPT-2 over VQ codebook tokens cross-attending to k retrieved neighbour embeddings (RARM)."""

    name = "rarm"
    #: the network module and the shared training loop: editing either recomputes what this head trained
    code_modules = ("rdmbench_plugins.heads.token_transformer", "rdmbench.training", "rdmbench.device")
    #: ~4 min on 2 cores (the embedded default)
    train_defaults = TrainSettings(steps=400, batch_size=64, lr=1e-3, warmup_steps=100, weight_decay=0.01)

    # -- building -------------------------------------------------------------------------------------
    def setup(self, inputs: HeadInputs, device: str, seed: int = 0) -> None:
        import torch
        from transformers import GPT2Config

        from rdmbench_plugins.heads.token_transformer import TokenTransformer

        c = self.config
        self.codebook_size, self.shape = self.grid(inputs)
        h, w = self.shape
        self.bos = self.codebook_size  # one id past the codes: fed first, never sampled
        config = GPT2Config(
            vocab_size=self.codebook_size + 1, n_positions=h * w, n_embd=c["n_embd"], n_layer=c["n_layer"],
            n_head=c["n_head"], resid_pdrop=c["dropout"], embd_pdrop=c["dropout"], attn_pdrop=c["dropout"],
            add_cross_attention=True, bos_token_id=self.bos, eos_token_id=None, pad_token_id=None,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = TokenTransformer(config, inputs.context_dim).to(device)
        self.model.eval()
        self.k, self.device, self.context_dim = inputs.k, device, inputs.context_dim

    # -- training (the loop is rdmbench.training's, shared by every head) --------------------------------
    def network(self):
        return self.model

    def loss(self, model, data: TrainingData, index, gen):
        """Mean next-token cross-entropy (nats per token) over all h*w positions of the batch."""
        import torch

        rows = index.numpy()
        tokens = torch.from_numpy(np.asarray(data.latents[rows], dtype=np.int64)).reshape(len(rows), -1)
        tokens = tokens.to(self.device)
        inputs = torch.cat([torch.full_like(tokens[:, :1], self.bos), tokens[:, :-1]], dim=1)
        context = float_tensor(data.context(rows), self.device)
        drop = self.null_mask(len(rows), gen).to(self.device)
        logits = model(inputs, context, drop)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tokens.reshape(-1))

    # -- sampling -------------------------------------------------------------------------------------
    def check_sampler(self, codebook_size: int | None, *, top_k: int | None = None,
                      temperature: float = 1.0) -> str | None:
        if top_k is not None and not 1 <= top_k <= (codebook_size or top_k):
            allowed = f"in 1..{codebook_size} (the codebook's size)" if codebook_size else "at least 1"
            return f"top_k={top_k} must be None (the whole codebook) or {allowed}"
        if not temperature > 0:
            return f"temperature={temperature} must be > 0"
        return None

    def sample(self, request: SampleRequest, progress=None, *, top_k: int | None = None,
               temperature: float = 1.0) -> np.ndarray:
        """Args:
            top_k: draw each token from the top_k most likely codes (None: the whole codebook).
            temperature: divides the logits before the draw (below 1: sharper).
        """
        import torch

        problem = self.check_sampler(self.codebook_size, top_k=top_k, temperature=temperature)
        if request.guidance_batching not in ("batched", "split"):
            problem = f"guidance_batching must be 'batched' or 'split', got {request.guidance_batching!r}"
        if problem:
            raise ValueError(problem)
        request = self.conditioned(request)
        gen = torch.Generator().manual_seed(request.seed)
        length = self.shape[0] * self.shape[1]
        out = np.empty((request.num, length), dtype=np.int64)
        batches = range(0, request.num, request.batch_size)
        self.model.eval()
        ctx_progress = progress.task("sample", len(batches) * length) if progress else nullcontext()
        with torch.inference_mode(), ctx_progress as advance:
            for s in batches:
                n = min(request.batch_size, request.num - s)
                context = float_tensor(None if request.context is None else request.context[s:s + n], self.device)
                next_logits = self._logits_stream(context, n, request)
                ids = torch.full((n, 1), self.bos, dtype=torch.long, device=self.device)
                for i in range(length):
                    logits = self._warp(next_logits(ids), top_k, temperature)
                    # drawn on the CPU generator: the same tokens for a seed on any device
                    chosen = torch.multinomial(torch.softmax(logits, dim=-1).cpu(), 1, generator=gen)
                    out[s:s + n, i] = chosen[:, 0].numpy()
                    ids = chosen.to(self.device)
                    if advance:
                        advance(1)
        return out.reshape(request.num, *self.shape)

    def _logits_stream(self, context, n: int, request: SampleRequest):
        """A function of the last tokens (n, 1) giving the next logits (n, vocabulary), guided when asked.

        Each stream of rows keeps its own KV cache. Guidance runs the unconditional (null token) and
        conditional rows as one batch of 2n ("batched") or as two ("split"); they differ in the last bits,
        so the pipeline resolves the choice per device and keys it, as for RDM.
        """
        import torch

        model, scale = self.model, request.guidance_scale
        caches: dict[str, object] = {}

        def run(name: str, ids, states):
            logits, caches[name] = model.step(ids, states, caches.get(name))
            return logits

        if scale == 1.0 or context is None:
            states = model.conditioning(context, None, n)
            return lambda ids: run("cond", ids, states)
        null = torch.ones(n, dtype=torch.bool, device=self.device)
        if request.guidance_batching == "batched":
            states = model.conditioning(torch.cat([context, context]), torch.cat([null, ~null]), 2 * n)

            def batched(ids):
                uncond, cond = run("both", torch.cat([ids, ids]), states).chunk(2)
                return self.guide(uncond, cond, scale)
            return batched
        uncond_states, cond_states = model.conditioning(context, null, n), model.conditioning(context, None, n)

        def split(ids):
            uncond = run("uncond", ids, uncond_states)
            cond = run("cond", ids, cond_states)
            return self.guide(uncond, cond, scale)
        return split

    def _warp(self, logits, top_k: int | None, temperature: float):
        """Mask BOS, then temperature and top-k, through transformers' own logits warpers."""
        from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper

        logits[:, self.bos] = -float("inf")
        if temperature != 1.0:
            logits = TemperatureLogitsWarper(temperature)(None, logits)
        if top_k is not None and top_k < self.codebook_size:
            logits = TopKLogitsWarper(top_k)(None, logits)
        return logits

@hookimpl
def rdmbench_heads():
    return [RARMHead]
