"""Reading weight files as tensors only: the one place a ``.pt/.pth/.ckpt/.bin`` file is unpickled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rdmbench.errors import RdmbenchError


def load_tensors(path: Path, who: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; any refusal is one RdmbenchError line.

    torch words a corrupted file and one that carries pickled objects alike, so the message names both;
    pickled objects are never loaded.
    """
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise RdmbenchError(f"{who}: {str(path)!r} holds more than tensors or is corrupted; "
                            "torch.load(weights_only=True) refused it (pickled objects are never loaded; "
                            "re-save its state dict as .safetensors where you trust the file)") from None
    except Exception as exc:  # noqa: BLE001 - whatever torch raised for a file it cannot read, in one line
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RdmbenchError(f"{who}: cannot read {str(path)!r}: {reason}") from None
