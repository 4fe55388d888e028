"""The write handle of one SQL run: every write goes through the run's own connection, so the
whole run is one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from fleetnas.devices import Device
from fleetnas.errors import StoreError
from fleetnas.spaces import SearchSpace
from fleetnas.store import schema as t
from fleetnas.store.base import Artifact, MeasurementBatch, Run, RunInfo
from fleetnas.store.common import (
    arch_keys,
    arch_records,
    check_artifact,
    check_batch,
    check_device,
    check_json,
    check_name,
    description_mismatch,
    opt_str,
    plan_entries,
    run_closed,
    space_description,
    unit_mismatch,
    utcnow,
)
from fleetnas.store.sqlsupport import bulk_insert, insert_ignore, reason

if TYPE_CHECKING:
    from fleetnas.store.sql import SQLStore

#: Rows per IN (...) lookup of architectures; above ``_LOAD_ALL`` missing ones, load the space.
_CHUNK = 500
_LOAD_ALL = 2000

F = TypeVar("F")


def _db_errors(method: F) -> F:
    """Turn a database failure inside a run's write into a :class:`StoreError`."""

    @wraps(method)  # type: ignore[arg-type]
    def wrapper(self: SQLRun, *args: Any, **kwargs: Any) -> Any:
        if self.closed:
            raise run_closed(self.info)
        try:
            return method(self, *args, **kwargs)  # type: ignore[operator]
        except SQLAlchemyError as exc:
            raise StoreError(
                f"writing to the store at {self.store.safe_url} failed in run "
                f"{self.info.kind!r}: {reason(exc)}; the run will be rolled back"
            ) from exc

    return wrapper  # type: ignore[return-value]


