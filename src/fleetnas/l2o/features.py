"""Device descriptions for Approach 2: probe embeddings, spec features, and the optimizer's input.

A device ``d`` enters Approach 2 twice: the device-aware performance networks read it (eq. 8,
``Latency_ΘL(x; d)``) and the optimizer network reads it (``x̂_Θ(d, λ)``). Both may use

- ``probes``: the device's latency on ``K`` fixed probe designs (HELP's reference designs by
  default), ``K`` positive numbers in ms;
- ``spec``: numeric spec features (:data:`SPEC_KEYS`) plus a one-hot of the hardware kind
  (:data:`KINDS`), built the same way for catalog devices and for simulated ones
  (:meth:`~fleetnas.sim.DeviceModel.to_features` uses the catalog's keys).

:class:`DeviceSet` holds both (either may be absent) for ``m`` devices. :class:`FeatureSpec`
turns a :class:`DeviceSet` into the optimizer network's standardized input: centered log probe
latencies (``log p - mean(log p)``: the device's speed level cancels, since the objective's
per-device normalization makes the optimum invariant to it), ``sign(s) log(1 + |s|)`` of the spec
numbers, each column standardized over the training devices; and the trade-off weights as
``[t_i, log(1 + λ_i)]`` per weight, ``t = λ / (1 + λ)`` being eq. (6)'s ``t``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fleetnas.devices import Device
from fleetnas.devices.catalog import NUMERIC_KEYS, numeric_feature_matrix
from fleetnas.errors import InputError

#: Numeric spec features shared by catalog and simulated devices: the catalog's
#: :data:`~fleetnas.devices.catalog.NUMERIC_KEYS` without ``release_year`` (simulated devices
#: have none).
SPEC_KEYS: tuple[str, ...] = tuple(k for k in NUMERIC_KEYS if k != "release_year")
#: Hardware kinds one-hot encoded after the numeric spec features.
KINDS: tuple[str, ...] = ("gpu", "cpu", "mobile", "npu", "asic", "fpga", "mcu", "other")
FEATURE_MODES = ("probes", "spec", "both")


def spec_features(devices: Sequence[Device]) -> np.ndarray:
    """``m x S`` spec matrix (``S = len(SPEC_KEYS) + len(KINDS)``) of device records.

    A missing numeric feature is imputed by the median of the same family among ``devices``,
    else of all of them (as :func:`fleetnas.devices.catalog.numeric_feature_matrix` does).
    """
    if not devices:
        return np.zeros((0, len(SPEC_KEYS) + len(KINDS)))
    num = numeric_feature_matrix(devices, SPEC_KEYS, impute="family_median")
    kind = np.zeros((len(devices), len(KINDS)))
    for i, d in enumerate(devices):
        k = str(d.features.get("kind", "other"))
        kind[i, KINDS.index(k) if k in KINDS else KINDS.index("other")] = 1.0
    return np.c_[num, kind]


@dataclass
class DeviceSet:
    """``m`` devices: names, probe latencies (``m x K``), spec features (``m x S``), and which
    are synthetic. Either feature block may be ``None``."""

    names: list[str]
    probes: np.ndarray | None = None
    spec: np.ndarray | None = None
    synthetic: np.ndarray | None = None
    energy_probes: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.names = [str(n) for n in self.names]
        m = len(self.names)
        for key in ("probes", "spec", "energy_probes"):
            v = getattr(self, key)
            if v is None:
                continue
            a = np.asarray(v, dtype=float)
            if a.ndim == 1:
                a = a[None, :]
            if a.ndim != 2 or a.shape[0] != m:
                raise InputError(f"device set: {key} must be an {m} x k array, got {a.shape}")
            if not np.all(np.isfinite(a)):
                r, c = map(int, np.argwhere(~np.isfinite(a))[0])
                raise InputError(
                    f"device set: {key} of device {self.names[r]!r} has a missing value "
                    f"(column {c})"
                )
            if key != "spec" and np.any(a <= 0):
                r, c = map(int, np.argwhere(a <= 0)[0])
                raise InputError(
                    f"device set: probe value {c} of device {self.names[r]!r} is {a[r, c]:g}; "
                    "probe latencies must be positive"
                )
            setattr(self, key, a)
        syn = np.zeros(m, dtype=bool) if self.synthetic is None else np.asarray(self.synthetic)
        if syn.shape != (m,):
            raise InputError(f"device set: synthetic must have {m} flags, got {syn.shape}")
        self.synthetic = syn.astype(bool)

    def __len__(self) -> int:
        return len(self.names)

    def take(self, idx: np.ndarray | Sequence[int]) -> DeviceSet:
        """The devices at ``idx`` (repeats allowed: one row per query)."""
        i = np.asarray(idx, dtype=np.int64).reshape(-1)
        pick = lambda a: None if a is None else a[i]  # noqa: E731
        return DeviceSet(
            [self.names[j] for j in i],
            pick(self.probes),
            pick(self.spec),
            self.synthetic[i],  # type: ignore[index]
            pick(self.energy_probes),
        )

    @staticmethod
    def concat(parts: Sequence[DeviceSet]) -> DeviceSet:
        """Devices of ``parts`` in order; a block is kept only when every part has it."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return DeviceSet([])

        def cat(key: str) -> np.ndarray | None:
            vals = [getattr(p, key) for p in parts]
            if any(v is None for v in vals):
                return None
            widths = {v.shape[1] for v in vals}
            if len(widths) > 1:
                raise InputError(f"device sets disagree on the width of {key}: {sorted(widths)}")
            return np.concatenate(vals)

        return DeviceSet(
            [n for p in parts for n in p.names],
            cat("probes"),
            cat("spec"),
            np.concatenate([p.synthetic for p in parts]),  # type: ignore[misc]
            cat("energy_probes"),
        )

    def block(self, mode: str) -> np.ndarray:
        """Raw features of ``mode``: ``probes``, ``spec`` or ``both`` (``[probes ; spec]``)."""
        if mode not in FEATURE_MODES:
            raise InputError(
                f"feature mode must be one of {', '.join(FEATURE_MODES)}, got {mode!r}"
            )
        need = ("probes", "spec") if mode == "both" else (mode,)
        for key in need:
            if getattr(self, key) is None:
                raise InputError(
                    f"features {mode!r} need the devices' {key} "
                    + (
                        "(latencies of the K probe designs)"
                        if key == "probes"
                        else "(spec features)"
                    )
                )
        if mode == "probes":
            return self.probes  # type: ignore[return-value]
        if mode == "spec":
            return self.spec  # type: ignore[return-value]
        return np.c_[self.probes, self.spec]


