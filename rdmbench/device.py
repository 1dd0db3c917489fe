"""Which torch device a ``device: auto`` setting means here (imports torch only when called)."""

from __future__ import annotations

from rdmbench import processes


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a CUDA device is visible, else ``cpu``; anything else as given. Under a
    launcher of several processes (rdmbench.processes), ``cuda`` is the process's own GPU (``LOCAL_RANK``)."""
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and processes.launched():
        return f"cuda:{processes.local_rank()}"
    return device


def float_tensor(array, device: str):
    """A numpy array (e.g. a batch of neighbour embeddings) as a contiguous float32 tensor on ``device``;
    None, a parametric baseline's absent neighbours, stays None."""
    if array is None:
        return None
    import numpy as np
    import torch

    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)
