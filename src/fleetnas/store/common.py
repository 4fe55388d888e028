"""Validation and conversions shared by every store backend, so they all reject the same inputs
and identify architectures the same way."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from fleetnas.devices import Device
from fleetnas.errors import InputError, StoreError, UnknownNameError, unknown
from fleetnas.spaces import SearchSpace
from fleetnas.store.base import (
    MEASUREMENT_COLUMNS,
    SUMMARY_COLUMNS,
    Artifact,
    MeasurementBatch,
    RunInfo,
)
from fleetnas.store.hostinfo import host_info

#: Byte layout of the stored choice indices (little-endian int32 per decision).
CHOICE_DTYPE = np.dtype("<i4")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(ts: datetime | None) -> datetime | None:
    """Timestamps come back naive from SQLite; every timestamp the API returns is UTC-aware."""
    if ts is None or ts.tzinfo is not None:
        return ts
    return ts.replace(tzinfo=UTC)


def dumps(obj: Any) -> str:
    """Canonical JSON (sorted keys, no NaN) used for every JSON value the store writes."""
    return json.dumps(obj, sort_keys=True, allow_nan=False, separators=(",", ":"))


def check_json(obj: Any, what: str) -> Any:
    """A deep copy of ``obj`` through JSON; :class:`InputError` naming ``what`` if not JSON-able."""
    try:
        return json.loads(dumps(obj))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be JSON-able without NaN or infinity ({exc})") from None


def check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be a non-empty string, got {value!r}")
    return value


def check_run(
    local: Any, kind: str, config: dict[str, Any] | None, key: str | None, where: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate the arguments of :meth:`Store.run` and refuse a run nested in an open one of
    this thread (``local.active``); returns ``(config as JSON, host_info())``."""
    check_name(kind, "run kind")
    if key is not None:
        check_name(key, "run key")
    cfg = check_json(config or {}, f"config of run {kind!r}")
    if getattr(local, "active", False):
        raise StoreError(
            f"a run is already open in this thread on {where}; runs do not nest, "
            f"write through the open run's handle"
        )
    return cfg, host_info()


def run_done(key: str, run_id: int, started: datetime, where: str) -> StoreError:
    """The error for opening a keyed run that already completed (run ``run_id``)."""
    return StoreError(
        f"run {key!r} already completed in {where} (run {run_id}, started "
        f"{started:%Y-%m-%d %H:%M:%S} UTC); check store.has_run(key) first to skip it"
    )


def run_closed(info: RunInfo) -> StoreError:
    """The error for writing through a run's handle after its ``with`` block."""
    return StoreError(f"run {info.id} ({info.kind!r}) is closed; write inside its with block")


def check_device(device: Any) -> Device:
    if not isinstance(device, Device):
        raise InputError(f"add_device expects a Device, got {type(device).__name__}")
    return device


def unit_mismatch(batch: MeasurementBatch, stored: str) -> InputError:
    """The error for a batch whose unit differs from the unit its series is stored in."""
    return InputError(
        f"{batch.device!r}/{batch.metric!r} ({batch.statistic}) of space {batch.space.name!r} "
        f"is stored in {stored!r} but this batch is in {batch.unit!r}; convert it to "
        f"{stored!r} first"
    )


def as_names(names: str | Sequence[str]) -> list[str]:
    """A filter argument as a list (one name may be given as a plain string)."""
    return [names] if isinstance(names, str) else list(names)


def space_description(space: SearchSpace) -> str:
    """The space's :meth:`~SearchSpace.describe` as canonical JSON (compared on every write)."""
    try:
        return json.dumps(space.describe(), sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError) as exc:
        raise InputError(f"space {space.name!r}: describe() is not JSON-able ({exc})") from None


def description_mismatch(name: str, stored: str, given: str, where: str) -> str:
    """One sentence explaining how a space's stored description differs from the given one."""
    old, new = json.loads(stored), json.loads(given)
    old_d = {d["name"]: d["choices"] for d in old.get("decisions", [])}
    new_d = {d["name"]: d["choices"] for d in new.get("decisions", [])}
    diffs = [k for k in sorted(set(old_d) | set(new_d)) if old_d.get(k) != new_d.get(k)]
    detail = f"decisions that differ: {', '.join(diffs)}" if diffs else "descriptions differ"
    if not diffs and list(old_d) != list(new_d):
        detail = "decisions are in a different order"
    return (
        f"space {name!r} in the store at {where} was written with a different description "
        f"({detail}); its stored choice indices would mean other designs. Give the changed "
        f"space a new name or use another store"
    )


@dataclass
class CheckedBatch:
    """A validated :class:`MeasurementBatch` with per-row arrays."""

    archs: np.ndarray
    values: np.ndarray
    n: np.ndarray
    extra: list[str | None] | None