def lambda_array(lam: Any, n_lambda: int, n: int | None = None) -> np.ndarray:
    """Trade-off weights as an ``n x 2`` array ``(λ1 energy, λ2 latency)``.

    A scalar or a 1-D array holds latency weights λ2 (λ1 = 0); pairs come as an ``n x 2``
    array. With ``n_lambda == 1`` (no energy term) a positive λ1 is an error. One row is
    repeated to ``n`` rows.
    """
    a = np.asarray(lam, dtype=float)
    if a.ndim <= 1:
        a = np.c_[np.zeros(a.size), a.reshape(-1)]
    if a.ndim != 2 or a.shape[1] != 2:
        raise InputError(
            f"λ must be a number, a list of latency weights or n x 2 (λ1, λ2) pairs, got shape "
            f"{a.shape}"
        )
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise InputError(
            f"λ must be finite and non-negative, got {a[~np.isfinite(a) | (a < 0)][:3]}"
        )
    if n_lambda == 1 and np.any(a[:, 0] > 0):
        raise InputError("λ1 (energy weight) > 0 but this optimizer has no energy term")
    if n is not None:
        if len(a) not in (1, n):
            raise InputError(f"got {len(a)} λ rows for {n} devices; give one or {n}")
        if len(a) == 1 and n != 1:
            a = np.repeat(a, n, axis=0)
    return a


