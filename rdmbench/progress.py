"""Progress bars with time-left estimates for long stages (rich), quiet when not on a terminal.

Plugins receive a ``Progress`` and report work through ``task(description, total)``; they never
talk to rich directly, so the runner decides how progress is shown (bars, log lines, nothing).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
log = logging.getLogger("rdmbench")


class Progress:
    """Reports advancement of named tasks. The base class logs a line every ~30 s with an ETA."""

    def __init__(self, interval_s: float = 30.0):
        self.interval_s = interval_s

    @contextlib.contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        start = last = time.monotonic()
        done = 0

        def advance(n: int = 1) -> None:
            nonlocal done, last
            done += n
            now = time.monotonic()
            if now - last >= self.interval_s and done:
                last = now
                eta = (now - start) / done * max(total - done, 0)
                log.info("%s: %d/%d (%.0f s left)", description, done, total, eta)

        yield advance
        log.info("%s: done in %.1f s", description, time.monotonic() - start)

    def track(self, items: Iterable[T], description: str, total: int) -> Iterator[T]:
        with self.task(description, total) as advance:
            for item in items:
                yield item
                advance(1)


class RichProgress(Progress):
    """Live bars with elapsed and remaining time on an interactive terminal."""

    def __init__(self) -> None:
        super().__init__()
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as _P, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._bars = _P(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), transient=True)

    @contextlib.contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        start = time.monotonic()
        with self._bars:
            tid = self._bars.add_task(description, total=total)
            try:
                yield lambda n=1: self._bars.advance(tid, n)
            finally:
                self._bars.remove_task(tid)
        log.info("%s: done in %.1f s", description, time.monotonic() - start)


def default_progress() -> Progress:
    return RichProgress() if sys.stderr.isatty() else Progress()
