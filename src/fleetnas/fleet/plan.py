"""Plan a whole fleet: resumable orchestration, the store path, the summary and plan.json.

:func:`plan_fleet` splits the fleet's tasks (one per device and budget) into fixed chunks of
``config.chunk_size`` in fleet order, skips every task whose entry the store already holds (same
plan name, same config digest, same task fingerprint; failed entries are retried unless
``retry_failed=False``), runs the remaining chunks on an executor and writes each completed chunk
in its own store run: entries, the measurements its workers took, the devices measured. A kill
loses at most the chunks in flight; running the same command again continues from there and
recomputes nothing already stored. Chunks are fixed on the whole task list, so a resumed plan is
made of the same chunks as an uninterrupted one and ends equal to it.

plan.json (``docs/plan-format.md``) is assembled from the store at the end and written
atomically (temporary file and rename).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fleetnas.errors import InputError, UnknownNameError
from fleetnas.fileio import atomic_write_text
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
from fleetnas.fleet.planner import ChunkOutput, PlanConfig, Planner, Task, fleet_tasks
from fleetnas.fleet.session import check_priced_devices
from fleetnas.fleet.tasks import seal_infeasible
from fleetnas.store import Artifact, MeasurementBatch, Store

FORMAT = "fleetnas-plan/2"
#: Earlier formats :func:`read_plan` still reads (upgraded on read: :func:`seal_infeasible`).
OLD_FORMATS = ("fleetnas-plan/1",)
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
    """Plan ``fleet`` with ``planner`` (default: :func:`~fleetnas.fleet.planner.make_planner`,
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
            from fleetnas.fleet.planner import make_planner

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


def assemble_plan(
    store: Store,
    name: str,
    fleet: Fleet,
    config: PlanConfig,
    header: dict[str, Any],
    tasks: Sequence[Task],
    wall_s: float,
) -> dict[str, Any]:
    """The plan document from the stored entries of this fleet's tasks, in fleet order."""
    stored = {e.get("key", e["device"]): e for e in store.get_plan(name)}
    entries = []
    missing = 0
    for t in tasks:
        e = stored.get(t.key)
        if e is None or e.get("task_fingerprint") != t.fingerprint:
            missing += 1
            continue
        entries.append(seal_infeasible(e))
    summary = summarize(entries, wall_s)
    summary["missing"] = missing
    return {
        "format": FORMAT,
        "plan": name,
        "space": config.space,
        "accuracy": config.accuracy,
        "created": header["created"],
        "fleet": header["fleet"],
        "approach": config.approach,
        "config": {**config.to_dict(), "digest": config.digest()},
        "summary": summary,
        "devices": entries,
    }


def _violation(e: dict[str, Any]) -> bool:
    """Known violation of a deployable (``ok``) entry: the true value (where known) or the
    measured one exceeds the budget. Infeasible and failed entries deploy nothing."""
    if e.get("status") != "ok":
        return False
    t = e.get("truth") or {}
    if t.get("violation"):
        return True
    m = e.get("measured") or {}
    b = e.get("budget") or {}
    for mk, bk in (("latency_ms", "latency_ms"), ("energy_mj", "energy_mj")):
        if m.get(mk) is not None and b.get(bk) is not None and m[mk] > b[bk]:
            return True
    return False


def _group(entries: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        groups[str(e.get(key))].append(e)
    rows = []
    for k in sorted(groups):
        es = groups[k]
        regrets = [
            e["truth"]["regret_pp"]
            for e in es
            if (e.get("truth") or {}).get("regret_pp") is not None
        ]
        rows.append(
            {
                key: k,
                "devices": len({e["device"] for e in es}),
                "entries": len(es),
                "ok": sum(e["status"] == "ok" for e in es),
                "infeasible": sum(e["status"] == "infeasible" for e in es),
                "failed": sum(e["status"] == "failed" for e in es),
                "measurements": int(sum(e.get("measurements") or 0 for e in es)),
                "violations": sum(_violation(e) for e in es),
                "mean_regret_pp": float(np.mean(regrets)) if regrets else None,
                "wall_s": float(sum(e.get("wall_s") or 0.0 for e in es)),
            }
        )
    return rows


def summarize(entries: Sequence[dict[str, Any]], wall_s: float | None = None) -> dict[str, Any]:
    """The plan summary: counts, measurements, device seconds, known violations, regret (where
    ground truth exists), and the same per family and per method."""
    regrets = [
        e["truth"]["regret_pp"]
        for e in entries
        if (e.get("truth") or {}).get("regret_pp") is not None
    ]
    checked = sum(1 for e in entries if e.get("truth"))
    return {
        "devices": len({e["device"] for e in entries}),
        "entries": len(entries),
        "ok": sum(e["status"] == "ok" for e in entries),
        "infeasible": sum(e["status"] == "infeasible" for e in entries),
        "failed": sum(e["status"] == "failed" for e in entries),
        "measurements": int(sum(e.get("measurements") or 0 for e in entries)),
        "device_seconds": float(sum(e.get("device_seconds") or 0.0 for e in entries)),
        "violations_known": sum(_violation(e) for e in entries),
        "truth_checked": checked,
        "mean_regret_pp": float(np.mean(regrets)) if regrets else None,
        "max_regret_pp": float(np.max(regrets)) if regrets else None,
        "compute_s": float(sum(e.get("wall_s") or 0.0 for e in entries)),
        "wall_s": None if wall_s is None else float(wall_s),
        "by_family": _group(entries, "family"),
        "by_method": _group(entries, "method"),
    }


def not_ok_line(entries: Sequence[dict[str, Any]], shown: int = 2) -> str | None:
    """One line saying how many entries are not ``ok`` and why (the most common reasons
    first), or ``None`` when every entry is ``ok``: what ``fleetnas plan`` prints before it
    exits with code 3."""
    bad = [e for e in entries if e.get("status") != "ok"]
    if not bad:
        return None
    parts = []
    for st in ("failed", "infeasible"):
        es = [e for e in bad if e.get("status") == st]
        if not es:
            continue
        reasons: dict[str, int] = defaultdict(int)
        for e in es:
            reasons[str(e.get("reason") or "no reason given")] += 1
        top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        why = "; ".join(f"{n}x {r[:160]}" for r, n in top[:shown])
        more = f"; {len(top) - shown} other reasons" if len(top) > shown else ""
        parts.append(f"{len(es)} {st} ({why}{more})")
    return f"{len(bad)} of {len(entries)} entries are not ok: " + ", ".join(parts)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_plan(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a plan document as JSON, atomically."""
    return atomic_write_text(Path(path), json.dumps(_clean(doc), indent=1) + "\n")


def read_plan(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read plan.json; :class:`InputError` if it is not a fleetnas plan."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"plan file {path}: cannot be read as JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") not in (FORMAT, *OLD_FORMATS):
        raise InputError(f"plan file {path}: not a {FORMAT} document")
    if doc["format"] != FORMAT:
        for e in doc.get("devices") or []:
            if isinstance(e, dict):
                seal_infeasible(e)
        doc["format"] = FORMAT
    return doc


__all__ = [
    "FORMAT",
    "HEADER_KIND",
    "PlanRun",
    "assemble_plan",
    "chunk_tasks",
    "default_plan_name",
    "is_exclusive",
    "not_ok_line",
    "plan_fleet",
    "read_plan",
    "summarize",
    "write_plan",
]
