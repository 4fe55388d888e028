"""Latency prediction for a user's own device, from what the store holds (``fleetnas predict``).

- :func:`fleet_predictor`: the fleet's calibrated device-aware predictor for a space, stored as
  artifact ``<space>/device-aware`` (built on first use: trained on the store's pool devices,
  HELP's meta-train + meta-valid ones by default, and calibrated by cross-fitting with one
  device family held out at a time, :mod:`fleetnas.predict.interval`).
- :func:`predict_device`: latency of designs on a stored device with a central interval, from
  the device's stored few-shot model (``predict fit``) when there is one, else from the fleet
  predictor adapted to the device's probe values.
- :func:`fit_device`: measure a device (through a ``measure`` callable the caller builds from
  the device's measurer), choose the designs actively, hold a few random ones out to report
  the model's accuracy on them, refit on everything and store the few-shot model.

Nothing is written before every input is checked; a missing device, too small a budget or a
design outside the space is one :class:`~fleetnas.errors.InputError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError, UnknownNameError
from fleetnas.predict.adapt import FewShotLatency, active_fit
from fleetnas.predict.base import ARTIFACT_KIND, Persistable
from fleetnas.predict.device_aware import DeviceAwarePredictor
from fleetnas.predict.interval import IntervalCalibration, cross_fit
from fleetnas.predict.metrics import regression_report
from fleetnas.spaces import SearchSpace

if TYPE_CHECKING:
    from fleetnas.devices import Device
    from fleetnas.store import Store

#: Statistics read from the store, in order (HELP stores ``mean``).
STATISTICS = ("median", "mean")
#: Random designs held out of the few-shot fit to report its accuracy: ``max(3, N // 5)``.
MIN_HOLDOUT = 3
#: Stored measurements of the device a fit uses at most (a seeded sample beyond that).
MAX_KNOWN = 300
#: Candidate designs the active choice looks at in spaces too large to enumerate.
CANDIDATES = 5000
#: Misfit weight of the interval calibration (:mod:`fleetnas.predict.interval`), chosen on
#: leave-hardware-out in ``benchmarks/predict_heldout.py``.
DEFAULT_BETA = 8.0


def fleet_name(space: SearchSpace) -> str:
    return f"{space.name}/device-aware"


def device_model_name(space: SearchSpace, device: str) -> str:
    return f"{device}/{space.name}/latency"


def stored_latency(
    store: Store, space: SearchSpace, device: str, archs: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(designs, values)`` stored for ``device`` (all, or those of ``archs`` that have a
    value, in order), newest value per design, statistic ``median`` then ``mean``."""
    got: dict[bytes, tuple[np.ndarray, float]] = {}
    for stat in STATISTICS:
        try:
            a, v = store.get_measurements(space, device, "latency", stat, archs=archs)
        except UnknownNameError:
            break
        for row, val in zip(a, v, strict=True):
            got.setdefault(row.tobytes(), (row, float(val)))
    if archs is not None:
        keep = [got[r.tobytes()] for r in space.check(archs) if r.tobytes() in got]
    else:
        keep = list(got.values())
    if not keep:
        return np.zeros((0, space.n_decisions), dtype=np.int64), np.zeros(0)
    return np.stack([k[0] for k in keep]), np.array([k[1] for k in keep])


def _probes(store: Store, space: SearchSpace) -> np.ndarray:
    from fleetnas.data import reference_archs

    try:
        return reference_archs(store, space)
    except UnknownNameError:
        raise InputError(
            f"the store has no probe (reference) designs for space {space.name!r}; run "
            "`fleetnas data import` first"
        ) from None


def default_pool(store: Store, space: SearchSpace) -> list[str]:
    """HELP's meta-train + meta-valid devices of the space that the store holds."""
    from fleetnas.devices.catalog import help_split

    try:
        split = help_split(space.name)
    except InputError:
        raise InputError(
            f"space {space.name!r} has no default pool devices; name them (--pool)"
        ) from None
    known = {d.name for d in store.list_devices()}
    return [d for d in (*split["train"], *split["valid"]) if d in known]


