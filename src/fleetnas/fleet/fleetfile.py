"""Fleet files: the devices to plan for, how each can be measured, and its budgets.

Two formats, chosen by suffix. **YAML** (``.yaml``/``.yml``) for hand-written fleets::

    name: help-nb201                  # optional; defaults to the file stem
    defaults:                         # optional; applied to every device that lacks the key
      budgets: [p25, {latency_ms: p50, label: mid}]
      proxy: titan_rtx_1
    devices:
      - name: pixel2
        catalog: pixel2               # family, features and measurer table:pixel2 from the catalog
        budgets: [{latency_ms: 25}, {latency_ms: 40, energy_mj: 90, label: loose}]
      - name: my-board
        family: embedded_cpu
        features: {cores: 4, clock_ghz: 1.5, memory_gb: 4}
        measurer: agent:http://10.0.0.7:8765   # or table:NAME, onnxruntime:..., sim:..., null
        proxy: pixel3
      - name: this-cpu
        measurer: onnxruntime:threads=1,batch=1   # features: this machine's runtime setting

**CSV** (``.csv``) for large generated fleets: one row per device with columns ``name``
(required), ``family``, ``catalog``, ``measurer``, ``proxy``, ``description``, ``latency_ms``,
``energy_mj``, ``label`` and one ``feature.<key>`` column per spec feature. A device's several
budgets go in one cell separated by ``;`` (``p25;p50;p75``); a single value in ``latency_ms`` or
``energy_mj`` applies to all of that row's budgets (labels then default). Empty cells mean "not
given".

**Budgets.** Each budget has a latency (ms) and/or an energy (mJ) limit. A limit is either an
absolute number or *relative*: ``pNN`` (0 <= NN <= 100) is the NN-th percentile of the device's
*predicted* latency (energy) over the space's reference sample of designs (see
:mod:`fleetnas.fleet.planner`), so ``p50`` asks for a design faster than half the space on that
device. A bare value in a YAML budget list is a latency limit. Every budget has a label, unique
per device (default: the limits written out, e.g. ``p50`` or ``20ms+90mJ``); a plan entry is
identified by ``device@label``.

Every mistake raises :class:`~fleetnas.errors.InputError` naming the file, the row or device
and the key.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from fleetnas.devices import FAMILIES, Device
from fleetnas.errors import FleetnasError, InputError
from fleetnas.fileio import atomic_write_text

#: Suffixes of the two formats.
YAML_SUFFIXES = (".yaml", ".yml")
CSV_SUFFIXES = (".csv",)
#: Prefix of spec-feature columns in CSV fleets.
FEATURE_PREFIX = "feature."
_CSV_COLUMNS = ("name", "family", "catalog", "measurer", "proxy", "description")
_BUDGET_COLUMNS = ("latency_ms", "energy_mj", "label")
_DEVICE_KEYS = {*_CSV_COLUMNS, "features", "budgets"}
_BUDGET_KEYS = {"latency_ms", "energy_mj", "label"}
_TOP_KEYS = {"name", "defaults", "devices", "description"}
_DEFAULT_KEYS = {"budgets", "proxy", "measurer", "family"}
_QUANTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")
_LABEL = re.compile(r"^[A-Za-z0-9_.+\-]+$")


@dataclass(frozen=True)
class Limit:
    """One limit of a budget: absolute (``value``) or relative (``quantile`` in [0, 100])."""

    value: float | None = None
    quantile: float | None = None

    @property
    def relative(self) -> bool:
        return self.quantile is not None

    def text(self, unit: str) -> str:
        if self.quantile is not None:
            return f"p{self.quantile:g}"
        return f"{self.value:g}{unit}"

    def to_json(self) -> float | str:
        return f"p{self.quantile:g}" if self.quantile is not None else float(self.value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Budget:
    """A latency and/or energy budget of one device, with its label (unique per device)."""

    latency: Limit | None = None
    energy: Limit | None = None
    label: str = ""

    @property
    def relative(self) -> bool:
        return any(lim is not None and lim.relative for lim in (self.latency, self.energy))

    def default_label(self) -> str:
        parts = []
        if self.latency is not None:
            parts.append(self.latency.text("ms"))
        if self.energy is not None:
            e = self.energy.text("mJ")
            parts.append(f"e{e}" if self.energy.relative else e)
        return "+".join(parts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.latency is not None:
            out["latency_ms"] = self.latency.to_json()
        if self.energy is not None:
            out["energy_mj"] = self.energy.to_json()
        out["label"] = self.label
        return out


@dataclass(frozen=True)
class FleetDevice:
    """A device of a fleet: its record, its budgets, and an optional proxy device name."""

    device: Device
    budgets: tuple[Budget, ...]
    proxy: str | None = None

    @property
    def name(self) -> str:
        return self.device.name

    def keys(self) -> list[str]:
        """Plan entry keys ``device@label``, one per budget."""
        return [entry_key(self.device.name, b.label) for b in self.budgets]


@dataclass
class Fleet:
    """A named list of devices with budgets (see the module docstring for the file formats)."""

    name: str
    devices: list[FleetDevice]
    source: str = ""
    description: str = ""
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        seen: dict[str, int] = {}
        for i, d in enumerate(self.devices):
            if d.name in seen:
                raise InputError(
                    f"fleet {self.source or self.name!r}: device {d.name!r} appears twice "
                    f"(entries {seen[d.name] + 1} and {i + 1}); names must be unique"
                )
            seen[d.name] = i
        self._index = seen

    def __len__(self) -> int:
        return len(self.devices)

    def __iter__(self):
        return iter(self.devices)

    def get(self, name: str) -> FleetDevice:
        from fleetnas.errors import unknown

        try:
            return self.devices[self._index[name]]
        except KeyError:
            raise unknown("fleet device", name, list(self._index)) from None

    @property
    def n_tasks(self) -> int:
        """Number of (device, budget) pairs."""
        return sum(len(d.budgets) for d in self.devices)


def entry_key(device: str, label: str) -> str:
    """Identity of a plan entry in the store: ``device@label``."""
    return f"{device}@{label}"


# ---- parsing ---------------------------------------------------------------------------------
class _Where:
    """Formats error locations: ``fleet.csv row 12 (device 'x'): key: message``."""

    def __init__(self, path: str, row: str) -> None:
        self.path = path
        self.row = row
        self.device: str | None = None

    def error(self, key: str | None, message: str) -> InputError:
        dev = f" (device {self.device!r})" if self.device else ""
        k = f" {key}:" if key else ""
        return InputError(f"fleet file {self.path} {self.row}{dev}:{k} {message}")


def parse_limit(value: Any, key: str, where: _Where) -> Limit | None:
    """A number (> 0) or ``pNN``; ``None``/empty means not given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise where.error(key, f"expected a number > 0 or a percentile like p50, got {value!r}")
    if isinstance(value, int | float):
        v = float(value)
    else:
        text = str(value).strip().lower()
        m = _QUANTILE.match(text)
        if m:
            q = float(m.group(1))
            if not 0 <= q <= 100:
                raise where.error(key, f"percentile must be between p0 and p100, got {value!r}")
            return Limit(quantile=q)
        try:
            v = float(text)
        except ValueError:
            raise where.error(
                key, f"expected a number > 0 or a percentile like p50, got {value!r}"
            ) from None
    if not (math.isfinite(v) and v > 0):
        raise where.error(key, f"expected a number > 0 or a percentile like p50, got {value!r}")
    return Limit(value=v)


