"""Several processes of one launch (``torchrun`` or ``accelerate launch``): who computes, who writes.

Under a launcher every process runs the same command, and so walks the same runs and stages in the same
order. A stage that trains (``Pipeline.stage(..., collective=True)``) is computed by all of them
together through accelerate (DDP: each process takes its share of every batch, gradients are averaged);
the main process alone writes its cache entry. Every other stage is computed by the main process while
the others wait for its outcome, then read what it wrote: a stage is never computed twice, and there is
one writer of every entry, row, results.csv and report. Without a launcher there is one process and
nothing here does anything.

The process group is started through accelerate's ``PartialState`` (gloo on the CPU, NCCL on GPUs), the
same state the training loop's ``Accelerator`` then uses, with a timeout long enough for a stage the
main process computes alone (encoding a large database) while the others wait.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any, Callable, TypeVar

from rdmbench.errors import RdmbenchError, one_line

T = TypeVar("T")

#: how long the other processes wait for one stage of the main process's, or for a slow collective
WAIT = timedelta(hours=48)


class MainFailed(RdmbenchError):
    """The main process failed a stage the others were waiting for (its error is the message)."""


class CollectiveFailed(RdmbenchError):
    """A stage every process computes together failed in one of them: the launch stops (the others are
    inside the same collective), keeping what is finished; run the same command again to resume."""


def launched() -> bool:
    """True in a process started by a launcher that runs several (WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device: str) -> None:
    """Join the launch's process group (once; a no-op for one process)."""
    if not launched():
        return
    from accelerate import PartialState

    PartialState(cpu=str(device).startswith("cpu"), timeout=WAIT)


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def share(value: Any = None) -> Any:
    """The main process's ``value`` in every process (any JSON-like object)."""
    if not launched():
        return value
    import torch.distributed as dist

    box = [value if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if launched():
        import torch.distributed as dist

        dist.barrier()


def finish() -> None:
    """Leave the launch's process group once every process is done with it. Destroyed here rather than at
    interpreter exit: gloo's threads torn down by static destructors aborted a process now and then
    ("terminate called without an active exception") after its run had ended well."""
    if not launched():
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def by_main(compute: Callable[[], T]) -> T | None:
    """``compute()`` in the main process; the others wait for it to end and get None, or ``MainFailed``
    when it raised (so every process leaves the run at the same point and stays in step)."""
    if not launched():
        return compute()
    if not is_main():
        failure = share()
        if failure:
            raise MainFailed(failure)
        return None
    try:
        result = compute()
    except BaseException as exc:
        share(one_line(exc))
        raise
    share("")
    return result
