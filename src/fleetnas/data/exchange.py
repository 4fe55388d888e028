"""The open exchange format for measurements: CSV or Parquet, long or wide.

This is how users bring their own measurements and take the store's out.

**Long** (one measurement per row). Columns ``space``, ``architecture`` (the space's native
string), ``device``, ``metric``, ``value``, ``unit``; optional ``statistic`` (default
``median``), ``n`` (repeats, default 1), ``method`` (default ``import``), ``is_estimate``
(default false) and ``timestamp`` (written on export for provenance, ignored on import: the
store stamps what it writes). ``space`` may be left out when the importer is given ``space=``.

**Wide** (one architecture per row). Columns ``space`` (optional, as above), ``architecture``,
then one column per series, headed ``<device>[<metric>:<unit>]`` or
``<device>[<metric>:<unit>:<statistic>]``, e.g. ``pixel2[latency:ms:mean]``; a bare
``<device>`` header takes ``metric``, ``unit`` and ``statistic`` from the importer's arguments
(``latency``, ``ms``, ``median`` by default). An empty cell is refused unless
``skip_missing`` is given (then it is left out and counted). ``n``,
``method`` and ``is_estimate`` apply to the whole file (importer arguments), so use the long
shape to keep per-row provenance.

Both shapes read into one validated long frame (:func:`read_table`); any problem raises one
:class:`~fleetnas.errors.InputError` naming the file, the line (CSV; the header is line 1) or
row (Parquet, from 1), the column, the value and what is expected, and nothing is written. A
blank or NaN value (an empty wide cell too) is refused unless ``skip_missing`` is given, which
leaves such cells out and counts them. Values must be finite numbers in their metric's range,
in a unit of its whitelist, converted on import to the store's unit (:mod:`fleetnas.data.units`:
latency in s/ms/us/ns -> ms, energy in J/mJ/uJ -> mJ, accuracy in % or fraction -> %);
device names come from a safe alphabet (:mod:`fleetnas.devices.names`); a row may not repeat
(space, architecture, device, metric, statistic). :func:`import_table` writes a file in one
run keyed by a hash of its content (re-importing adds nothing); :func:`export_table` writes the
store's newest value per (space, architecture, device, metric, statistic). Floats round-trip
exactly in both formats.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fleetnas.data import units
from fleetnas.data.common import ImportReport
from fleetnas.devices import Device
from fleetnas.devices.catalog import get_catalog_device
from fleetnas.devices.names import unsafe_device_name
from fleetnas.errors import FleetnasError, InputError, UnknownNameError
from fleetnas.spaces import SearchSpace, get_space
from fleetnas.store.base import MEASUREMENT_COLUMNS, MeasurementBatch, Store

#: Columns of the long shape, in the order :func:`export_table` writes them: the store's
#: measurement columns without the store-internal ``run``.
LONG_COLUMNS = tuple(c for c in MEASUREMENT_COLUMNS if c != "run")
REQUIRED = ("architecture", "device", "metric", "value", "unit")
KEY = ("space", "architecture", "device", "metric", "statistic")
RUN_KIND = "import-exchange"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_HEADER = re.compile(
    r"^(?P<device>[^\[\]]+)\[(?P<metric>[^:\[\]]+):(?P<unit>[^:\[\]]+)(?::(?P<stat>[^:\[\]]+))?\]$"
)
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n", ""}


def file_format(path: str | os.PathLike[str]) -> str:
    """``csv`` or ``parquet`` from the file suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(
            f"{path}: unknown exchange file type {suffix!r}; expected .csv, .parquet or .pq"
        )
    return FORMATS[suffix]


def wide_header(device: str, metric: str, unit: str, statistic: str) -> str:
    return f"{device}[{metric}:{unit}:{statistic}]"


class _Where:
    """Names a file position in messages: CSV line (header = 1) or Parquet row (from 1)."""

    def __init__(self, path: str | os.PathLike[str], fmt: str) -> None:
        self.path, self.fmt = str(path), fmt

    def row(self, i: int) -> str:
        return f"line {i + 2}" if self.fmt == "csv" else f"row {i + 1}"

    def error(self, msg: str, i: int | None = None, col: str | None = None) -> InputError:
        parts = [self.path]
        if i is not None:
            parts.append(self.row(i))
        if col is not None:
            parts.append(f"column {col!r}")
        return InputError(f"{', '.join(parts)}: {msg}")