def _budget(raw: Any, where: _Where, i: int) -> Budget:
    key = f"budgets[{i}]"
    if isinstance(raw, dict):
        extra = sorted(set(map(str, raw)) - _BUDGET_KEYS)
        if extra:
            raise where.error(
                key, f"unknown key(s) {', '.join(extra)}; expected latency_ms, energy_mj, label"
            )
        lat = parse_limit(raw.get("latency_ms"), f"{key}.latency_ms", where)
        en = parse_limit(raw.get("energy_mj"), f"{key}.energy_mj", where)
        label = raw.get("label")
    else:
        lat, en, label = parse_limit(raw, key, where), None, None
    if lat is None and en is None:
        raise where.error(key, "a budget needs latency_ms and/or energy_mj")
    b = Budget(lat, en)
    text = b.default_label() if label in (None, "") else str(label).strip()
    if not _LABEL.match(text):
        raise where.error(
            f"{key}.label", f"labels use letters, digits and _.+- only, got {label!r}"
        )
    return replace(b, label=text)


def _budgets(raw: Any, where: _Where) -> tuple[Budget, ...]:
    if raw is None:
        raise where.error("budgets", "no budgets given (and none in defaults)")
    items = raw if isinstance(raw, list) else [raw]
    out = tuple(_budget(r, where, i) for i, r in enumerate(items))
    if not out:
        raise where.error("budgets", "the list is empty; give at least one budget")
    labels = [b.label for b in out]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise where.error("budgets", f"label(s) {', '.join(dup)} repeat; give each a unique label")
    return out


