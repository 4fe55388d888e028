"""Fit a device model to a real device's measured latencies.

Least squares in log space over the log of the pricing parameters
(:data:`~fleetnas.sim.model.FIT_PARAMS`), with a robust (soft-L1) loss so the few degenerate
near-zero latencies of HW-NAS-Bench columns do not dominate, a weak prior pulling each parameter
toward the centre of its family's range (the data rarely pins down all eleven), and a few restarts
from random draws of the family prior. Energy parameters are not fitted (no public per-architecture
energy): they stay at the family prior's centre and are estimates.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares
from scipy.stats import spearmanr
from threadpoolctl import threadpool_limits

from fleetnas.errors import InputError
from fleetnas.sim.features import LayerTable, layer_table
from fleetnas.sim.generator import FAMILY_PRIORS, PRECISION_SPEEDUP, sample_model
from fleetnas.sim.model import FIT_PARAMS, DeviceModel, ModelArrays
from fleetnas.sim.simulate import simulate_table
from fleetnas.spaces import LAYER_KINDS, SearchSpace

#: Weight of the prior residuals relative to the data's mean squared log error.
PRIOR_WEIGHT = 1e-3
#: Log errors beyond this count linearly, not quadratically (soft-L1 loss).
ROBUST_SCALE = 0.3

_LOG_BOUNDS = {p: (np.log(1e-4), np.log(1.0)) for p in FIT_PARAMS if p.startswith("eff_")}
_LOG_BOUNDS.update(
    eff_mem=(np.log(1e-3), np.log(20.0)),
    peak_gflops=(np.log(1e-3), np.log(1e7)),
    mem_bandwidth_gbs=(np.log(1e-3), np.log(1e5)),
    overhead_us=(np.log(1e-3), np.log(1e5)),
    knee=(np.log(1e-2), np.log(1e8)),
    fixed_ms=(np.log(1e-5), np.log(1e4)),
    unfused_ops=(np.log(1e-4), np.log(4.0)),
    overlap=(np.log(1e-4), np.log(1.0)),
)


@dataclass(frozen=True)
class FitReport:
    """How well a calibrated model reproduces the measurements it was fitted to.

    ``spearman``, ``mape`` and ``mdape`` (mean and median absolute percentage error) are over
    all given architectures; ``rmse_log`` is the
    root mean squared error of ``log(predicted / measured)``; ``n_fit`` architectures entered
    the least squares.
    """

    spearman: float
    mape: float
    mdape: float
    rmse_log: float
    n: int
    n_fit: int
    restarts: int
    seconds: float
    family: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _prior(family: str, precision: str, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Centre and width (log space) of the parameters ``names`` for ``family``."""
    pri = FAMILY_PRIORS[family]
    lo, hi = {}, {}
    for p in names:
        if p == "peak_gflops":
            speed = PRECISION_SPEEDUP[precision]
            lo[p] = pri["cores"][0] * pri["clock_ghz"][0] * pri["flops_per_cycle"][0] * speed
            hi[p] = pri["cores"][1] * pri["clock_ghz"][1] * pri["flops_per_cycle"][1] * speed
        else:
            lo[p], hi[p] = pri[p]
    a = np.log([lo[p] for p in names])
    b = np.log([hi[p] for p in names])
    return (a + b) / 2, np.maximum((b - a) / 2, 0.5)


#: Forward-difference step of the Jacobian (log space).
_STEP = 1e-5

_ARRAY_OF = {
    "peak_gflops": "peak",
    "knee": "knee",
    "fixed_ms": "fixed_ms",
    "unfused_ops": "unfused",
    "overlap": "overlap",
}


def _theta_predictor(base: DeviceModel, names: Sequence[str], table: LayerTable):
    """``k x P`` log-parameter rows -> ``k x n`` latencies on ``table``, one batched pricing
    (the objective and all Jacobian columns of one least-squares step in one call)."""
    arrays = ModelArrays.of(base)
    index = {p: j for j, p in enumerate(names)}
    kinds = {f"eff_{k}": i for i, k in enumerate(LAYER_KINDS)}

    def run(thetas: np.ndarray) -> np.ndarray:
        k = len(thetas)
        vals = np.exp(thetas)
        cols = {f: np.repeat(v, k, axis=0) for f, v in vars(arrays).items()}

        def get(p: str) -> np.ndarray:
            return vals[:, index[p]] if p in index else np.full(k, float(getattr(base, p)))

        for p, field_name in _ARRAY_OF.items():
            if p in index:
                cols[field_name] = vals[:, index[p]]
        cols["overhead_ms"] = get("overhead_us") * 1e-3
        cols["bandwidth"] = get("mem_bandwidth_gbs") * get("eff_mem")
        for p, i in kinds.items():
            if p in index:
                cols["eff"][:, i] = vals[:, index[p]]
        lat = simulate_table(ModelArrays(**cols), table, energy=False)[0]
        return np.maximum(lat, 1e-12)

    return run