def _read_raw(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, _Where]:
    fmt = file_format(path)
    where = _Where(path, fmt)
    if not Path(path).is_file():
        raise InputError(
            f"{path} does not exist; expected a {fmt} file in the long or wide exchange format"
        )
    try:
        if fmt == "csv":
            raw = pd.read_csv(path, dtype={"architecture": str, "space": str}, keep_default_na=True)
        else:
            raw = pd.read_parquet(path)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read it as {fmt} ({first})") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    dup = raw.columns[raw.columns.duplicated()]
    if len(dup):
        raise where.error(f"column {dup[0]!r} appears twice; expected unique column names")
    return raw, where


def read_table(
    path: str | os.PathLike[str],
    shape: str | None = None,
    space: str | None = None,
    metric: str = "latency",
    unit: str = "ms",
    statistic: str = "median",
    method: str = "import",
    is_estimate: bool = False,
    n: int = 1,
    skip_missing: bool = False,
) -> pd.DataFrame:
    """Read and validate an exchange file into a long frame (columns :data:`LONG_COLUMNS`
    without ``timestamp``; ``architecture`` normalized to the space's native string; values
    in the store's unit of their metric).

    ``shape`` is ``long``, ``wide`` or ``None`` (long when the file has ``value``, ``device``
    and ``metric`` columns). The other arguments are the defaults described in the module
    docstring; ``space`` is used when the file has no ``space`` column. With
    ``skip_missing`` blank and NaN values are left out and counted in
    ``frame.attrs["missing"]``; without it the first one is an error.
    """
    raw, where = _read_raw(path)
    if shape is None:
        shape = "long" if {"value", "device", "metric"} <= set(raw.columns) else "wide"
    if shape == "long":
        frame = _long_from_raw(raw, where, space, statistic, method, is_estimate, n)
    elif shape == "wide":
        frame = _wide_from_raw(raw, where, space, metric, unit, statistic, method, is_estimate, n)
    else:
        raise InputError(f"shape must be 'long' or 'wide', got {shape!r}")
    return _validate(frame, where, skip_missing)


def _long_from_raw(
    raw: pd.DataFrame,
    where: _Where,
    space: str | None,
    statistic: str,
    method: str,
    is_estimate: bool,
    n: int,
) -> pd.DataFrame:
    need = [c for c in REQUIRED if c not in raw.columns]
    if "space" not in raw.columns and space is None:
        need.insert(0, "space")
    if need:
        raise where.error(
            f"missing column {need[0]!r}; the long shape needs columns "
            f"space, architecture, device, metric, value, unit (space may be given instead)"
        )
    frame = pd.DataFrame(index=raw.index)
    frame["space"] = raw["space"] if "space" in raw.columns else space
    for col in ("architecture", "device", "metric", "unit"):
        frame[col] = raw[col]
    frame["value"] = raw["value"]
    frame["statistic"] = raw["statistic"] if "statistic" in raw.columns else statistic
    frame["method"] = raw["method"] if "method" in raw.columns else method
    frame["n"] = raw["n"] if "n" in raw.columns else n
    frame["is_estimate"] = raw["is_estimate"] if "is_estimate" in raw.columns else is_estimate
    frame["row"] = np.arange(len(raw))
    return frame


def _wide_from_raw(
    raw: pd.DataFrame,
    where: _Where,
    space: str | None,
    metric: str,
    unit: str,
    statistic: str,
    method: str,
    is_estimate: bool,
    n: int,
) -> pd.DataFrame:
    if "architecture" not in raw.columns:
        raise where.error(
            "missing column 'architecture'; the wide shape needs columns [space,] architecture "
            "and one column per device headed <device>[<metric>:<unit>] or <device>"
        )
    if "space" not in raw.columns and space is None:
        raise where.error("missing column 'space' (or give the space to the importer)")
    series = [c for c in raw.columns if c not in ("space", "architecture")]
    if not series:
        raise where.error("no device columns; expected columns headed <device>[<metric>:<unit>]")
    parts = []
    seen: dict[tuple[str, str, str], str] = {}
    for col in series:
        m = _HEADER.match(col)
        if m is None and ("[" in col or "]" in col):
            raise where.error(
                f"header {col!r} is not <device>[<metric>:<unit>] or "
                f"<device>[<metric>:<unit>:<statistic>]"
            )
        dev = (m["device"] if m else col).strip()
        spec = (m["metric"], m["unit"], m["stat"] or statistic) if m else (metric, unit, statistic)
        if (dev, spec[0], spec[2]) in seen:
            raise where.error(
                f"columns {seen[(dev, spec[0], spec[2])]!r} and {col!r} are the same series "
                f"({dev}/{spec[0]}/{spec[2]}); expected one column per series"
            )
        seen[(dev, spec[0], spec[2])] = col
        cells = raw[col]
        part = pd.DataFrame(
            {
                "space": (raw["space"] if "space" in raw.columns else space),
                "architecture": raw["architecture"],
                "device": dev,
                "metric": spec[0],
                "unit": spec[1],
                "value": cells,
                "statistic": spec[2],
                "method": method,
                "n": n,
                "is_estimate": is_estimate,
                "row": np.arange(len(raw)),
                "column": col,
            }
        )
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _missing(values: pd.Series) -> np.ndarray:
    """Blank or NaN cells (``nan`` text is NaN already: pandas reads it so)."""
    text = values.astype(str).str.strip().str.lower()
    return values.isna().to_numpy() | text.isin(["", "nan"]).to_numpy()


