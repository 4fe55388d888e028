"""Accuracy of compressed designs from three labelled sources; never invented silently.

Every source has ``predict(X) -> n`` accuracies (%) and an :attr:`accuracy_source` label that a
plan entry and a report carry along:

- :class:`MeasuredAccuracy` (``"measured"``): the user's own measured accuracies, imported
  through the exchange format (metric ``accuracy`` on the compressed design's native string,
  e.g. ``...@q=int8;w=1,0.5,1``) and read back from the store. A design without a value is an
  error naming it, not a guess.
- :class:`EvaluatorAccuracy` (``"evaluator:<target>"``): a user evaluator, either a Python
  callable ``"package.module:function"`` taking the native string and returning a number, or
  a shell command (``"cmd:..."``; ``{design}`` is replaced by the quoted string, otherwise the
  string arrives on stdin) whose last stdout line is the accuracy. Nothing returned, a
  non-number, a failing command: one :class:`~fleetnas.errors.InputError` line.
- :class:`ModelledAccuracy` (``"modelled"``): the uncompressed design's accuracy (a table or
  predictor of the base space; for ``apq`` a MACs model) minus :class:`SensitivityModel`'s
  per-layer penalties for bits and width. Its parameters come from published results:

  * width (pruning): ``width_slope = 6.0`` points of top-1 per e-fold of MACs removed, the
    slope of MobileNetV2's width-multiplier family on ImageNet (Sandler et al., CVPR 2018;
    the released TF-Slim checkpoints: 1.0x 72.0 % at 300 M MACs, 0.75x 69.8 % at 209 M, 0.5x
    65.4 % at 97 M: 2.2 / ln(300/209) = 6.1 and 6.6 / ln(300/97) = 5.8);
  * bits: the drop of uniform W/A quantization of MobileNetV2 with quantization-aware
    fine-tuning as HAQ reports its PACT baseline (Wang et al., CVPR 2019, Table 3: 72.05 %
    fp32, 71.25 % at 6 bits, 61.39 % at 4 bits; 8 bits is within a few tenths, taken as
    0.3), so ``bit_drop = {32: 0, 16: 0, 8: 0.3, 6: 0.8, 4: 10.7}`` points for a whole
    network at ``b`` bits. A layer holding a share ``s`` of the MACs at ``w``-bit weights and
    ``a``-bit activations costs ``s * (bit_drop[w] + bit_drop[a]) / 2``; the sum over layers
    gives back the uniform numbers for a uniform policy (fixed fp32 parts cost nothing);
  * ``apq`` base accuracy: ``72.0 + width_slope * ln(MACs / 300e6)`` (the same MobileNetV2
    family anchor: APQ's space is MobileNetV2-like MBConv blocks), as APQ's own accuracy
    predictor is not public in a reachable form.

  These are a model, not a measurement: every value from it is labelled ``"modelled"``. Other
  parameters are one constructor argument away.
"""

from __future__ import annotations

import importlib
import math
import shlex
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fleetnas.errors import FleetnasError, InputError, UnknownNameError
from fleetnas.spaces import SearchSpace
from fleetnas.spaces.apq import (
    BITS,
    DW_A,
    DW_W,
    KS,
    KS_COLS,
    MID_CHOICES,
    MID_COLS,
    N_LAYERS,
    PW_A,
    PW_W,
    SHAPES,
    APQSpace,
)
from fleetnas.spaces.compression import CompressedSpace

ACCURACY_METRIC = "accuracy"
DEFAULT_BIT_DROP: Mapping[int, float] = {32: 0.0, 16: 0.0, 8: 0.3, 6: 0.8, 4: 10.7}


