"""Units and plausible ranges of imported metrics: one whitelist, one conversion per family.

A metric belongs to a family by its name's prefix (``latency``, ``latency_p90`` ->
``latency``). Every family has a canonical unit the store keeps (``ms``, ``mJ``, ``%``), the
units accepted on import with their factor to the canonical one, and the closed range a value
must fall into *after* conversion. A value outside it is a unit mix-up or a broken meter,
never a measurement: 1e308 ms is refused instead of stored. Metrics of no family (``flops``,
``memory``...) keep their unit, which must be a short token, and need only be finite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MetricFamily:
    """Canonical unit, accepted units -> factor to it, and the allowed range (canonical)."""

    name: str
    canonical: str
    factors: dict[str, float]
    low: float
    high: float
    low_open: bool
    what: str

    def expected_units(self) -> str:
        return ", ".join(self.factors)

    def expected_range(self) -> str:
        left = "(" if self.low_open else "["
        return f"{left}{self.low:g}, {self.high:g}] {self.canonical}"


#: One hour per inference: anything slower is a unit mix-up (seconds given as ms, ns as ms).
MAX_LATENCY_MS = 3_600_000.0
#: One kilojoule per inference.
MAX_ENERGY_MJ = 1_000_000.0

FAMILIES: tuple[MetricFamily, ...] = (
    MetricFamily(
        "latency",
        "ms",
        {"ms": 1.0, "s": 1e3, "us": 1e-3, "µs": 1e-3, "ns": 1e-6},
        0.0,
        MAX_LATENCY_MS,
        True,
        "a latency",
    ),
    MetricFamily(
        "energy",
        "mJ",
        {"mJ": 1.0, "J": 1e3, "uJ": 1e-3, "µJ": 1e-3},
        0.0,
        MAX_ENERGY_MJ,
        True,
        "an energy",
    ),
    MetricFamily(
        "accuracy",
        "%",
        {"%": 1.0, "fraction": 100.0},
        0.0,
        100.0,
        False,
        "an accuracy (declare unit % for 0-100 or fraction for 0-1)",
    ),
)
#: A unit of a metric of no family: letters, digits and a few signs, at most 16 characters.
_FREE_UNIT = re.compile(r"^[A-Za-z0-9%/_.\-µ]{0,16}$")
#: Finite values of metrics of no family must still be below this in magnitude.
MAX_FREE_VALUE = 1e15


def family_of(metric: str) -> MetricFamily | None:
    """The family whose name starts ``metric`` (``latency_p90`` -> latency), or None."""
    for fam in FAMILIES:
        if metric == fam.name or metric.startswith(fam.name + "_"):
            return fam
    return None


def check_unit(metric: str, unit: str) -> str | None:
    """None when ``unit`` is accepted for ``metric``, else the sentence saying what is."""
    fam = family_of(metric)
    if fam is None:
        if _FREE_UNIT.match(unit):
            return None
        return (
            f"unit {unit!r} of metric {metric!r} is not a short unit token; expected up to 16 "
            "letters, digits or % / _ . -"
        )
    if unit in fam.factors:
        return None
    return f"unit {unit!r} is not a {fam.name} unit; expected one of {fam.expected_units()}"


def to_canonical(metric: str, unit: str, values: np.ndarray) -> tuple[np.ndarray, str]:
    """``values`` in ``unit`` converted to the family's canonical unit (unchanged for a
    metric of no family). ``unit`` must have passed :func:`check_unit`."""
    fam = family_of(metric)
    if fam is None:
        return values, unit
    factor = fam.factors[unit]
    return (values if factor == 1.0 else values * factor), fam.canonical


def out_of_range(metric: str, values: np.ndarray) -> tuple[np.ndarray, str]:
    """Mask of canonical ``values`` outside ``metric``'s range, and what is expected."""
    fam = family_of(metric)
    if fam is None:
        return np.abs(values) > MAX_FREE_VALUE, f"|value| <= {MAX_FREE_VALUE:g}"
    low = values <= fam.low if fam.low_open else values < fam.low
    return low | (values > fam.high), f"{fam.what} in {fam.expected_range()}"


__all__ = [
    "FAMILIES",
    "MAX_ENERGY_MJ",
    "MAX_FREE_VALUE",
    "MAX_LATENCY_MS",
    "MetricFamily",
    "check_unit",
    "family_of",
    "out_of_range",
    "to_canonical",
]
