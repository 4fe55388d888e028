"""Fleet files: the devices to plan for, how each can be measured, and its budgets.

A YAML (``.yaml``/``.yml``) or CSV (``.csv``) file, by suffix; the format, relative budgets
(``pNN``) and the error messages are described in ``docs/fleet-file.md``. The file's shape is a
set of pydantic models (``_FleetIn``, ``_DeviceIn``, ``_BudgetIn``); every mistake raises one
:class:`~fleetnas.errors.InputError` line naming the file, the key path (``devices[3].budgets[0]``
or, in a CSV, the row), the device, the value and what is expected.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from fleetnas.devices import FAMILIES, Device
from fleetnas.errors import FleetnasError, InputError
from fleetnas.fileio import atomic_write_text
from fleetnas.schema import Loc, first_error, loc_text

#: Suffixes of the two formats.
YAML_SUFFIXES = (".yaml", ".yml")
CSV_SUFFIXES = (".csv",)
#: Prefix of spec-feature columns in CSV fleets.
FEATURE_PREFIX = "feature."
_CSV_COLUMNS = ("name", "family", "catalog", "measurer", "proxy", "description")
_BUDGET_COLUMNS = ("latency_ms", "energy_mj", "label")
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
    """A named list of devices with budgets (file formats: ``docs/fleet-file.md``)."""

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


# ---- parsing: pydantic models of what a file may hold, their first error as one line ------------
def _limit(value: Any) -> Limit | None:
    """A number (> 0) or ``pNN``; ``None``/empty means not given."""
    if not (text := "" if value is None else str(value).strip().lower()):
        return None
    if m := _QUANTILE.match(text):
        if 0 <= (q := float(m.group(1))) <= 100:
            return Limit(quantile=q)
        raise ValueError("percentile must be between p0 and p100")
    with suppress(ValueError):
        if not isinstance(value, bool) and math.isfinite(v := float(text)) and v > 0:
            return Limit(value=v)
    raise ValueError("expected a number > 0 or a percentile like p50")


def _label(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    if text and (isinstance(value, bool) or not _LABEL.match(text)):
        raise ValueError("labels use letters, digits and _.+- only")
    return text or None


def _name(value: str) -> str:
    if not value or "@" in value:
        raise ValueError("expected a non-empty device name without '@'")
    return value


def _spec(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected a measurer spec such as table:NAME, onnxruntime:..., agent:URL")
    if (text := value.strip()).lower() in ("", "none", "null"):
        return None
    from fleetnas.measure import measurer_kinds, split_spec

    if (kind := split_spec(text)[0]) not in measurer_kinds():
        raise ValueError(
            f"unknown measurer kind {kind!r}; expected one of {', '.join(measurer_kinds())} or none"
        )
    return text


def _catalog(value: Any) -> Device | None:
    if value is None or value == "":
        return None
    from fleetnas.devices.catalog import get_catalog_device

    return get_catalog_device(str(value).strip())  # its UnknownNameError is a ValueError


def _blank(value: Any) -> Any:
    return None if value == "" else value


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", coerce_numbers_to_str=True, str_strip_whitespace=True, frozen=True
    )


_Text = Annotated[str | None, BeforeValidator(_blank)]
_Family = Annotated[Literal[FAMILIES] | None, BeforeValidator(_blank)]
_Spec = Annotated[str | None, PlainValidator(_spec)]


class _BudgetIn(_Model):
    latency_ms: Annotated[Limit | None, PlainValidator(_limit)] = None
    energy_mj: Annotated[Limit | None, PlainValidator(_limit)] = None
    label: Annotated[str | None, PlainValidator(_label)] = None

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, value: Any) -> Any:
        """A bare value in a budget list is a latency limit."""
        return value if isinstance(value, dict) else {"latency_ms": value}

    @model_validator(mode="after")
    def _some_limit(self) -> _BudgetIn:
        if self.latency_ms is None and self.energy_mj is None:
            raise ValueError("a budget needs latency_ms and/or energy_mj")
        return self

    def budget(self) -> Budget:
        b = Budget(self.latency_ms, self.energy_mj)
        return replace(b, label=self.label or b.default_label())


def _unique(items: list[_BudgetIn] | None) -> tuple[Budget, ...] | None:
    if items is None:
        return None
    if not items:
        raise ValueError("the list is empty; give at least one budget")
    out = tuple(b.budget() for b in items)
    labels = [b.label for b in out]
    if dup := sorted({x for x in labels if labels.count(x) > 1}):
        raise ValueError(f"label(s) {', '.join(dup)} repeat; give each a unique label")
    return out


_Budgets = Annotated[
    list[_BudgetIn] | None,
    BeforeValidator(lambda v: v if v is None or isinstance(v, list) else [v]),
    AfterValidator(_unique),
]


class _DefaultsIn(_Model):
    budgets: _Budgets = None
    proxy: _Text = None
    measurer: _Spec = None
    family: _Family = None


class _DeviceIn(_Model):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: Annotated[str, AfterValidator(_name)]
    family: _Family = None
    catalog: Annotated[Device | None, PlainValidator(_catalog)] = None
    measurer: _Spec = None
    proxy: _Text = None
    description: _Text = None
    features: Annotated[
        dict[str, Any] | None,
        BeforeValidator(lambda v: {str(k): x for k, x in v.items()} if isinstance(v, dict) else v),
    ] = None
    budgets: _Budgets = None


class _FleetIn(_Model):
    name: _Text = None
    description: _Text = None
    defaults: _DefaultsIn = _DefaultsIn()
    devices: list[_DeviceIn]


def _fail(
    path: str, raw: Any, loc: Loc, message: str, row: Callable[[int], str] | None = None
) -> InputError:
    """``fleet file F: devices[3].budgets[0] (device 'x'): message``; in a CSV (``row`` naming
    the row of a device), ``fleet file F: row 5 (device 'x'): budgets[0]: message``."""
    entry = raw["devices"][loc[1]] if loc[:1] == ("devices",) and len(loc) > 1 else None
    name = entry.get("name") if isinstance(entry, dict) else None
    at = loc_text(loc) if row is None or len(loc) < 2 else row(loc[1])
    at += f" (device {name!r})" if isinstance(name, str) and name.strip() else ""
    key = loc_text(loc[2:]) + ": " if row is not None and len(loc) > 2 else ""
    return InputError(f"fleet file {path}: {at + ': ' if at else ''}{key}{message}")


def _known(loc: Loc) -> list[str]:
    """The keys of the entry at ``loc``."""
    if loc == ("defaults",):
        model: type[_Model] = _DefaultsIn
    elif len(loc) >= 2 and loc[-2] == "budgets":
        model = _BudgetIn
    else:
        model = _DeviceIn if loc[-2:-1] == ("devices",) else _FleetIn
    return list(model.model_fields)


class _Unresolved(Exception):
    """A device that validates but cannot be built: the key to blame and why."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key


