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
3. measures two probes per precision the device runs and scales the proxy per precision by the
   geometric mean of measured / proxy: the latency order is *not* shared across compression
   (int8 is faster than fp32 on one stack and slower on another), so one calibration for all
   precisions would misplace a whole precision's designs;
4. verifies the accuracy/latency front of the calibrated proxy with
   :func:`fleetnas.proxy.verify_candidates` (bisection; feasibility only from measured values,
   so a measured device never gets a design over its budget).

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
from fleetnas.fleet.planner import Planner, task_done
from fleetnas.fleet.session import capture_writes
from fleetnas.fleet.tasks import ChunkOutput, PlanConfig, Task, fail, new_entry

#: Sample of base designs of a base space too large to enumerate.
BASE_SAMPLE = 2000
#: Sample of APQ designs.
APQ_SAMPLE = 20_000
#: Probes per precision the device runs.
PROBES_PER_PRECISION = 2
#: Measurements per entry when the config sets no cap.
DEFAULT_CAP = 12
#: Accuracy sources of ``--accuracy-source`` (``evaluator:pkg.mod:fn`` / ``cmd:...`` too).
SOURCES = ("modelled", "measured")
#: Designs an evaluator scores per space (the modelled front's best).
EVALUATOR_DESIGNS = 64


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