def _with_params(base: DeviceModel, names: Sequence[str], theta: np.ndarray) -> DeviceModel:
    return base.with_(**{p: float(np.exp(t)) for p, t in zip(names, theta, strict=True)})


def predict(model: DeviceModel, table: LayerTable) -> np.ndarray:
    """``n`` float array: latency (ms) of the table's architectures on ``model``."""
    return simulate_table(model, table, energy=False)[0][0]


def fit_report(predicted: np.ndarray, measured: np.ndarray, **extra: Any) -> dict[str, float]:
    """Spearman, MAPE and MdAPE (percent) and RMSE of log ratio of ``predicted`` vs ``measured``."""
    p = np.asarray(predicted, dtype=float)
    y = np.asarray(measured, dtype=float)
    rho = float(spearmanr(p, y).statistic) if len(y) > 1 else float("nan")
    return {
        "spearman": rho,
        "mape": float(np.mean(np.abs(p - y) / y) * 100.0),
        "mdape": float(np.median(np.abs(p - y) / y) * 100.0),
        "rmse_log": float(np.sqrt(np.mean(np.log(p / y) ** 2))),
        **extra,
    }


def _consistent_specs(model: DeviceModel, specs: dict[str, Any]) -> DeviceModel:
    """Descriptive specs from ``specs`` where given, else ones that agree with the fitted peak
    (clock and flops per cycle at the family's centre, cores to match)."""
    pri = FAMILY_PRIORS[model.family]
    mid = {
        k: float(np.sqrt(pri[k][0] * pri[k][1]))
        for k in ("clock_ghz", "flops_per_cycle", "memory_gb")
    }
    clock = float(specs.get("clock_ghz") or mid["clock_ghz"])
    per_core = clock * mid["flops_per_cycle"] * PRECISION_SPEEDUP[model.precision]
    cores = int(specs.get("cores") or max(1, round(model.peak_gflops / per_core)))
    memory = float(specs.get("memory_gb") or mid["memory_gb"])
    return model.with_(cores=cores, clock_ghz=clock, memory_gb=memory)


def prior_model(
    family: str,
    specs: dict[str, Any] | None = None,
    batch_size: int = 1,
    precision: str = "fp32",
) -> DeviceModel:
    """The uncalibrated model of a ``family`` device: every fitted parameter at the centre of
    the family's range, ``peak_gflops``/``mem_bandwidth_gbs`` (and the descriptive specs) from
    ``specs`` where given. The starting point of :func:`calibrate`, and a spec-only guess."""
    if family not in FAMILY_PRIORS:
        raise InputError(
            f"no prior for device family {family!r}; expected one of {', '.join(FAMILY_PRIORS)}"
        )
    specs = dict(specs or {})
    fixed = {k: float(specs[k]) for k in ("peak_gflops", "mem_bandwidth_gbs") if specs.get(k)}
    names = [p for p in FIT_PARAMS if p not in fixed]
    centre, _ = _prior(family, precision, names)
    pri = FAMILY_PRIORS[family]
    energy = {
        k: float(np.sqrt(pri[k][0] * pri[k][1]))
        for k in ("static_power_w", "energy_pj_per_flop", "energy_pj_per_byte")
    }
    model = DeviceModel(
        family=family,
        batch_size=int(batch_size),
        precision=precision,
        **fixed,
        **energy,
        **{p: float(np.exp(c)) for p, c in zip(names, centre, strict=True)},
    )
    return _consistent_specs(model, specs)