def _resolve(d: _DeviceIn, defaults: _DefaultsIn) -> FleetDevice:
    """The device record: the catalog's, with the file's keys over it and ``defaults`` under it;
    a local runtime setting without features takes this machine's."""
    base = d.catalog
    family = d.family or (base.family if base else None) or defaults.family or "other"
    features = {**(base.features if base else {}), **(d.features or {})}
    if "measurer" in d.model_fields_set:
        measurer = d.measurer
    else:
        measurer = base.measurer if base is not None and base.measurer else defaults.measurer
    desc = d.description or (base.description if base else "")
    if measurer is not None and not features and base is None:
        from fleetnas.measure import split_spec
        from fleetnas.measure.settings import RUNTIMES, local_device

        if split_spec(measurer)[0] in RUNTIMES:
            try:
                local = local_device(measurer)
            except FleetnasError as exc:
                raise _Unresolved("measurer", str(exc)) from None
            features, desc = dict(local.features), desc or local.description
            family = family if d.family else local.family
    budgets = d.budgets if d.budgets is not None else defaults.budgets
    if budgets is None:
        raise _Unresolved("budgets", "no budgets given (and none in defaults)")
    try:
        device = Device(d.name, family, features, measurer=measurer, description=desc or "")
    except InputError as exc:
        raise _Unresolved(None, str(exc)) from None
    proxy = d.proxy or defaults.proxy
    return FleetDevice(device, budgets, proxy)  # type: ignore[arg-type]


