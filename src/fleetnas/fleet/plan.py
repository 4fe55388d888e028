"""Plan a whole fleet: resumable orchestration, the store path, the summary and plan.json.

:func:`plan_fleet` splits the fleet's tasks (one per device and budget) into fixed chunks of
``config.chunk_size`` in fleet order, skips every task whose entry the store already holds (same
plan name, same config digest, same task fingerprint; failed entries are retried unless
``retry_failed=False``), runs the remaining chunks on an executor and writes each completed chunk
in its own store run: entries, the measurements its workers took, the devices measured. A kill
loses at most the chunks in flight; running the same command again continues from there and
recomputes nothing already stored. Chunks are fixed on the whole task list, so a resumed plan is
made of the same chunks as an uninterrupted one and ends equal to it.

plan.json (``docs/plan-format.md``, :mod:`fleetnas.fleet.plan_document`) is assembled from the
store at the end and written atomically (temporary file and rename).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fleetnas.errors import InputError, UnknownNameError
from fleetnas.fleet.executors import Executor, SerialExecutor
from fleetnas.fleet.fleetfile import Fleet
from fleetnas.fleet.lease import (
    LEASE_TTL_S,
    acquire,
    holders,
    lease_key,
    release,
    still_held,
)
from fleetnas.fleet.plan_document import assemble_plan, write_plan
from fleetnas.fleet.planner import (
    ChunkOutput,
    FleetPlanner,
    PlanConfig,
    Planner,
    Task,
    fleet_tasks,
)
from fleetnas.fleet.session import check_priced_devices
from fleetnas.store import Artifact, MeasurementBatch, Store

#: Artifact kind of a plan's header (config, fleet, digest) in the store.
HEADER_KIND = "plan"
#: Run kind of each chunk's write.
RUN_KIND = "plan"
#: Seconds between two looks at the store while another run computes a chunk this one needs.
LEASE_POLL_S = 0.5
#: Keys of an entry that exist only for bookkeeping (kept in the store and plan.json).
_BOOKKEEPING = ("index", "task_fingerprint", "run", "chunk")

Progress = Callable[[int, int], None]


@dataclass
class RunStats:
    """Accounting of one invocation: chunks and entries computed, worker seconds (summed
    inside the workers), driver seconds spent writing, and wall time in phases: ``prepare_s``
    (header, resume lookup, planner and ground truth built), ``startup_s`` (until the first
    chunk came back, minus its own time: the executor's start), ``chunks_s`` (all chunks),
    ``finish_s`` (plan assembled from the store); plus the workers' peak RSS."""

    chunks: int = 0
    entries: int = 0
    worker_s: float = 0.0
    write_s: float = 0.0
    prepare_s: float = 0.0
    startup_s: float | None = None
    chunks_s: float = 0.0
    finish_s: float = 0.0
    wall_s: float = 0.0
    measurements: int = 0
    worker_peak_rss_mb: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def add(self, out: ChunkOutput) -> None:
        self.chunks += 1
        self.entries += len(out.entries)
        self.worker_s += out.wall_s
        self.measurements += sum(int(e.get("measurements") or 0) for e in out.entries)
        self.worker_peak_rss_mb = max(self.worker_peak_rss_mb, out.peak_rss_mb)
        for k, v in out.timings.items():
            self.timings[k] = self.timings.get(k, 0.0) + v

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PlanRun:
    """Outcome of :func:`plan_fleet`: the plan document and what this invocation did."""

    plan: dict[str, Any]
    path: Path | None
    computed: int
    reused: int
    chunks: int
    wall_s: float
    stats: RunStats = field(default_factory=RunStats)

    @property
    def summary(self) -> dict[str, Any]:
        return self.plan["summary"]

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self.plan["devices"]


def default_plan_name(fleet: Fleet, config: PlanConfig) -> str:
    return f"{fleet.name}-{config.space}"


#: Measurer kinds that time networks on this machine: their tasks never run beside other work.
EXCLUSIVE_KINDS = ("onnxruntime", "torch", "litert", "openvino", "executorch")


def is_exclusive(task: Task) -> bool:
    """Whether ``task`` measures on this machine (run alone, in the driver, after the rest)."""
    return task.device.measurer_kind in EXCLUSIVE_KINDS


def _pack(tasks: Sequence[Task], size: int) -> list[list[Task]]:
    """Consecutive whole devices per chunk, up to ``size`` tasks (a device with more budgets
    than ``size`` gets a chunk of its own)."""
    chunks: list[list[Task]] = []
    current: list[Task] = []
    i = 0
    while i < len(tasks):
        j = i
        while j < len(tasks) and tasks[j].device.name == tasks[i].device.name:
            j += 1
        if current and len(current) + (j - i) > size:
            chunks.append(current)
            current = []
        current.extend(tasks[i:j])
        i = j
    if current:
        chunks.append(current)
    return chunks


def chunk_tasks(tasks: Sequence[Task], size: int) -> list[tuple[int, list[Task]]]:
    """Fixed chunks in fleet order, ``(chunk id, tasks)``: whole devices, about ``size`` tasks
    each, so that a device's budgets share one measurement session and no chunk reuses values
    another chunk of the same plan measured (results do not depend on which chunk finished
    first). Tasks measured on this machine (:func:`is_exclusive`) form the last chunks."""
    shared = _pack([t for t in tasks if not is_exclusive(t)], size)
    alone = _pack([t for t in tasks if is_exclusive(t)], size)
    return list(enumerate(shared + alone))


def _header(name: str, fleet: Fleet, config: PlanConfig) -> dict[str, Any]:
    return {
        "plan": name,
        "fleet": fleet.source or fleet.name,
        "fleet_name": fleet.name,
        "config": config.to_dict(),
        "digest": config.digest(),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _save_header(store: Store, name: str, header: dict[str, Any], config: PlanConfig) -> None:
    with store.run(RUN_KIND, {"plan": name, "header": True, "config": config.digest()}) as run:
        run.save_artifact(
            Artifact(
                name=name,
                kind=HEADER_KIND,
                payload=json.dumps(header, sort_keys=True).encode(),
                meta={"digest": config.digest(), "fleet": header["fleet"]},
            )
        )


def _stored_header(store: Store, name: str) -> dict[str, Any] | None:
    try:
        art = store.load_artifact(name, HEADER_KIND)
    except UnknownNameError:
        return None
    return json.loads(art.payload)


def _check_header(
    store: Store, name: str, config: PlanConfig, fresh: bool
) -> dict[str, Any] | None:
    old = _stored_header(store, name)
    if old is None or fresh or old.get("digest") == config.digest():
        return old
    theirs = old.get("config", {})
    changed = sorted(k for k, v in config.to_dict().items() if theirs.get(k) != v)
    raise InputError(
        f"plan {name!r} in {store.safe_url} was made with another config (differs in "
        f"{', '.join(changed) or 'digest'}); give another --name, or --fresh to replace it"
    )


def _write_chunk(
    store: Store,
    name: str,
    out: ChunkOutput,
    devices: dict[str, Any],
    digest: str,
) -> int:
    """One run: the chunk's measured devices, its measurements and its entries."""
    from fleetnas.spaces import get_space

    cfg = {"plan": name, "chunk": out.chunk, "entries": len(out.entries), "config": digest}
    cfg["worker"] = out.worker
    idents = {m["identity"]: m["identity_fields"] for m in out.measurements if m.get("identity")}
    if idents:
        cfg["identities"] = idents
    with store.run(RUN_KIND, cfg) as run:
        measured = dict.fromkeys(m["device"] for m in out.measurements)
        for dev in measured:
            if dev in devices:
                run.add_device(devices[dev])
        for m in out.measurements:
            sp = get_space(m["space"])
            run.add_measurements(
                MeasurementBatch(
                    space=sp,
                    archs=sp.parse_many(m["archs"]),
                    device=m["device"],
                    metric=m["metric"],
                    values=np.asarray(m["values"], dtype=float),
                    unit=m["unit"],
                    statistic=m["statistic"],
                    n=np.asarray(m["n"]),
                    method=m["method"],
                    is_estimate=m["is_estimate"],
                    identity=m.get("identity"),
                )
            )
        for e in out.entries:
            e["run"] = run.info.id
            e["chunk"] = out.chunk
        run.save_plan_entries(name, out.entries)
        return run.info.id


def _stored_since(entry: dict[str, Any] | None, task: Task, runs_before: dict) -> bool:
    """Whether ``entry`` holds ``task``'s result written after ``runs_before`` was read."""
    return (
        entry is not None
        and entry.get("task_fingerprint") == task.fingerprint
        and entry.get("run") != runs_before.get(task.key)
    )


def make_planner(
    config: PlanConfig, store: Any = None, reuse: bool = True, devices: Sequence[Any] = ()
) -> Planner:
    """The planner behind ``fleetnas plan`` for ``config`` reading ``store``; ``reuse=False``
    (``--fresh``) measures everything again instead of reusing values stored earlier, so the
    plan equals one made on a store without them. A compressed space (or a device of another
    space, ``devices``) gets :class:`~fleetnas.fleet.compression.CompressionPlanner`."""
    from fleetnas.fleet.compression import CompressionPlanner, is_compression_plan

    if is_compression_plan(config, devices):
        return CompressionPlanner(config, store, reuse=reuse, devices=devices)
    return FleetPlanner(config, store, reuse=reuse)


def plan_fleet(
    fleet: Fleet,
    config: PlanConfig,
    store: Store,
    planner: Planner | None = None,
    *,
    name: str | None = None,
    out: str | os.PathLike[str] | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
    retry_failed: bool = True,
    fresh: bool = False,
    lease_ttl_s: float = LEASE_TTL_S,
) -> PlanRun:
    """Plan ``fleet`` with ``planner`` (default: :func:`make_planner`,
    the real approaches) on ``executor`` (default: in this process), resuming what the store
    holds for plan ``name``; returns the plan and writes it to ``out``. Each chunk is computed
    under a lease in the store (:mod:`fleetnas.fleet.lease`): a concurrent run of the same plan
    waits for the chunks another holds and reads them, instead of computing them again."""
    t0 = time.perf_counter()
    name = name or default_plan_name(fleet, config)
    old = _check_header(store, name, config, fresh)
    tasks = fleet_tasks(fleet)
    if not tasks:
        raise InputError(
            f"fleet {fleet.name!r} has no (device, budget) pairs: nothing to plan; give it "
            "devices with budgets"
        )
    check_priced_devices([t.device for t in tasks], config.space, store)
    header = _header(name, fleet, config)
    prior_wall = 0.0
    if old is not None and not fresh:
        header["created"] = old.get("created", header["created"])
        prior_wall = float(old.get("plan_wall_s") or 0.0)
    header["plan_wall_s"] = prior_wall
    _save_header(store, name, header, config)
    stored = {} if fresh else {e.get("key", e["device"]): e for e in store.get_plan(name)}
    done = {
        t.key
        for t in tasks
        if (e := stored.get(t.key)) is not None
        and e.get("task_fingerprint") == t.fingerprint
        and not (retry_failed and e.get("status") == "failed")
    }
    chunks = [
        (cid, todo)
        for cid, part in chunk_tasks(tasks, config.chunk_size)
        if (todo := [t for t in part if t.key not in done])
    ]
    total = len(tasks)
    live = _LiveProgress(progress, len(done), total)
    devices = {t.device.name: t.device for t in tasks}
    stats = RunStats()
    ex = executor or SerialExecutor()
    alone_ex = SerialExecutor()
    ex.counter = alone_ex.counter = live.counter
    t_start = time.perf_counter()
    runs_before = {e.get("key", e["device"]): e.get("run") for e in store.get_plan(name)}
    held = holders(store)
    leases = {
        cid: acquire(
            store,
            name,
            cid,
            lease_key(name, config.digest(), cid, todo, runs_before),
            lease_ttl_s,
            held,
        )
        for cid, todo in chunks
    }
    state: dict[str, Any] = {"finished": len(done), "waited": 0, "planner": planner}
    state["prepared"] = False
    written: set[int] = set()

    def compute(part: list[tuple[int, list[Task]]]) -> None:
        nonlocal t_start
        if not part:
            return
        if state["planner"] is None:
            state["planner"] = make_planner(
                config, store, reuse=not fresh, devices=list(devices.values())
            )
        plan_with = state["planner"]
        if plan_with.config != config:
            raise InputError("the planner was built for another plan config")
        if not state["prepared"]:
            plan_with.prepare([t for _, todo in chunks for t in todo])
            state["prepared"] = True
            t_start = time.perf_counter()
            stats.prepare_s = t_start - t0
        shared = [c for c in part if not is_exclusive(c[1][0])]
        alone = [c for c in part if is_exclusive(c[1][0])]
        live.start()
        for run_on, some in ((ex, shared), (alone_ex, alone)):
            for chunk_out in run_on.run(plan_with, some):
                if stats.startup_s is None:
                    stats.startup_s = time.perf_counter() - t_start - chunk_out.wall_s
                t_w = time.perf_counter()
                _write_chunk(store, name, chunk_out, devices, config.digest())
                written.add(chunk_out.chunk)
                stats.write_s += time.perf_counter() - t_w
                stats.add(chunk_out)
                state["finished"] += len(chunk_out.entries)
                live.chunk_done(len(chunk_out.entries))

    try:
        compute([c for c in chunks if leases[c[0]].mine])
        waiting = {cid: todo for cid, todo in chunks if not leases[cid].mine}
        while waiting:
            now = {e.get("key", e["device"]): e for e in store.get_plan(name)}
            for cid, todo in list(waiting.items()):
                if all(_stored_since(now.get(t.key), t, runs_before) for t in todo):
                    del waiting[cid]
                    state["finished"] += len(todo)
                    state["waited"] += len(todo)
                    live.chunk_done(len(todo))
                elif not still_held(store, leases[cid], lease_ttl_s):
                    key = lease_key(name, config.digest(), cid, todo, runs_before)
                    leases[cid] = acquire(store, name, cid, key, lease_ttl_s)
                    if leases[cid].mine:
                        del waiting[cid]
                        compute([(cid, todo)])
            if waiting:
                time.sleep(LEASE_POLL_S)
    finally:
        live.stop()
        ex.close()
        for cid, lease in leases.items():
            if lease.mine and cid not in written:
                release(store, lease)
    done_count = len(done) + state["waited"]
    t_end = time.perf_counter()
    stats.chunks_s = t_end - t_start
    doc = assemble_plan(store, name, fleet, config, header, tasks, t_end - t0)
    stats.finish_s = time.perf_counter() - t_end
    stats.wall_s = time.perf_counter() - t0
    doc["summary"]["wall_s"] = stats.wall_s
    if stats.entries:
        header["plan_wall_s"] = prior_wall + stats.wall_s
        _save_header(store, name, header, config)
    doc["summary"]["plan_wall_s"] = header["plan_wall_s"] or None
    doc["summary"]["run"] = {**stats.to_dict(), **ex.describe(), "reused": done_count}
    path = None
    if out is not None:
        path = write_plan(doc, out)
    wall = time.perf_counter() - t0
    return PlanRun(doc, path, stats.entries, done_count, stats.chunks, wall, stats)


class _LiveProgress:
    """Calls ``progress(done, total)`` as chunks are written and, between them, every quarter
    second from the workers' finished-task counter (so a bar moves per task, not per chunk).
    ``done`` never goes back and never passes what the counts support."""

    def __init__(self, progress: Progress | None, done: int, total: int) -> None:
        self.progress = progress
        self.total = total
        self.base = done
        self.written = done
        self.shown = -1
        self.counter = mp.get_context("spawn").Value("q", 0) if progress is not None else None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._report()

    def _report(self) -> None:
        if self.progress is None:
            return
        counted = self.base + (self.counter.value if self.counter is not None else 0)
        with self._lock:
            done = min(self.total, max(self.written, counted, self.shown))
            if done == self.shown:
                return
            self.shown = done
            self.progress(done, self.total)

    def _poll(self) -> None:
        while not self._stop.wait(0.25):
            self._report()

    def start(self) -> None:
        if self.progress is not None and self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="plan-progress", daemon=True)
            self._thread.start()

    def chunk_done(self, n: int) -> None:
        self.written += n
        self._report()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None


__all__ = [
    "HEADER_KIND",
    "PlanRun",
    "chunk_tasks",
    "default_plan_name",
    "is_exclusive",
    "make_planner",
    "plan_fleet",
]