def parse_policy_options(
    space: Any, precisions: str | None, widths: str | None
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The precisions and width ratios a plan may choose (``None``: all of the space); an
    unknown precision or a width outside the space is one :class:`InputError`."""
    if not hasattr(space, "precisions"):  # apq: its own bit-widths, options do not apply
        return (), ()
    ps = tuple(space.precisions)
    ws = tuple(space.widths)
    if precisions:
        want = tuple(p.strip() for p in precisions.split(",") if p.strip())
        bad = [p for p in want if p not in ps]
        if bad or not want:
            raise InputError(
                f"--precisions: unknown precision {', '.join(bad) or repr(precisions)} for "
                f"{space.name!r}; expected some of {', '.join(ps)}"
            )
        ps = want
    if widths:
        try:
            want_w = tuple(float(w) for w in widths.split(",") if w.strip())
        except ValueError:
            raise InputError(f"--widths: expected numbers like 1,0.5, got {widths!r}") from None
        bad_w = [w for w in want_w if w not in ws]
        if bad_w or not want_w:
            raise InputError(
                f"--widths: width ratio {', '.join(f'{w:g}' for w in bad_w) or repr(widths)} is "
                f"not in {space.name!r}; expected some of {', '.join(f'{w:g}' for w in ws)}"
            )
        ws = want_w
    return ps, ws


class SpacePlan:
    """What one process builds once per space of a compressed plan: candidates, their
    accuracy and its source, and the proxy's latency/energy."""

    def __init__(
        self, space_name: str, config: PlanConfig, store: Any, source: str | None = None
    ) -> None:
        from fleetnas.spaces import get_space

        self.space = get_space(space_name)
        self.config = config
        self.store = store
        self.precisions, self.widths = parse_policy_options(
            self.space, config.precisions, config.widths
        )
        self.source = source or config.accuracy_source
        self._modelled: Any = None
        self._sample: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.source_label = self._check_source()

    # ---- candidates -------------------------------------------------------------------------
    def pool(self, measurer: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(candidates n x D, accuracy n, accuracy_source n)`` a device can run: designs of its
        tables times its precisions (``ptable``), else a seeded sample times the policies."""
        if self.source_label == "measured":
            texts = sorted(self._source._values)
            return self._scored(np.stack([self.space.parse(t) for t in texts]))
        if hasattr(measurer, "base_designs") and hasattr(self.space, "base"):
            base = measurer.base_designs(self.space)
            precs = [p for p in self.precisions if p in measurer.precisions]
            widths = [w for w in self.widths if w == 1.0]
            return self._scored(self._policies(base, precs, widths))
        if self._sample is None:
            sp = self.space
            if sp.name == "apq":
                cand = np.unique(sp.sample(APQ_SAMPLE, self.config.seed), axis=0)
            else:
                base = sp.base  # type: ignore[attr-defined]
                archs = np.unique(base.sample(BASE_SAMPLE, self.config.seed), axis=0)
                cand = self._policies(archs, self.precisions, self.widths)
            self._sample = self._scored(cand)
        return self._sample

    def _policies(
        self, archs: np.ndarray, precs: Sequence[str], widths: Sequence[float]
    ) -> np.ndarray:
        sp = self.space
        nb = sp.n_blocks  # type: ignore[attr-defined]
        parts = [np.zeros((0, sp.n_decisions), dtype=np.int64)]
        for p in precs:
            for w in widths:
                prec = np.full((len(archs), nb), sp.precisions.index(p), dtype=np.int64)  # type: ignore[attr-defined]
                width = np.full((len(archs), nb), sp.widths.index(w), dtype=np.int64)  # type: ignore[attr-defined]
                parts.append(sp.join(archs, prec, width))  # type: ignore[attr-defined]
        return sp.canonicalize(np.concatenate(parts))  # type: ignore[attr-defined]

    def _scored(self, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        acc, cand = self._accuracy(cand)
        keep = np.isfinite(acc)
        cand, acc = cand[keep], acc[keep]
        labels = np.full(len(cand), self.source_label, dtype=object)
        if self.source_label == "modelled" and self.base_label == "table":
            labels[self._uncompressed(cand)] = "table"
        return cand, acc, labels.astype(str)

    def _uncompressed(self, archs: np.ndarray) -> np.ndarray:
        if not hasattr(self.space, "precisions"):
            return np.zeros(len(archs), dtype=bool)
        _, prec, width = self.space.split(archs)  # type: ignore[attr-defined]
        fp32 = self.space.precisions.index("fp32") if "fp32" in self.space.precisions else -1  # type: ignore[attr-defined]
        one = self.space.widths.index(1.0) if 1.0 in self.space.widths else -1  # type: ignore[attr-defined]
        return (prec == fp32).all(axis=1) & (width == one).all(axis=1)

    # ---- accuracy ---------------------------------------------------------------------------
    def _check_source(self) -> str:
        """Build the accuracy source and score one design: a source that returns nothing is
        one clear :class:`InputError` before anything is planned."""
        from fleetnas.predict.compressed_accuracy import ModelledAccuracy

        self.base_label = "modelled"
        base = None
        if hasattr(self.space, "base"):
            from fleetnas.fleet.ground_truth import _accuracy_reference

            metric = self.config.accuracy if self.config.accuracy != "accuracy" else None
            base = _accuracy_reference(self.space.base, metric, self.store)  # type: ignore[attr-defined]
            if base is None:
                raise InputError(
                    f"no accuracy of {self.space.base.name!r} designs to build on (import "  # type: ignore[attr-defined]
                    "it first: fleetnas data import help-nasbench201 nats)"
                )
            self.base_label = "table" if self.space.base.name == "nb201" else "predictor"  # type: ignore[attr-defined]
        self._modelled = ModelledAccuracy(self.space, base=base)
        src = self.source
        if src in (None, "", "modelled"):
            self._source: Any = self._modelled
            return "modelled"
        if src == "measured":
            from fleetnas.predict.compressed_accuracy import MeasuredAccuracy

            self._source = MeasuredAccuracy.from_store(self.store, self.space)
            if not len(self._source):
                raise InputError(
                    f"accuracy source 'measured' returned nothing: the store holds no accuracy "
                    f"on {self.space.name!r} designs (import them through the exchange format)"
                )
            return "measured"
        from fleetnas.predict.compressed_accuracy import EvaluatorAccuracy

        target = src.removeprefix("evaluator:")
        self._source = EvaluatorAccuracy(self.space, target)
        probe = self.space.canonicalize(self.space.sample(1, self.config.seed))  # type: ignore[attr-defined]
        self._source.predict(probe)  # nothing returned / not a number: one InputError line
        return str(getattr(self._source, "accuracy_source", f"evaluator:{target}"))

    def _accuracy(self, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.source_label == "modelled":
            return np.asarray(self._modelled.predict(cand), dtype=float), cand
        if self.source_label == "measured":
            texts = set(self._source._values)
            keep = np.array([self.space.format(a) in texts for a in cand], dtype=bool)
            cand = cand[keep]
            return np.asarray(self._source.predict(cand), dtype=float), cand
        prior = np.asarray(self._modelled.predict(cand), dtype=float)
        top = np.argsort(-prior, kind="stable")[: EVALUATOR_DESIGNS * 4 : 4]
        cand = cand[np.sort(top)]
        return np.asarray(self._source.predict(cand), dtype=float), cand

    # ---- proxy ------------------------------------------------------------------------------
    def proxy(self, cand: np.ndarray, family: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``(latency, energy)`` of ``cand`` on the family's proxy (any monotone scale)."""
        if self.space.name == "apq":
            bitops = _apq_bitops(self.space, cand)
            return bitops, bitops
        from fleetnas.sim.generator import FAMILY_PRIORS, sample_model
        from fleetnas.sim.precision import simulate_compressed

        fam = family if family in FAMILY_PRIORS else "desktop_cpu"
        model = sample_model(fam, seed, batch_size=1, precision="fp32")
        model = model.with_(family=family) if family != fam else model
        lat, en = simulate_compressed(model, self.space, cand)
        return lat, en  # type: ignore[return-value]

    def precision_of(self, cand: np.ndarray) -> np.ndarray:
        """Per candidate its one precision (``""``: mixed); APQ designs are one group."""
        if not hasattr(self.space, "precisions"):
            return np.full(len(cand), "bits", dtype=object).astype(str)
        from fleetnas.measure.precision_table import _uniform

        return _uniform(self.space, cand)[0]


def _apq_bitops(space: Any, archs: np.ndarray) -> np.ndarray:
    """``sum_l MACs_l * w_l * a_l`` of APQ designs (BitFusion's cost grows with bit products)."""
    from fleetnas.predict.compressed_accuracy import _apq_macs
    from fleetnas.spaces.apq import BITS, DW_A, DW_W, PW_A, PW_W

    a = space.canonicalize(archs)
    parts = _apq_macs(space, a)
    bits = np.asarray(BITS, dtype=float)
    pw = parts["pw"] * bits[a[:, PW_W]] * bits[a[:, PW_A]]
    dw = parts["dw"] * bits[a[:, DW_W]] * bits[a[:, DW_A]]
    return pw.sum(axis=1) + dw.sum(axis=1) + 64.0 * parts["fixed"]


class CompressionPlanner(Planner):
    """The planner of compressed plans (module docstring); built like
    :class:`~fleetnas.fleet.planner.FleetPlanner` in the driver, shipped to workers whole."""

    def __init__(self, config: PlanConfig, store: Any = None, reuse: bool = True) -> None:
        super().__init__(config)
        self.reuse = reuse
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
        """Check what every entry shares: the policy options and each space's accuracy."""
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
        probe0 = (session.cost.measurements, session.cost.device_seconds)
        scale_l, scale_e, probe_trace = self._calibrate(session, cand, groups, p_lat, p_en)
        entries[0]["measurements_probe"] = session.cost.measurements - probe0[0]
        cal_l = p_lat * np.array([scale_l.get(g, np.nan) for g in groups])
        cal_e = p_en * np.array([scale_e.get(g, np.nan) for g in groups])
        live = np.isfinite(cal_l)
        cap = self.config.max_measurements or DEFAULT_CAP
        for e in entries[1:]:
            e["measurements_probe"] = 0
        for task, e in zip(tasks, entries, strict=True):
            self._plan_budget(task, e, sp, session, cand[live], acc[live], labels[live],
                              cal_l[live], cal_e[live] if with_energy else None, cap,
                              probe_trace, scale_l)  # fmt: skip

    def _calibrate(
        self,
        session: Any,
        cand: np.ndarray,
        groups: np.ndarray,
        p_lat: np.ndarray,
        p_en: np.ndarray,
    ) -> tuple[dict[str, float], dict[str, float], list[dict[str, Any]]]:
        """Per precision group: measure probes at the 30th/70th percentile of the proxy's
        latency and take the geometric mean of measured / proxy (latency and energy)."""
        scale_l: dict[str, float] = {}
        scale_e: dict[str, float] = {}
        trace: list[dict[str, Any]] = []
        for g in sorted(set(groups)):
            idx = np.flatnonzero(groups == g)
            order = idx[np.argsort(p_lat[idx], kind="stable")]
            qs = np.linspace(0.3, 0.7, PROBES_PER_PRECISION)
            picks = order[np.unique((qs * (len(order) - 1)).round().astype(int))]
            vals = session.measure(cand[picks])
            good = np.isfinite(vals[:, 0])
            for k, v in zip(picks, vals, strict=True):
                trace.append({
                    "phase": "probe", "precision": g, "arch": session.space.format(cand[k]),
                    "latency": float(v[0]), "predicted": float(p_lat[k]),
                })  # fmt: skip
            if not good.any():
                continue
            scale_l[g] = float(np.exp(np.mean(np.log(vals[good, 0] / p_lat[picks][good]))))
            if vals.shape[1] > 1:
                scale_e[g] = float(np.exp(np.mean(np.log(vals[good, 1] / p_en[picks][good]))))
        return scale_l, scale_e, trace

    def _plan_budget(
        self,
        task: Task,
        e: dict[str, Any],
        sp: SpacePlan,
        session: Any,
        cand: np.ndarray,
        acc: np.ndarray,
        labels: np.ndarray,
        cal_l: np.ndarray,
        cal_e: np.ndarray | None,
        cap: int,
        probe_trace: list[dict[str, Any]],
        scale_l: dict[str, float],
    ) -> None:
        from fleetnas.proxy.verify import cost_mark, spent_since, verify_candidates
        from fleetnas.search.pareto import pareto_front

        b = task.budget
        if b.relative:
            fail(e, "relative budgets (pNN) are not supported in compressed plans; give ms/mJ")
            return
        lat_b = b.latency.value if b.latency is not None else float("inf")
        en_b = b.energy.value if b.energy is not None else None
        if not np.isfinite(lat_b):
            lat_b = float(np.nanmax(cal_l)) * 1e6
        front = pareto_front(acc, cal_l)
        if cal_e is not None:
            front = np.unique(np.concatenate([front, pareto_front(acc, cal_e)]))
        front = front[np.argsort(cal_l[front], kind="stable")]
        under = np.flatnonzero(cal_l[front] <= lat_b)
        start = int(under[-1]) if len(under) else 0
        mark = cost_mark(session)
        before = session.cost.measurements
        sel = verify_candidates(
            sp.space, cand[front], session, lat_b, en_b, accuracy=acc[front],
            proxy_latency=cal_l[front], proxy_energy=None if cal_e is None else cal_e[front],
            max_measurements=cap, start=start,
        )  # fmt: skip
        spent = spent_since(session, mark)
        e["measurements"] = session.cost.measurements - before + e.get("measurements_probe", 0)
        e["device_seconds"] = float(spent.get("device_seconds", 0.0))
        e["trace"] = [*probe_trace, *(s.to_dict() for s in sel.trace)]
        if sel.arch is None:
            fail(e, "no candidate could be measured on this device")
            return
        i = int(front[sel.index]) if sel.index >= 0 else int(np.argmax(acc))
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
        e["proxy"] = f"sim:{task.device.family}" if sp.space.name != "apq" else "bitops"
        e["compression"] = policy_summary(sp.space, sel.arch, scale_l)
        e["reason"] = None if sel.ok else "no measured design meets the budget"


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
