"""What the token heads (rarm, maskgit) share as heads: a transformer's size and dropout as their arguments, a
first stage with a codebook and an (h, w) grid, and their weights saved as safetensors beside a head.json."""

from __future__ import annotations

import json
from pathlib import Path

from rdmbench.api import Head, HeadInputs, Space
from rdmbench.errors import ConfigError


class TokenHead(Head):
    """A transformer over a VQ first stage's codebook tokens, cross-attending to k neighbour embeddings."""

    generates = Space.TOKENS

    def __init__(
        self,
        n_layer: int = 4,
        n_embd: int = 256,
        n_head: int = 4,
        dropout: float = 0.0,  # inside the transformer (rarm: GPT-2's residual, attention and embedding dropout)
        cond_dropout: float = 0.1,
    ):
        _check(n_layer >= 1, "n_layer", f"must be at least 1, got {n_layer}")
        _check(n_head >= 1, "n_head", f"must be at least 1, got {n_head}")
        _check(n_embd >= 1 and n_embd % n_head == 0, "n_embd",
               f"must be a positive multiple of n_head={n_head}, got {n_embd}")
        _check(0.0 <= dropout < 1.0, "dropout", f"must be in [0, 1), got {dropout}")
        _check(0.0 <= cond_dropout < 1.0, "cond_dropout", f"must be in [0, 1), got {cond_dropout}")
        self.model = None

    def grid(self, inputs: HeadInputs) -> tuple[int, tuple[int, int]]:
        """(codebook size, (h, w)) of the first stage the head is built for, refused in one line without one."""
        if inputs.codebook_size is None or len(inputs.shape) != 2:
            raise ConfigError(f"{self.name} generates codebook tokens: it needs a first stage with a codebook and an "
                              f"(h, w) token grid, got shape {tuple(inputs.shape)} and codebook_size "
                              f"{inputs.codebook_size}", key="first_stage")
        h, w = inputs.shape
        return int(inputs.codebook_size), (int(h), int(w))

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_model

        # save_model, not save_file: GPT-2 ties lm_head to the token embedding, which save_file refuses
        save_model(self.model, str(Path(directory) / "head.safetensors"))
        (Path(directory) / "head.json").write_text(json.dumps(
            {"config": self.config, "k": self.k, "shape": self.shape, "codebook_size": self.codebook_size,
             "context_dim": self.context_dim}, default=list))

    def load(self, directory: Path) -> None:
        from safetensors.torch import load_model

        load_model(self.model, str(Path(directory) / "head.safetensors"), device=str(self.device))
        self.model.eval()


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(message, key=key)
