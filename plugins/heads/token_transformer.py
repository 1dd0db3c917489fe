"""The RARM network: a transformers GPT-2 over codebook tokens plus a learned null conditioning (imports
torch and transformers; loaded lazily)."""

from __future__ import annotations

import torch


class NullConditioned:
    """The cross-attention memory of a token network: its ``project``-ed neighbour set, or its learned ``null``
    token for the rows ``drop`` marks and for every row when there is no context (the parametric baseline)."""

    project: torch.nn.Linear
    null: torch.nn.Parameter

    def conditioning(self, context, drop, rows: int):
        """The memory for ``rows`` sequences: (rows, k or 1, width)."""
        if context is None:
            context = self.null.expand(rows, 1, -1)
        elif drop is not None and bool(drop.any()):
            # k copies of one token attend exactly like one token, so shapes stay uniform
            context = torch.where(drop[:, None, None], self.null.expand_as(context), context)
        return self.project(context)


class TokenTransformer(NullConditioned, torch.nn.Module):
    """GPT-2 whose cross-attention context is the projected neighbour set, or the learned null token.

    ``drop`` marks rows whose whole neighbour set is replaced by the null token (training dropout and
    the unconditional half of classifier-free guidance); ``context=None`` gives every row the null
    token, which is how the fully parametric baseline is trained and sampled.
    """

    def __init__(self, config, context_dim: int):
        from transformers import GPT2LMHeadModel

        super().__init__()
        self.gpt = GPT2LMHeadModel(config)
        self.project = torch.nn.Linear(context_dim, config.n_embd)
        self.null = torch.nn.Parameter(torch.randn(1, 1, context_dim) * 0.02)

    def forward(self, input_ids, context, drop=None):
        """Next-token logits (B, L, vocabulary) of ``input_ids`` (B, L), BOS first."""
        states = self.conditioning(context, drop, len(input_ids))
        return self.gpt(input_ids, encoder_hidden_states=states, use_cache=False).logits

    def step(self, input_ids, states, cache):
        """One cached decoding step: the last position's logits and the grown cache (self-attention keys
        grow by one position; the cross-attention keys of ``states`` are computed once, on the first step)."""
        out = self.gpt(input_ids, cache=cache, encoder_hidden_states=states, use_cache=True)
        return out.logits[:, -1, :].float(), out.cache