@dataclass(frozen=True)
class SensitivityModel:
    """Per-layer accuracy penalties (points of top-1) for bits and width; see the module
    docstring for where the defaults come from."""

    width_slope: float = 6.0
    bit_drop: Mapping[int, float] = field(default_factory=lambda: dict(DEFAULT_BIT_DROP))
    mac_anchor: float = 300e6
    acc_anchor: float = 72.0

    def drop_of_bits(self, bits: np.ndarray) -> np.ndarray:
        """Penalty of a whole network at ``bits`` (array of ints), looked up."""
        b = np.asarray(bits)
        unknown = sorted(set(np.unique(b).tolist()) - set(self.bit_drop))
        if unknown:
            raise InputError(
                f"the sensitivity model has no penalty for {unknown[0]}-bit tensors; known: "
                f"{', '.join(map(str, sorted(self.bit_drop)))}"
            )
        keys = np.array(sorted(self.bit_drop))
        vals = np.array([self.bit_drop[k] for k in keys], dtype=float)
        return vals[np.searchsorted(keys, b)]

    def quant_drop(self, shares: np.ndarray, w_bits: np.ndarray, a_bits: np.ndarray) -> np.ndarray:
        """``n`` penalties: ``sum_l share_l * (drop(w_l) + drop(a_l)) / 2`` (``n x L`` inputs)."""
        per = 0.5 * (self.drop_of_bits(w_bits) + self.drop_of_bits(a_bits))
        return (np.asarray(shares) * per).sum(axis=1)

    def width_drop(self, mac_ratio: np.ndarray) -> np.ndarray:
        """``n`` penalties of pruning to ``mac_ratio`` (pruned MACs / unpruned MACs)."""
        r = np.asarray(mac_ratio, dtype=float)
        return self.width_slope * -np.log(np.clip(r, 1e-12, None))

    def macs_accuracy(self, macs: np.ndarray) -> np.ndarray:
        """The MobileNetV2-family accuracy of a float network of ``macs`` multiply-adds."""
        return self.acc_anchor + self.width_slope * np.log(np.asarray(macs) / self.mac_anchor)


class ModelledAccuracy:
    """Uncompressed accuracy minus :class:`SensitivityModel` penalties, labelled "modelled".

    ``space``: a :class:`~fleetnas.spaces.compression.CompressedSpace` (then ``base`` is needed:
    a callable or predictor giving the base design's accuracy, e.g. ``TableLookup`` of
    NAS-Bench-201 or OFA's released predictor) or the ``apq`` space (``base`` optional; the
    default is the MACs model).
    """

    accuracy_source = "modelled"

    def __init__(
        self,
        space: SearchSpace,
        base: Any = None,
        model: SensitivityModel | None = None,
    ) -> None:
        if not isinstance(space, CompressedSpace | APQSpace):
            raise InputError(
                f"modelled accuracy needs a compressed space (e.g. nb201+q) or apq, got "
                f"{space.name!r}"
            )
        if isinstance(space, CompressedSpace) and base is None:
            raise InputError(
                f"modelled accuracy on {space.name!r} needs the uncompressed accuracy of "
                f"{space.base.name!r} designs (a table or predictor)"
            )
        self.space, self.base, self.model = space, base, model or SensitivityModel()

    def _base_accuracy(self, archs: np.ndarray) -> np.ndarray:
        fn = self.base.predict if hasattr(self.base, "predict") else self.base
        out = np.asarray(fn(archs), dtype=float).reshape(-1)
        if out.shape[0] != len(archs) or not np.isfinite(out).all():
            raise InputError(
                "the uncompressed accuracy source returned no finite value for some designs"
            )
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        a = self.space.canonicalize(self.space.check(X))
        if a.ndim == 1:
            a = a[None, :]
        if isinstance(self.space, APQSpace):
            return self._predict_apq(a)
        return self._predict_compressed(a)

    __call__ = predict

    def _predict_compressed(self, a: np.ndarray) -> np.ndarray:
        sp: CompressedSpace = self.space  # type: ignore[assignment]
        base = sp.split(a)[0]
        acc = self._base_accuracy(base)
        w_bits, a_bits = sp.bits(a)
        pruned = sp.block_macs(a)
        shares = pruned[:, :-1] / pruned.sum(axis=1, keepdims=True)
        ratio = pruned.sum(axis=1) / sp.block_macs(a, unpruned=True).sum(axis=1)
        drop = self.model.quant_drop(shares, w_bits, a_bits) + self.model.width_drop(ratio)
        return acc - drop

    def _predict_apq(self, a: np.ndarray) -> np.ndarray:
        macs = _apq_macs(self.space, a)  # type: ignore[arg-type]
        total = macs["fixed"] + macs["pw"].sum(axis=1) + macs["dw"].sum(axis=1)
        acc = self._base_accuracy(a) if self.base is not None else self.model.macs_accuracy(total)
        b = np.asarray(BITS)
        shares = np.concatenate([macs["pw"], macs["dw"]], axis=1) / total[:, None]
        w_bits = np.concatenate([b[a[:, PW_W]], b[a[:, DW_W]]], axis=1)
        a_bits = np.concatenate([b[a[:, PW_A]], b[a[:, DW_A]]], axis=1)
        return acc - self.model.quant_drop(shares, w_bits, a_bits)


