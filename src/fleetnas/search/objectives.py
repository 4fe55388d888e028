"""Objectives of the per-device design problem (paper eqs. 1-8), built from plain callables.

A metric callable maps an ``n x D`` int array of architectures to an ``n`` float array
(``f(archs) -> values``). Every objective exposes ``score(archs) -> n`` floats, *lower is better*,
computed from one batched call per metric.

Normalization
-------------
Raw metrics live on incomparable scales: accuracy in % or as a fraction, latency in ms that differ
by 100x between a GPU and a phone, energy in mJ. So that one trade-off value ``t`` (eqs. 6-7) or
``λ`` (eqs. 4/8) means the same on every device and in every space, each metric ``m`` is mapped
affinely by a :class:`Scale` ``(lo, hi)``::

    m' = (m - lo) / (hi - lo)

where ``lo`` and ``hi`` are the ``q`` and ``1 - q`` quantiles (``q = 0.05`` by default) of that
metric over a fixed *reference set* of designs: the whole space when it can be enumerated,
otherwise ``n`` designs sampled with a fixed seed (:meth:`Normalization.fit`). The latency and
energy scales are computed per device on the same reference set, the accuracy scale once per
space. Consequences:

- a normalized metric is about 0 for the cheap/poor end of the space and about 1 for the costly/
  accurate end, on every device;
- the optimum of eqs. 4, 6, 7, 8 is invariant to any positive affine change of a device's latency
  or energy (unit change, constant overhead, a uniformly faster device), because the change is
  absorbed by that device's ``(lo, hi)``;
- ``t = 0.5`` in eq. (6) trades one reference spread of accuracy for one reference spread of
  latency, so ``t`` in ``[0, 1]`` sweeps the same part of the trade-off curve on every device.

Offsets do not move any argmin; they only shift objective values (e.g. the loss of Method 2).
Budgets of the constrained problem (eqs. 1-3) stay in raw units.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError

if TYPE_CHECKING:
    import torch

    from fleetnas.spaces.base import SearchSpace

MetricFn = Callable[[np.ndarray], np.ndarray]

#: Added to the relative constraint violation so every infeasible design scores after every
#: feasible one in :class:`ConstrainedObjective` (feasible scores are ``-accuracy'``, about -1..0).
INFEASIBLE_OFFSET = 1.0e6

METRICS = ("accuracy", "latency", "energy")


# ---- normalization ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    """Affine map ``x -> (x - lo) / (hi - lo)``; ``lo``/``hi`` may be per-row arrays."""

    lo: float = 0.0
    hi: float = 1.0

    def __post_init__(self) -> None:
        span = np.asarray(self.hi, dtype=float) - np.asarray(self.lo, dtype=float)
        if not np.all(np.isfinite(span)) or np.any(span <= 0):
            raise InputError(
                f"a normalization scale needs hi > lo (finite), got lo={self.lo}, hi={self.hi}"
            )

    @property
    def span(self) -> Any:
        return np.asarray(self.hi, dtype=float) - np.asarray(self.lo, dtype=float)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=float) - self.lo) / self.span

    def invert(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=float) * self.span + self.lo

    @classmethod
    def from_values(cls, values: np.ndarray, q: float = 0.05) -> Scale:
        """``(lo, hi)`` = the ``q`` and ``1 - q`` quantiles of ``values`` (finite ones)."""
        v = np.asarray(values, dtype=float).ravel()
        v = v[np.isfinite(v)]
        if v.size == 0:
            raise InputError("cannot normalize a metric without finite reference values")
        if not 0.0 <= q < 0.5:
            raise InputError(f"normalization quantile q must be in [0, 0.5), got {q}")
        lo, hi = np.quantile(v, [q, 1.0 - q])
        if hi <= lo:  # (nearly) constant metric: fall back to the full range, then to 1
            lo, hi = float(v.min()), float(v.max())
            if hi <= lo:
                hi = lo + max(abs(lo), 1.0)
        return cls(float(lo), float(hi))

    def to_dict(self) -> dict[str, Any]:
        return {"lo": np.asarray(self.lo).tolist(), "hi": np.asarray(self.hi).tolist()}


@dataclass(frozen=True)
class Normalization:
    """Scales of accuracy, latency and (optionally) energy; see the module docstring."""

    accuracy: Scale = field(default_factory=Scale)
    latency: Scale = field(default_factory=Scale)
    energy: Scale | None = None

    @classmethod
    def from_samples(
        cls,
        accuracy: np.ndarray,
        latency: np.ndarray,
        energy: np.ndarray | None = None,
        q: float = 0.05,
    ) -> Normalization:
        """Quantile scales from the metrics of a reference set of designs."""
        return cls(
            Scale.from_values(accuracy, q),
            Scale.from_values(latency, q),
            None if energy is None else Scale.from_values(energy, q),
        )

    @classmethod
    def fit(
        cls,
        space: SearchSpace,
        accuracy: MetricFn,
        latency: MetricFn,
        energy: MetricFn | None = None,
        n: int = 4096,
        seed: int = 0,
        q: float = 0.05,
    ) -> Normalization:
        """Scales from :func:`reference_set` ``(space, n, seed)``, one batched call per metric."""
        ref = reference_set(space, n=n, seed=seed)
        return cls.from_samples(
            _call(accuracy, ref, "accuracy"),
            _call(latency, ref, "latency"),
            None if energy is None else _call(energy, ref, "energy"),
            q=q,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy.to_dict(),
            "latency": self.latency.to_dict(),
            "energy": None if self.energy is None else self.energy.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        try:
            e = d.get("energy")
            return cls(
                Scale(**d["accuracy"]),
                Scale(**d["latency"]),
                None if e is None else Scale(**e),
            )
        except (KeyError, TypeError) as exc:
            raise InputError(
                f"a normalization needs keys accuracy/latency (and optional energy), each "
                f"{{lo, hi}}; got {d!r}"
            ) from exc


def reference_set(space: SearchSpace, n: int = 4096, seed: int = 0) -> np.ndarray:
    """The designs normalization is computed on: the whole space if ``size <= n``, else ``n``
    canonical designs sampled with ``seed`` (``m x D`` int array)."""
    if space.size <= n:
        return space.canonicalize(space.enumerate())
    return space.sample(n, rng=seed)


# ---- evaluated metrics ------------------------------------------------------------------------
@dataclass
class Metrics:
    """Raw metric values of a batch (``n`` float arrays); a metric not computed is ``None``;
    ``accuracy`` may hold NaN for designs whose accuracy was skipped (infeasible ones)."""

    accuracy: np.ndarray | None = None
    latency: np.ndarray | None = None
    energy: np.ndarray | None = None

    def __len__(self) -> int:
        for v in (self.accuracy, self.latency, self.energy):
            if v is not None:
                return len(v)
        return 0

    def take(self, idx: np.ndarray | int) -> Metrics:
        idx = np.atleast_1d(idx)
        return Metrics(*(None if v is None else v[idx] for v in self.as_tuple()))

    def as_tuple(self) -> tuple[np.ndarray | None, ...]:
        return (self.accuracy, self.latency, self.energy)

    @staticmethod
    def concat(parts: Sequence[Metrics]) -> Metrics:
        out = []
        for k in range(3):
            vals = [p.as_tuple()[k] for p in parts]
            out.append(None if any(v is None for v in vals) else np.concatenate(vals))
        return Metrics(*out)

    def row(self, i: int) -> dict[str, float]:
        return {
            name: float(v[i])
            for name, v in zip(METRICS, self.as_tuple(), strict=True)
            if v is not None
        }


def _call(fn: MetricFn, archs: np.ndarray, name: str) -> np.ndarray:
    if len(archs) == 0:
        return np.zeros(0)
    out = np.asarray(fn(archs), dtype=float).reshape(-1)
    if out.shape[0] != archs.shape[0]:
        raise InputError(
            f"the {name} function returned {out.shape[0]} values for {archs.shape[0]} designs; "
            f"expected one float per design"
        )
    return out


# ---- objectives -------------------------------------------------------------------------------
@dataclass
class Objective:
    """Base of the objective family: metric callables + :class:`Normalization`.

    Subclasses define :meth:`score_metrics` (``Metrics -> n`` floats, lower is better). The
    number of designs passed to each callable is counted in :attr:`calls`.
    """

    accuracy: MetricFn
    latency: MetricFn | None = None
    energy: MetricFn | None = None
    norm: Normalization = field(default_factory=Normalization)
    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METRICS, 0))

    #: Which metrics the score needs, in the order they are evaluated.
    needs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in self.needs:
            if getattr(self, name) is None:
                raise InputError(f"{type(self).__name__} needs the {name} function")
        if "energy" in self.needs and self.norm.energy is None and self._uses_energy_scale():
            raise InputError(
                f"{type(self).__name__} uses energy but the normalization has no energy scale"
            )

    def _uses_energy_scale(self) -> bool:
        return True

    # evaluation
    def evaluate(self, archs: np.ndarray) -> Metrics:
        """Metrics needed by this objective, one batched call per metric."""
        out = Metrics()
        for name in self.needs:
            setattr(out, name, self._metric(name, archs))
        return out

    def _metric(self, name: str, archs: np.ndarray) -> np.ndarray:
        fn = getattr(self, name)
        self.calls[name] += len(archs)
        return _call(fn, archs, name)

    def score(self, archs: np.ndarray) -> np.ndarray:
        """``n`` floats, lower is better."""
        return self.score_metrics(self.evaluate(archs))

    def score_metrics(self, m: Metrics) -> np.ndarray:
        raise NotImplementedError

    def feasible(self, m: Metrics) -> np.ndarray:
        """``n`` bool array; unconstrained objectives accept every design."""
        return np.ones(len(m), dtype=bool)

    # normalized metrics
    def acc_n(self, m: Metrics) -> np.ndarray:
        return self.norm.accuracy.apply(m.accuracy)

    def lat_n(self, m: Metrics) -> np.ndarray:
        return self.norm.latency.apply(m.latency)

    def energy_n(self, m: Metrics) -> np.ndarray:
        if self.norm.energy is None:
            raise InputError("the normalization has no energy scale")
        return self.norm.energy.apply(m.energy)

    def describe(self) -> dict[str, Any]:
        return {"kind": type(self).__name__, "norm": self.norm.to_dict()}


@dataclass
class ConstrainedObjective(Objective):
    """Eqs. (1)-(3): maximize accuracy s.t. latency <= ``latency_budget`` and energy <=
    ``energy_budget`` (raw units; ``None`` = no constraint).

    Score: ``-accuracy'`` for feasible designs; infeasible designs score
    ``INFEASIBLE_OFFSET + relative violation`` (sum over constraints of ``max(0, m / budget - 1)``),
    so every feasible design ranks first and among infeasible ones the closer ranks first.
    With ``lazy_accuracy`` the accuracy callable only sees feasible designs (the cost metrics are
    computed first), which is how a cheap LUT and an expensive accuracy predictor are combined.
    """

    latency_budget: float | None = None
    energy_budget: float | None = None
    lazy_accuracy: bool = True

    def __post_init__(self) -> None:
        if self.latency_budget is None and self.energy_budget is None:
            raise InputError("a constrained objective needs a latency and/or an energy budget")
        needs = []
        if self.latency_budget is not None:
            needs.append("latency")
        if self.energy_budget is not None:
            needs.append("energy")
        self.needs = (*needs, "accuracy")
        for b, name in ((self.latency_budget, "latency"), (self.energy_budget, "energy")):
            if b is not None and not b > 0:
                raise InputError(f"the {name} budget must be a positive number, got {b}")
        super().__post_init__()

    def _uses_energy_scale(self) -> bool:
        return False

    def evaluate(self, archs: np.ndarray) -> Metrics:
        out = Metrics()
        for name in self.needs[:-1]:
            setattr(out, name, self._metric(name, archs))
        if self.lazy_accuracy:
            ok = self.feasible(out)
            acc = np.full(len(archs), np.nan)
            if ok.any():
                acc[ok] = self._metric("accuracy", archs[ok])
            out.accuracy = acc
        else:
            out.accuracy = self._metric("accuracy", archs)
        return out

    def violation(self, m: Metrics) -> np.ndarray:
        """``n`` floats: sum of relative budget excesses (0 for feasible designs)."""
        v = np.zeros(len(m))
        if self.latency_budget is not None:
            v += np.maximum(0.0, np.asarray(m.latency) / self.latency_budget - 1.0)
        if self.energy_budget is not None:
            v += np.maximum(0.0, np.asarray(m.energy) / self.energy_budget - 1.0)
        return v

    def feasible(self, m: Metrics) -> np.ndarray:
        ok = np.ones(len(m), dtype=bool)
        if self.latency_budget is not None:
            ok &= np.asarray(m.latency) <= self.latency_budget
        if self.energy_budget is not None:
            ok &= np.asarray(m.energy) <= self.energy_budget
        return ok

    def score_metrics(self, m: Metrics) -> np.ndarray:
        v = self.violation(m)
        ok = v <= 0.0
        s = INFEASIBLE_OFFSET + v
        s[ok] = -self.acc_n(m)[ok]
        return s

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "latency_budget": self.latency_budget,
            "energy_budget": self.energy_budget,
        }


@dataclass
class WeightedObjective(Objective):
    """Eq. (4) / eq. (8): ``-acc' + λ1 * energy' + λ2 * latency'`` with ``lam = (λ1, λ2)``
    (non-negative; λ1 is ignored and energy not evaluated when it is 0 and no energy callable
    is given)."""

    lam: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        lam = tuple(float(x) for x in np.asarray(self.lam, dtype=float).reshape(-1))
        if len(lam) != 2 or min(lam) < 0 or not all(np.isfinite(lam)):
            raise InputError(
                f"λ must be two non-negative numbers (λ1 energy, λ2 latency), got {self.lam!r}"
            )
        self.lam = (lam[0], lam[1])
        needs = ["accuracy"]
        if lam[1] > 0 or self.latency is not None:
            needs.append("latency")
        if lam[0] > 0 or self.energy is not None:
            needs.append("energy")
        self.needs = tuple(needs)
        super().__post_init__()

    def _uses_energy_scale(self) -> bool:
        return self.lam[0] > 0

    def score_metrics(self, m: Metrics) -> np.ndarray:
        s = -self.acc_n(m)
        if self.lam[1] > 0:
            s = s + self.lam[1] * self.lat_n(m)
        if self.lam[0] > 0:
            s = s + self.lam[0] * self.energy_n(m)
        return s

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "lam": list(self.lam)}


@dataclass
class ProxyObjective(Objective):
    """Eq. (6) with scalar ``t``: ``-(1 - t) acc' + t lat'``; eq. (7) with ``t = (t1, t2)``:
    ``-(1 - t1 - t2) acc' + t1 lat' + t2 energy'`` (``t1, t2 >= 0``, ``t1 + t2 <= 1``)."""

    t: float | tuple[float, float] = 0.0

    def __post_init__(self) -> None:
        tt = np.asarray(self.t, dtype=float).reshape(-1)
        if tt.size == 1:
            check_t(tt)
            self.t = float(tt[0])
            self.needs = ("accuracy", "latency")
        else:
            check_t_pair(tt)
            self.t = (float(tt[0]), float(tt[1]))
            self.needs = ("accuracy", "latency", "energy")
        super().__post_init__()

    def score_metrics(self, m: Metrics) -> np.ndarray:
        if isinstance(self.t, tuple):
            t1, t2 = self.t
            return -(1 - t1 - t2) * self.acc_n(m) + t1 * self.lat_n(m) + t2 * self.energy_n(m)
        return -(1 - self.t) * self.acc_n(m) + self.t * self.lat_n(m)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "t": self.t}