def _device(raw: dict[str, Any], defaults: dict[str, Any], where: _Where) -> FleetDevice:
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise where.error("name", f"expected a non-empty device name, got {name!r}")
    name = name.strip()
    if "@" in name:
        raise where.error("name", f"device names may not contain '@', got {name!r}")
    where.device = name
    extra = sorted(set(map(str, raw)) - _DEVICE_KEYS)
    if extra:
        raise where.error(
            None,
            f"unknown key(s) {', '.join(extra)}; expected some of "
            f"{', '.join(sorted(_DEVICE_KEYS))}",
        )
    family, features, measurer, desc = None, {}, None, ""
    cat = raw.get("catalog")
    if cat not in (None, ""):
        from fleetnas.devices.catalog import get_catalog_device

        try:
            base = get_catalog_device(str(cat).strip())
        except FleetnasError as exc:
            raise where.error("catalog", str(exc)) from None
        family, features, measurer, desc = (
            base.family,
            dict(base.features),
            base.measurer,
            base.description,
        )
    family = raw.get("family") or family or defaults.get("family") or "other"
    if family not in FAMILIES:
        raise where.error("family", f"{family!r} is not one of {', '.join(FAMILIES)}")
    feats = raw.get("features")
    if feats is not None:
        if not isinstance(feats, dict):
            raise where.error("features", f"expected a mapping of spec features, got {feats!r}")
        features.update({str(k): v for k, v in feats.items()})
    if "measurer" in raw:
        measurer = raw["measurer"]
    elif measurer is None:
        measurer = defaults.get("measurer")
    if measurer in ("", "none", "null"):
        measurer = None
    if measurer is not None:
        measurer = str(measurer).strip()
        from fleetnas.measure import measurer_kinds, split_spec

        kind = split_spec(measurer)[0]
        if kind not in measurer_kinds():
            raise where.error(
                "measurer",
                f"unknown measurer kind {kind!r} in {measurer!r}; expected one of "
                f"{', '.join(measurer_kinds())} or none",
            )
    if measurer is not None and not features and cat in (None, ""):
        local = _local_record(measurer, where)
        if local is not None:
            features = dict(local.features)
            if not raw.get("family"):
                family = local.family
            desc = desc or local.description
    proxy = raw.get("proxy") if raw.get("proxy") not in (None, "") else defaults.get("proxy")
    desc = str(raw.get("description") or desc or "")
    try:
        device = Device(name, family, features, measurer=measurer, description=desc)
    except InputError as exc:
        raise where.error(None, str(exc)) from None
    budgets = _budgets(raw.get("budgets", defaults.get("budgets")), where)
    return FleetDevice(device, budgets, None if proxy is None else str(proxy))


def _local_record(measurer: str, where: _Where) -> Device | None:
    """The record of a local runtime setting (``onnxruntime:...``, ``litert:...``,
    ``openvino:...``, ``torch:...``) on this machine, measurement protocol included, whose
    features a fleet device without features takes."""
    from fleetnas.measure import split_spec
    from fleetnas.measure.settings import RUNTIMES, local_device

    if split_spec(measurer)[0] not in RUNTIMES:
        return None
    try:
        return local_device(measurer)
    except FleetnasError as exc:
        raise where.error("measurer", str(exc)) from None


