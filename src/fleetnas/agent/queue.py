"""The agent's execution queue: one measurement at a time, a bounded wait line, a deadline.

Measurements on one device must not overlap (two runs at once distort each other), so jobs run
on a single worker thread. At most ``size`` jobs may wait behind the running one; beyond that
:meth:`SerialQueue.submit` raises :class:`QueueFull` with a Retry-After estimate. Every job gets
a deadline (queue wait included) and a cancel event; a job still waiting when its request times
out never starts, and a running one is asked to stop (local measurers then kill their worker).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

#: A job: ``fn(deadline, cancel)`` with ``deadline`` a :func:`time.monotonic` instant.
Job = Callable[[float, threading.Event], T]


class QueueFull(Exception):
    """The wait line is full; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"measurement queue is full; retry after {retry_after} s")
        self.retry_after = retry_after


class QueueTimeout(Exception):
    """The job did not finish within its timeout (waiting included)."""


class SerialQueue:
    """Runs submitted jobs one at a time, in arrival order."""

    def __init__(self, size: int = 4, timeout_s: float = 300.0) -> None:
        if size < 0 or timeout_s <= 0:
            raise ValueError(f"queue size must be >= 0 and timeout > 0, got {size}, {timeout_s}")
        self.size = size
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleetnas-measure")
        self._lock = threading.Lock()
        self._pending = 0
        self._running = 0
        self._mean_s = 5.0
        self.completed = 0

    @property
    def pending(self) -> int:
        """Jobs waiting or running."""
        return self._pending

    @property
    def running(self) -> bool:
        return self._running > 0

    def _reserve(self) -> None:
        with self._lock:
            if self._pending >= self.size + 1:
                raise QueueFull(max(1, math.ceil(self._pending * self._mean_s)))
            self._pending += 1

    def _release(self, _: Future) -> None:
        with self._lock:
            self._pending -= 1

    def _wrap(self, fn: Job[T], deadline: float, cancel: threading.Event) -> Callable[[], T]:
        def run() -> T:
            if cancel.is_set() or time.monotonic() >= deadline:
                raise QueueTimeout("the job's deadline passed while it was waiting")
            with self._lock:
                self._running += 1
            t0 = time.monotonic()
            try:
                return fn(deadline, cancel)
            finally:
                took = time.monotonic() - t0
                with self._lock:
                    self._running -= 1
                    self._mean_s = 0.7 * self._mean_s + 0.3 * took
                    self.completed += 1

        return run

    async def submit(self, fn: Job[T], timeout_s: float | None = None) -> T:
        """Run ``fn(deadline, cancel)`` after the jobs ahead of it; raise :class:`QueueFull`
        at once when the line is full and :class:`QueueTimeout` when the timeout passes."""
        self._reserve()
        timeout = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
        deadline = time.monotonic() + timeout
        cancel = threading.Event()
        try:
            future = self._executor.submit(self._wrap(fn, deadline, cancel))
        except BaseException:
            self._release(None)  # type: ignore[arg-type]
            raise
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout)
        except TimeoutError:
            cancel.set()
            future.cancel()
            raise QueueTimeout(f"measurement did not finish within {timeout:g} s") from None
        except asyncio.CancelledError:  # the client went away: stop the job too
            cancel.set()
            future.cancel()
            raise

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