def _apq_macs(space: APQSpace, a: np.ndarray) -> dict[str, np.ndarray]:
    """MACs of active layers' point-wise pair and depth-wise conv (``n x 21`` each) and of the
    rest (``n``: fixed head and tail, residual additions), so that the three sum to the MACs of
    :meth:`APQSpace.layers`; vectorized from per-layer tables."""
    n_mid = max(len(c) for c in MID_CHOICES)
    pw = np.zeros((N_LAYERS, n_mid))
    dw = np.zeros((N_LAYERS, len(KS), n_mid))
    for i, s in enumerate(SHAPES):
        hw_out = (s["hw"] + 1) // 2 if s["stride"] == 2 else s["hw"]
        for m, mid in enumerate(MID_CHOICES[i]):
            pw[i, m] = s["c_in"] * mid * s["hw"] ** 2 + mid * s["c_out"] * hw_out**2
            for k_i, k in enumerate(KS):
                dw[i, k_i, m] = mid * k * k * hw_out**2
    zero = space.canonicalize(np.zeros((1, space.n_decisions), dtype=np.int64))
    fixed_layers = [layer for b, layer in space.block_layers(zero) if b < 0]
    fixed = float(sum(layer.macs for layer in fixed_layers))
    residual = np.array(
        [
            s["c_out"] * s["hw"] ** 2 if s["stride"] == 1 and s["c_in"] == s["c_out"] else 0
            for s in SHAPES
        ],
        dtype=float,
    )
    active = space.active_layers(a)
    layer = np.arange(N_LAYERS)[None, :]
    mid = a[:, MID_COLS]
    return {
        "pw": np.where(active, pw[layer, mid], 0.0),
        "dw": np.where(active, dw[layer, a[:, KS_COLS], mid], 0.0),
        "fixed": fixed + (active * residual[None, :]).sum(axis=1),
    }


class MeasuredAccuracy:
    """The user's measured accuracies of designs, labelled "measured".

    Build it from the store (:meth:`from_store`: metric ``accuracy`` on ``device``, as an
    exchange-format import writes them) or from ``{native string: accuracy}``.
    """

    accuracy_source = "measured"

    def __init__(self, space: SearchSpace, values: Mapping[str, float]) -> None:
        self.space = space
        self._values: dict[str, float] = {}
        for text, v in values.items():
            key = space.format(space.parse(text))
            if not isinstance(v, int | float) or not math.isfinite(float(v)):
                raise InputError(f"measured accuracy of {key!r} is {v!r}, not a finite number")
            self._values[key] = float(v)

    @classmethod
    def from_store(
        cls,
        store: Any,
        space: SearchSpace,
        device: str = "none",
        metric: str = ACCURACY_METRIC,
        statistic: str = "median",
    ) -> MeasuredAccuracy:
        try:
            archs, values = store.get_measurements(space, device, metric, statistic)
        except UnknownNameError:
            archs = np.zeros((0, space.n_decisions), dtype=np.int64)
        if len(archs) == 0:
            raise InputError(
                f"the store holds no {metric!r} ({statistic}) of {space.name!r} designs on device "
                f"{device!r}; import them with `fleetnas data import <file>` (exchange format)"
            )
        return cls(space, dict(zip(space.format_many(archs), values.tolist(), strict=True)))

    def __len__(self) -> int:
        return len(self._values)

    def predict(self, X: np.ndarray) -> np.ndarray:
        keys = self.space.format_many(self.space.canonicalize(self.space.check(X)))
        missing = [k for k in keys if k not in self._values]
        if missing:
            raise InputError(
                f"no measured accuracy for {len(missing)} design(s), e.g. {missing[0]!r}; "
                "measure and import them, or use an evaluator or the modelled source"
            )
        return np.array([self._values[k] for k in keys])

    __call__ = predict


