"""Plans that choose the compression policy per device (issue 17, item 4).

``fleetnas plan FLEET --space nb201+q`` plans designs that are architecture *and* policy
(precision and width per block, :mod:`fleetnas.spaces.compression`). Each device runs what it
can run, decided by its measurer:

- ``sim:...`` (a simulated device) prices every design; the simulator's per-family precision
  factor (:mod:`fleetnas.sim.precision`) makes int8 fast on an NPU and slow on a QDQ runtime;
- ``ptable:fp32=DEV_A,int8=DEV_B`` (this machine's runtime stacks, one stored table per
  precision) runs whole networks at a tabled precision without pruning;
- ``table:DEV`` (HELP's devices: architecture only) becomes ``ptable:fp32=DEV``: fp32 only;
- ``bitfusion`` (catalog device ``bitfusion``, feature ``space: apq``) is planned in APQ's
  joint space with latency and energy from APQ's table, whatever the plan's space.

Per device the planner (one measurement session shared by the device's budgets):

1. restricts the candidates (every base design of an enumerable base space, else a seeded
   sample, times the uniform policies allowed by ``--precisions``/``--widths``; APQ: a seeded
   sample of feasible designs) to those the device can run;
2. prices them with a *proxy*: the simulator's model of a device of the same family (nb201+q,
   ofa_mbv3+q) or the bit-operations ``sum_l MACs_l * w_l * a_l`` (apq);
3. measures two probes per precision the device runs (one, or none, where the cap is small:
   the probes count against ``--max-measurements``) and, per precision group, chooses the proxy
   whose per-design order fits the probes best, the simulator or another fleet device's
   measured table at that precision, never one of the target's runtime family
   (:mod:`fleetnas.fleet.compression_proxy`), scaled by the geometric mean of measured / proxy.
   The latency order is *not* shared across compression (the int8 / fp32 ratio of single
   designs spreads over more than an order of magnitude on some stacks), so one factor per precision
   misses the designs on which int8 happens to be fast;
4. verifies, per precision group, the accuracy/latency front of the calibrated proxy with
   :func:`fleetnas.proxy.verify_candidates` (bisection; feasibility only from measured values,
   so a measured device never gets a design over its budget), the groups one after the other
   within the entry's cap, a group that cannot beat the best verified design skipped; the most
   accurate verified design wins. ``estimate="one-factor"`` keeps the previous release's
   simulator-only calibration and one verification over the joint front (the benchmark's
   baseline).

Every entry carries ``accuracy_source``: ``table`` for an uncompressed design whose accuracy is
the base table's (NAS-Bench-201), else the source's label: ``modelled`` (the default,
:class:`~fleetnas.predict.compressed_accuracy.ModelledAccuracy`), ``measured`` (accuracies
imported on the compressed designs' strings) or ``evaluator:<target>``; and ``compression``:
the chosen policy (precision(s), widths, whether int8 or pruning was chosen) and the per-precision
calibration factors. Relative budgets (``pNN``) are not supported here (one clear reason).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.fleet.compression_proxy import (
    GroupMatch,
    match,
    proxies_for,
    table_options,
    table_sources,
)
from fleetnas.fleet.compression_space import SpacePlan, parse_policy_options
from fleetnas.fleet.planner import Planner, task_done
from fleetnas.fleet.session import capture_writes
from fleetnas.fleet.tasks import ChunkOutput, PlanConfig, Task, fail, new_entry

#: Probes per precision the device runs.
PROBES_PER_PRECISION = 2
#: Measurements per entry when the config sets no cap (probes included).
DEFAULT_CAP = 12
#: How a compressed design's latency is estimated: ``per-design`` (the default: per precision
#: group the best-matching precision-aware proxy, verified per policy) or ``one-factor`` (the
#: previous release: the simulator scaled by one factor per precision, one verification over
#: the joint front; the benchmark's baseline).
ESTIMATES = ("per-design", "one-factor")


def is_compression_plan(config: PlanConfig, devices: Sequence[Any] = ()) -> bool:
    """Whether ``config`` plans a compressed space, or some device runs another space."""
    from fleetnas.spaces import get_space

    space = get_space(config.space)
    return hasattr(space, "precisions") or any(
        (d.features or {}).get("space") not in (None, config.space) for d in devices
    )


def device_space(device: Any, config: PlanConfig) -> str:
    """The space a device is planned in: its feature ``space`` (BitFusion: ``apq``), else the
    plan's."""
    return str((device.features or {}).get("space") or config.space)