def _parse(raw: dict[str, Any], path: str, row: Callable[[int], str] | None = None) -> Fleet:
    """The fleet of a YAML document (or of CSV rows as ``devices``, ``row`` naming a row)."""
    try:
        doc = _FleetIn.model_validate(raw)
    except ValidationError as exc:
        raise _fail(path, raw, *first_error(exc, raw, _known), row) from None
    devices = []
    for i, d in enumerate(doc.devices):
        try:
            devices.append(_resolve(d, doc.defaults))
        except _Unresolved as exc:
            loc = ("devices", i, *([exc.key] if exc.key else []))
            raise _fail(path, raw, loc, str(exc), row) from None
    name, desc = doc.name or Path(path).stem, doc.description or ""
    try:
        return Fleet(name, devices, source=path, description=desc)
    except InputError as exc:
        raise InputError(f"fleet file {path}: {exc}") from None


def _read_yaml(text: str, path: str) -> Fleet:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"fleet file {path}: not valid YAML{at}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("devices"), list):
        raise InputError(f"fleet file {path}: expected a mapping with a 'devices' list")
    return _parse(raw, path)


def _cell_value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        with suppress(ValueError):
            return kind(text)
    return text


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
    devices: list[dict[str, Any]] = []
    doc, where = {"devices": devices}, lambda i: f"row {i + 2}"
    for row in reader:
        cells = {k: v.strip() for k, v in row.items() if isinstance(v, str) and v.strip()}
        devices.append({k: v for k, v in cells.items() if k in _CSV_COLUMNS})
        loc, raw = ("devices", len(devices) - 1), devices[-1]
        if None in row:
            raise _fail(path, doc, loc, "more cells than header columns", where)
        n = len(FEATURE_PREFIX)
        if feats := {k[n:]: _cell_value(v) for k, v in cells.items() if k.startswith("feature.")}:
            raw["features"] = feats
        if "measurer" not in raw and "catalog" not in raw:
            raw["measurer"] = None
        try:
            raw["budgets"] = _csv_budgets(row)
        except _Unresolved as exc:
            raise _fail(path, doc, (*loc, str(exc.key)), str(exc), where) from None
    return _parse(doc, path, where)


def _csv_budgets(row: dict[str, str]) -> list[dict[str, Any]] | None:
    """One budget per ``;``-separated value; a single value applies to every budget."""
    split = {k: [p.strip() for p in (row.get(k) or "").split(";")] for k in _BUDGET_COLUMNS}
    split = {k: v for k, v in split.items() if v != [""]}
    n = max((len(v) for v in split.values()), default=0)
    if n == 0:
        return None
    for k, vals in split.items():
        if len(vals) not in (1, n):
            raise _Unresolved(
                k, f"{len(vals)} ';'-separated values but another budget column has {n}"
            )
    items = [{k: v[i] if len(v) == n else v[0] for k, v in split.items()} for i in range(n)]
    if n > 1 and len(split.get("label", ())) == 1:
        for item in items:
            item.pop("label")
    return items


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
    dev = d.device
    out = {"name": dev.name, "family": dev.family, "features": dict(dev.features) or None}
    out |= {"measurer": dev.measurer, "proxy": d.proxy, "description": dev.description or None}
    out = {k: v for k, v in out.items() if v is not None or k == "measurer"}
    return {**out, "budgets": [b.to_json() for b in d.budgets]}


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
def parse_budgets(texts: Iterable[str | float], what: str = "--budgets") -> tuple[Budget, ...]:
    """Budgets from short strings (``p50``, ``20``, ``20ms+90mJ`` is not accepted: one latency
    limit each); used by generators and the CLI."""
    raw = list(texts)
    try:
        return TypeAdapter(_Budgets).validate_python(raw) or ()
    except ValidationError as exc:
        loc, msg = first_error(exc, raw, _known)
        raise InputError(f"{loc_text(loc, what)}: {msg}") from None


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
    "read_fleet",
    "sim_fleet",
    "write_fleet",
]