def check_batch(batch: MeasurementBatch) -> CheckedBatch:
    """Validate a batch once for every backend: names, finite values, counts, extras."""
    label = f"measurement batch {batch.device!r}/{batch.metric!r}"
    check_name(batch.device, f"{label}: device")
    check_name(batch.metric, f"{label}: metric")
    check_name(batch.statistic, f"{label}: statistic")
    if not isinstance(batch.unit, str):
        raise InputError(f"{label}: unit must be a string, got {batch.unit!r}")
    if not isinstance(batch.method, str):
        raise InputError(f"{label}: method must be a string, got {batch.method!r}")
    if batch.identity is not None and not (
        isinstance(batch.identity, str) and 0 < len(batch.identity) <= 64
    ):
        raise InputError(
            f"{label}: identity must be None or a string of 1 to 64 characters, "
            f"got {batch.identity!r}"
        )
    archs = batch.space.check(batch.archs)
    values = np.asarray(batch.values, dtype=float).reshape(-1)
    if len(values) != len(archs):
        raise InputError(f"{label}: {len(archs)} architectures but {len(values)} values")
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{label}: value {values[i]} for architecture {batch.space.format(archs[i])!r} "
            f"(row {i}, {int(bad.sum())} such rows); expected finite numbers. Leave failed "
            f"measurements out instead of storing NaN or infinity"
        )
    n_raw = np.asarray(batch.n)
    whole = np.issubdtype(n_raw.dtype, np.integer) or bool(np.all(np.mod(n_raw, 1) == 0))
    if n_raw.size and not whole:
        raise InputError(f"{label}: n must be whole repeat counts, got {n_raw!r}")
    try:
        n = np.broadcast_to(n_raw.astype(np.int64), (len(archs),)).copy()
    except ValueError:
        raise InputError(
            f"{label}: n must be one count or {len(archs)} counts, got shape {n_raw.shape}"
        ) from None
    if (n < 0).any():
        raise InputError(f"{label}: n (repeat counts) must be >= 0")
    extra = None
    if batch.extra is not None:
        if len(batch.extra) != len(archs):
            raise InputError(
                f"{label}: {len(archs)} architectures but {len(batch.extra)} extra entries"
            )
        extra = [
            None if e is None else dumps(check_json(e, f"{label}: extra of row {i}"))
            for i, e in enumerate(batch.extra)
        ]
    return CheckedBatch(archs=archs, values=values, n=n, extra=extra)


def arch_keys(archs: np.ndarray) -> list[bytes]:
    """Choice indices of each row of an ``n x D`` array as bytes: the store's lookup key."""
    a = np.ascontiguousarray(archs, dtype=CHOICE_DTYPE)
    if a.shape[0] == 0:
        return []
    return a.view(np.dtype((np.void, a.shape[1] * CHOICE_DTYPE.itemsize))).ravel().tolist()


def archs_from_keys(keys: list[bytes], n_decisions: int) -> np.ndarray:
    """Inverse of :func:`arch_keys`: an ``n x D`` int64 array."""
    if not keys:
        return np.zeros((0, n_decisions), dtype=np.int64)
    flat = np.frombuffer(b"".join(keys), dtype=CHOICE_DTYPE)
    return flat.reshape(len(keys), n_decisions).astype(np.int64)


def arch_records(space: SearchSpace, archs: np.ndarray) -> list[tuple[str, str, str]]:
    """``(native string, canonical string, hash)`` per row of an ``n x D`` array.

    The hash equals :meth:`SearchSpace.arch_hash`; for spaces that keep the default
    implementation it is computed here for the whole batch at once.
    """
    native = space.format_many(archs)
    canon_archs = space.canonicalize(archs)
    canon = space.format_many(canon_archs)
    if type(space).arch_hash is SearchSpace.arch_hash:
        hashes = [hashlib.sha1(f"{space.name}:{c}".encode()).hexdigest()[:16] for c in canon]
    else:
        hashes = [space.arch_hash(a) for a in archs]
    return list(zip(native, canon, hashes, strict=True))