def measurer_spec(device: Any) -> str | None:
    """The measurer spec used for ``device`` in a compressed plan (``table:X`` -> fp32 only)."""
    spec = device.measurer
    if spec and spec.startswith("table:"):
        return "ptable:fp32=" + spec.partition(":")[2]
    return spec


class CompressionPlanner(Planner):
    """The planner of compressed plans (module docstring); built like
    :class:`~fleetnas.fleet.planner.FleetPlanner` in the driver, shipped to workers whole."""

    def __init__(
        self,
        config: PlanConfig,
        store: Any = None,
        reuse: bool = True,
        devices: Sequence[Any] = (),
        estimate: str = "per-design",
        held_out_family: bool = False,
    ) -> None:
        super().__init__(config)
        if estimate not in ESTIMATES:
            raise InputError(f"estimate must be one of {', '.join(ESTIMATES)}, got {estimate!r}")
        self.reuse = reuse
        self.estimate = estimate
        #: proxies never of the target's runtime family (the held-out benchmarks' protocol)
        self.held_out_family = held_out_family
        #: the fleet's table devices, proxies of one another (none when built without devices:
        #: :meth:`prepare` takes them from the tasks)
        self.sources = table_sources(devices)
        self.store_url = None if store is None else getattr(store, "url", None)
        self._store = store
        self._spaces: dict[str, SpacePlan] = {}

    def __getstate__(self) -> dict[str, Any]:
        if self.store_url in (None, "memory://") and self._store is not None:
            raise InputError(
                "an in-memory store is not visible to worker processes; plan with "
                "--executor serial or keep the store in a file or a database"
            )
        state = dict(self.__dict__)
        state.update(_store=None, _spaces={}, _bound=False)
        return state

    def bind_worker(self, threads: int | None = 1) -> None:
        super().bind_worker(threads)
        if self._store is None and self.store_url is not None:
            from fleetnas.store import open_store

            self._store = open_store(self.store_url)

    def prepare(self, tasks: Sequence[Task]) -> None:
        """Check what every entry shares: the policy options and each space's accuracy; the
        fleet's table devices from the tasks when the planner was built without devices."""
        if not self.sources:
            devs = {t.device.name: t.device for t in tasks}
            self.sources = table_sources(list(devs.values()))
        for name in sorted({device_space(t.device, self.config) for t in tasks}):
            self.space_plan(name)

    def space_plan(self, name: str) -> SpacePlan:
        if name not in self._spaces:
            self._spaces[name] = SpacePlan(name, self.config, self._store)
        return self._spaces[name]

    def plan_tasks(self, tasks: Sequence[Task], out: ChunkOutput) -> list[dict[str, Any]]:
        entries = [new_entry(t, "proxy") for t in tasks]
        by_dev: dict[str, list[int]] = {}
        for i, t in enumerate(tasks):
            by_dev.setdefault(t.device.name, []).append(i)
        for idx in by_dev.values():
            t0 = time.perf_counter()
            try:
                self._plan_device([tasks[i] for i in idx], [entries[i] for i in idx], out)
            except Exception as exc:
                for i in idx:
                    if entries[i]["status"] == "failed" and entries[i]["reason"] is None:
                        fail(entries[i], exc)
            for i in idx:
                entries[i]["wall_s"] = (time.perf_counter() - t0) / len(idx)
            task_done(len(idx))
        return entries

    # ---- one device -------------------------------------------------------------------------
    def _plan_device(
        self, tasks: list[Task], entries: list[dict[str, Any]], out: ChunkOutput
    ) -> None:
        from fleetnas.measure import get_measurer
        from fleetnas.proxy.session import MeasurerSession

        dev = tasks[0].device
        sp = self.space_plan(device_space(dev, self.config))
        for e in entries:
            e["space"] = sp.space.name
        spec = measurer_spec(dev)
        if not spec:
            for e in entries:
                fail(e, f"device {dev.name!r} has no measurer; a compressed plan verifies every "
                        "design by measurement (give it a measurer)")  # fmt: skip
            return
        measurer = get_measurer(spec, self._store, dev if spec.split(":")[0] != "ptable" else None)
        if spec.startswith("ptable:"):
            measurer.device = dev
        if not self.reuse:
            measurer.reuse = False
        capture_writes(measurer, out.measurements)
        with_energy = any(t.budget.energy is not None for t in tasks)
        metrics = ("latency", "energy") if with_energy else ("latency",)
        session = MeasurerSession(measurer, sp.space, metrics, ledger=False)
        cand, acc, labels = sp.pool(measurer)
        if hasattr(measurer, "admissible") and len(cand):
            keep = np.asarray(measurer.admissible(sp.space, cand), dtype=bool)
            cand, acc, labels = cand[keep], acc[keep], labels[keep]
        if not len(cand):
            for e in entries:
                fail(e, f"device {dev.name!r} can run none of the {sp.space.name!r} candidates")
            return
        p_lat, p_en = sp.proxy(cand, dev.family, tasks[0].seed(self.config.seed))
        groups = sp.precision_of(cand)
        cap = self.config.max_measurements or DEFAULT_CAP
        k = probes_per_group(cap, len(set(groups)))
        before = session.cost.measurements
        cal_l, cal_e, matches, probe_trace, options = self._estimate(
            session, sp, dev, cand, groups, p_lat, p_en, k
        )
        probes = session.cost.measurements - before
        live = np.isfinite(cal_l)
        for i, (task, e) in enumerate(zip(tasks, entries, strict=True)):
            if i and self.estimate == "per-design":  # everything measured so far, uncharged
                rematch(session, cand, options, cal_l, matches)
            scale_l = {g: m.scale for g, m in matches.items()}
            e["measurements_probe"] = probes if i == 0 else 0
            room = cap - e["measurements_probe"]  # the cap counts this entry's probes
            self._plan_budget(task, e, sp, session, cand[live], acc[live], labels[live],
                              groups[live], cal_l[live], cal_e[live] if with_energy else None,
                              room, probe_trace, scale_l, matches)  # fmt: skip

    def _estimate(
        self,
        session: Any,
        sp: SpacePlan,
        dev: Any,
        cand: np.ndarray,
        groups: np.ndarray,
        p_lat: np.ndarray,
        p_en: np.ndarray,
        k: int,
    ) -> tuple[
        np.ndarray,
        np.ndarray,
        dict[str, GroupMatch],
        list[dict[str, Any]],
        dict[str, tuple[np.ndarray, dict[str, np.ndarray]]],
    ]:
        """Per precision group: measure ``k`` probes at the 30th..70th percentile of the
        simulator's latency, choose the group's proxy (``one-factor``: the simulator; else the
        best-matching of the simulator and the other devices' tables at that precision,
        :mod:`fleetnas.fleet.compression_proxy`) and scale it by the geometric mean of
        measured / proxy. Returns calibrated latency and energy per candidate (NaN: a group
        whose probes all failed), the matches, the probe trace and per group its candidates
        and proxy options (for :func:`rematch`)."""
        cal_l = np.full(len(cand), np.nan)
        cal_e = np.full(len(cand), np.nan)
        matches: dict[str, GroupMatch] = {}
        trace: list[dict[str, Any]] = []
        kept: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
        sim = "bitops" if sp.space.name == "apq" else f"sim:{dev.family}"
        sources = (
            proxies_for(dev, self.sources, self.held_out_family)
            if self.estimate == "per-design" and hasattr(sp.space, "base")
            else []
        )
        base = sp.space.split(cand)[0] if sources else None  # type: ignore[attr-defined]
        for g in sorted(set(groups)):
            idx = np.flatnonzero(groups == g)
            order = np.argsort(p_lat[idx], kind="stable")
            qs = np.linspace(0.3, 0.7, k) if k > 1 else np.array([0.5])[:k]
            pos = order[np.unique((qs * (len(order) - 1)).round().astype(int))]
            picks = idx[pos]
            vals = session.measure(cand[picks]) if len(picks) else np.zeros((0, 1))
            for j, v in zip(picks, vals, strict=True):
                trace.append({
                    "phase": "probe", "precision": g, "arch": session.space.format(cand[j]),
                    "latency": float(v[0]), "predicted": float(p_lat[j]),
                })  # fmt: skip
            options = {sim: p_lat[idx]}
            if base is not None and g:
                options |= table_options(self._store, sp.space, base[idx], g, sources)
            if not len(picks):  # no room for probes: the simulator as it is
                m: GroupMatch | None = GroupMatch(g, sim, 1.0, float("nan"), 0)
            else:
                m = match(g, vals[:, 0], {n: v[pos] for n, v in options.items()})
            if m is None:
                continue
            matches[g] = m
            kept[g] = (idx, options)
            cal_l[idx] = m.scale * options[m.proxy]
            good = np.isfinite(vals[:, 0]) if len(picks) else np.zeros(0, dtype=bool)
            scale_e = 1.0
            if vals.shape[1] > 1 and good.any():
                scale_e = float(np.exp(np.mean(np.log(vals[good, 1] / p_en[picks][good]))))
            cal_e[idx] = scale_e * p_en[idx]
        return cal_l, cal_e, matches, trace, kept

    def _plan_budget(
        self,
        task: Task,
        e: dict[str, Any],
        sp: SpacePlan,
        session: Any,
        cand: np.ndarray,
        acc: np.ndarray,
        labels: np.ndarray,
        groups: np.ndarray,
        cal_l: np.ndarray,
        cal_e: np.ndarray | None,
        room: int,
        probe_trace: list[dict[str, Any]],
        scale_l: dict[str, float],
        matches: dict[str, GroupMatch],
    ) -> None:
        """Verify the calibrated front: per precision group (``per-design``: the best
        candidate of each policy is measured, the most accurate verified one wins; a group
        that cannot beat it is skipped) or once over the joint front (``one-factor``), every
        verification within what is left of ``room``."""
        from fleetnas.proxy.verify import verify_candidates

        b = task.budget
        if b.relative:
            fail(e, "relative budgets (pNN) are not supported in compressed plans; give ms/mJ")
            return
        lat_b = b.latency.value if b.latency is not None else float("inf")
        en_b = b.energy.value if b.energy is not None else None
        if not np.isfinite(lat_b):
            lat_b = float(np.nanmax(cal_l)) * 1e6
        parts = self._parts(groups, acc, cal_l, lat_b)
        before = session.cost.measurements
        seconds = session.cost.device_seconds
        best: tuple[Any, int] | None = None
        trace = list(probe_trace)
        for j, part in enumerate(parts):
            left = room - (session.cost.measurements - before)
            floor = best[0].accuracy if best is not None and best[0].ok else -np.inf
            sub = part[acc[part] > floor]
            if not len(sub) or (left <= 0 and best is not None):
                continue
            share = max(left // (len(parts) - j), 0)
            front = _front(acc, cal_l, cal_e, sub)
            under = np.flatnonzero(cal_l[front] <= lat_b)
            sel = verify_candidates(
                sp.space, cand[front], session, lat_b, en_b, accuracy=acc[front],
                proxy_latency=cal_l[front], proxy_energy=None if cal_e is None else cal_e[front],
                max_measurements=share, start=int(under[-1]) if len(under) else 0,
            )  # fmt: skip
            trace += [s.to_dict() for s in sel.trace]
            if sel.arch is None:
                continue
            i = int(front[sel.index]) if sel.index >= 0 else int(np.argmax(acc))
            if best is None or (sel.ok and (not best[0].ok or sel.accuracy > best[0].accuracy)):
                best = (sel, i)
        e["measurements"] = session.cost.measurements - before + e.get("measurements_probe", 0)
        e["device_seconds"] = float(session.cost.device_seconds - seconds)
        e["trace"] = trace
        if best is None:
            fail(e, "no candidate could be measured on this device")
            return
        sel, i = best
        e["design"] = sp.space.format(sel.arch)
        e["status"] = sel.status
        e["confidence"] = 1.0 if sel.ok else 0.0
        e["predicted"] = {
            "accuracy": float(sel.accuracy),
            "latency_ms": float(cal_l[i]),
            "energy_mj": None if cal_e is None else float(cal_e[i]),
        }
        e["measured"] = {"latency_ms": float(sel.latency), "energy_mj": sel.energy}
        e["accuracy_source"] = str(labels[i])
        e["proxy"] = ",".join(f"{g or 'mixed'}={m.proxy}" for g, m in sorted(matches.items()))
        e["compression"] = policy_summary(sp.space, sel.arch, scale_l)
        e["compression"]["estimate"] = self.estimate
        e["compression"]["proxies"] = {g: m.to_dict() for g, m in sorted(matches.items())}
        e["reason"] = None if sel.ok else "no measured design meets the budget"

    def _parts(
        self, groups: np.ndarray, acc: np.ndarray, cal_l: np.ndarray, lat_b: float
    ) -> list[np.ndarray]:
        """The candidate sets verified one after the other: the joint front (``one-factor``),
        else one per precision group, the group whose best predicted-feasible design is the
        most accurate first."""
        if self.estimate == "one-factor":
            return [np.arange(len(acc))]
        parts = [np.flatnonzero(groups == g) for g in sorted(set(groups))]

        def merit(p: np.ndarray) -> tuple[float, float]:
            ok = cal_l[p] <= lat_b
            return (float(acc[p][ok].max()) if ok.any() else -np.inf, float(acc[p].max()))

        return sorted(parts, key=merit, reverse=True)


def rematch(
    session: Any,
    cand: np.ndarray,
    options: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]],
    cal_l: np.ndarray,
    matches: dict[str, GroupMatch],
) -> None:
    """Match every precision group's proxy again on all of the group's designs the session
    has measured (probes and earlier budgets' verification; reading them costs nothing), and
    recalibrate ``cal_l`` in place."""
    for g, (idx, opts) in options.items():
        known, vals = session.lookup(cand[idx])
        if known.sum() < 2:
            continue
        m = match(g, vals[known, 0], {n: v[known] for n, v in opts.items()})
        if m is not None:
            matches[g] = m
            cal_l[idx] = m.scale * opts[m.proxy]


