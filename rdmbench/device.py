"""Which torch device a ``device: auto`` setting means here (imports torch only when called)."""

from __future__ import annotations

import os

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


#: torch's intra-op thread count before rdmbench first set it: what ``threads: auto`` means in this process
_auto_threads: int | None = None


def auto_threads() -> int:
    """What a serial run here computes with: torch's own intra-op count in a fresh process (the physical cores,
    or OMP_NUM_THREADS), remembered before ``apply_threads`` first changes it."""
    global _auto_threads
    if _auto_threads is None:
        import torch

        _auto_threads = torch.get_num_threads()
    return _auto_threads


def resolve_threads(runs: list, auto: int | None = None) -> None:
    """``threads: auto`` -> an int in every run's config (``auto``, else this process's own count), in the driver
    before any run is executed or sent to a worker: a worker's own default differs (Ray starts its workers at
    OMP_NUM_THREADS=1), and float sums reduce in another order with another thread count, which a trained head
    amplifies like another seed."""
    for run in runs:
        if run.spec.threads == "auto":
            run.spec = run.spec.model_copy(update={"threads": auto or auto_threads()})


def apply_threads(n: int) -> dict[str, int]:
    """Compute with ``n`` threads in this process: torch's intra-op pool and every BLAS/OpenMP pool numpy and
    scipy loaded (threadpoolctl). Returns the counts now in force, as env.json records them. torch's inter-op
    pool is left alone: it only runs independent ops side by side, which changes no sum's order, and torch
    refuses to resize it once used."""
    import torch
    from threadpoolctl import threadpool_limits

    auto_threads()  # remember the process's own default before changing it
    os.environ["OMP_NUM_THREADS"] = str(n)  # for pools loaded later (faiss's OpenMP) and child processes
    torch.set_num_threads(n)
    threadpool_limits(limits=n)
    return threads_in_force()


def threads_in_force() -> dict[str, int]:
    """This process's thread pools now: torch's intra-op and each kind of BLAS/OpenMP pool loaded (the largest
    count among copies of one kind), as env.json records them."""
    import torch
    from threadpoolctl import threadpool_info

    pools: dict[str, int] = {"torch": torch.get_num_threads()}
    for pool in threadpool_info():
        pools[pool["internal_api"]] = max(pool["num_threads"], pools.get(pool["internal_api"], 0))
    return pools
