"""Device records -> the features Approach 2 reads (probe latencies, spec features).

A device's probe embedding is its latency on the optimizer's ``K`` probe designs: taken from the
store when measured before (statistic ``median``, else ``mean`` as HELP stores), otherwise,
when allowed, measured now through the device's own measurer (``K`` counted measurements, once
per device: the values are stored). A replayed device (``table:NAME``, a measurer that never
reuses stored values) always pays for its probes through its measurer, as the fleet planner
charges it, so a replay costs what measuring the real device would. Spec features come from
the record (:func:`~fleetnas.l2o.features.spec_features`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fleetnas.devices import Device
from fleetnas.errors import InputError, UnknownNameError
from fleetnas.l2o.features import DeviceSet, spec_features
from fleetnas.spaces import SearchSpace

if TYPE_CHECKING:
    from fleetnas.store import Store

STATISTICS = ("median", "mean")


def stored_values(
    store: Store, space: SearchSpace, device: str, archs: np.ndarray, metric: str = "latency"
) -> np.ndarray:
    """``n`` stored values of ``archs`` on ``device`` (NaN where none), trying the statistics
    ``median`` then ``mean``."""
    out = np.full(len(archs), np.nan)
    for stat in STATISTICS:
        try:
            found, vals = store.get_measurements(space, device, metric, stat, archs=archs)
        except UnknownNameError:
            return out
        lookup = {row.tobytes(): v for row, v in zip(found, vals, strict=True)}
        got = np.array([lookup.get(a.tobytes(), np.nan) for a in archs], dtype=float)
        out = np.where(np.isfinite(out), out, got)
        if np.all(np.isfinite(out)):
            break
    return out


@dataclass
class Embedding:
    """Features of ``m`` devices and the real measurements taken to get them (per device)."""

    devices: DeviceSet
    measurements: np.ndarray


def embed_devices(
    space: SearchSpace,
    devices: Sequence[Device],
    probes: np.ndarray | None,
    store: Store | None = None,
    measure: bool = False,
    need_probes: bool = True,
) -> Embedding:
    """Probe latencies and spec features of ``devices``.

    Probe values missing from the store are measured through ``measurer_for(device, store)``
    when ``measure`` is true (a replayed device's always are, and charged); otherwise a device
    without them raises :class:`InputError` naming it (``need_probes=False`` skips probes
    entirely, for spec-only optimizers).
    """
    from fleetnas.measure import measurer_for

    spent = np.zeros(len(devices), dtype=np.int64)
    probe_rows = None
    if need_probes:
        if probes is None:
            raise InputError("this optimizer has no probe designs; give spec features instead")
        p = space.check(probes)
        rows, measurers = [], {}
        for i, dev in enumerate(devices):
            m = None
            if dev.measurer and (measure or dev.measurer_kind == "table"):
                # one measurer per device: a replay charges each design once per session
                if dev.name not in measurers:
                    measurers[dev.name] = measurer_for(dev, store)
                m = measurers[dev.name]
            vals = (
                np.full(len(p), np.nan)
                if store is None or (m is not None and not m.reuse)
                else stored_values(store, space, dev.name, p)
            )
            missing = ~np.isfinite(vals)
            if missing.any():
                if m is None:
                    raise InputError(
                        f"device {dev.name!r} has no stored latency for {int(missing.sum())} of "
                        f"the {len(p)} probe designs; measure them (--measure) or give --features"
                    )
                res = m.measure(space, p[missing], ("latency",))
                vals[missing] = res["latency"]
                spent[i] = res.cost.measurements
            rows.append(vals)
        probe_rows = np.asarray(rows, dtype=float).reshape(len(devices), -1)
    spec = spec_features(list(devices))
    return Embedding(DeviceSet([d.name for d in devices], probes=probe_rows, spec=spec), spent)


__all__ = ["STATISTICS", "Embedding", "embed_devices", "stored_values"]
