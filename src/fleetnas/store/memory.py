"""InMemoryStore: the Store API on plain dicts, with the same transactional runs as SQLStore.

A run validates each write when it is made and buffers it; the buffer is applied at commit
under one lock and dropped on any exception, so readers never see half a run. Runs queue for
one writer lock, as they do on SQLite. Useful for tests,
notebooks and throwaway experiments; nothing survives the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from fleetnas.devices import Device
from fleetnas.errors import InputError, StoreError, unknown
from fleetnas.spaces import SearchSpace
from fleetnas.store.base import Artifact, MeasurementBatch, Run, RunInfo, Store
from fleetnas.store.common import (
    arch_keys,
    arch_records,
    as_names,
    assemble_frame,
    check_artifact,
    check_batch,
    check_device,
    check_json,
    check_name,
    check_run,
    description_mismatch,
    empty_frame,
    newest_values,
    plan_entries,
    run_closed,
    run_done,
    space_description,
    summary_frame,
    unit_mismatch,
    unknown_artifact,
    utcnow,
)

_URL = "memory://"


@dataclass
class _Batch:
    id: int
    run: int
    space: str
    device: str
    metric: str
    statistic: str
    unit: str
    method: str
    is_estimate: bool
    timestamp: datetime
    keys: list[bytes]
    values: np.ndarray
    n: np.ndarray
    extra: list[str | None] | None
    arch_ids: np.ndarray | None = None
    identity: str | None = None


@dataclass
class _Arch:
    id: int
    key: bytes
    string: str
    canonical: str
    hash: str


class InMemoryStore(Store):
    """A store that lives in this process only (URL ``memory://``)."""

    def __init__(self) -> None:
        self.url = _URL
        self.safe_url = _URL
        self._lock = threading.RLock()
        self._writer = threading.Lock()
        self._local = threading.local()
        self._ids = {"run": 0, "arch": 0, "batch": 0, "artifact": 0}
        self._runs: list[RunInfo] = []
        self._spaces: dict[str, str] = {}
        self._archs: dict[str, dict[bytes, _Arch]] = {}
        self._arch_by_id: dict[int, _Arch] = {}
        self._devices: dict[str, Device] = {}
        self._batches: list[_Batch] = []
        self._units: dict[tuple[str, str, str, str], str] = {}
        self._artifacts: list[tuple[int, Artifact]] = []
        self._plans: dict[str, dict[str, dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return "InMemoryStore()"

    def _next(self, what: str) -> int:
        with self._lock:
            self._ids[what] += 1
            return self._ids[what]

    # ---- runs -----------------------------------------------------------------------------
    @contextmanager
    def run(
        self, kind: str, config: dict[str, Any] | None = None, key: str | None = None
    ) -> Iterator[Run]:
        cfg, host = check_run(self._local, kind, config, key, _URL)
        self._local.active = True
        self._writer.acquire()
        handle: _MemRun | None = None
        try:
            if key is not None:
                self._refuse_done(key)
            info = RunInfo(self._next("run"), kind, key, cfg, host, utcnow(), "running")
            handle = _MemRun(self, info)
            yield handle
            handle.closed = True
            with self._lock:
                if key is not None:
                    self._refuse_done(key)
                handle.revalidate()
                for op in handle.ops:
                    op()
                self._runs.append(replace(info, status="complete", finished=utcnow()))
        finally:
            if handle is not None:
                handle.closed = True
            self._writer.release()
            self._local.active = False

    def _refuse_done(self, key: str) -> None:
        with self._lock:
            done = next((r for r in self._runs if r.key == key), None)
        if done is not None:
            raise run_done(key, done.id, done.started, _URL)

    def has_run(self, key: str) -> bool:
        with self._lock:
            return any(r.key == key for r in self._runs)

    def list_runs(self, kind: str | None = None) -> list[RunInfo]:
        with self._lock:
            return [
                replace(r, config=check_json(r.config, "config"), host=dict(r.host))
                for r in self._runs
                if kind is None or r.kind == kind
            ]

    # ---- devices --------------------------------------------------------------------------
    def get_device(self, name: str) -> Device:
        with self._lock:
            if name not in self._devices:
                raise unknown("device", name, list(self._devices))
            return _copy_device(self._devices[name])

    def list_devices(self, family: str | None = None) -> list[Device]:
        with self._lock:
            return [
                _copy_device(self._devices[k])
                for k in sorted(self._devices)
                if family is None or self._devices[k].family == family
            ]

    # ---- measurements ---------------------------------------------------------------------
    def _check_space(self, space: SearchSpace) -> bool:
        """Whether ``space`` is stored; raises if it is stored with another description."""
        stored = self._spaces.get(space.name)
        if stored is None:
            return False
        desc = space_description(space)
        if stored != desc:
            raise StoreError(description_mismatch(space.name, stored, desc, _URL))
        return True

    def _series(self, pred: Callable[[_Batch], bool]) -> list[_Batch]:
        return sorted((b for b in self._batches if pred(b)), key=lambda b: (b.timestamp, b.id))

    def get_measurements(
        self,
        space: SearchSpace,
        device: str,
        metric: str,
        statistic: str = "median",
        archs: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if device not in self._devices:
                raise unknown("device", device, list(self._devices))
            batches: list[_Batch] = []
            if self._check_space(space):
                batches = self._series(
                    lambda b: (
                        (b.space, b.device, b.metric, b.statistic)
                        == (space.name, device, metric, statistic)
                    )
                )
        ids = np.concatenate([b.arch_ids for b in batches] or [np.zeros(0, np.int64)])
        values = np.concatenate([b.values for b in batches] or [np.zeros(0)])
        keys = [k for b in batches for k in b.keys]
        return newest_values(space, ids, values, keys, archs)

    def device_identities(self, device: str) -> dict[str | None, int]:
        out: dict[str | None, int] = {}
        with self._lock:
            for b in self._batches:
                if b.device == device:
                    out[b.identity] = out.get(b.identity, 0) + len(b.keys)
        return out

    def measurements_frame(
        self,
        space: SearchSpace | None = None,
        devices: Sequence[str] | None = None,
        metrics: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        devices = None if devices is None else as_names(devices)
        metrics = None if metrics is None else as_names(metrics)
        with self._lock:
            if space is not None and not self._check_space(space):
                return empty_frame()
            batches = sorted(
                (
                    b
                    for b in self._batches
                    if (space is None or b.space == space.name)
                    and (devices is None or b.device in devices)
                    and (metrics is None or b.metric in metrics)
                ),
                key=lambda b: b.id,
            )
            strings = [
                [self._arch_by_id[int(i)].string for i in b.arch_ids]
                for b in batches  # type: ignore[union-attr]
            ]
        if not batches:
            return empty_frame()
        bf = pd.DataFrame(
            {
                "id": [b.id for b in batches],
                "space": [b.space for b in batches],
                "device": [b.device for b in batches],
                "metric": [b.metric for b in batches],
                "statistic": [b.statistic for b in batches],
                "unit": [b.unit for b in batches],
                "method": [b.method for b in batches],
                "is_estimate": [b.is_estimate for b in batches],
                "run": [b.run for b in batches],
                "timestamp": pd.to_datetime([b.timestamp for b in batches], utc=True),
            }
        )
        rf = pd.DataFrame(
            {
                "batch_id": np.repeat([b.id for b in batches], [len(b.keys) for b in batches]),
                "architecture": [s for ss in strings for s in ss],
                "value": np.concatenate([b.values for b in batches]),
                "n": np.concatenate([b.n for b in batches]),
            }
        )
        return assemble_frame(bf, rf)

    def measurement_summary(self) -> pd.DataFrame:
        groups: dict[tuple[str, str, str], list[_Batch]] = {}
        with self._lock:
            for b in self._batches:
                groups.setdefault((b.space, b.device, b.metric), []).append(b)
        rows = []
        for (space, device, metric), bs in sorted(groups.items()):
            count = sum(len(b.keys) for b in bs)
            archs = len({k for b in bs for k in b.keys})
            estimates = sum(len(b.keys) for b in bs if b.is_estimate)
            rows.append(
                (space, device, metric, count, archs, estimates, max(b.timestamp for b in bs))
            )
        return summary_frame(rows)

    # ---- artifacts and plans --------------------------------------------------------------
    def load_artifact(self, name: str, kind: str) -> Artifact:
        with self._lock:
            same = [
                (a.created, i, a) for i, a in self._artifacts if (a.kind, a.name) == (kind, name)
            ]
            if not same:
                names = sorted({a.name for _, a in self._artifacts if a.kind == kind})
                raise unknown_artifact(kind, name, names, _URL)
            art = max(same, key=lambda x: (x[0], x[1]))[2]
        return replace(art, meta=check_json(art.meta, "meta"))

    def list_artifacts(self, kind: str | None = None) -> list[Artifact]:
        newest: dict[tuple[str, str], tuple[Any, int, Artifact]] = {}
        with self._lock:
            for i, a in self._artifacts:
                if kind is not None and a.kind != kind:
                    continue
                cur = newest.get((a.kind, a.name))
                if cur is None or (a.created, i) > (cur[0], cur[1]):
                    newest[(a.kind, a.name)] = (a.created, i, a)
        return [
            replace(v[2], payload=b"", meta=check_json(v[2].meta, "meta"))
            for _, v in sorted(newest.items())
        ]

    def get_plan(self, plan: str) -> list[dict[str, Any]]:
        with self._lock:
            entries = self._plans.get(plan, {})
            return [check_json(entries[d], "plan entry") for d in sorted(entries)]

    def list_plans(self) -> list[str]:
        with self._lock:
            return sorted(self._plans)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "runs": len(self._runs),
                "spaces": len(self._spaces),
                "architectures": len(self._arch_by_id),
                "devices": len(self._devices),
                "measurements": sum(len(b.keys) for b in self._batches),
                "artifacts": len(self._artifacts),
                "plans": sum(len(p) for p in self._plans.values()),
            }

    def close(self) -> None:
        """Nothing to release; the data stays readable until the object is dropped."""


class _MemRun(Run):
    """Writes of one run: validated now, applied by :meth:`InMemoryStore.run` at commit."""

    def __init__(self, store: InMemoryStore, info: RunInfo) -> None:
        self.store = store
        self.info = info
        self.closed = False
        self.ops: list[Callable[[], None]] = []
        self.spaces: dict[str, str] = {}
        self.devices: set[str] = set()
        self.units: dict[tuple[str, str, str, str], str] = {}
        self.pending_archs: dict[str, set[bytes]] = {}

    def _check_open(self) -> None:
        if self.closed:
            raise run_closed(self.info)

    def revalidate(self) -> None:
        """At commit: what this run assumed must still hold after other runs committed."""
        s = self.store
        for name, desc in self.spaces.items():
            if name in s._spaces and s._spaces[name] != desc:
                raise StoreError(description_mismatch(name, s._spaces[name], desc, _URL))
        for series, unit in self.units.items():
            if s._units.get(series, unit) != unit:
                raise InputError(
                    f"{series[1]!r}/{series[2]!r} of space {series[0]!r} was stored in "
                    f"{s._units[series]!r} meanwhile; this run wrote {unit!r}"
                )

    def add_device(self, device: Device) -> None:
        self._check_open()
        copy = _copy_device(check_device(device))
        self.devices.add(copy.name)
        self.ops.append(lambda: self.store._devices.__setitem__(copy.name, copy))

    def add_measurements(self, batch: MeasurementBatch) -> int:
        self._check_open()
        checked = check_batch(batch)
        if len(checked.archs) == 0:
            return 0
        s, space = self.store, batch.space
        name = check_name(space.name, "space name")
        desc = space_description(space)
        stored = self.spaces.get(name) or s._spaces.get(name)
        if stored is not None and stored != desc:
            raise StoreError(description_mismatch(name, stored, desc, _URL))
        self.spaces[name] = desc
        series = (name, batch.device, batch.metric, batch.statistic)
        unit = self.units.get(series) or s._units.get(series)
        if unit is not None and unit != batch.unit:
            raise unit_mismatch(batch, unit)
        self.units[series] = batch.unit
        keys = arch_keys(checked.archs)
        known = s._archs.get(name, {})
        pending = self.pending_archs.setdefault(name, set())
        fresh = {k: i for i, k in enumerate(keys) if k not in known and k not in pending}
        records = dict(
            zip(fresh, arch_records(space, checked.archs[list(fresh.values())]), strict=True)
        )
        strings = {r[0] for r in records.values()}
        if len(strings) < len(records):
            raise StoreError(
                f"space {name!r}: format() gives the same string to different architectures; "
                f"format() must be one-to-one"
            )
        pending.update(fresh)
        new_device = batch.device not in s._devices and batch.device not in self.devices
        self.devices.add(batch.device)
        b = _Batch(
            id=0,
            run=self.info.id,
            space=name,
            device=batch.device,
            metric=batch.metric,
            statistic=batch.statistic,
            unit=batch.unit,
            method=batch.method,
            is_estimate=bool(batch.is_estimate),
            timestamp=utcnow(),
            keys=keys,
            values=checked.values.copy(),
            n=checked.n.copy(),
            extra=checked.extra,
            identity=batch.identity,
        )

        def apply() -> None:
            if new_device and batch.device not in s._devices:
                s._devices[batch.device] = Device(batch.device)
            s._spaces.setdefault(name, desc)
            table = s._archs.setdefault(name, {})
            for k, (string, canon, h) in records.items():
                if k not in table:
                    arch = _Arch(s._next("arch"), k, string, canon, h)
                    table[k] = arch
                    s._arch_by_id[arch.id] = arch
            b.id = s._next("batch")
            b.arch_ids = np.fromiter((table[k].id for k in keys), dtype=np.int64, count=len(keys))
            s._units.setdefault(series, b.unit)
            s._batches.append(b)

        self.ops.append(apply)
        return len(keys)

    def save_artifact(self, artifact: Artifact) -> str:
        self._check_open()
        payload, meta, digest = check_artifact(artifact)
        art = Artifact(artifact.name, artifact.kind, payload, meta, digest, utcnow())
        s = self.store
        self.ops.append(lambda: s._artifacts.append((s._next("artifact"), art)))
        return digest

    def save_plan_entries(self, plan: str, entries: Sequence[dict[str, Any]]) -> None:
        self._check_open()
        by_device = plan_entries(plan, entries)
        if by_device:
            self.ops.append(lambda: self.store._plans.setdefault(plan, {}).update(by_device))


def _copy_device(d: Device) -> Device:
    return Device(
        name=d.name,
        family=d.family,
        features=check_json(d.features, f"features of device {d.name!r}"),
        measurer=d.measurer,
        description=d.description,
    )