class SQLRun(Run):
    """Writes of one run, all on the run's connection (one transaction)."""

    def __init__(self, store: SQLStore, conn: Connection, info: RunInfo) -> None:
        self.store = store
        self.conn = conn
        self.info = info
        self.closed = False
        self.spaces: dict[str, tuple[int, str]] = {}
        self.devices: dict[str, int] = {}
        self.archs: dict[int, dict[bytes, int]] = {}
        #: Unit of each series (space id, device id, metric, statistic) checked or written in
        #: this run: one query per series, not per batch.
        self.units: dict[tuple[int, int, str, str], str] = {}

    # ---- devices --------------------------------------------------------------------------
    @_db_errors
    def add_device(self, device: Device) -> None:
        self._upsert_device(check_device(device))

    def _upsert_device(self, device: Device, overwrite: bool = True) -> int:
        """Insert or update ``device``; with ``overwrite=False`` an existing record (perhaps
        added by a concurrent writer) is kept. Returns its id."""
        values = {
            "family": device.family,
            "features": check_json(device.features, f"features of device {device.name!r}"),
            "measurer": device.measurer,
            "description": device.description,
            "fingerprint": device.fingerprint,
            "updated": utcnow(),
            "run_id": self.info.id,
        }
        row = {"name": device.name, **values}
        dialect = self.conn.dialect.name
        if dialect in ("sqlite", "postgresql"):
            ins = (sqlite_insert if dialect == "sqlite" else pg_insert)(t.devices).values(**row)
            if overwrite:
                self.conn.execute(ins.on_conflict_do_update(index_elements=["name"], set_=values))
            else:
                self.conn.execute(ins.on_conflict_do_nothing())
        else:
            did = self._device_id(device.name)
            if did is None:
                self.conn.execute(insert(t.devices).values(**row))
            elif overwrite:
                self.conn.execute(update(t.devices).where(t.devices.c.id == did).values(**values))
        did = self.conn.execute(
            select(t.devices.c.id).where(t.devices.c.name == device.name)
        ).scalar_one()
        self.devices[device.name] = did
        return did

    def _device_id(self, name: str) -> int | None:
        did = self.store._device_ids.get(name) or self.devices.get(name)
        if did is None:
            did = self.conn.execute(select(t.devices.c.id).where(t.devices.c.name == name)).scalar()
            if did is not None:
                self.devices[name] = did
        return did

    # ---- measurements ---------------------------------------------------------------------
    @_db_errors
    def add_measurements(self, batch: MeasurementBatch) -> int:
        """Write a batch. A device not yet in the store is added with family ``other``
        (:meth:`add_device` later fills in its details)."""
        checked = check_batch(batch)
        if len(checked.archs) == 0:
            return 0
        space_id = self._space_id(batch.space)
        device_id = self._device_id(batch.device) or self._upsert_device(
            Device(batch.device), overwrite=False
        )
        self._check_unit(batch, space_id, device_id)
        arch_ids = self._arch_ids(space_id, batch.space, checked.archs)
        b = t.measurement_batches
        batch_id = self.conn.execute(
            insert(b).values(
                run_id=self.info.id,
                space_id=space_id,
                device_id=device_id,
                metric=batch.metric,
                statistic=batch.statistic,
                unit=batch.unit,
                method=batch.method,
                is_estimate=bool(batch.is_estimate),
                timestamp=utcnow(),
                count=len(arch_ids),
                identity=batch.identity,
            )
        ).inserted_primary_key[0]
        cols: dict[str, list[Any]] = {
            "batch_id": [int(batch_id)] * len(arch_ids),
            "arch_id": arch_ids.tolist(),
            "value": checked.values.tolist(),
            "n": checked.n.tolist(),
        }
        if checked.extra is not None:
            cols["extra"] = checked.extra
        bulk_insert(self.conn, t.measurements, cols)
        self.units[(space_id, device_id, batch.metric, batch.statistic)] = batch.unit
        return len(arch_ids)

    def _check_unit(self, batch: MeasurementBatch, space_id: int, device_id: int) -> None:
        b = t.measurement_batches
        key = (space_id, device_id, batch.metric, batch.statistic)
        if key in self.units:
            if self.units[key] != batch.unit:
                raise unit_mismatch(batch, self.units[key])
            return
        unit = self.conn.execute(
            select(b.c.unit)
            .where(
                b.c.space_id == space_id,
                b.c.device_id == device_id,
                b.c.metric == batch.metric,
                b.c.statistic == batch.statistic,
            )
            .limit(1)
        ).scalar()
        if unit is not None and unit != batch.unit:
            raise unit_mismatch(batch, unit)
        if unit is not None:
            self.units[key] = unit

    def _space_id(self, space: SearchSpace) -> int:
        name = check_name(space.name, "space name")
        desc = space_description(space)
        cached = self.store._space_ids.get(name) or self.spaces.get(name)
        if cached is None:
            row = self.conn.execute(
                select(t.spaces.c.id, t.spaces.c.description).where(t.spaces.c.name == name)
            ).first()
            if row is None:
                self.conn.execute(
                    insert_ignore(self.conn, t.spaces).values(
                        name=name, description=desc, created=utcnow()
                    )
                )
                row = self.conn.execute(
                    select(t.spaces.c.id, t.spaces.c.description).where(t.spaces.c.name == name)
                ).one()
            cached = (int(row.id), row.description)
            self.spaces[name] = cached
        if cached[1] != desc:
            raise StoreError(description_mismatch(name, cached[1], desc, self.store.safe_url))
        return cached[0]

    def _arch_ids(self, space_id: int, space: SearchSpace, archs: np.ndarray) -> np.ndarray:
        """Ids of the rows of ``archs``, inserting the missing architectures in bulk."""
        keys = arch_keys(archs)
        known = self.store._arch_ids.get(space_id, {})
        local = self.archs.setdefault(space_id, {})
        missing = {k: i for i, k in enumerate(keys) if k not in known and k not in local}
        if missing:
            self._fetch_archs(space_id, list(missing), local)
            new = {k: i for k, i in missing.items() if k not in local}
            if new:
                rows = list(new.values())
                recs = arch_records(space, archs[rows])
                values = [
                    {
                        "space_id": space_id,
                        "string": s,
                        "canonical": c,
                        "hash": h,
                        "choices": k,
                    }
                    for k, (s, c, h) in zip(new, recs, strict=True)
                ]
                self.conn.execute(insert_ignore(self.conn, t.architectures), values)
                self._fetch_archs(space_id, list(new), local)
                lost = [k for k in new if k not in local]
                if lost:
                    raise StoreError(
                        f"space {space.name!r}: {len(lost)} architectures could not be stored "
                        f"because format() gives them the same string as other architectures "
                        f"(e.g. {space.format(archs[new[lost[0]]])!r}); format() must be "
                        f"one-to-one"
                    )
        return np.fromiter(
            (known[k] if k in known else local[k] for k in keys), dtype=np.int64, count=len(keys)
        )

    def _fetch_archs(self, space_id: int, keys: list[bytes], into: dict[bytes, int]) -> None:
        a = t.architectures
        base = select(a.c.choices, a.c.id).where(a.c.space_id == space_id)
        if len(keys) > _LOAD_ALL:
            into.update((bytes(c), i) for c, i in self.conn.execute(base))
            return
        for lo in range(0, len(keys), _CHUNK):
            chunk = keys[lo : lo + _CHUNK]
            into.update(
                (bytes(c), i) for c, i in self.conn.execute(base.where(a.c.choices.in_(chunk)))
            )

    # ---- artifacts and plans --------------------------------------------------------------
    @_db_errors
    def save_artifact(self, artifact: Artifact) -> str:
        payload, meta, digest = check_artifact(artifact)
        self.conn.execute(
            insert(t.artifacts).values(
                kind=artifact.kind,
                name=artifact.name,
                payload=payload,
                meta=meta,
                sha256=digest,
                size=len(payload),
                created=utcnow(),
                run_id=self.info.id,
            )
        )
        return digest

    @_db_errors
    def save_plan_entries(self, plan: str, entries: Sequence[dict[str, Any]]) -> None:
        by_device = plan_entries(plan, entries)
        if not by_device:
            return
        p = t.plans
        self.conn.execute(delete(p).where(p.c.plan == plan, p.c.device.in_(list(by_device))))
        now = utcnow()
        self.conn.execute(
            insert(p),
            [
                {
                    "plan": plan,
                    "device": dev,
                    "entry": e,
                    "design": opt_str(e.get("design")),
                    "method": opt_str(e.get("method")),
                    "status": opt_str(e.get("status")),
                    "updated": now,
                    "run_id": self.info.id,
                }
                for dev, e in by_device.items()
            ],
        )