def check_t(t: float | np.ndarray) -> np.ndarray:
    """Validate ``t`` of eq. (6) (any shape, each in [0, 1]); returns it as a float array."""
    t = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(t > 1):
        raise InputError(f"t of eq. (6) must lie in [0, 1], got {t}")
    return t


def check_t_pair(t: np.ndarray | Sequence[float]) -> np.ndarray:
    """Validate ``t = (t1, t2)`` of eq. (7) (``2`` or ``m x 2``: t1, t2 >= 0, t1 + t2 <= 1)."""
    t = np.asarray(t, dtype=float)
    if t.shape[-1:] != (2,) or t.ndim > 2:
        raise InputError(
            f"t of eq. (7) must be (t1, t2) pairs of shape (2,) or (m, 2), got shape {t.shape}"
        )
    if not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(t.sum(axis=-1) > 1 + 1e-12):
        raise InputError(f"t = (t1, t2) of eq. (7) needs t1, t2 >= 0 and t1 + t2 <= 1, got {t}")
    return t


# ---- conversions ------------------------------------------------------------------------------
def t_to_lambda(t: float | np.ndarray) -> np.ndarray:
    """λ2 of eq. (4) with the same argmin as eq. (6) at ``t``: ``t / (1 - t)`` (inf at t = 1)."""
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(t < 1, t / np.maximum(1 - t, 0.0), np.inf)