class EvaluatorAccuracy:
    """A user evaluator returning the accuracy of one design string, labelled
    ``"evaluator:<target>"``: ``"module:function"`` or ``"cmd:<shell command>"``."""

    def __init__(
        self, space: SearchSpace, target: str | Callable[[str], Any], timeout_s: float = 600
    ) -> None:
        self.space, self.timeout_s = space, float(timeout_s)
        if callable(target):
            self._fn, self.target = target, getattr(target, "__name__", "callable")
        elif isinstance(target, str) and target.startswith("cmd:"):
            self.target, self._fn = target, self._command(target[4:].strip())
        elif isinstance(target, str) and ":" in target:
            self.target, self._fn = target, _import_callable(target)
        else:
            raise InputError(
                f"accuracy evaluator {target!r} should be 'package.module:function' or "
                "'cmd:<shell command>'"
            )
        self.accuracy_source = f"evaluator:{self.target}"

    def _command(self, cmd: str) -> Callable[[str], str]:
        if not cmd:
            raise InputError("accuracy evaluator 'cmd:' needs a command")

        def run(design: str) -> str:
            line = cmd.replace("{design}", shlex.quote(design))
            stdin = None if "{design}" in cmd else design
            try:
                done = subprocess.run(
                    line, shell=True, input=stdin, capture_output=True, text=True,
                    timeout=self.timeout_s, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise InputError(
                    f"accuracy evaluator {cmd!r} ran past {self.timeout_s:g} s"
                ) from None
            if done.returncode != 0:
                tail = (done.stderr.strip().splitlines() or [""])[-1][:200]
                raise InputError(
                    f"accuracy evaluator {cmd!r} exited with {done.returncode}: {tail}"
                )
            lines = done.stdout.strip().splitlines()
            return lines[-1] if lines else ""

        return run

    def evaluate(self, design: str) -> float:
        """The accuracy of one native string (checked: a finite number)."""
        try:
            raw = self._fn(design)
        except FleetnasError:
            raise
        except Exception as exc:
            raise InputError(
                f"accuracy evaluator {self.target!r} failed on {design[:80]!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = float("nan")
        if raw is None or (isinstance(raw, str) and not raw.strip()) or not math.isfinite(value):
            raise InputError(
                f"accuracy evaluator {self.target!r} returned {raw!r} for {design[:80]!r}; "
                "expected one finite number (accuracy in %)"
            )
        return value

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.array([self.evaluate(s) for s in self.space.format_many(self.space.check(X))])

    __call__ = predict


def _import_callable(target: str) -> Callable[[str], Any]:
    module, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"cannot load accuracy evaluator {target!r}: {exc}") from None
    if not callable(obj):
        raise InputError(f"accuracy evaluator {target!r} is not callable")
    return obj


__all__ = [
    "ACCURACY_METRIC",
    "EvaluatorAccuracy",
    "MeasuredAccuracy",
    "ModelledAccuracy",
    "SensitivityModel",
]
