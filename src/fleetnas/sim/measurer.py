"""The ``sim`` measurer: a simulated device answering like a real one.

``get_measurer("sim:family=mobile_cpu,peak_gflops=...,noise=0.05,seed=1")`` or
``get_measurer("sim", device=dev)`` for a device whose ``measurer`` is a ``sim:`` spec. Values
are the analytical model's latency (ms) and energy (mJ) per batch, optionally with multiplicative
log-normal noise per repeat (explicit seed), stored with ``is_estimate`` true and method
:data:`~fleetnas.sim.simulate.METHOD`. Cost is counted as if the device were real: one
measurement per architecture, and ``repeats`` times its simulated latency as (simulated)
device seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.devices import Device
from fleetnas.errors import InputError
from fleetnas.measure.base import MEASURERS, MeasurementCost, Measurer, MeasureResult
from fleetnas.measure.spec import parse_options
from fleetnas.sim.device import MEASURER_OPTIONS, SimDevice, model_from_device
from fleetnas.sim.features import layer_table
from fleetnas.sim.model import DeviceModel
from fleetnas.sim.precision import is_compressed, simulate_compressed
from fleetnas.sim.simulate import METHOD, simulate_table

if TYPE_CHECKING:
    from fleetnas.spaces import SearchSpace
    from fleetnas.store import Store

_UNITS = {"latency": "ms", "energy": "mJ"}


class SimMeasurer(Measurer):
    """Measures on a simulated device (see the module docstring).

    ``noise`` is the standard deviation of the log of each repeat's multiplicative error;
    the reported value is the median over ``repeats`` repeats.
    """

    method = METHOD
    metrics = ("latency", "energy")
    estimated_metrics = frozenset(metrics)

    def __init__(
        self,
        device: Device,
        model: DeviceModel,
        store: Store | None = None,
        reuse: bool = True,
        noise: float = 0.0,
        seed: int | None = None,
        repeats: int = 1,
    ) -> None:
        super().__init__(device, store=store, reuse=reuse)
        if not (noise >= 0 and np.isfinite(noise)):
            raise InputError(f"sim measurer: noise must be a finite number >= 0, got {noise!r}")
        if int(repeats) < 1:
            raise InputError(f"sim measurer: repeats must be >= 1, got {repeats!r}")
        self.model = model
        self.noise = float(noise)
        self.seed = seed
        self.repeats = int(repeats)
        self._rng = np.random.default_rng(seed)

    def _measure(
        self, space: SearchSpace, archs: np.ndarray, metrics: Sequence[str]
    ) -> MeasureResult:
        want_e = "energy" in metrics
        if is_compressed(space):
            lat1, en1 = simulate_compressed(self.model, space, archs, energy=want_e)
            lat, en = lat1[None, :], None if en1 is None else en1[None, :]
        else:
            lat, en = simulate_table(self.model, layer_table(space, archs), energy=want_e)
        truth = {"latency": lat[0], "energy": en[0] if en is not None else None}
        n = len(archs)
        values: dict[str, np.ndarray] = {}
        stats: dict[str, dict[str, np.ndarray]] = {}
        for m in metrics:
            t = truth[m]
            reps = np.full(n, self.repeats, dtype=np.int64)
            if self.noise > 0:
                draws = t[:, None] * np.exp(self._rng.normal(0.0, self.noise, (n, self.repeats)))
                q25, q50, q75, q90 = np.percentile(draws, [25, 50, 75, 90], axis=1)
                values[m] = q50
                stats[m] = {"p90": q90, "iqr": q75 - q25, "min": draws.min(axis=1), "n": reps}
            else:
                values[m] = t.copy()
                stats[m] = {"n": reps}
        seconds = float(lat[0].sum()) * 1e-3 * self.repeats
        return MeasureResult(
            archs=archs,
            values=values,
            units={m: _UNITS[m] for m in metrics},
            cost=MeasurementCost(measurements=n, device_seconds=seconds),
            is_estimate=dict.fromkeys(metrics, True),
            stats=stats,
        )

    def identity(self) -> dict[str, Any]:
        """The simulator's model, noise, seed and repeats: two simulated devices of one name
        but another model (another fleet seed) or noise never share stored values."""
        return {
            **super().identity(),
            "model": self.model.to_dict(),
            "noise": self.noise,
            "seed": self.seed,
            "repeats": self.repeats,
        }

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "simulated": True,
            "model": self.model.to_dict(),
            "noise": self.noise,
            "seed": self.seed,
            "repeats": self.repeats,
        }


@MEASURERS.register("sim")
def _sim_factory(
    arg: str = "",
    store: Store | None = None,
    device: Device | None = None,
    reuse: bool = True,
    **options: Any,
) -> SimMeasurer:
    opts = parse_options(arg, "sim measurer spec") if arg else {}
    spec_options = {k: opts.pop(k) for k in MEASURER_OPTIONS if k in opts}
    unknown = sorted(set(options) - set(MEASURER_OPTIONS))
    if unknown:
        raise InputError(
            f"sim measurer: unknown option(s) {', '.join(unknown)}; "
            f"expected {', '.join(MEASURER_OPTIONS)}"
        )
    merged = {**spec_options, **options}
    if opts:
        model = DeviceModel.from_dict(opts)
    elif device is not None:
        model = model_from_device(device)
    else:
        raise InputError(
            "sim measurer needs a model: 'sim:family=...,peak_gflops=...' or a device whose "
            "measurer is such a spec"
        )
    if device is None:
        digest = hashlib.sha1(model.to_spec().encode()).hexdigest()[:10]
        device = SimDevice(str(merged.get("name") or f"sim-{digest}"), model).device
    try:
        noise = float(merged.get("noise", 0.0))
        seed = None if merged.get("seed") in (None, "") else int(merged["seed"])
        repeats = int(merged.get("repeats", 1))
    except (TypeError, ValueError) as exc:
        raise InputError(f"sim measurer: bad noise/seed/repeats option ({exc})") from None
    return SimMeasurer(
        device, model, store=store, reuse=reuse, noise=noise, seed=seed, repeats=repeats
    )
