"""Data for the panels that need more than plan.json: Pareto fronts of chosen devices and the
latency monotonicity across the plan's devices. Each comes from the plan when the planner wrote
it (an entry's ``front``, the plan's ``monotonicity`` block) or from the store (latencies and
accuracies of the whole space, e.g. HELP table replay); None where neither has it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fleetnas.errors import FleetnasError
from fleetnas.proxy.monotonicity import pair_stats
from fleetnas.report.plan import budget_ms, entries, family, num
from fleetnas.search.pareto import BudgetIndex, pareto_front
from fleetnas.spaces import SearchSpace, get_space
from fleetnas.store.base import Store

LATENCY_METRIC = "latency"
#: Statistics tried in order for stored latencies (HELP stores means; local timing medians).
LATENCY_STATISTICS = ("mean", "median")
ACCURACY_STATISTIC = "mean"


@dataclass
class FrontData:
    """Accuracy-latency trade-off of one device.

    ``front_latency`` / ``front_accuracy``: ``m`` arrays of the Pareto front in latency order;
    ``cloud_latency`` / ``cloud_accuracy``: a sample of all designs (empty when the front came
    from the plan); ``designs``: design string -> (latency, accuracy) on this device for the
    designs the plan returned; ``oracles``: budget -> (latency, accuracy) of the most accurate
    design within it. ``n_designs``: size of the table the front was computed over.
    """

    device: str
    source: str
    front_latency: np.ndarray
    front_accuracy: np.ndarray
    cloud_latency: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cloud_accuracy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    designs: dict[str, tuple[float, float]] = field(default_factory=dict)
    oracles: dict[float, tuple[float, float]] = field(default_factory=dict)
    n_designs: int = 0


@dataclass
class MonotonicityData:
    """Pairwise latency-rank agreement between devices (``k x k`` matrices, device order =
    ``devices``). ``spearman`` is always there; ``kendall`` and ``flip_share`` (share of design
    pairs whose latency order flips) when the source computed them."""

    devices: list[str]
    families: list[str]
    spearman: np.ndarray
    source: str
    n_designs: int | None = None
    kendall: np.ndarray | None = None
    flip_share: np.ndarray | None = None


def row_keys(archs: np.ndarray) -> np.ndarray:
    """One hashable byte key per row of an ``n x D`` int array (to join tables on designs)."""
    a = np.ascontiguousarray(np.asarray(archs, dtype=np.int64))
    return a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).reshape(-1)


def stored_latency_devices(store: Store, space: SearchSpace, min_designs: int = 1) -> set[str]:
    """Devices with at least ``min_designs`` stored latencies in ``space``."""
    summ = store.measurement_summary()
    if not len(summ):
        return set()
    sel = summ[
        (summ["space"] == space.name)
        & (summ["metric"] == LATENCY_METRIC)
        & (summ["archs"] >= min_designs)
    ]
    return set(sel["device"].astype(str))


def stored_latencies(
    store: Store, space: SearchSpace, device: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(archs n x D, latency ms n)`` of ``device`` in the first statistic that has any."""
    for stat in LATENCY_STATISTICS:
        try:
            archs, values = store.get_measurements(space, device, LATENCY_METRIC, stat)
        except FleetnasError:
            return None
        if len(values):
            return archs, values
    return None


