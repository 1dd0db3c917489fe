"""The RDM network: a diffusers UNet plus a learned null conditioning (imports torch; loaded lazily)."""

from __future__ import annotations

import torch


class ConditionedUNet(torch.nn.Module):
    """UNet whose cross-attention context is the neighbour set, or the learned null token.

    ``drop`` marks rows whose whole neighbour set is replaced by the null token (training dropout
    and the unconditional half of classifier-free guidance); ``context=None`` gives every row the
    null token, which is how the fully parametric baseline is trained and sampled.
    """

    def __init__(self, unet: torch.nn.Module, context_dim: int):
        super().__init__()
        self.unet = unet
        self.null = torch.nn.Parameter(torch.randn(1, 1, context_dim) * 0.02)

    def forward(self, x, t, context, drop):
        if context is None:
            context = self.null.expand(len(x), 1, -1)
        elif drop is not None and bool(drop.any()):
            # k copies of one token attend exactly like one token, so shapes stay uniform
            context = torch.where(drop[:, None, None], self.null.expand_as(context), context)
        return self.unet(x, t, encoder_hidden_states=context).sample
