"""The MaskGIT network: a bidirectional transformer over codebook tokens with cross-attention to the projected
neighbour set, or a learned null conditioning (imports torch; loaded lazily).

The layers are torch's own ``nn.TransformerDecoderLayer`` (self-attention, cross-attention to a memory,
feed-forward; pre-norm) run without a causal mask, so every position attends to every other: a BERT-style
encoder that also cross-attends. transformers' ``BertModel`` refuses cross-attention unless ``is_decoder``,
which makes its self-attention causal.
"""

from __future__ import annotations

import torch

from rdmbench_plugins.heads.token_transformer import NullConditioned


class MaskedTokenTransformer(NullConditioned, torch.nn.Module):
    """Logits over the codebook for every position of a token grid in which some ids are ``[MASK]``.

    Ids ``0 .. codebook_size - 1`` are codes and ``codebook_size`` is ``[MASK]`` (input only: the output
    covers the codes). ``drop`` marks rows whose whole neighbour set is replaced by the null token (training
    dropout and the unconditional half of classifier-free guidance); ``context=None`` gives every row the
    null token, which is how the fully parametric baseline is trained and sampled.
    """

    def __init__(self, codebook_size: int, length: int, context_dim: int, n_embd: int, n_layer: int, n_head: int,
                 dropout: float):
        super().__init__()
        self.embed = torch.nn.Embedding(codebook_size + 1, n_embd)
        self.position = torch.nn.Parameter(torch.zeros(1, length, n_embd))
        layer = torch.nn.TransformerDecoderLayer(n_embd, n_head, 4 * n_embd, dropout, activation="gelu",
                                                 batch_first=True, norm_first=True)
        self.blocks = torch.nn.TransformerDecoder(layer, n_layer, norm=torch.nn.LayerNorm(n_embd))
        self.out = torch.nn.Linear(n_embd, codebook_size)
        # BERT/GPT-2's initialisation of the transformer; TransformerDecoder deep-copies one layer, so each is
        # re-drawn here. The projection and null token are initialised as RARM's (torch's Linear default).
        for name, p in self.named_parameters():
            if p.dim() > 1:
                torch.nn.init.normal_(p, std=0.02)
            elif name.endswith("bias"):
                torch.nn.init.zeros_(p)
        self.project = torch.nn.Linear(context_dim, n_embd)
        self.null = torch.nn.Parameter(torch.randn(1, 1, context_dim) * 0.02)

    def logits(self, ids, states):
        """Logits (B, L, codebook_size) of ``ids`` (B, L) against the memory ``states`` (``conditioning``)."""
        x = self.embed(ids) + self.position[:, : ids.shape[1]]
        return self.out(self.blocks(x, states)).float()

    def forward(self, ids, context, drop=None):
        return self.logits(ids, self.conditioning(context, drop, len(ids)))
