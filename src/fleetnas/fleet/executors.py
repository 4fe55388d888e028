"""Where per-device work runs: in this process, a local process pool, or Ray tasks.

Every executor runs the same unit of work, :func:`run_chunk` (one chunk of plan tasks through a
:class:`~fleetnas.fleet.planner.Planner`), and yields the chunks' outputs as they complete. The
planner is shipped to each worker once (process-pool initializer, or one Ray object) and bound
there (its own store handle, one BLAS/torch thread); workers never write the store: the driver
does, one run per chunk (:mod:`fleetnas.fleet.plan`). At most ``window`` chunks are in flight, so
memory stays flat for a million-device fleet and an interrupt loses only the chunks in flight.

- :class:`SerialExecutor`: in the calling process (small fleets, ``memory://`` stores, debugging).
- :class:`LocalPool`: :class:`concurrent.futures.ProcessPoolExecutor` (spawned workers).
- :class:`RayExecutor`: ``@ray.remote`` tasks on a local Ray instance (``num_cpus`` workers) or
  an existing cluster (``address``); needs the ``[ray]`` extra.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import resource
import signal
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from fleetnas.errors import InputError
from fleetnas.fleet.planner import ChunkOutput, Planner, Task, set_task_counter, single_thread

EXECUTORS = ("serial", "local", "ray")

Chunk = tuple[int, Sequence[Task]]

_WORKER_PLANNER: Planner | None = None
_WORKER_PLANNERS: dict[str, Planner] = {}


def _init_worker(planner: Planner, counter: Any = None) -> None:
    global _WORKER_PLANNER
    detach_worker_signals()
    set_task_counter(counter)
    planner.bind_worker()
    _WORKER_PLANNER = planner


def detach_worker_signals() -> None:
    """Leave interrupts to the driver: a worker ignores SIGINT (Ctrl-C reaches the whole
    terminal process group; the driver stops the workers itself, so no worker prints a
    traceback), ends quietly on SIGTERM, and on Linux gets SIGTERM when the driver dies
    (even by ``kill -9``) instead of running on as an orphan."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            return
        if os.getppid() == 1:  # the driver died before prctl took effect
            os._exit(1)


_PR_SET_PDEATHSIG = 1


def _pool_chunk(chunk_id: int, tasks: Sequence[Task]) -> ChunkOutput:
    assert _WORKER_PLANNER is not None, "worker started without a planner"
    return run_chunk(_WORKER_PLANNER, chunk_id, tasks)


def run_chunk(planner: Planner, chunk_id: int, tasks: Sequence[Task]) -> ChunkOutput:
    """Plan one chunk; records where and how long it ran. Never raises for a device."""
    t0 = time.perf_counter()
    out = planner.plan(chunk_id, tasks)
    out.wall_s = time.perf_counter() - t0
    out.worker = f"{os.uname().nodename}:{os.getpid()}"
    out.peak_rss_mb = peak_rss_mb()
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MiB): ``VmHWM`` where Linux has it (``ru_maxrss``
    survives fork and exec, so a spawned worker would report its parent's peak), else
    ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Executor(ABC):
    """Runs chunks of plan tasks and yields their outputs as they complete."""

    name: str = ""
    workers: int = 1
    #: Shared finished-task counter (``multiprocessing.Value``) the workers add to, for live
    #: progress within chunks; set by the caller before :meth:`run`, ``None``: not counted.
    counter: Any = None

    @abstractmethod
    def run(self, planner: Planner, chunks: Sequence[Chunk]) -> Iterator[ChunkOutput]: ...

    def close(self) -> None:  # noqa: B027 (executors without workers hold nothing)
        """Release workers (also after an interrupt)."""

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.workers}

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Chunks one after another in this process."""

    name = "serial"

    def run(self, planner: Planner, chunks: Sequence[Chunk]) -> Iterator[ChunkOutput]:
        planner.bind_worker(threads=None)
        set_task_counter(self.counter)
        try:
            for cid, tasks in chunks:
                with single_thread():
                    out = run_chunk(planner, cid, tasks)
                yield out
        finally:
            set_task_counter(None)


class LocalPool(Executor):
    """A pool of ``workers`` spawned processes (default: the machine's CPU count)."""

    name = "local"

    def __init__(self, workers: int | None = None, window: int | None = None) -> None:
        n = workers or os.cpu_count() or 1
        if n < 1:
            raise InputError(f"--workers must be >= 1, got {workers}")
        self.workers = int(n)
        self.window = int(window or 2 * self.workers)
        self._pool: ProcessPoolExecutor | None = None
        self._busy = False

    def run(self, planner: Planner, chunks: Sequence[Chunk]) -> Iterator[ChunkOutput]:
        if not chunks:
            return
        self._pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(chunks)),
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(planner, self.counter),
        )
        todo = list(chunks)
        running: set[Future[ChunkOutput]] = set()
        self._busy = True
        try:
            while todo or running:
                while todo and len(running) < self.window:
                    cid, tasks = todo.pop(0)
                    running.add(self._pool.submit(_pool_chunk, cid, tasks))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
            self._busy = False
        finally:
            self.close()

    def close(self) -> None:
        """Shut the pool down. Closed while chunks are still running (an interrupt, an error,
        a consumer that stopped early), the workers are ended at once instead of finishing
        chunks whose results nobody will read."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if self._busy:
            _terminate_workers(pool)
        # Wait even after terminating: the pool's manager thread then sees the dead workers
        # and ends before the interpreter's exit hook writes to its (closed) wake-up pipe.
        pool.shutdown(wait=True, cancel_futures=True)
        self._busy = False


def _terminate_workers(pool: ProcessPoolExecutor, grace_s: float = 5.0) -> None:
    """SIGTERM every worker of ``pool``, then SIGKILL those still alive after ``grace_s``."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)


