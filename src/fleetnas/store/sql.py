"""SQLStore: the Store API on SQLAlchemy 2 Core (SQLite by default, PostgreSQL or any URL).

SQLite runs in WAL mode (readers never wait for the writer), with foreign keys on and
``synchronous=NORMAL``; a run opens with ``BEGIN IMMEDIATE`` so two writers queue instead of
failing halfway. Every run is one database transaction, so an error or a kill inside it leaves
nothing behind.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, and_, case, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from fleetnas.devices import Device
from fleetnas.errors import StoreError, UnknownNameError
from fleetnas.spaces import SearchSpace
from fleetnas.store import schema as t
from fleetnas.store.base import Artifact, Run, RunInfo, Store
from fleetnas.store.common import (
    arch_keys,
    as_names,
    as_utc,
    assemble_frame,
    check_run,
    description_mismatch,
    empty_frame,
    newest_values,
    pick_values,
    run_done,
    space_description,
    summary_frame,
    unknown_artifact,
    utcnow,
)
from fleetnas.store.sqlrun import SQLRun
from fleetnas.store.sqlsupport import (
    BUSY_TIMEOUT_S,
    db_time,
    device_from_row,
    hide_password,
    is_db_error,
    make_engine,
    reason,
    rows_frame,
    schema_version,
)

#: Columns of a measurement batch as :meth:`SQLStore.measurements_frame` selects them.
_BATCH_COLUMNS = (
    "space",
    "device",
    "metric",
    "statistic",
    "unit",
    "method",
    "is_estimate",
    "run",
    "timestamp",
)
#: Rows the per-handle read cache of :meth:`SQLStore.get_measurements` keeps (newest first out).
CACHE_ROWS = 2_000_000


@dataclass
class _Series:
    """The newest values of one (space, device, metric, statistic) series as last read, and
    the stamp of its batches then (count, largest id): batches are only ever appended, so an
    equal stamp means equal values."""

    stamp: tuple[int, int]
    archs: np.ndarray
    values: np.ndarray
    _index: dict[bytes, float] | None = None

    def pick(self, want: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if want is None:
            return self.archs.copy(), self.values.copy()
        if self._index is None:
            self._index = dict(zip(arch_keys(self.archs), self.values.tolist(), strict=True))
        return pick_values(self._index, want)


class SQLStore(Store):
    """The store on an SQLAlchemy URL: ``sqlite:///path.db`` (created if missing, with its
    folder unless ``create_folder`` is false) or ``postgresql+psycopg://user:pass@host/db``
    (the database must exist)."""

    def __init__(self, url: str, create_folder: bool = True) -> None:
        self.url = url
        self.safe_url = hide_password(url)
        self._engine = make_engine(url, self.safe_url, create_folder)
        self._is_sqlite = self._engine.dialect.name == "sqlite"
        self._lock = threading.Lock()
        self._local = threading.local()
        self._space_ids: dict[str, tuple[int, str]] = {}
        self._device_ids: dict[str, int] = {}
        self._summary: tuple[tuple[int, int, int], pd.DataFrame] | None = None
        self._arch_ids: dict[int, dict[bytes, int]] = {}
        self._series: OrderedDict[tuple[int, int, str, str], _Series] = OrderedDict()
        try:
            self._init_schema()
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def engine(self) -> Engine:
        return self._engine

    def __repr__(self) -> str:
        return f"SQLStore({self.safe_url!r})"

    # ---- connections ----------------------------------------------------------------------
    def _init_schema(self) -> None:
        expected = (
            "an SQLite database file (or a path where one can be created)"
            if self._is_sqlite
            else "a reachable database server and an existing database this user can write to"
        )
        for attempt in range(2):
            try:
                with self._connect(write=True) as conn:
                    found = schema_version(conn)
                    if found is not None and found > t.SCHEMA_VERSION:
                        raise StoreError(
                            f"the store at {self.safe_url} has schema version {found}, newer than "
                            f"this fleetnas understands ({t.SCHEMA_VERSION}); upgrade fleetnas"
                        )
                    t.metadata.create_all(conn)
                    if found is None:
                        conn.execute(
                            insert(t.meta).values(key="schema_version", value=str(t.SCHEMA_VERSION))
                        )
                    elif found < t.SCHEMA_VERSION:
                        _upgrade(conn, found)
                return
            except StoreError:
                raise
            except IntegrityError:
                if attempt:  # another process created the schema at the same moment
                    raise
            except Exception as exc:
                if not is_db_error(exc, self._engine):
                    raise
                raise StoreError(
                    f"cannot open the store at {self.safe_url}: {reason(exc)}; expected {expected}"
                ) from exc

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            if write:
                conn.execution_options(fleetnas_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self._connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            msg = f"reading the store at {self.safe_url} failed: {reason(exc)}"
            raise StoreError(msg) from exc

    # ---- runs -----------------------------------------------------------------------------
    @contextmanager
    def run(
        self, kind: str, config: dict[str, Any] | None = None, key: str | None = None
    ) -> Iterator[Run]:
        cfg, host = check_run(self._local, kind, config, key, self.safe_url)
        try:
            conn = self._engine.connect()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot start a run in {self.safe_url}: {reason(exc)}") from exc
        self._local.active = True
        handle: SQLRun | None = None
        try:
            try:
                conn.execution_options(fleetnas_write=True)
                trans = conn.begin()
            except SQLAlchemyError as exc:
                raise StoreError(
                    f"cannot start a run in {self.safe_url}: {reason(exc)} (another process may "
                    f"be writing; waited {BUSY_TIMEOUT_S:.0f} s)"
                ) from exc
            try:
                if key is not None:
                    self._refuse_done(conn, key)
                started = utcnow()
                try:
                    rid = conn.execute(
                        insert(t.runs).values(
                            kind=kind,
                            key=key,
                            config=cfg,
                            host=host,
                            started=started,
                            status="running",
                        )
                    ).inserted_primary_key[0]
                except IntegrityError:
                    raise StoreError(
                        f"run {key!r} already completed in {self.safe_url} (by a concurrent "
                        f"writer); check store.has_run(key) first to skip it"
                    ) from None
                except SQLAlchemyError as exc:
                    raise StoreError(
                        f"cannot start run {kind!r} in {self.safe_url}: {reason(exc)}; nothing "
                        "was written"
                    ) from exc
                info = RunInfo(int(rid), kind, key, cfg, host, started, "running")
                handle = SQLRun(self, conn, info)
                yield handle
                handle.closed = True
                try:
                    conn.execute(
                        update(t.runs)
                        .where(t.runs.c.id == rid)
                        .values(finished=utcnow(), status="complete")
                    )
                    trans.commit()
                except SQLAlchemyError as exc:
                    raise StoreError(
                        f"could not commit run {kind!r} to {self.safe_url}: {reason(exc)}; "
                        f"nothing was written"
                    ) from exc
            except BaseException:
                if handle is not None:
                    handle.closed = True
                with suppress(Exception):
                    trans.rollback()
                raise
            self._adopt(handle)
        finally:
            self._local.active = False
            with suppress(Exception):
                conn.close()

    def _refuse_done(self, conn: Connection, key: str) -> None:
        row = conn.execute(select(t.runs.c.id, t.runs.c.started).where(t.runs.c.key == key)).first()
        if row is not None:
            raise run_done(key, row.id, as_utc(row.started), self.safe_url)

    def _adopt(self, handle: SQLRun) -> None:
        """After a commit, remember the ids the run created or looked up."""
        with self._lock:
            self._space_ids.update(handle.spaces)
            self._device_ids.update(handle.devices)
            for space_id, ids in handle.archs.items():
                self._arch_ids.setdefault(space_id, {}).update(ids)

    def has_run(self, key: str) -> bool:
        with self._read() as conn:
            stmt = select(t.runs.c.id).where(t.runs.c.key == key, t.runs.c.status == "complete")
            return conn.execute(stmt).first() is not None

    def list_runs(self, kind: str | None = None) -> list[RunInfo]:
        stmt = select(t.runs).order_by(t.runs.c.id)
        if kind is not None:
            stmt = stmt.where(t.runs.c.kind == kind)
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return [
            RunInfo(
                id=r.id,
                kind=r.kind,
                key=r.key,
                config=r.config,
                host=r.host,
                started=as_utc(r.started),
                status=r.status,
                finished=as_utc(r.finished),
            )
            for r in rows
        ]

    # ---- devices --------------------------------------------------------------------------
    def get_device(self, name: str) -> Device:
        with self._read() as conn:
            row = conn.execute(select(t.devices).where(t.devices.c.name == name)).first()
            if row is None:
                raise _unknown_device(conn, name)
        return device_from_row(row)

    def list_devices(self, family: str | None = None) -> list[Device]:
        stmt = select(t.devices)
        if family is not None:
            stmt = stmt.where(t.devices.c.family == family)
        with self._read() as conn:
            return sorted((device_from_row(r) for r in conn.execute(stmt)), key=lambda d: d.name)

    # ---- measurements ---------------------------------------------------------------------
    def _find_space(self, conn: Connection, space: SearchSpace) -> int | None:
        desc = space_description(space)
        cached = self._space_ids.get(space.name)
        if cached is None:
            row = conn.execute(
                select(t.spaces.c.id, t.spaces.c.description).where(t.spaces.c.name == space.name)
            ).first()
            if row is None:
                return None
            cached = (row.id, row.description)
            with self._lock:
                self._space_ids[space.name] = cached
        if cached[1] != desc:
            raise StoreError(description_mismatch(space.name, cached[1], desc, self.safe_url))
        return cached[0]

    def _find_device(self, conn: Connection, name: str) -> int:
        did = self._device_ids.get(name)
        if did is None:
            did = conn.execute(select(t.devices.c.id).where(t.devices.c.name == name)).scalar()
            if did is None:
                raise _unknown_device(conn, name)
            with self._lock:  # a device's id never changes once committed
                self._device_ids[name] = did
        return did

    def get_measurements(
        self,
        space: SearchSpace,
        device: str,
        metric: str,
        statistic: str = "median",
        archs: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`Store.get_measurements`. A series read before is answered from this
        handle's cache when its batches are unchanged (one small query instead of all rows:
        a plan reads each replayed device's table in its measurer, its ground truth and the
        proxy pool)."""
        m, b, a = t.measurements, t.measurement_batches, t.architectures
        want = None if archs is None else space.check(archs)
        with self._read() as conn:
            device_id = self._find_device(conn, device)
            space_id = self._find_space(conn, space)
            if space_id is None:
                return newest_values(space, np.zeros(0, np.int64), np.zeros(0), [], want)
            series = (
                b.c.space_id == space_id,
                b.c.device_id == device_id,
                b.c.metric == metric,
                b.c.statistic == statistic,
            )
            count, last = conn.execute(
                select(func.count(b.c.id), func.max(b.c.id)).where(*series)
            ).one()
            stamp = (int(count), int(last or 0))
            key = (space_id, device_id, metric, statistic)
            with self._lock:
                hit = self._series.get(key)
            if hit is None or hit.stamp != stamp:
                rows: list[Any] = []
                if count:
                    stmt = (
                        select(m.c.arch_id, m.c.value, a.c.choices)
                        .select_from(
                            m.join(b, m.c.batch_id == b.c.id).join(a, m.c.arch_id == a.c.id)
                        )
                        .where(*series)
                        .order_by(b.c.timestamp, b.c.id, m.c.id)
                    )
                    rows = conn.execute(stmt).all()
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                values = np.fromiter((r[1] for r in rows), dtype=float, count=len(rows))
                hit = _Series(stamp, *newest_values(space, ids, values, [r[2] for r in rows], None))
                self._remember(key, hit)
        return hit.pick(want)

    def series_info(
        self, space: SearchSpace, device: str, metric: str, statistic: str
    ) -> tuple[str, bool] | None:
        b = t.measurement_batches
        with self._read() as conn:
            device_id = self._find_device(conn, device)
            space_id = self._find_space(conn, space)
            if space_id is None:
                return None
            rows = conn.execute(
                select(b.c.unit, func.sum(b.c.count), func.max(case((b.c.is_estimate, 1), else_=0)))
                .where(
                    b.c.space_id == space_id,
                    b.c.device_id == device_id,
                    b.c.metric == metric,
                    b.c.statistic == statistic,
                )
                .group_by(b.c.unit)
            ).all()
        rows = [r for r in rows if r[1]]
        if not rows:
            return None
        unit = min(rows, key=lambda r: (-int(r[1]), str(r[0])))[0]
        return str(unit), any(bool(r[2]) for r in rows)

    def _remember(self, key: tuple[int, int, str, str], series: _Series) -> None:
        with self._lock:
            self._series[key] = series
            self._series.move_to_end(key)
            total = sum(len(s.values) for s in self._series.values())
            while total > CACHE_ROWS and len(self._series) > 1:
                _, old = self._series.popitem(last=False)
                total -= len(old.values)

    def device_identities(self, device: str) -> dict[str | None, int]:
        b = t.measurement_batches
        with self._read() as conn:
            did = self._device_ids.get(device)
            if did is None:
                did = conn.execute(
                    select(t.devices.c.id).where(t.devices.c.name == device)
                ).scalar()
            if did is None:
                return {}
            rows = conn.execute(
                select(b.c.identity, func.sum(b.c.count))
                .where(b.c.device_id == did)
                .group_by(b.c.identity)
            ).all()
        return {r[0]: int(r[1]) for r in rows if r[1]}

    def measurements_frame(
        self,
        space: SearchSpace | None = None,
        devices: Sequence[str] | None = None,
        metrics: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        b, m, a = t.measurement_batches, t.measurements, t.architectures
        with self._read() as conn:
            cond = []
            if space is not None:
                space_id = self._find_space(conn, space)
                if space_id is None:
                    return empty_frame()
                cond.append(b.c.space_id == space_id)
            if devices is not None:
                cond.append(t.devices.c.name.in_(as_names(devices)))
            if metrics is not None:
                cond.append(b.c.metric.in_(as_names(metrics)))
            where = and_(True, *cond)
            batches = conn.execute(
                select(
                    b.c.id,
                    t.spaces.c.name.label("space"),
                    t.devices.c.name.label("device"),
                    b.c.metric,
                    b.c.statistic,
                    b.c.unit,
                    b.c.method,
                    b.c.is_estimate,
                    b.c.run_id.label("run"),
                    b.c.timestamp,
                )
                .select_from(b.join(t.spaces).join(t.devices))
                .where(where)
                .order_by(b.c.id)
            ).all()
            if not batches:
                return empty_frame()
            rows = conn.execute(
                select(m.c.batch_id, a.c.string, m.c.value, m.c.n)
                .select_from(m.join(b).join(a).join(t.devices, b.c.device_id == t.devices.c.id))
                .where(where)
                .order_by(m.c.id)
            ).all()
        bf = rows_frame(batches, ["id", *_BATCH_COLUMNS])
        bf["timestamp"] = pd.to_datetime([as_utc(x) for x in bf["timestamp"]], utc=True)
        rf = rows_frame(rows, ["batch_id", "architecture", "value", "n"])
        return assemble_frame(bf, rf)

    def measurement_summary(self) -> pd.DataFrame:
        """See :meth:`Store.measurement_summary`. Answered from this handle's last summary
        while the batches are unchanged (one small query instead of a pass over every row: a
        plan asks in its checks, in the proxy pool and in every worker)."""
        b = t.measurement_batches
        with self._read() as conn:
            count, last, total = conn.execute(
                select(func.count(b.c.id), func.max(b.c.id), func.sum(b.c.count))
            ).one()
        stamp = (int(count), int(last or 0), int(total or 0))
        hit = self._summary
        if hit is not None and hit[0] == stamp:
            return hit[1].copy()
        frame = self._measurement_summary()
        with self._lock:
            self._summary = (stamp, frame)
        return frame.copy()

    def _measurement_summary(self) -> pd.DataFrame:
        b, m = t.measurement_batches, t.measurements
        stmt = (
            select(
                t.spaces.c.name.label("space"),
                t.devices.c.name.label("device"),
                b.c.metric,
                func.count(m.c.id).label("count"),
                func.count(func.distinct(m.c.arch_id)).label("archs"),
                func.sum(case((b.c.is_estimate, 1), else_=0)).label("estimates"),
                func.max(b.c.timestamp).label("newest"),
            )
            .select_from(m.join(b).join(t.spaces).join(t.devices))
            .group_by(t.spaces.c.name, t.devices.c.name, b.c.metric)
        )
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return summary_frame(
            [
                (r.space, r.device, r.metric, r.count, r.archs, r.estimates, db_time(r.newest))
                for r in rows
            ]
        )

    # ---- artifacts and plans --------------------------------------------------------------
    def load_artifact(self, name: str, kind: str) -> Artifact:
        a = t.artifacts
        with self._read() as conn:
            row = conn.execute(
                select(a)
                .where(a.c.kind == kind, a.c.name == name)
                .order_by(a.c.created.desc(), a.c.id.desc())
                .limit(1)
            ).first()
            if row is None:
                names = (
                    conn.execute(select(a.c.name).where(a.c.kind == kind).distinct())
                    .scalars()
                    .all()
                )
                raise unknown_artifact(kind, name, names, self.safe_url)
        return Artifact(
            name=row.name,
            kind=row.kind,
            payload=bytes(row.payload),
            meta=row.meta,
            sha256=row.sha256,
            created=as_utc(row.created),
        )

    def list_artifacts(self, kind: str | None = None) -> list[Artifact]:
        a = t.artifacts
        stmt = select(a.c.id, a.c.kind, a.c.name, a.c.meta, a.c.sha256, a.c.created).order_by(
            a.c.kind, a.c.name, a.c.created, a.c.id
        )
        if kind is not None:
            stmt = stmt.where(a.c.kind == kind)
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        newest: dict[tuple[str, str], Any] = {}
        for r in rows:
            newest[(r.kind, r.name)] = r
        return [
            Artifact(
                name=r.name,
                kind=r.kind,
                payload=b"",
                meta=r.meta,
                sha256=r.sha256,
                created=as_utc(r.created),
            )
            for _, r in sorted(newest.items(), key=lambda kv: kv[0])
        ]

    def get_plan(self, plan: str) -> list[dict[str, Any]]:
        stmt = select(t.plans.c.device, t.plans.c.entry).where(t.plans.c.plan == plan)
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return [entry for _, entry in sorted(rows, key=lambda r: r[0])]

    def list_plans(self) -> list[str]:
        stmt = select(t.plans.c.plan).distinct()
        with self._read() as conn:
            return sorted(conn.execute(stmt).scalars())

    def counts(self) -> dict[str, int]:
        with self._read() as conn:
            return {
                k: int(conn.execute(select(func.count()).select_from(tab)).scalar() or 0)
                for k, tab in t.COUNTED_TABLES.items()
            }

    def checkpoint(self) -> None:
        if not self._is_sqlite or self._engine.url.database in (None, "", ":memory:"):
            return
        path = self._engine.url.database
        try:
            raw = self._engine.raw_connection()
            try:
                cur = raw.cursor()
                try:
                    busy, log, done = cur.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    cur.close()
            finally:
                raw.close()
        except Exception as exc:
            if not is_db_error(exc, self._engine):
                raise
            raise StoreError(
                f"the data is committed to the write-ahead log {path}-wal but could not be "
                f"copied into {path}: {reason(exc)}; do not delete {path}-wal, and run the "
                "import again once this is fixed (it adds nothing twice)"
            ) from exc
        if busy or (log >= 0 and done < log):
            raise StoreError(
                f"the data is committed to the write-ahead log {path}-wal but another process "
                f"kept it from being copied into {path} ({done} of {log} pages after waiting "
                f"{BUSY_TIMEOUT_S:.0f} s); do not delete {path}-wal, and run the import again "
                "once the other process has finished"
            )

    def close(self) -> None:
        self._engine.dispose()


def _upgrade(conn: Connection, found: int) -> None:
    """Bring a store of schema version ``found`` to :data:`~fleetnas.store.schema.SCHEMA_VERSION`
    inside the opening transaction."""
    for version in range(found, t.SCHEMA_VERSION):
        for statement in t.UPGRADES[version]:
            conn.execute(text(statement))
    conn.execute(
        update(t.meta).where(t.meta.c.key == "schema_version").values(value=str(t.SCHEMA_VERSION))
    )


def _unknown_device(conn: Connection, name: str, shown: int = 30) -> UnknownNameError:
    """The 'unknown device' error naming the first ``shown`` devices and the count: a miss costs
    two bounded queries, not a read of every device name (fleets hold millions)."""
    total = int(conn.execute(select(func.count()).select_from(t.devices)).scalar() or 0)
    names = (
        conn.execute(select(t.devices.c.name).order_by(t.devices.c.name).limit(shown))
        .scalars()
        .all()
    )
    more = f", ... ({total} in all)" if total > len(names) else ""
    return UnknownNameError(f"unknown device {name!r}; expected one of: {', '.join(names)}{more}")


__all__ = ["SQLStore", "hide_password"]