def _defaults(raw: Any, path: str) -> dict[str, Any]:
    if raw is None:
        return {}
    where = _Where(path, "defaults")
    if not isinstance(raw, dict):
        raise where.error(None, f"expected a mapping, got {raw!r}")
    extra = sorted(set(map(str, raw)) - _DEFAULT_KEYS)
    if extra:
        raise where.error(
            None,
            f"unknown key(s) {', '.join(extra)}; expected some of "
            f"{', '.join(sorted(_DEFAULT_KEYS))}",
        )
    if "budgets" in raw:
        _budgets(raw["budgets"], where)
    return dict(raw)


def _read_yaml(text: str, path: str) -> Fleet:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"fleet file {path}: not valid YAML{at}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("devices"), list):
        raise InputError(f"fleet file {path}: expected a mapping with a 'devices' list")
    extra = sorted(set(map(str, raw)) - _TOP_KEYS)
    if extra:
        raise InputError(
            f"fleet file {path}: unknown top-level key(s) {', '.join(extra)}; expected some of "
            f"{', '.join(sorted(_TOP_KEYS))}"
        )
    defaults = _defaults(raw.get("defaults"), path)
    devices = []
    for i, item in enumerate(raw["devices"]):
        where = _Where(path, f"devices[{i}]")
        if not isinstance(item, dict):
            raise where.error(None, f"expected a mapping with at least 'name', got {item!r}")
        devices.append(_device(item, defaults, where))
    name = str(raw.get("name") or Path(path).stem)
    try:
        return Fleet(name, devices, source=path, description=str(raw.get("description") or ""))
    except InputError as exc:
        raise InputError(f"fleet file {path}: {exc}") from None


def _cell_value(text: str) -> Any:
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def _read_csv(text: str, path: str) -> Fleet:
    reader = csv.DictReader(io.StringIO(text))
    cols = reader.fieldnames or []
    if "name" not in cols:
        raise InputError(f"fleet file {path}: the CSV header needs a 'name' column, got {cols}")
    known = {*_CSV_COLUMNS, *_BUDGET_COLUMNS}
    extra = [c for c in cols if c not in known and not c.startswith(FEATURE_PREFIX)]
    if extra:
        raise InputError(
            f"fleet file {path}: unknown column(s) {', '.join(extra)}; expected "
            f"{', '.join((*_CSV_COLUMNS, *_BUDGET_COLUMNS))} and {FEATURE_PREFIX}<key> columns"
        )
    devices = []
    for row_no, row in enumerate(reader, start=2):
        where = _Where(path, f"row {row_no}")
        if None in row:
            raise where.error(None, "more cells than header columns")
        raw: dict[str, Any] = {
            k: v.strip() for k, v in row.items() if k in _CSV_COLUMNS and v and v.strip()
        }
        feats = {
            k[len(FEATURE_PREFIX) :]: _cell_value(v)
            for k, v in row.items()
            if k.startswith(FEATURE_PREFIX) and v is not None and v.strip()
        }
        if feats:
            raw["features"] = feats
        if "measurer" not in raw and "catalog" not in raw:
            raw["measurer"] = None
        raw["budgets"] = _csv_budgets(row, where, raw.get("name"))
        devices.append(_device(raw, {}, where))
    name = Path(path).stem
    try:
        return Fleet(name, devices, source=path)
    except InputError as exc:
        raise InputError(f"fleet file {path}: {exc}") from None


def _csv_budgets(row: dict[str, str], where: _Where, name: Any) -> list[dict[str, Any]] | None:
    where.device = name if isinstance(name, str) else None
    split = {
        k: [p.strip() for p in (row.get(k) or "").split(";")] if (row.get(k) or "").strip() else []
        for k in _BUDGET_COLUMNS
    }
    n = max((len(v) for v in split.values()), default=0)
    if n == 0:
        return None
    out = []
    for k, vals in split.items():
        if len(vals) not in (0, 1, n):
            raise where.error(
                k, f"{len(vals)} ';'-separated values but another budget column has {n}"
            )
    for i in range(n):
        item = {}
        for k, vals in split.items():
            if vals:
                item[k] = vals[i] if len(vals) == n else vals[0]
        if "label" in item and n > 1 and len(split["label"]) == 1:
            item.pop("label")
        out.append(item)
    return out


