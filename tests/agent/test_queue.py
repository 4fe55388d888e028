"""The agent's serial queue: one job at a time, a bounded line, deadlines and cancellation."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

from fleetnas.agent.queue import QueueFull, QueueTimeout, SerialQueue


def _sleeper(log: list[tuple[str, float, float]], name: str, seconds: float):
    def job(deadline: float, cancel: threading.Event) -> str:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds and not cancel.is_set():
            time.sleep(0.005)
        log.append((name, t0, time.monotonic()))
        return name

    return job


def test_jobs_never_overlap_and_keep_order() -> None:
    q = SerialQueue(size=4, timeout_s=10)
    log: list[tuple[str, float, float]] = []

    async def main() -> list[str]:
        jobs = [q.submit(_sleeper(log, f"j{i}", 0.05)) for i in range(4)]
        return await asyncio.gather(*jobs)

    assert asyncio.run(main()) == ["j0", "j1", "j2", "j3"]
    spans = sorted((t0, t1) for _, t0, t1 in log)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert q.pending == 0 and q.completed == 4
    q.shutdown()


def test_full_line_is_refused_with_retry_after() -> None:
    q = SerialQueue(size=1, timeout_s=10)
    log: list[tuple[str, float, float]] = []

    async def main() -> None:
        running = asyncio.ensure_future(q.submit(_sleeper(log, "a", 0.3)))
        waiting = asyncio.ensure_future(q.submit(_sleeper(log, "b", 0.01)))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull) as info:
            await q.submit(_sleeper(log, "c", 0.01))
        assert info.value.retry_after >= 1
        assert await running == "a" and await waiting == "b"

    asyncio.run(main())
    assert [name for name, *_ in log] == ["a", "b"]
    q.shutdown()


def test_timeout_cancels_running_and_skips_waiting_jobs() -> None:
    q = SerialQueue(size=2, timeout_s=0.2)
    log: list[tuple[str, float, float]] = []

    async def main() -> None:
        first = asyncio.ensure_future(q.submit(_sleeper(log, "long", 5.0)))
        second = asyncio.ensure_future(q.submit(_sleeper(log, "next", 0.01)))
        with pytest.raises(QueueTimeout):
            await first
        with pytest.raises(QueueTimeout):
            await second

    t0 = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - t0 < 2
    time.sleep(0.05)
    names = [name for name, *_ in log]
    assert names == ["long"]  # the running job saw the cancel; the waiting one never ran
    assert log[0][2] - log[0][1] < 1.0
    assert q.pending == 0
    q.shutdown()