def probes_per_group(cap: int, n_groups: int) -> int:
    """Probes per precision group: :data:`PROBES_PER_PRECISION` where they take at most half
    of the cap, one where one per group does, else none (then the proxy is used unscaled and
    every measurement goes to verification)."""
    if cap >= 2 * n_groups * PROBES_PER_PRECISION:
        return PROBES_PER_PRECISION
    return 1 if cap >= 2 * n_groups else 0


def _front(
    acc: np.ndarray, cal_l: np.ndarray, cal_e: np.ndarray | None, sub: np.ndarray
) -> np.ndarray:
    """Indices (into the candidates) of ``sub``'s accuracy/latency (and energy) front, by
    calibrated latency ascending."""
    from fleetnas.search.pareto import pareto_front

    front = sub[pareto_front(acc[sub], cal_l[sub])]
    if cal_e is not None:
        front = np.unique(np.concatenate([front, sub[pareto_front(acc[sub], cal_e[sub])]]))
    return front[np.argsort(cal_l[front], kind="stable")]


def policy_summary(space: Any, arch: np.ndarray, scale: dict[str, float]) -> dict[str, Any]:
    """The chosen policy in words: precision(s), widths, whether int8 / pruning was chosen,
    and the per-precision calibration (measured / proxy)."""
    if not hasattr(space, "precisions"):
        pol = space.policy(arch) if hasattr(space, "policy") else {}
        return {"policy": pol, "int8": False, "pruned": False, "calibration": scale}
    pol = space.policy(arch)
    precs = sorted({v["precision"] for v in pol.values()})
    widths = sorted({float(v["width"]) for v in pol.values()})
    return {
        "precision": precs[0] if len(precs) == 1 else "mixed",
        "precisions": precs,
        "widths": widths,
        "int8": "int8" in precs,
        "pruned": min(widths) < 1.0,
        "calibration": {k: round(v, 6) for k, v in scale.items()},
    }


def check_compression_config(config: PlanConfig, store: Any, fleet: Any) -> None:
    """Refuse up front (one :class:`InputError`, nothing written) what would fail every entry:
    an unknown precision, a width outside the space, an accuracy source that returns
    nothing."""
    devices = [d.device for d in fleet]
    plan_space = _space(config.space)
    if (config.precisions or config.widths) and not hasattr(plan_space, "precisions"):
        raise InputError(
            f"--precisions/--widths need a compressed space (e.g. nb201+q), not {config.space!r}"
        )
    parse_policy_options(plan_space, config.precisions, config.widths)
    if not is_compression_plan(config, devices):
        if config.accuracy_source not in (None, ""):
            raise InputError(
                f"--accuracy-source needs a compressed space (e.g. nb201+q), not {config.space!r}"
            )
        return
    for name in sorted({device_space(d, config) for d in devices}):
        SpacePlan(name, config, store)


def _space(name: str) -> Any:
    from fleetnas.spaces import get_space

    return get_space(name)


__all__ = [
    "CompressionPlanner",
    "SpacePlan",
    "check_compression_config",
    "device_space",
    "is_compression_plan",
    "measurer_spec",
    "parse_policy_options",
    "policy_summary",
]
