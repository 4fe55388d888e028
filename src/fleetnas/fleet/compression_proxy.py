"""Per-design latency estimates of compressed designs: proxies that know precision (issue 17).

One calibration factor per precision cannot place single compressed designs: on this machine's
ONNX Runtime and LiteRT stacks the measured int8 / fp32 ratio of one NB201 design spreads over
more than an order of magnitude (``benchmarks/results/compression_plan.md``), so the designs on
which int8 is fast are exactly the ones a factor misses. Per precision group of a device's
candidates the planner therefore picks, from the group's probes, the proxy whose per-design
order fits best:

- the simulator's model of a device of the target's family (always there, the default);
- every *other* device's measured table at that precision: a ``ptable`` stack of the fleet
  (fp32 and int8) or a HELP ``table`` device (fp32), when it holds every candidate of the group.

A proxy is never the target itself nor shares any table of it. With ``held_out_family`` (the
held-out benchmarks' protocol) it never shares the target's runtime family either
(:func:`runtime_of`: the device's ``runtime``/``stack`` feature, else its measurer kind; a
``ptable``/``table`` device without one is a family of its own), so a stack's twins at another
thread count are left out too; a user's plan keeps them, as they are often the best proxies.

Matching (Approach 1's proxy matching, per precision group of the joint architecture x policy
space): per proxy the scale is the geometric mean of measured / proxy over the group's probes
and the fit is the root mean square of the log residual; the smallest residual wins, the
simulator on a tie (one probe says nothing of order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TableSource:
    """One fleet device whose stored tables may serve as proxies: ``tables`` maps a precision
    to the stored device holding it."""

    device: str
    runtime: str
    tables: tuple[tuple[str, str], ...]

    @property
    def precisions(self) -> dict[str, str]:
        return dict(self.tables)


@dataclass
class GroupMatch:
    """The proxy chosen for one precision group: its name, the scale (measured / proxy), the
    log residual on the probes, and every option's residual (``scores``)."""

    precision: str
    proxy: str
    scale: float
    residual: float
    probes: int
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "proxy": self.proxy,
            "scale": round(self.scale, 6),
            "residual": round(self.residual, 6) if np.isfinite(self.residual) else None,
            "probes": self.probes,
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
        }


def runtime_of(device: Any) -> str:
    """The runtime family a device is measured with (module docstring)."""
    from fleetnas.proxy.pool import stack_of

    kind = stack_of(device)
    if kind in ("", "ptable", "table"):
        return f"device:{device.name}"
    return kind


def table_sources(devices: Sequence[Any]) -> list[TableSource]:
    """The fleet's devices that replay stored tables (``ptable:``, ``table:``)."""
    from fleetnas.measure.spec import parse_options

    out = []
    for d in devices:
        spec = d.measurer or ""
        if spec.startswith("table:"):
            tables = {"fp32": spec.partition(":")[2]}
        elif spec.startswith("ptable:"):
            tables = parse_options(spec.partition(":")[2], "ptable measurer spec")
        else:
            continue
        out.append(TableSource(d.name, runtime_of(d), tuple(sorted(tables.items()))))
    return out


def proxies_for(
    target: Any, sources: Sequence[TableSource], held_out_family: bool = False
) -> list[TableSource]:
    """The sources allowed as proxies of ``target``: not itself, no table in common with it,
    and with ``held_out_family`` not of its runtime family."""
    own = {s.device: s for s in table_sources([target])}
    mine = set(own[target.name].precisions.values()) if target.name in own else set()
    run = runtime_of(target) if held_out_family else None
    return [
        s
        for s in sources
        if s.device != target.name and s.runtime != run and not mine & set(s.precisions.values())
    ]


def table_options(
    store: Any,
    space: Any,
    base: np.ndarray,
    precision: str,
    sources: Sequence[TableSource],
) -> dict[str, np.ndarray]:
    """``{"table:<device>": latency per design}`` of the sources that hold ``precision``
    values of every base design in ``base`` (``n x D`` of ``space.base``)."""
    from fleetnas.errors import MeasurementError, UnknownNameError
    from fleetnas.measure.precision_table import PrecisionTableMeasurer

    out: dict[str, np.ndarray] = {}
    for s in sources:
        dev = s.precisions.get(precision)
        if dev is None:
            continue
        try:
            m = PrecisionTableMeasurer(store.get_device(dev), store, {precision: dev})
            vals = m.stored(space, precision, base)
        except (UnknownNameError, MeasurementError):  # nothing stored: no proxy
            continue
        if len(vals) and np.all(np.isfinite(vals) & (vals > 0)):
            out[f"table:{s.device}"] = vals
    return out


def match(
    precision: str, measured: np.ndarray, options: dict[str, np.ndarray]
) -> GroupMatch | None:
    """The option (``name -> proxy values on the probes``, the simulator first) that explains
    ``measured`` best (module docstring); ``None`` when no probe was measured."""
    good = np.isfinite(measured) & (measured > 0)
    if not good.any():
        return None
    best: GroupMatch | None = None
    scores: dict[str, float] = {}
    for name, vals in options.items():
        v = np.asarray(vals, dtype=float)
        ok = good & np.isfinite(v) & (v > 0)
        if ok.sum() < good.sum():
            continue
        r = np.log(measured[ok]) - np.log(v[ok])
        res = float(np.sqrt(np.mean((r - r.mean()) ** 2)))
        scores[name] = res
        if best is None or res < best.residual - 1e-12:
            best = GroupMatch(precision, name, float(np.exp(r.mean())), res, int(ok.sum()))
    if best is not None:
        best.scores = scores
    return best


__all__ = [
    "GroupMatch",
    "TableSource",
    "match",
    "proxies_for",
    "runtime_of",
    "table_options",
    "table_sources",
]
