"""The SQL schema of the store (SQLAlchemy Core tables).

Measurements are normalized in two tables: ``measurement_batches`` holds what a batch shares
(space, device, metric, statistic, unit, method, is_estimate, run, timestamp) and
``measurements`` one narrow row per architecture (value, n, optional extra JSON). This keeps a
470k-row import small and fast; :meth:`SQLStore.measurements_frame` joins them back into the
long form.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

#: Bumped whenever the tables change; a store written by a newer version is refused, an older
#: one is upgraded on open (:data:`UPGRADES`).
SCHEMA_VERSION = 2

metadata = MetaData()

#: SQLite keeps INTEGER PRIMARY KEY as the rowid; other databases get 64-bit ids.
_BigId = BigInteger().with_variant(Integer(), "sqlite")
_When = DateTime(timezone=True)

meta = Table(
    "fleetnas_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(64), nullable=False, index=True),
    Column("key", String(512), nullable=True, unique=True),
    Column("config", JSON, nullable=False),
    Column("host", JSON, nullable=False),
    Column("started", _When, nullable=False),
    Column("finished", _When, nullable=True),
    Column("status", String(16), nullable=False),
)

spaces = Table(
    "spaces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("created", _When, nullable=False),
)

architectures = Table(
    "architectures",
    metadata,
    Column("id", _BigId, primary_key=True),
    Column("space_id", ForeignKey("spaces.id"), nullable=False),
    Column("string", Text, nullable=False),
    Column("canonical", Text, nullable=False),
    Column("hash", String(64), nullable=False, index=True),
    Column("choices", LargeBinary, nullable=False),
    UniqueConstraint("space_id", "string", name="uq_arch_string"),
    UniqueConstraint("space_id", "choices", name="uq_arch_choices"),
)

devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("family", String(64), nullable=False, index=True),
    Column("features", JSON, nullable=False),
    Column("measurer", Text, nullable=True),
    Column("description", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False, index=True),
    Column("updated", _When, nullable=False),
    Column("run_id", ForeignKey("runs.id"), nullable=False),
)

measurement_batches = Table(
    "measurement_batches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", ForeignKey("runs.id"), nullable=False, index=True),
    Column("space_id", ForeignKey("spaces.id"), nullable=False),
    Column("device_id", ForeignKey("devices.id"), nullable=False),
    Column("metric", String(128), nullable=False),
    Column("statistic", String(64), nullable=False),
    Column("unit", String(64), nullable=False),
    Column("method", String(256), nullable=False),
    Column("is_estimate", Boolean, nullable=False),
    Column("timestamp", _When, nullable=False),
    Column("count", Integer, nullable=False),
    Column("identity", String(64), nullable=True),
    Index("ix_batches_series", "space_id", "device_id", "metric", "statistic"),
)

measurements = Table(
    "measurements",
    metadata,
    Column("id", _BigId, primary_key=True),
    Column("batch_id", ForeignKey("measurement_batches.id"), nullable=False, index=True),
    Column("arch_id", ForeignKey("architectures.id"), nullable=False),
    Column("value", Double, nullable=False),
    Column("n", Integer, nullable=False),
    Column("extra", Text, nullable=True),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(128), nullable=False),
    Column("name", String(256), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("meta", JSON, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created", _When, nullable=False),
    Column("run_id", ForeignKey("runs.id"), nullable=False),
    Index("ix_artifacts_kind_name", "kind", "name"),
)

plans = Table(
    "plans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("plan", String(256), nullable=False),
    Column("device", String(256), nullable=False),
    Column("entry", JSON, nullable=False),
    Column("design", Text, nullable=True, index=True),
    Column("method", String(128), nullable=True, index=True),
    Column("status", String(64), nullable=True, index=True),
    Column("updated", _When, nullable=False),
    Column("run_id", ForeignKey("runs.id"), nullable=False),
    UniqueConstraint("plan", "device", name="uq_plan_device"),
)

#: Statements that bring a store of schema version ``v`` to ``v + 1`` (``UPGRADES[v]``).
UPGRADES: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE measurement_batches ADD COLUMN identity VARCHAR(64)",),
}

#: Table behind each key of :meth:`Store.counts`.
COUNTED_TABLES = {
    "runs": runs,
    "spaces": spaces,
    "architectures": architectures,
    "devices": devices,
    "measurements": measurements,
    "artifacts": artifacts,
    "plans": plans,
}