def _pool_matrix(
    store: Store, space: SearchSpace, names: Sequence[str], max_designs: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Designs measured on every pool device (up to ``max_designs``, a seeded sample that
    always keeps the probes) and the ``n x m`` latency matrix."""
    probes = _probes(store, space)
    tables = []
    for n in names:
        a, v = stored_latency(store, space, n)
        if len(a) == 0:
            raise InputError(f"pool device {n!r} has no stored latency for space {space.name!r}")
        tables.append({r.tobytes(): (r, x) for r, x in zip(a, v, strict=True)})
    common = set(tables[0])
    for t in tables[1:]:
        common &= set(t)
    missing = [r for r in probes if r.tobytes() not in common]
    if missing:
        raise InputError("some pool device lacks latencies of the probe designs")
    keys = sorted(common - {r.tobytes() for r in probes})
    if max_designs is not None and len(keys) > max_designs - len(probes):
        rng = np.random.default_rng(seed)
        keys = [keys[i] for i in sorted(rng.choice(len(keys), max_designs - len(probes), False))]
    keys = [r.tobytes() for r in probes] + keys
    archs = np.stack([tables[0][k][0] for k in keys])
    return archs, np.array([[t[k][1] for t in tables] for k in keys])


def fleet_predictor(
    store: Store,
    space: SearchSpace,
    pool: Sequence[str] | None = None,
    epochs: int = 20,
    max_designs: int | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> DeviceAwarePredictor:
    """The stored calibrated fleet predictor of ``space``; built and stored when absent (or
    when ``pool`` names other devices than the stored one's)."""
    say = progress or (lambda _m: None)
    name = fleet_name(space)
    try:
        pred = Persistable.load(store, name, space)
        same_pool = pool is None or sorted(pool) == sorted(pred.meta.get("pool", []))
        if isinstance(pred, DeviceAwarePredictor) and pred.calibration is not None and same_pool:
            return pred
    except UnknownNameError:
        pass
    names = list(pool) if pool else default_pool(store, space)
    if len(names) < 3:
        raise InputError(f"the fleet predictor needs at least 3 pool devices, got {names}")
    records = {d: store.get_device(d) for d in names}
    groups = [records[d].family for d in names]
    if len(set(groups)) < 2:
        raise InputError("the pool must hold devices of at least 2 families (calibration)")
    archs, values = _pool_matrix(store, space, names, max_designs, seed)
    probes = _probes(store, space)
    k = len(probes)

    def fit(train: list[str]) -> DeviceAwarePredictor:
        idx = [names.index(t) for t in train]
        p = DeviceAwarePredictor(space, probes=probes, epochs=epochs, seed=seed)
        return p.fit(archs, values[:k, idx].T, values[:, idx])

    say(f"calibrating on {len(names)} pool devices, one family held out at a time")
    parts = cross_fit(fit, archs, values, names, groups, np.arange(k))
    pred = fit(names)
    pred.set_calibration(IntervalCalibration.from_components(parts, beta=DEFAULT_BETA))
    pred._meta = {**pred.meta, "pool": names}
    pred.save(store, name)
    say(f"stored the fleet predictor {name!r}")
    return pred


@dataclass
class DeviceView:
    """A stored device's record, probe values (NaN where unknown) and stored few-shot model."""

    device: Device
    probes: np.ndarray
    probe_values: np.ndarray
    model: FewShotLatency | None


def device_view(store: Store, space: SearchSpace, name: str) -> DeviceView:
    dev = store.get_device(name)
    probes = _probes(store, space)
    a, v = stored_latency(store, space, name, probes)
    vals = np.full(len(probes), np.nan)
    lookup = {r.tobytes(): x for r, x in zip(a, v, strict=True)}
    vals[:] = [lookup.get(r.tobytes(), np.nan) for r in probes]
    model = None
    try:
        m = Persistable.load(store, device_model_name(space, name), space)
        model = m if isinstance(m, FewShotLatency) else None
    except UnknownNameError:
        pass
    return DeviceView(dev, probes, vals, model)


def predict_device(
    store: Store,
    space: SearchSpace,
    view: DeviceView,
    archs: np.ndarray,
    level: float = 0.9,
    fleet: DeviceAwarePredictor | None = None,
) -> dict[str, Any]:
    """``mean``, ``lower``, ``upper`` (ms, ``n`` each), ``measured`` (stored values, NaN where
    none), ``source`` (``few-shot`` or ``fleet``) and ``in_pool`` (the fleet predictor was
    trained on this very device, so its numbers are not a held-out estimate) for ``archs``."""
    a = space.check(archs)
    in_pool = False
    if view.model is not None:
        iv = view.model.predict_interval(a, level)
        source = "few-shot"
    else:
        if not np.isfinite(view.probe_values).all():
            miss = int((~np.isfinite(view.probe_values)).sum())
            raise InputError(
                f"device {view.device.name!r} has no stored latency for {miss} of the "
                f"{len(view.probes)} probe designs; run `fleetnas predict fit` (it measures them)"
            )
        pred = fleet if fleet is not None else fleet_predictor(store, space)
        iv = {k: v[:, 0] for k, v in pred.predict_interval(a, view.probe_values, level).items()}
        source = "fleet"
        in_pool = view.device.name in pred.meta.get("pool", [])
    ma, mv = stored_latency(store, space, view.device.name, a)
    lookup = {r.tobytes(): x for r, x in zip(ma, mv, strict=True)}
    measured = np.array([lookup.get(r.tobytes(), np.nan) for r in a])
    return {**iv, "measured": measured, "source": source, "in_pool": in_pool}


def check_budget(view: DeviceView, budget: int) -> tuple[int, int]:
    """``(probe measurements needed, held-out designs)`` for a fit with ``budget`` new
    measurements; :class:`InputError` when the budget cannot pay for them and one chosen
    design."""
    need = int((~np.isfinite(view.probe_values)).sum())
    hold = max(MIN_HOLDOUT, int(budget) // 5)
    if int(budget) < need + hold + 1:
        raise InputError(
            f"--budget-measurements {budget} is too few for device {view.device.name!r}: "
            f"{need} probe designs to measure, {hold} held out for the accuracy check and at "
            f"least 1 chosen design need {need + hold + 1}"
        )
    return need, hold


def fit_device(
    store: Store,
    space: SearchSpace,
    view: DeviceView,
    budget: int,
    measure: Callable[[np.ndarray], np.ndarray],
    name: str | None = None,
    level: float = 0.9,
    seed: int = 0,
    fleet: DeviceAwarePredictor | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure ``budget`` designs on the device (missing probes first, then ``max(3,
    budget // 5)`` random hold-out designs, then actively chosen ones), report the few-shot
    model's accuracy on the held-out designs, refit on everything and store the model as
    ``name`` (default ``<device>/<space>/latency``). Returns a report."""
    say = progress or (lambda _m: None)
    need, hold = check_budget(view, budget)
    pred = fleet if fleet is not None else fleet_predictor(store, space, progress=say)
    rng = np.random.default_rng(seed)
    cand = space.enumerate() if space.size <= 20 * CANDIDATES else space.sample(CANDIDATES, rng)
    pv = view.probe_values.copy()
    spent = 0
    if need:
        miss = ~np.isfinite(pv)
        pv[miss] = measure(view.probes[miss])
        spent += int(miss.sum())
        say(f"measured {int(miss.sum())} probe designs")
    known_a, known_v = stored_latency(store, space, view.device.name)
    probe_keys = {r.tobytes() for r in view.probes}
    other = np.array([r.tobytes() not in probe_keys for r in known_a], dtype=bool)
    known_a, known_v = known_a[other], known_v[other]
    have = probe_keys | {r.tobytes() for r in known_a}
    if len(known_a) > MAX_KNOWN:
        keep = np.sort(rng.choice(len(known_a), MAX_KNOWN, replace=False))
        known_a, known_v = known_a[keep], known_v[keep]
    free = np.array([r.tobytes() not in have for r in cand])
    if free.sum() >= hold:
        idx = rng.choice(np.flatnonzero(free), hold, replace=False)
        hold_a = cand[idx]
        hold_v = measure(hold_a)
        spent += hold
        free[idx] = False
    else:  # everything was measured already: hold stored designs out instead
        pick = rng.choice(len(known_a), hold, replace=False)
        hold_a, hold_v = known_a[pick], known_v[pick]
        rest = ~np.isin(np.arange(len(known_a)), pick)
        known_a, known_v = known_a[rest], known_v[rest]
    base_a = np.concatenate([view.probes, known_a]) if len(known_a) else view.probes
    base_v = np.concatenate([pv, known_v]) if len(known_a) else pv
    pool = cand[free]
    chosen: list[np.ndarray] = []
    chosen_v: list[float] = []

    def take(a: np.ndarray) -> np.ndarray:
        v = measure(a)
        chosen.append(a)
        chosen_v.extend(np.asarray(v, dtype=float).tolist())
        return v

    model = FewShotLatency.on(pred, pv, level=level, seed=seed)
    model, all_a, all_v = active_fit(model, pool, take, budget - spent, base_a, base_v)
    spent += len(chosen_v)
    say(f"measured {len(chosen_v)} actively chosen designs")
    heldout = regression_report(hold_v, model.predict(hold_a))
    iv = model.predict_interval(hold_a)
    heldout["coverage"] = float(np.mean((hold_v >= iv["lower"]) & (hold_v <= iv["upper"])))
    model.fit(np.concatenate([all_a, hold_a]), np.concatenate([all_v, hold_v]))
    model._meta = {**model.meta, "device": view.device.name, "heldout": heldout}
    art = name or device_model_name(space, view.device.name)
    model.save(store, art)
    return {
        "device": view.device.name,
        "space": space.name,
        "predictor": art,
        "kind": ARTIFACT_KIND,
        "measurements": spent,
        "designs_fitted": int(model.meta["n_train"]),
        "heldout": {"n": int(heldout["n"]), **{k: float(heldout[k]) for k in heldout if k != "n"}},
        "level": level,
    }


__all__ = [
    "DeviceView",
    "check_budget",
    "default_pool",
    "device_model_name",
    "device_view",
    "fit_device",
    "fleet_name",
    "fleet_predictor",
    "predict_device",
    "stored_latency",
]
