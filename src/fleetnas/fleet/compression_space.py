"""What a compressed plan builds once per space (issue 17): the candidates a device can run,
their accuracy and its source (``table``, ``modelled``, ``measured``, ``evaluator:...``), and the
simulator's (or APQ's bit-operations) latency/energy of them; the policy options of ``--precisions``
and ``--widths``. Used by :class:`fleetnas.fleet.compression.CompressionPlanner`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.fleet.tasks import PlanConfig

#: Sample of base designs of a base space too large to enumerate.
BASE_SAMPLE = 2000
#: Sample of APQ designs.
APQ_SAMPLE = 20_000
#: Accuracy sources of ``--accuracy-source`` (``evaluator:pkg.mod:fn`` / ``cmd:...`` too).
SOURCES = ("modelled", "measured")
#: Designs an evaluator scores per space (the modelled front's best).
EVALUATOR_DESIGNS = 64


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


__all__ = ["SpacePlan", "parse_policy_options"]