def calibrate(
    space: SearchSpace,
    archs: np.ndarray,
    latencies: np.ndarray | Sequence[float],
    family_hint: str | None = None,
    *,
    batch_size: int = 1,
    precision: str = "fp32",
    specs: dict[str, Any] | None = None,
    fix_specs: bool = True,
    restarts: int = 3,
    max_fit: int = 3000,
    seed: int | np.random.Generator | None = 0,
) -> tuple[DeviceModel, FitReport]:
    """Fit a :class:`DeviceModel` to measured ``latencies`` (``n`` floats, ms per batch of
    ``batch_size``) of ``archs`` (``n x D``).

    ``family_hint`` picks the prior (without it every family is tried and the best fit kept).
    ``specs`` are catalog features: ``cores``, ``clock_ghz`` and ``memory_gb`` are copied into
    the model, and with ``fix_specs`` its ``peak_gflops`` and ``mem_bandwidth_gbs`` are held at
    their spec values, so the efficiencies say what fraction of the spec the device reaches and
    the model's features are the real ones. At most ``max_fit`` architectures (a random subset)
    enter the least squares; the report covers all of them.
    """
    t0 = time.perf_counter()
    archs = space.check(archs)
    y = np.asarray(latencies, dtype=float).reshape(-1)
    if len(y) != len(archs):
        raise InputError(f"calibrate: {len(archs)} architectures but {len(y)} latencies")
    if len(y) < 3:
        raise InputError(f"calibrate needs at least 3 measured architectures, got {len(y)}")
    if not np.all(np.isfinite(y) & (y > 0)):
        raise InputError("calibrate: latencies must be finite and positive (milliseconds)")
    families = [family_hint] if family_hint else list(FAMILY_PRIORS)
    for fam in families:
        if fam not in FAMILY_PRIORS:
            raise InputError(
                f"calibrate: no prior for family {fam!r}; expected one of "
                f"{', '.join(FAMILY_PRIORS)}"
            )
    specs = dict(specs or {})
    fixed: dict[str, float] = {}
    if fix_specs:
        for key in ("peak_gflops", "mem_bandwidth_gbs"):
            value = specs.get(key)
            if value is not None:
                if not (isinstance(value, int | float) and value > 0):
                    raise InputError(
                        f"calibrate: spec {key} must be a positive number, got {value!r}"
                    )
                fixed[key] = float(value)
    names = [p for p in FIT_PARAMS if p not in fixed]
    lb = np.array([_LOG_BOUNDS[p][0] for p in names])
    ub = np.array([_LOG_BOUNDS[p][1] for p in names])

    rng = np.random.default_rng(seed)
    n_fit = min(len(y), max_fit)
    fit_idx = rng.choice(len(y), size=n_fit, replace=False) if n_fit < len(y) else np.arange(n_fit)
    table = layer_table(space, archs[fit_idx])
    log_y = np.log(y[fit_idx])
    scale = 1.0 / np.sqrt(n_fit)

    best: tuple[float, DeviceModel] | None = None
    n_starts = 0
    for fam in families:
        centre, width = _prior(fam, precision, names)
        base = prior_model(fam, specs, batch_size, precision)
        draws = [
            sample_model(fam, rng, batch_size=batch_size, precision=precision, **fixed)
            for _ in range(max(restarts, 1) - 1)
        ]

        predict_many = _theta_predictor(base, names, table)
        prior_w = np.sqrt(PRIOR_WEIGHT) / width

        def residuals(theta: np.ndarray, f=predict_many, c=centre, w=prior_w) -> np.ndarray:
            pred = f(theta[None, :])[0]
            return np.concatenate([(np.log(pred) - log_y) * scale, w * (theta - c)])

        def jacobian(theta: np.ndarray, f=predict_many, w=prior_w) -> np.ndarray:
            step = np.where(theta + _STEP > ub, -_STEP, _STEP)
            logs = np.log(f(np.vstack([theta, theta + np.diag(step)])))
            data = (logs[1:] - logs[0]).T / step * scale
            return np.vstack([data, np.diag(w)])

        starts = [centre] + [np.log([getattr(d, p) for p in names]) for d in draws]
        for x0 in starts:
            n_starts += 1
            with threadpool_limits(1):
                sol = least_squares(
                    residuals,
                    np.clip(x0, lb + 1e-9, ub - 1e-9),
                    jac=jacobian,
                    bounds=(lb, ub),
                    loss="soft_l1",
                    f_scale=ROBUST_SCALE * scale,
                    max_nfev=200,
                )
            if best is None or sol.cost < best[0]:
                best = (float(sol.cost), _with_params(base, names, sol.x))
    assert best is not None
    model = _consistent_specs(best[1], specs)
    rep = fit_report(predict(model, layer_table(space, archs)), y)
    report = FitReport(
        spearman=rep["spearman"],
        mape=rep["mape"],
        mdape=rep["mdape"],
        rmse_log=rep["rmse_log"],
        n=len(y),
        n_fit=n_fit,
        restarts=n_starts,
        seconds=time.perf_counter() - t0,
        family=model.family,
    )
    return model, report
