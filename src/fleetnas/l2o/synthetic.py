"""Synthetic training devices ``D_S`` (paper Sec. 5.2) with the same features as real ones.

Three sources, each returning a :class:`~fleetnas.l2o.features.DeviceSet` whose probe values are
latencies of the same ``K`` probe designs and whose spec rows use the same keys as catalog
devices:

- :func:`simulated_devices`: the simulator's family generator
  (:func:`~fleetnas.sim.generate_fleet`); probes priced by the analytical model, spec features
  from :meth:`~fleetnas.sim.DeviceModel.to_features`;
- :func:`devices_around`: :func:`~fleetnas.sim.fleet_around` calibrated models of real devices
  (:func:`calibrated_models` fits them to the real devices' measurements);
- :func:`perturbed_devices` and :func:`interpolated_devices`: directly in feature space, by
  log-normal noise on a real device's probe latencies and positive spec numbers, or by
  geometric interpolation between two real devices (the hardware kind of the nearer one).

Synthetic devices only widen the inputs the optimizer network is trained on; their objective
is still the predicted one, read through their features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fleetnas.errors import InputError
from fleetnas.l2o.features import KINDS, SPEC_KEYS, DeviceSet, spec_features
from fleetnas.sim import (
    DeviceModel,
    SimDevice,
    calibrate,
    fleet_around,
    generate_fleet,
    latency_matrix,
)
from fleetnas.spaces import SearchSpace

#: Columns of the spec block that are positive numbers (perturbed in log space).
_N_NUM = len(SPEC_KEYS)


def _from_sim(space: SearchSpace, probes: np.ndarray, sims: Sequence[SimDevice]) -> DeviceSet:
    models = [s.model for s in sims]
    lat = latency_matrix(models, space, space.check(probes)) if sims else np.zeros((0, len(probes)))
    return DeviceSet(
        [s.name for s in sims],
        probes=lat,
        spec=spec_features([s.device for s in sims]),
        synthetic=np.ones(len(sims), dtype=bool),
    )


def simulated_devices(
    space: SearchSpace,
    probes: np.ndarray,
    n: int,
    rng: np.random.Generator | int | None = None,
    families: Sequence[str] | dict[str, float] | None = None,
) -> DeviceSet:
    """``n`` devices from the simulator's family priors (default mix) with their probe
    latencies (``K x D`` ``probes``) and spec features."""
    return _from_sim(space, probes, generate_fleet(n, rng=rng, families=families, prefix="syn"))


def calibrated_models(
    space: SearchSpace,
    archs: np.ndarray,
    latencies: np.ndarray,
    devices: Sequence[object],
    seed: int = 0,
    max_fit: int = 2000,
) -> list[DeviceModel]:
    """Simulator models fitted to real devices: ``latencies`` is ``n x m`` (ms) for ``archs``
    and the ``m`` catalog :class:`~fleetnas.devices.Device` records give family, batch size and
    specs."""
    lat = np.asarray(latencies, dtype=float)
    if lat.ndim != 2 or lat.shape[1] != len(devices):
        raise InputError(f"latencies must be n x m for {len(devices)} devices, got {lat.shape}")
    out = []
    for j, dev in enumerate(devices):
        feats = dict(getattr(dev, "features", {}))
        family = getattr(dev, "family", None)
        model, _ = calibrate(
            space,
            archs,
            lat[:, j],
            family_hint=family if family not in (None, "other") else None,
            batch_size=int(feats.get("batch_size", 1) or 1),
            precision=str(feats.get("precision", "fp32")),
            specs=feats,
            seed=seed,
            max_fit=max_fit,
        )
        out.append(model)
    return out


def devices_around(
    space: SearchSpace,
    probes: np.ndarray,
    models: Sequence[DeviceModel],
    n: int,
    rng: np.random.Generator | int | None = None,
    spread: float = 0.2,
) -> DeviceSet:
    """``n`` simulated devices drawn around (calibrated) real device models."""
    return _from_sim(
        space, probes, fleet_around(list(models), n, rng=rng, spread=spread, prefix="syn")
    )


def perturbed_devices(
    devices: DeviceSet, n: int, rng: np.random.Generator | int | None = None, sigma: float = 0.15
) -> DeviceSet:
    """``n`` copies of random real devices with each probe latency and each positive spec
    number multiplied by ``exp(N(0, sigma²))`` (kind one-hot kept)."""
    if len(devices) == 0:
        raise InputError("perturbing needs at least one device")
    rng = np.random.default_rng(rng)
    src = rng.integers(0, len(devices), n)
    base = devices.take(src)
    probes = None
    if base.probes is not None:
        probes = base.probes * np.exp(rng.normal(0, sigma, base.probes.shape))
    spec = None
    if base.spec is not None:
        spec = base.spec.copy()
        num = spec[:, :_N_NUM]
        pos = num > 0
        num[pos] = num[pos] * np.exp(rng.normal(0, sigma, int(pos.sum())))
        spec[:, :_N_NUM] = num
    return DeviceSet(
        [f"perturb-{devices.names[s]}-{i:05d}" for i, s in enumerate(src)],
        probes,
        spec,
        np.ones(n, dtype=bool),
    )


def interpolated_devices(
    devices: DeviceSet, n: int, rng: np.random.Generator | int | None = None
) -> DeviceSet:
    """``n`` devices between two random real ones: ``exp((1 - w) log a + w log b)`` for probe
    latencies and positive spec numbers, ``w ~ U(0, 1)``; the kind of the nearer one."""
    if len(devices) < 2:
        raise InputError("interpolating needs at least two devices")
    rng = np.random.default_rng(rng)
    i = rng.integers(0, len(devices), n)
    j = (i + rng.integers(1, len(devices), n)) % len(devices)
    w = rng.uniform(0, 1, n)[:, None]
    a, b = devices.take(i), devices.take(j)

    def geo(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = (1 - w) * x + w * y
        pos = (x > 0) & (y > 0)
        out[pos] = np.exp((1 - w) * np.log(np.where(pos, x, 1)) + w * np.log(np.where(pos, y, 1)))[
            pos
        ]
        return out

    probes = None if a.probes is None else geo(a.probes, b.probes)  # type: ignore[arg-type]
    spec = None
    if a.spec is not None and b.spec is not None:
        spec = geo(a.spec, b.spec)
        near_a = w[:, 0] < 0.5
        spec[:, _N_NUM:] = np.where(near_a[:, None], a.spec[:, _N_NUM:], b.spec[:, _N_NUM:])
    return DeviceSet(
        [
            f"interp-{devices.names[x]}-{devices.names[y]}-{k:05d}"
            for k, (x, y) in enumerate(zip(i, j, strict=True))
        ],
        probes,
        spec,
        np.ones(n, dtype=bool),
    )


__all__ = [
    "KINDS",
    "calibrated_models",
    "devices_around",
    "interpolated_devices",
    "perturbed_devices",
    "simulated_devices",
]