def lambda_to_t(lam2: float | np.ndarray) -> np.ndarray:
    """Inverse of :func:`t_to_lambda`: ``λ2 / (1 + λ2)``."""
    lam2 = np.asarray(lam2, dtype=float)
    return np.where(np.isinf(lam2), 1.0, lam2 / (1.0 + lam2))


# ---- differentiable form (Method 2) -----------------------------------------------------------
def weighted_objective_torch(
    acc: torch.Tensor,
    lat: torch.Tensor,
    lam: torch.Tensor | Sequence[float],
    norm: Normalization,
    energy: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. (8) on tensors, differentiable: ``-acc' + λ1 energy' + λ2 lat'`` per row.

    ``acc``, ``lat``, ``energy``: ``n`` tensors of raw predictions; ``lam``: ``2`` or ``n x 2``
    (λ1 energy, λ2 latency). ``norm``'s ``lo``/``hi`` may be scalars or ``n`` arrays (one scale
    per row's device). Returns an ``n`` tensor (average it for the loss of eq. 10).
    """
    import torch

    def nrm(x: torch.Tensor, s: Scale) -> torch.Tensor:
        lo = torch.as_tensor(np.asarray(s.lo, dtype=np.float32), device=x.device, dtype=x.dtype)
        span = torch.as_tensor(np.asarray(s.span, dtype=np.float32), device=x.device, dtype=x.dtype)
        return (x - lo) / span

    lam_t = torch.as_tensor(lam, dtype=acc.dtype, device=acc.device)
    lam_t = lam_t.reshape(-1, 2) if lam_t.ndim == 2 else lam_t.reshape(1, 2)
    out = -nrm(acc, norm.accuracy) + lam_t[:, 1] * nrm(lat, norm.latency)
    if energy is not None:
        if norm.energy is None:
            raise InputError("energy given but the normalization has no energy scale")
        out = out + lam_t[:, 0] * nrm(energy, norm.energy)
    return out