def newest_values(
    space: SearchSpace,
    ids: np.ndarray,
    values: np.ndarray,
    keys: Sequence[bytes],
    archs: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Newest value per architecture.

    ``ids``, ``values`` and ``keys`` (choice bytes) describe rows sorted oldest first. Returns
    ``(archs n x D, values n)`` ordered by architecture id, or, with ``archs`` given, those rows
    of ``archs`` (in order) that have a value.
    """
    want = None if archs is None else space.check(archs)
    if len(ids) == 0:
        return np.zeros((0, space.n_decisions), dtype=np.int64), np.zeros(0)
    _, first_rev = np.unique(np.asarray(ids)[::-1], return_index=True)
    last = len(ids) - 1 - first_rev
    newest = np.asarray(values, dtype=float)[last]
    last_keys = [bytes(keys[i]) for i in last]
    if want is None:
        return archs_from_keys(last_keys, space.n_decisions), newest
    return pick_values(dict(zip(last_keys, newest.tolist(), strict=True)), want)


def pick_values(value_of: dict[bytes, float], want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``want`` (checked ``n x D``, in order) that have a value in ``value_of``
    (keyed by :func:`arch_keys`), and those values."""
    found = [(i, value_of[k]) for i, k in enumerate(arch_keys(want)) if k in value_of]
    rows = [i for i, _ in found]
    return want[rows], np.array([v for _, v in found], dtype=float)


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "space": pd.Series(dtype="str"),
            "architecture": pd.Series(dtype="str"),
            "device": pd.Series(dtype="str"),
            "metric": pd.Series(dtype="str"),
            "statistic": pd.Series(dtype="str"),
            "value": pd.Series(dtype=float),
            "unit": pd.Series(dtype="str"),
            "n": pd.Series(dtype=np.int64),
            "method": pd.Series(dtype="str"),
            "is_estimate": pd.Series(dtype=bool),
            "run": pd.Series(dtype=np.int64),
            "timestamp": pd.Series(dtype="datetime64[ns, UTC]"),
        }
    )[list(MEASUREMENT_COLUMNS)]


def assemble_frame(batches: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Long frame from per-batch columns (``id`` plus batch fields) and per-row columns
    (``batch_id``, ``architecture``, ``value``, ``n``)."""
    if rows.empty:
        return empty_frame()
    pos = pd.Index(batches["id"]).get_indexer(rows["batch_id"])
    out = {
        col: batches[col].to_numpy()[pos]
        for col in ("space", "device", "metric", "statistic", "unit", "method")
    }
    frame = pd.DataFrame(
        {
            **out,
            "architecture": rows["architecture"].to_numpy(),
            "value": rows["value"].to_numpy(dtype=float),
            "n": rows["n"].to_numpy(dtype=np.int64),
            "is_estimate": batches["is_estimate"].to_numpy(dtype=bool)[pos],
            "run": batches["run"].to_numpy(dtype=np.int64)[pos],
            "timestamp": pd.DatetimeIndex(batches["timestamp"])[pos],
        }
    )
    return frame[list(MEASUREMENT_COLUMNS)].reset_index(drop=True)


def summary_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Summary from ``(space, device, metric, count, archs, estimates, newest)`` tuples."""
    frame = pd.DataFrame(
        sorted(rows, key=lambda r: r[:3]),
        columns=["space", "device", "metric", "count", "archs", "estimates", "newest"],
    )
    frame["count"] = frame["count"].astype(np.int64)
    frame["archs"] = frame["archs"].astype(np.int64)
    total = frame["count"].where(frame["count"] > 0, 1)
    frame["estimate_share"] = frame["estimates"].astype(float) / total
    frame["newest"] = pd.to_datetime(frame["newest"], utc=True)
    return frame[list(SUMMARY_COLUMNS)].reset_index(drop=True)


def check_artifact(artifact: Artifact) -> tuple[bytes, dict[str, Any], str]:
    """``(payload, meta as JSON, SHA-256 hex digest)`` of a valid artifact."""
    check_name(artifact.kind, "artifact kind")
    check_name(artifact.name, "artifact name")
    if not isinstance(artifact.payload, bytes | bytearray | memoryview):
        raise InputError(
            f"artifact {artifact.kind}/{artifact.name}: payload must be bytes, got "
            f"{type(artifact.payload).__name__}"
        )
    payload = bytes(artifact.payload)
    meta = check_json(artifact.meta, f"meta of artifact {artifact.kind}/{artifact.name}")
    return payload, meta, hashlib.sha256(payload).hexdigest()


def plan_entries(plan: str, entries: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Validated entries keyed by their identity: ``key`` when the entry has one (fleet plans
    use ``device@budget``, so one device may hold several entries), else ``device``. The last
    entry of an identity wins."""
    check_name(plan, "plan name")
    out: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("device"), str):
            raise InputError(
                f"plan {plan!r}: entry {i} must be a dict with a string 'device', got {entry!r}"
            )
        ident = entry.get("key", entry["device"])
        if not isinstance(ident, str) or not ident:
            raise InputError(
                f"plan {plan!r}: entry {i} has a 'key' that is not a string: {ident!r}"
            )
        out[ident] = check_json(entry, f"plan {plan!r} entry for {ident!r}")
    return out


def opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def unknown_artifact(kind: str, name: str, names: Sequence[str], where: str) -> UnknownNameError:
    if not names:
        return UnknownNameError(
            f"unknown {kind} artifact {name!r}: the store at {where} holds no {kind!r} artifacts"
        )
    return unknown(f"{kind} artifact", name, list(names))
