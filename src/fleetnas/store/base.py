"""The abstract Store API. Every backend passes one conformance suite (``tests/store/``).

Architectures are identified in the store by (space, native string); batches cross the API as
``n x D`` int arrays plus the space, or as native strings. All writes happen inside a run
(:meth:`Store.run`), which is one transaction: an error or a kill inside it leaves nothing behind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from fleetnas.devices import Device
from fleetnas.spaces import SearchSpace

#: Columns of :meth:`Store.measurements_frame` (the long exchange format plus provenance).
MEASUREMENT_COLUMNS = (
    "space",
    "architecture",
    "device",
    "metric",
    "statistic",
    "value",
    "unit",
    "n",
    "method",
    "is_estimate",
    "run",
    "timestamp",
)

#: Columns of :meth:`Store.measurement_summary`.
SUMMARY_COLUMNS = ("space", "device", "metric", "count", "archs", "estimate_share", "newest")

#: Tables (or their in-memory equivalents) counted by :meth:`Store.counts`.
COUNTED = ("runs", "spaces", "architectures", "devices", "measurements", "artifacts", "plans")


@dataclass(frozen=True)
class RunInfo:
    """A unit of work that wrote to the store (an import, a measurement session, a plan)."""

    id: int
    kind: str
    key: str | None
    config: dict[str, Any]
    host: dict[str, Any]
    started: datetime
    status: str
    finished: datetime | None = None


@dataclass
class MeasurementBatch:
    """Values of one metric for ``n`` architectures of one space on one device."""

    space: SearchSpace
    archs: np.ndarray
    device: str
    metric: str
    values: np.ndarray
    unit: str
    statistic: str = "median"
    n: np.ndarray | int = 1
    method: str = ""
    is_estimate: bool = True
    extra: list[dict[str, Any]] | None = None
    #: Identity key of the measurer that produced the values
    #: (:attr:`fleetnas.measure.Measurer.identity_key`); ``None`` for imported values.
    identity: str | None = None

    def __post_init__(self) -> None:
        self.archs = self.space.check(self.archs)
        self.values = np.asarray(self.values, dtype=float).reshape(-1)
        if len(self.values) != len(self.archs):
            from fleetnas.errors import InputError

            raise InputError(
                f"measurement batch for {self.device!r}/{self.metric!r}: {len(self.archs)} "
                f"architectures but {len(self.values)} values"
            )


@dataclass
class Artifact:
    """A trained predictor or optimizer, stored as bytes with its metadata and SHA-256."""

    name: str
    kind: str
    payload: bytes
    meta: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""
    created: datetime | None = None


class Run(ABC):
    """Handle for writes inside one transactional run."""

    info: RunInfo

    @abstractmethod
    def add_measurements(self, batch: MeasurementBatch) -> int:
        """Write a batch; returns the number of rows written."""

    @abstractmethod
    def add_device(self, device: Device) -> None:
        """Insert or update a device (matched by name)."""

    @abstractmethod
    def save_artifact(self, artifact: Artifact) -> str:
        """Store an artifact under (kind, name); returns its SHA-256. A newer one replaces it."""

    @abstractmethod
    def save_plan_entries(self, plan: str, entries: Sequence[dict[str, Any]]) -> None:
        """Upsert entries (each has at least ``device``; an optional ``key`` is the entry's
        identity, else ``device`` is) of the plan named ``plan``."""


class Store(ABC):
    """Durable memory of fleetnas. Backends: :class:`~fleetnas.store.sql.SQLStore` (SQLite,
    PostgreSQL, any SQLAlchemy URL) and :class:`~fleetnas.store.memory.InMemoryStore`."""

    #: Where the store lives (``memory://`` for the in-memory store); ``safe_url`` hides passwords.
    url: str
    safe_url: str

    # ---- runs -----------------------------------------------------------------------------
    @abstractmethod
    def run(
        self, kind: str, config: dict[str, Any] | None = None, key: str | None = None
    ) -> AbstractContextManager[Run]:
        """Open a transactional run. ``key`` makes it idempotent: :meth:`has_run` then says
        whether a run with that key already completed, and opening it again raises."""

    @abstractmethod
    def has_run(self, key: str) -> bool: ...

    @abstractmethod
    def list_runs(self, kind: str | None = None) -> list[RunInfo]: ...

    # ---- devices --------------------------------------------------------------------------
    @abstractmethod
    def get_device(self, name: str) -> Device:
        """The device ``name``; :class:`~fleetnas.errors.UnknownNameError` if absent."""

    @abstractmethod
    def list_devices(self, family: str | None = None) -> list[Device]: ...

    def add_device(self, device: Device) -> None:
        """Insert or update one device in a run of its own."""
        with self.run("device", {"device": device.name}) as run:
            run.add_device(device)

    # ---- measurements ---------------------------------------------------------------------
    @abstractmethod
    def get_measurements(
        self,
        space: SearchSpace,
        device: str,
        metric: str,
        statistic: str = "median",
        archs: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(archs n x D, values n)`` for one device and metric; the newest value per
        architecture. With ``archs`` given, returns those (in order) that have a value."""

    @abstractmethod
    def device_identities(self, device: str) -> dict[str | None, int]:
        """Measurement rows stored for ``device`` per measurer identity key (``None``: rows
        written without one: imported, or stored before identities were recorded). More than
        one key means the device's values come from different settings (``fleetnas data
        verify``). Empty for a device without measurements or unknown to the store."""

    @abstractmethod
    def measurements_frame(
        self,
        space: SearchSpace | None = None,
        devices: Sequence[str] | None = None,
        metrics: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """All matching measurements in long form with :data:`MEASUREMENT_COLUMNS`."""

    def series_info(
        self, space: SearchSpace, device: str, metric: str, statistic: str
    ) -> tuple[str, bool] | None:
        """``(unit, is_estimate)`` of one stored series: the unit most of its values carry
        (ties: the first in sort order) and whether any of them is an estimate; ``None`` when
        the series is empty. Backends may answer without reading the values."""
        frame = self.measurements_frame(space, [device], [metric])
        frame = frame[frame["statistic"] == statistic]
        if not len(frame):
            return None
        return str(frame["unit"].mode().iat[0]), bool(frame["is_estimate"].any())

    @abstractmethod
    def measurement_summary(self) -> pd.DataFrame:
        """One row per (space, device, metric) with :data:`SUMMARY_COLUMNS`: row count,
        distinct architectures, is_estimate share, newest timestamp."""

    # ---- artifacts and plans --------------------------------------------------------------
    @abstractmethod
    def load_artifact(self, name: str, kind: str) -> Artifact:
        """The newest artifact (kind, name); :class:`UnknownNameError` if absent."""

    @abstractmethod
    def list_artifacts(self, kind: str | None = None) -> list[Artifact]:
        """Artifacts without their payloads (``payload`` is empty)."""

    @abstractmethod
    def get_plan(self, plan: str) -> list[dict[str, Any]]:
        """Entries of the plan ``plan`` (empty list if none), sorted by identity (``key`` or
        ``device``)."""

    @abstractmethod
    def list_plans(self) -> list[str]:
        """Names of the stored plans, sorted."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Committed rows per kind of record (keys: :data:`COUNTED`)."""

    @abstractmethod
    def close(self) -> None: ...

    def checkpoint(self) -> None:  # noqa: B027 (backends without a write-ahead log keep none)
        """Make every committed run durable in the database itself (SQLite: copy the
        write-ahead log into the file and truncate it). Raises
        :class:`~fleetnas.errors.StoreError` when that cannot be done (e.g. the disk is full);
        the committed data then lives only in the log, which must not be deleted."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def iter_devices(self) -> Iterator[Device]:
        yield from self.list_devices()
