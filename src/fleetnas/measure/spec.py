"""Measurer spec strings and the factory ``get_measurer``.

A spec is ``KIND`` or ``KIND:ARG``: ``table:DEVICE``, ``onnxruntime:threads=1,batch=1``,
``litert:threads=1,precision=int8``, ``openvino:threads=1,precision=fp32,hint=latency``,
``torch:threads=2``, ``agent:http://host:port``, ``sim:...``, ``lut:NAME|FILE`` (an operator
look-up table, :mod:`fleetnas.measure.lut_table`), ``predictor:NAME`` (a device's own fitted
latency predictor, :mod:`fleetnas.measure.fitted_predictor`). ``KIND`` names a factory registered
in :data:`~fleetnas.measure.base.MEASURERS` with the signature::

    factory(arg: str, store: Store | None = None, device: Device | None = None, **options)
        -> Measurer

``arg`` is everything after the first colon ("" when absent); ``device`` is the device to bind
when the caller already has its record; ``options`` are measurer-specific keywords (e.g.
``token`` for ``agent``, ``repeats`` for local runtimes). Kinds implemented in higher packages
register themselves when their module is imported; :data:`PLUGINS` names those modules so that
``get_measurer("sim:...")`` works without importing them first.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from fleetnas.errors import InputError, unknown
from fleetnas.measure.base import MEASURERS, Measurer

if TYPE_CHECKING:
    from fleetnas.devices import Device
    from fleetnas.store import Store

#: Modules that register measurer kinds when imported (kind -> module).
PLUGINS: dict[str, str] = {
    "table": "fleetnas.measure.table",
    "ptable": "fleetnas.measure.precision_table",
    "bitfusion": "fleetnas.measure.bitfusion",
    "lut": "fleetnas.measure.lut_table",
    "predictor": "fleetnas.measure.fitted_predictor",
    "onnxruntime": "fleetnas.measure.local",
    "torch": "fleetnas.measure.local",
    "litert": "fleetnas.measure.local",
    "openvino": "fleetnas.measure.local",
    "executorch": "fleetnas.measure.local",
    "agent": "fleetnas.measure.remote",
    "sim": "fleetnas.sim",
}
T = TypeVar("T")


def split_spec(spec: str) -> tuple[str, str]:
    """``"kind:arg"`` -> ``("kind", "arg")``; the argument may itself contain colons."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(
            f"measurer spec must be a non-empty string like 'onnxruntime:threads=1', got {spec!r}"
        )
    kind, _, arg = spec.strip().partition(":")
    return kind.strip(), arg.strip()


def parse_options(arg: str, what: str) -> dict[str, str]:
    """``"a=1,b=x"`` -> ``{"a": "1", "b": "x"}``; :class:`InputError` naming ``what``."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in arg.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise InputError(f"{what}: expected key=value pairs separated by commas, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def parse_into(cls: type[T], opts: Mapping[str, Any], what: str) -> T:
    """``opts`` (spec options, strings as written) as a ``cls`` dataclass, converted to its
    fields' types and checked by pydantic. An unknown option or a value of the wrong type is one
    line naming ``what``, the option, its value and what is expected; ``cls``'s own checks
    (``__post_init__``) keep their messages."""
    from pydantic import ValidationError

    from fleetnas.schema import first_error

    known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for key in opts:
        if key not in known:
            raise InputError(f"unknown {what} option {key!r}; expected one of {', '.join(known)}")
    try:
        return _adapter(cls).validate_python(dict(opts))
    except ValidationError as exc:
        loc, msg = first_error(exc, dict(opts), got=False)
        if not loc or loc[0] not in opts:
            raise InputError(msg) from None
        key = loc[0]
        raise InputError(
            f"{what} option {key}={opts[key]!r} is not a valid value ({msg})"
        ) from None


@cache
def _adapter(cls: type) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(cls)


def get_measurer(
    spec: str, store: Store | None = None, device: Device | None = None, **options: Any
) -> Measurer:
    """The measurer described by ``spec`` (see the module docstring), bound to its device."""
    kind, arg = split_spec(spec)
    if kind not in MEASURERS and kind in PLUGINS:
        try:
            importlib.import_module(PLUGINS[kind])
        except ModuleNotFoundError as exc:
            if not PLUGINS[kind].startswith(str(exc.name)):
                raise
    if kind not in MEASURERS:
        raise unknown("measurer", kind, measurer_kinds())
    return MEASURERS.create(kind, arg=arg, store=store, device=device, **options)


def measurer_for(device: Device, store: Store | None = None, **options: Any) -> Measurer:
    """The measurer named by ``device.measurer``, bound to ``device`` itself."""
    if not device.measurer:
        raise InputError(
            f"device {device.name!r} has no measurer spec; it cannot be measured (give one such "
            "as 'table:NAME', 'onnxruntime:...', 'agent:URL' or 'sim:...')"
        )
    return get_measurer(device.measurer, store=store, device=device, **options)


def measurer_kinds() -> list[str]:
    """Every measurer kind that :func:`get_measurer` accepts."""
    return sorted(set(MEASURERS.names()) | set(PLUGINS))