def _show(value: object) -> str:
    """A cell for a message: numbers as numbers, text quoted, no NumPy reprs."""
    if isinstance(value, float | np.floating | int | np.integer) and not isinstance(value, bool):
        return repr(float(value))
    return repr(str(value))


def _validate(frame: pd.DataFrame, where: _Where, skip_missing: bool = False) -> pd.DataFrame:
    missing = _missing(frame["value"])
    n_missing = int(missing.sum())
    if n_missing and skip_missing:
        frame = frame[~missing].reset_index(drop=True)
    col_of = frame["column"] if "column" in frame.columns else None
    rows = frame["row"].to_numpy()

    def err(msg: str, k: int, col: str) -> InputError:
        column = col_of.iloc[k] if col_of is not None and col == "value" else col
        return where.error(msg, int(rows[k]), column)

    if n_missing and not skip_missing:
        k = int(np.flatnonzero(missing)[0])
        raise err(
            f"blank or NaN value (the first of {n_missing}); expected a finite number, or pass "
            "--skip-missing (skip_missing=True) to leave them out and count them",
            k,
            "value",
        )

    for col in ("space", "architecture", "device", "metric", "unit", "statistic", "method"):
        values = frame[col]
        blank = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
        if col == "method":
            frame[col] = values.where(~blank, "").astype(str)
            continue
        if blank.any():
            k = int(np.flatnonzero(blank)[0])
            raise err(f"empty {col}; expected a {_EXPECT[col]}", k, col)
        frame[col] = values.astype(str).str.strip()
        if col in ("device", "metric", "unit", "statistic"):
            bad = frame[col].str.contains(r"[\[\]:]", regex=True).to_numpy()
            if col == "device" and bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise err(f"device name {frame[col].iloc[k]!r} may not contain [ ] or :", k, col)
    _check_devices(frame, err)

    value = pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(value)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise err(f"{_show(frame['value'].iloc[k])} is not a finite number", k, "value")
    frame["value"] = _convert_units(frame, value, err)

    n_num = pd.to_numeric(frame["n"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(n_num) | (n_num < 0) | (n_num != np.round(n_num))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise err(f"n = {frame['n'].iloc[k]!r}; expected a whole number >= 0", k, "n")
    frame["n"] = n_num.astype(np.int64)
    frame["is_estimate"] = _booleans(frame, err)

    _normalize_archs(frame, err)

    units = frame.groupby(["space", "device", "metric", "statistic"], sort=False)["unit"]
    mixed = units.nunique()
    if (mixed > 1).any():
        sp, dev, met, stat = mixed[mixed > 1].index[0]
        sel = (frame["space"] == sp) & (frame["device"] == dev) & (frame["metric"] == met)
        sel &= frame["statistic"] == stat
        k = int(np.flatnonzero(sel.to_numpy())[0])
        found = sorted(frame.loc[sel, "unit"].unique())
        raise err(f"{dev}/{met} is given in several units {found}; expected one", k, "unit")

    dup = frame.duplicated(list(KEY), keep=False).to_numpy()
    if dup.any():
        first = np.flatnonzero(dup)[0]
        key = frame.loc[frame.index[first], list(KEY)]
        same = np.flatnonzero((frame[list(KEY)] == key.to_numpy()).all(axis=1).to_numpy())
        a, b = (where.row(int(rows[same[0]])), where.row(int(rows[same[1]])))
        raise InputError(
            f"{where.path}: {a} and {b} both give {key['device']}/{key['metric']} "
            f"({key['statistic']}) of {key['space']} architecture {key['architecture']!r}; "
            f"expected one value per architecture, device, metric and statistic"
        )
    out = frame[[c for c in LONG_COLUMNS if c != "timestamp"]].reset_index(drop=True)
    out.attrs["missing"] = n_missing if skip_missing else 0
    return out


def _check_devices(frame: pd.DataFrame, err) -> None:
    for name, idx in frame.groupby("device", sort=False).indices.items():
        why = unsafe_device_name(str(name))
        if why is not None:
            raise err(f"device name {name!r} {why}", int(idx[0]), "device")


def _convert_units(frame: pd.DataFrame, value: np.ndarray, err) -> np.ndarray:
    """Values in the store's unit of their metric (units are rewritten in ``frame``); the
    first unit off the whitelist or value out of its metric's range is an error."""
    out = value.copy()
    unit_col = frame["unit"].to_numpy(dtype=object).copy()
    for (metric, unit), idx in frame.groupby(["metric", "unit"], sort=False).indices.items():
        why = units.check_unit(str(metric), str(unit))
        if why is not None:
            raise err(why, int(idx[0]), "unit")
        converted, canonical = units.to_canonical(str(metric), str(unit), value[idx])
        bad, expected = units.out_of_range(str(metric), converted)
        if bad.any():
            k = int(idx[np.flatnonzero(bad)[0]])
            given = "" if canonical == unit else f" ({float(converted[bad][0])!r} {canonical})"
            raise err(
                f"{frame['device'].iloc[k]}/{metric} value {float(value[k])!r} {unit}{given} is "
                f"out of range; "
                f"expected {expected}",
                k,
                "value",
            )
        out[idx] = converted
        unit_col[idx] = canonical
    frame["unit"] = unit_col
    return out


_EXPECT = {
    "space": "space name such as nb201, fbnet or ofa_mbv3",
    "architecture": "architecture in the space's native string form",
    "device": "device name",
    "metric": "metric name such as latency or energy",
    "unit": "unit such as ms, mJ or %",
    "statistic": "statistic such as median or mean",
}


def _booleans(frame: pd.DataFrame, err) -> np.ndarray:
    col = frame["is_estimate"]
    if col.dtype == bool:
        return col.to_numpy()
    out = np.zeros(len(col), dtype=bool)
    for k, v in enumerate(col.tolist()):
        if isinstance(v, bool | np.bool_):
            out[k] = bool(v)
            continue
        text = "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
        text = text.strip().lower()
        if text.endswith(".0"):
            text = text[:-2]
        if text in _TRUE:
            out[k] = True
        elif text not in _FALSE:
            raise err(f"{v!r} is not a boolean; expected true or false", k, "is_estimate")
    return out


def _normalize_archs(frame: pd.DataFrame, err) -> None:
    """Parse every architecture with its space; store the space's own formatting back."""
    out = frame["architecture"].to_numpy(dtype=object).copy()
    for sp_name, idx in frame.groupby("space", sort=False).indices.items():
        try:
            space = get_space(sp_name)
        except UnknownNameError as exc:
            raise err(str(exc), int(idx[0]), "space") from None
        texts = frame["architecture"].to_numpy(dtype=object)[idx]
        uniq, inverse = np.unique(texts.astype(str), return_inverse=True)
        native = []
        for j, text in enumerate(uniq):
            try:
                native.append(space.format(space.parse(text)))
            except FleetnasError as exc:
                k = int(idx[np.flatnonzero(inverse == j)[0]])
                raise err(
                    f"architecture {text[:80]!r} is not a valid {sp_name} design ({exc})",
                    k,
                    "architecture",
                ) from None
        out[idx] = np.array(native, dtype=object)[inverse]
    frame["architecture"] = out.astype(str)


def content_key(frame: pd.DataFrame) -> str:
    """Run key of a validated long frame: SHA-256 of its rows, independent of row order."""
    cols = [c for c in LONG_COLUMNS if c in frame.columns and c != "timestamp"]
    ordered = frame[cols].sort_values(list(KEY), kind="stable").reset_index(drop=True)
    h = hashlib.sha256(",".join(cols).encode())
    h.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    return f"{RUN_KIND}:{h.hexdigest()[:32]}"


def import_frame(store: Store, frame: pd.DataFrame, source: str = "frame") -> ImportReport:
    """Write a validated long frame (:func:`read_table`) in one idempotent run, then make it
    durable in the database file (:meth:`Store.checkpoint`; an error if it cannot be)."""
    bad = [d for d in frame["device"].unique().tolist() if unsafe_device_name(str(d))]
    if bad:
        raise InputError(f"{source}: device name {bad[0]!r} {unsafe_device_name(str(bad[0]))}")
    key = content_key(frame)
    spaces = sorted(frame["space"].unique().tolist())
    report = ImportReport("exchange", ",".join(spaces))
    if store.has_run(key):
        report.skipped = True
        store.checkpoint()  # an earlier import may have committed it to the log alone
        return report
    known = {d.name for d in store.list_devices()}
    groups = frame.groupby(
        ["space", "device", "metric", "statistic", "unit", "method", "is_estimate"], sort=False
    )
    with store.run(RUN_KIND, {"source": source, "rows": len(frame)}, key=key) as run:
        for dev in frame["device"].unique().tolist():
            if dev not in known:
                run.add_device(_new_device(dev))
                report.devices.append(dev)
        parsed: dict[str, dict[str, np.ndarray]] = {}
        for (sp, dev, met, stat, unit, method, est), g in groups:
            space = get_space(sp)
            known_archs = parsed.setdefault(sp, {})
            texts = g["architecture"].tolist()
            for text in set(texts).difference(known_archs):
                known_archs[text] = space.parse(text)
            report.rows += run.add_measurements(
                MeasurementBatch(
                    space=space,
                    archs=np.stack([known_archs[t] for t in texts]),
                    device=dev,
                    metric=met,
                    values=g["value"].to_numpy(dtype=float),
                    unit=unit,
                    statistic=stat,
                    n=g["n"].to_numpy(dtype=np.int64),
                    method=method,
                    is_estimate=bool(est),
                )
            )
        report.run_id = run.info.id
    store.checkpoint()
    return report


def _new_device(name: str) -> Device:
    try:
        return get_catalog_device(name)
    except UnknownNameError:
        return Device(name, "other", description="added by an exchange-format import")


def import_table(
    store: Store, path: str | os.PathLike[str], shape: str | None = None, **defaults: object
) -> ImportReport:
    """Read, validate and import an exchange file (see :func:`read_table` for ``defaults``)."""
    frame = read_table(path, shape, **defaults)  # type: ignore[arg-type]
    report = import_frame(store, frame, source=str(path))
    report.missing = int(frame.attrs.get("missing", 0))
    return report


def store_frame(
    store: Store,
    space: str | SearchSpace | None = None,
    devices: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The store's newest value per (space, architecture, device, metric, statistic), long."""
    sp = get_space(space) if isinstance(space, str) else space
    frame = store.measurements_frame(sp, devices, metrics)
    frame = frame.drop_duplicates(list(KEY), keep="last")
    return frame[list(LONG_COLUMNS)].reset_index(drop=True)


def to_wide(frame: pd.DataFrame) -> pd.DataFrame:
    """Long frame -> wide frame (``space``, ``architecture``, one column per series), rows and
    columns in order of first appearance."""
    series = frame[["device", "metric", "unit", "statistic"]].astype(str)
    headers = (
        series["device"] + "[" + series["metric"] + ":" + series["unit"] + ":"
        + series["statistic"] + "]"
    )  # fmt: skip
    f = frame.assign(series=headers)
    rows = f[["space", "architecture"]].drop_duplicates()
    wide = f.pivot(index=["space", "architecture"], columns="series", values="value")
    wide = wide.reindex(pd.MultiIndex.from_frame(rows))[headers.unique().tolist()]
    wide.columns.name = None
    return wide.reset_index()


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str], shape: str = "long") -> int:
    """Write a long frame as ``shape`` to ``path`` (format from the suffix); returns rows."""
    fmt = file_format(path)
    if shape == "wide":
        out = to_wide(frame)
    elif shape == "long":
        out = frame[[c for c in LONG_COLUMNS if c in frame.columns]]
    else:
        raise InputError(f"shape must be 'long' or 'wide', got {shape!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    try:
        if fmt == "csv":
            out.to_csv(tmp, index=False)
        else:
            out.to_parquet(tmp, index=False)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return len(out)


def export_table(
    store: Store,
    path: str | os.PathLike[str],
    shape: str = "long",
    space: str | SearchSpace | None = None,
    devices: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> int:
    """Export the store's measurements (newest per series and architecture) to ``path``."""
    return write_table(store_frame(store, space, devices, metrics), path, shape)