def read_fleet(path: str | os.PathLike[str]) -> Fleet:
    """Read and validate a fleet file (YAML or CSV by suffix)."""
    p = Path(path)
    shown = str(path)
    if not p.is_file():
        raise InputError(f"fleet file {shown} does not exist (expected a .yaml or .csv file)")
    suffix = p.suffix.lower()
    if suffix not in (*YAML_SUFFIXES, *CSV_SUFFIXES):
        raise InputError(f"fleet file {shown}: expected a .yaml, .yml or .csv file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"fleet file {shown} cannot be read: {exc}") from None
    return _read_yaml(text, shown) if suffix in YAML_SUFFIXES else _read_csv(text, shown)


# ---- writing ---------------------------------------------------------------------------------
def _device_dict(d: FleetDevice) -> dict[str, Any]:
    out: dict[str, Any] = {"name": d.device.name, "family": d.device.family}
    if d.device.features:
        out["features"] = dict(d.device.features)
    out["measurer"] = d.device.measurer
    if d.proxy:
        out["proxy"] = d.proxy
    if d.device.description:
        out["description"] = d.device.description
    out["budgets"] = [b.to_json() for b in d.budgets]
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple | dict):
        raise InputError(
            f"CSV fleets hold scalar features only, got {value!r}; write the fleet as YAML"
        )
    return str(value)


def _csv_text(fleet: Fleet) -> str:
    feature_keys = sorted({k for d in fleet for k in d.device.features})
    header = [*_CSV_COLUMNS, *_BUDGET_COLUMNS, *(FEATURE_PREFIX + k for k in feature_keys)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for d in fleet:
        dev = d.device
        lat = ";".join("" if b.latency is None else str(b.latency.to_json()) for b in d.budgets)
        en = ";".join("" if b.energy is None else str(b.energy.to_json()) for b in d.budgets)
        if not any(b.energy for b in d.budgets):
            en = ""
        labels = ";".join(b.label for b in d.budgets)
        row = [dev.name, dev.family, "", dev.measurer or "", d.proxy or "", dev.description]
        row += [lat, en, labels]
        row += [_cell(dev.features.get(k)) for k in feature_keys]
        w.writerow(row)
    return buf.getvalue()


def write_fleet(fleet: Fleet, path: str | os.PathLike[str]) -> Path:
    """Write ``fleet`` as YAML or CSV (by suffix), atomically (a temporary file renamed)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in YAML_SUFFIXES:
        doc = {"name": fleet.name, "devices": [_device_dict(d) for d in fleet]}
        if fleet.description:
            doc["description"] = fleet.description
        text = yaml.safe_dump(doc, sort_keys=False, width=100)
    elif suffix in CSV_SUFFIXES:
        text = _csv_text(fleet)
    else:
        raise InputError(f"fleet file {path}: expected a .yaml, .yml or .csv suffix to write")
    return atomic_write_text(p, text)


# ---- generated fleets ------------------------------------------------------------------------
def parse_budgets(texts: Iterable[str | float], what: str = "--budget") -> tuple[Budget, ...]:
    """Budgets from short strings (``p50``, ``20``, ``20ms+90mJ`` is not accepted: one latency
    limit each); used by generators and the CLI."""
    where = _Where(what, "")
    return _budgets(list(texts), where)


def sim_fleet(
    n: int,
    seed: int = 0,
    budgets: Sequence[str | float] = ("p25", "p50", "p75"),
    families: Sequence[str] | dict[str, float] | None = None,
    prefix: str = "sim",
    name: str | None = None,
) -> Fleet:
    """``n`` simulated devices (:func:`fleetnas.sim.generate_fleet`), each measured through its
    ``sim:`` spec and given ``budgets`` (default: the 25th/50th/75th percentile of its
    predicted latency)."""
    from fleetnas.sim import generate_fleet

    bs = parse_budgets(budgets)
    devices = [FleetDevice(s.device, bs) for s in generate_fleet(n, seed, families, prefix=prefix)]
    return Fleet(name or f"sim-{n}-seed{seed}", devices, source="generated")


__all__ = [
    "Budget",
    "Fleet",
    "FleetDevice",
    "Limit",
    "entry_key",
    "parse_budgets",
    "parse_limit",
    "read_fleet",
    "sim_fleet",
    "write_fleet",
]