def lambda_features(lam: np.ndarray, n_lambda: int) -> np.ndarray:
    """``n x 2 n_lambda`` network input: ``[t_i, log(1 + λ_i)]`` for the weights in use
    (latency only, or energy and latency)."""
    cols = [1] if n_lambda == 1 else [0, 1]
    lam_used = np.asarray(lam, dtype=float)[:, cols]
    return np.concatenate([lam_used / (1.0 + lam_used), np.log1p(lam_used)], axis=1)


@dataclass
class FeatureSpec:
    """How a :class:`DeviceSet` becomes the optimizer network's input (see the module doc).

    ``mode``: ``probes``, ``spec`` or ``both``; ``mean``/``std`` standardize the transformed
    device columns (fitted on the training devices by :meth:`fit`).
    """

    mode: str = "probes"
    n_lambda: int = 1
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    n_probes: int = 0

    def __post_init__(self) -> None:
        if self.mode not in FEATURE_MODES:
            raise InputError(
                f"feature mode must be one of {', '.join(FEATURE_MODES)}, got {self.mode!r}"
            )
        if self.n_lambda not in (1, 2):
            raise InputError(
                f"n_lambda must be 1 (latency) or 2 (energy, latency), got {self.n_lambda}"
            )

    def transform_raw(self, devices: DeviceSet) -> np.ndarray:
        """Unstandardized transformed device columns ``m x G``."""
        parts = []
        if self.mode in ("probes", "both"):
            lp = np.log(devices.block("probes"))
            parts.append(lp - lp.mean(axis=1, keepdims=True))
        if self.mode in ("spec", "both"):
            s = devices.block("spec")
            parts.append(np.sign(s) * np.log1p(np.abs(s)))
        return np.concatenate(parts, axis=1)

    def fit(self, devices: DeviceSet) -> FeatureSpec:
        x = self.transform_raw(devices)
        self.mean = x.mean(axis=0)
        sd = x.std(axis=0)
        self.std = np.where(sd > 1e-6, sd, 1.0)
        self.n_probes = devices.probes.shape[1] if devices.probes is not None else 0
        return self

    @property
    def n_device_features(self) -> int:
        if self.mean is None:
            raise InputError("the feature spec is not fitted")
        return int(self.mean.shape[0])

    @property
    def n_inputs(self) -> int:
        return self.n_device_features + 2 * self.n_lambda

    def device_inputs(self, devices: DeviceSet) -> np.ndarray:
        """``m x G`` standardized device columns (float32)."""
        if self.mean is None or self.std is None:
            raise InputError("the feature spec is not fitted")
        x = self.transform_raw(devices)
        if x.shape[1] != self.mean.shape[0]:
            raise InputError(
                f"the optimizer expects {self.mean.shape[0]} transformed device features "
                f"({self.mode}), got {x.shape[1]}"
            )
        return ((x - self.mean) / self.std).astype(np.float32)

    def inputs(self, devices: DeviceSet, lam: np.ndarray) -> np.ndarray:
        """``n x (G + 2 n_lambda)`` network input for paired device rows and λ rows."""
        d = self.device_inputs(devices)
        lf = lambda_features(lam, self.n_lambda).astype(np.float32)
        if len(d) != len(lf):
            raise InputError(f"{len(d)} device rows but {len(lf)} λ rows")
        return np.concatenate([d, lf], axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "n_lambda": self.n_lambda,
            "mean": None if self.mean is None else self.mean.tolist(),
            "std": None if self.std is None else self.std.tolist(),
            "n_probes": self.n_probes,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        try:
            return cls(
                mode=d["mode"],
                n_lambda=int(d["n_lambda"]),
                mean=None if d.get("mean") is None else np.asarray(d["mean"], dtype=float),
                std=None if d.get("std") is None else np.asarray(d["std"], dtype=float),
                n_probes=int(d.get("n_probes", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a feature spec: {exc}") from None


__all__ = [
    "FEATURE_MODES",
    "KINDS",
    "SPEC_KEYS",
    "DeviceSet",
    "FeatureSpec",
    "lambda_array",
    "lambda_features",
    "spec_features",
]