def stored_accuracy(
    store: Store, space: SearchSpace, metric: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(archs, accuracy)`` stored on the accuracy pseudo-device under ``metric``."""
    from fleetnas.data.nats import ACCURACY_DEVICE

    try:
        archs, values = store.get_measurements(space, ACCURACY_DEVICE, metric, ACCURACY_STATISTIC)
    except FleetnasError:
        return None
    return (archs, values) if len(values) else None


def plan_space(plan: dict[str, Any]) -> SearchSpace | None:
    try:
        return get_space(str(plan.get("space")))
    except FleetnasError:
        return None


def front_from_entry(device: str, device_entries: Sequence[dict[str, Any]]) -> FrontData | None:
    """The front the planner wrote as ``"front": [[latency_ms, accuracy], ...]`` (first entry
    of the device that has one), cleaned of malformed points and re-sorted by latency."""
    for e in device_entries:
        pts = e.get("front")
        if not pts:
            continue
        lat, acc = [], []
        for p in pts:
            if isinstance(p, list | tuple) and len(p) >= 2:
                x, y = num(p[0]), num(p[1])
                if x is not None and y is not None:
                    lat.append(x)
                    acc.append(y)
        if not lat:
            continue
        la, ac = np.asarray(lat), np.asarray(acc)
        idx = pareto_front(ac, la)
        return FrontData(device, "plan", la[idx], ac[idx], n_designs=len(lat))
    return None


def front_from_store(
    store: Store,
    plan: dict[str, Any],
    device: str,
    device_entries: Sequence[dict[str, Any]],
    min_designs: int = 50,
    cloud: int = 3000,
    seed: int = 0,
) -> FrontData | None:
    """The true front of ``device`` over every design with both a stored latency on it and a
    stored accuracy (``plan['accuracy']``); None when fewer than ``min_designs`` have both.
    ``cloud`` designs (drawn with ``seed``) are kept to draw the space behind the front."""
    space = plan_space(plan)
    metric = plan.get("accuracy")
    if space is None or not isinstance(metric, str):
        return None
    lat_tab = stored_latencies(store, space, device)
    acc_tab = stored_accuracy(store, space, metric)
    if lat_tab is None or acc_tab is None:
        return None
    lat_archs, lat = lat_tab
    acc_archs, acc = acc_tab
    _, il, ia = np.intersect1d(row_keys(lat_archs), row_keys(acc_archs), return_indices=True)
    if len(il) < min_designs:
        return None
    archs, lat, acc = lat_archs[il], lat[il], acc[ia]
    idx = pareto_front(acc, lat)
    data = FrontData(device, "store", lat[idx], acc[idx], n_designs=len(lat))
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(lat), size=min(cloud, len(lat)), replace=False))
    data.cloud_latency, data.cloud_accuracy = lat[pick], acc[pick]
    pos = {k.tobytes(): i for i, k in enumerate(row_keys(archs))}
    for e in device_entries:
        text = e.get("design")
        if not isinstance(text, str) or text in data.designs:
            continue
        try:
            key = row_keys(space.parse_many([text]))[0].tobytes()
        except FleetnasError:
            continue
        i = pos.get(key)
        if i is not None:
            data.designs[text] = (float(lat[i]), float(acc[i]))
    budgets = sorted({b for b in map(budget_ms, device_entries) if b is not None})
    if budgets:
        best = BudgetIndex(acc, lat).query(np.asarray(budgets))
        for b, i in zip(budgets, best.tolist(), strict=True):
            if i >= 0:
                data.oracles[b] = (float(lat[i]), float(acc[i]))
    return data


def fronts(
    plan: dict[str, Any],
    store: Store | None,
    devices: Sequence[str] | None = None,
    max_devices: int = 4,
) -> tuple[list[FrontData], list[str]]:
    """Fronts of ``devices`` (default: up to ``max_devices`` chosen by :func:`choose_devices`,
    devices whose entries carry a ``front`` first) and the names of requested devices for which
    neither the store nor the plan has one. The store's true table wins over the plan's
    ``front`` (it also gives the cloud of designs and the oracle per budget)."""
    by_dev: dict[str, list[dict[str, Any]]] = {}
    for e in entries(plan):
        by_dev.setdefault(e["device"], []).append(e)
    stored: set[str] = set()
    space = plan_space(plan)
    if store is not None and space is not None:
        stored = stored_latency_devices(store, space, min_designs=2)
    if devices is None:
        with_front = [d for d, es in by_dev.items() if any(e.get("front") for e in es)]
        devices = choose_devices(
            plan, max_devices, prefer=with_front, among=set(with_front) | stored
        )
    out, missing = [], []
    for d in devices:
        es = by_dev.get(d, [])
        data = None
        if store is not None and d in stored:
            data = front_from_store(store, plan, d, es)
        if data is None:
            data = front_from_entry(d, es)
        if data is None:
            missing.append(d)
        else:
            out.append(data)
    return out, missing


def choose_devices(
    plan: dict[str, Any],
    k: int,
    prefer: Sequence[str] = (),
    among: set[str] | None = None,
) -> list[str]:
    """Up to ``k`` devices of the plan: ``prefer`` first, then one per family in turn (families
    sorted, devices in plan order), only devices in ``among`` when given, ok entries first."""
    order: dict[str, list[str]] = {}
    seen: set[str] = set()
    ok_first = sorted(entries(plan), key=lambda e: e.get("status", "ok") != "ok")
    for e in ok_first:
        d = e["device"]
        if d in seen or (among is not None and d not in among):
            continue
        seen.add(d)
        order.setdefault(family(e), []).append(d)
    chosen = [d for d in dict.fromkeys(prefer) if d in seen][:k]
    queues = [[d for d in order[f] if d not in chosen] for f in sorted(order)]
    while len(chosen) < k and any(queues):
        for q in queues:
            if q and len(chosen) < k:
                chosen.append(q.pop(0))
    return chosen


def monotonicity_from_plan(plan: dict[str, Any]) -> MonotonicityData | None:
    """The plan-level ``monotonicity`` block (``devices`` and a ``spearman`` matrix, optional
    ``kendall``, ``flip_share``, ``families``, ``n_designs``), None when absent or malformed."""
    block = plan.get("monotonicity")
    if not isinstance(block, dict):
        return None
    devs = block.get("devices")
    if not isinstance(devs, list) or not devs:
        return None
    k = len(devs)

    def matrix(key: str) -> np.ndarray | None:
        m = block.get(key)
        if m is None:
            return None
        try:
            arr = np.array([[np.nan if v is None else float(v) for v in row] for row in m])
        except (TypeError, ValueError):
            return None
        return arr if arr.shape == (k, k) else None

    rho = matrix("spearman")
    if rho is None:
        return None
    fams = block.get("families")
    if not (isinstance(fams, list) and len(fams) == k):
        fam_of = {e["device"]: family(e) for e in entries(plan)}
        fams = [fam_of.get(str(d), "unknown") for d in devs]
    n = num(block.get("n_designs"))
    return MonotonicityData(
        [str(d) for d in devs],
        [str(f) for f in fams],
        rho,
        "plan",
        n_designs=int(n) if n is not None else None,
        kendall=matrix("kendall"),
        flip_share=matrix("flip_share"),
    )


def common_latencies(store: Store, space: SearchSpace, devices: Sequence[str]) -> np.ndarray | None:
    """``n x k`` latencies of the designs every device of ``devices`` has a stored latency for
    (rows in design-key order), None when a device has none. Vectorized join on row keys."""
    tables = [stored_latencies(store, space, d) for d in devices]
    if any(t is None for t in tables):
        return None
    keys = [row_keys(t[0]) for t in tables]  # type: ignore[index]
    common = keys[0]
    for k in keys[1:]:
        common = np.intersect1d(common, k)
    cols = []
    for k, (_, values) in zip(keys, tables, strict=True):  # type: ignore[misc]
        order = np.argsort(k)
        cols.append(values[order[np.searchsorted(k[order], common)]])
    return np.stack(cols, axis=1)


def monotonicity_from_store(
    plan: dict[str, Any],
    store: Store,
    max_devices: int = 30,
    max_designs: int = 4000,
    min_designs: int = 50,
    seed: int = 0,
) -> MonotonicityData | None:
    """Pairwise latency rank agreement (:func:`fleetnas.proxy.monotonicity.pair_stats`:
    Spearman, Kendall, flipped-pair share) between the plan's devices and proxies that have
    stored latencies, over designs measured on all of them (at most ``max_designs``, drawn with
    ``seed``); devices ordered by family. None when fewer than two devices share
    ``min_designs`` designs."""
    space = plan_space(plan)
    if space is None:
        return None
    if hasattr(space, "precisions"):
        return joint_monotonicity(plan, store, space)
    stored = stored_latency_devices(store, space, min_designs=min_designs)
    fam_of = {e["device"]: family(e) for e in entries(plan)}
    proxies = [p for p in dict.fromkeys(str(e.get("proxy")) for e in entries(plan)) if p in stored]
    proxies = proxies[:max_devices]
    for p in proxies:
        if p not in fam_of:
            try:
                fam_of[p] = store.get_device(p).family
            except FleetnasError:
                fam_of[p] = "unknown"
    devs = (
        proxies
        + [
            d
            for d in choose_devices(plan, max_devices, among=stored - set(proxies))
            if d not in proxies
        ][: max_devices - len(proxies)]
    )
    devs.sort(key=lambda d: (fam_of.get(d, ""), d))
    if len(devs) < 2:
        return None
    lat = common_latencies(store, space, devs)
    if lat is None or len(lat) < min_designs:
        return None
    if len(lat) > max_designs:
        rng = np.random.default_rng(seed)
        lat = lat[np.sort(rng.choice(len(lat), size=max_designs, replace=False))]
    return _pairwise(devs, [fam_of.get(d, "unknown") for d in devs], lat)


def joint_monotonicity(
    plan: dict[str, Any], store: Store, space: SearchSpace, min_designs: int = 20
) -> MonotonicityData | None:
    """The heatmap of a compressed plan: rank agreement between its devices stored one table
    per precision (``ptable:`` measurers, at least two precisions) over the joint designs
    (:func:`fleetnas.proxy.monotonicity.joint_values`), where int8 reorders designs."""
    from fleetnas.measure import parse_options, split_spec
    from fleetnas.proxy.monotonicity import joint_values

    specs: dict[str, dict[str, str]] = {}
    fam_of: dict[str, str] = {}
    for e in entries(plan):
        spec = str(e.get("measurer") or "")
        if not spec or split_spec(spec)[0] != "ptable":
            continue
        tables = parse_options(split_spec(spec)[1], "ptable spec")
        if len(tables) >= 2:
            specs[e["device"]] = tables
            fam_of[e["device"]] = family(e)
    if len(specs) < 2:
        return None
    try:
        _, lat = joint_values(store, space, specs)
    except FleetnasError:
        return None
    if len(lat) < min_designs:
        return None
    devs = list(specs)
    return _pairwise(devs, [fam_of[d] for d in devs], lat)


def _pairwise(devs: list[str], families: list[str], lat: np.ndarray) -> MonotonicityData:
    """Spearman, Kendall and flip share of every pair of columns of ``lat`` (designs x devs)."""
    k = len(devs)
    rho, tau, flips = np.eye(k), np.eye(k), np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            st = pair_stats(lat[:, i], lat[:, j])
            rho[i, j] = rho[j, i] = st.spearman
            tau[i, j] = tau[j, i] = st.kendall
            flips[i, j] = flips[j, i] = st.flip_share
    return MonotonicityData(
        devs, families, rho, "store", n_designs=len(lat), kendall=tau, flip_share=flips
    )


def monotonicity(
    plan: dict[str, Any], store: Store | None, max_devices: int = 30
) -> MonotonicityData | None:
    """The plan's own monotonicity block if it has one, else computed from the store."""
    data = monotonicity_from_plan(plan)
    if data is None and store is not None:
        data = monotonicity_from_store(plan, store, max_devices=max_devices)
    return data