def ray_available() -> bool:
    """Whether the ``[ray]`` extra is installed."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _ray_chunk(boxed: list[Any], key: str, chunk_id: int, tasks: Sequence[Task]) -> ChunkOutput:
    """Ray task body: fetch and bind the planner once per worker process (it comes boxed in a
    list so that Ray does not deserialize it for every task), then plan the chunk."""
    bound = _WORKER_PLANNERS.get(key)
    if bound is None:
        import ray

        planner = ray.get(boxed[0])
        planner.bind_worker()
        _WORKER_PLANNERS.clear()
        _WORKER_PLANNERS[key] = bound = planner
    return run_chunk(bound, chunk_id, tasks)


class RayExecutor(Executor):
    """Chunks as Ray tasks. Without ``address`` a local Ray instance with ``workers`` CPUs is
    started (and stopped on close); with one (``auto`` or ``ray://host:10001``) the cluster's
    CPUs are used. The planner is put in the object store once; the driver alone writes."""

    name = "ray"

    def __init__(
        self, workers: int | None = None, address: str | None = None, window: int | None = None
    ) -> None:
        if not ray_available():
            raise InputError(
                "--executor ray needs the ray package: pip install 'fleetnas[ray]' "
                "(or use --executor local)"
            )
        self.address = address
        self.workers = int(workers or os.cpu_count() or 1)
        self.window = window
        self._started = False

    def _init(self) -> None:
        import ray

        if ray.is_initialized():
            return
        env = {"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}}
        kw: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "runtime_env": env,
            "configure_logging": False,
        }
        if self.address:
            ray.init(address=self.address, **kw)
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        else:
            ray.init(num_cpus=self.workers, **kw)
        self._started = True

    def run(self, planner: Planner, chunks: Sequence[Chunk]) -> Iterator[ChunkOutput]:
        if not chunks:
            return
        import ray

        self._init()
        remote = ray.remote(num_cpus=1, max_retries=2)(_ray_chunk)
        ref = ray.put(planner)
        key = planner.config.digest()
        window = self.window or 2 * self.workers
        todo = list(chunks)
        running: list[Any] = []
        try:
            while todo or running:
                while todo and len(running) < window:
                    cid, tasks = todo.pop(0)
                    running.append(remote.remote([ref], key, cid, tasks))
                done, running = ray.wait(running, num_returns=1)
                for r in done:
                    yield ray.get(r)
        finally:
            for r in running:
                ray.cancel(r, force=True)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "address": self.address or "local"}

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def make_executor(
    name: str = "local",
    workers: int | None = None,
    address: str | None = None,
) -> Executor:
    """``serial``, ``local`` (process pool) or ``ray`` (``address`` joins a cluster)."""
    if name == "serial":
        return SerialExecutor()
    if name == "local":
        return LocalPool(workers)
    if name == "ray":
        return RayExecutor(workers, address)
    raise InputError(f"unknown executor {name!r}; expected one of {', '.join(EXECUTORS)}")


__all__ = [
    "EXECUTORS",
    "Executor",
    "LocalPool",
    "RayExecutor",
    "SerialExecutor",
    "make_executor",
    "peak_rss_mb",
    "ray_available",
    "run_chunk",
]
