"""End-to-end training of an Approach 2 optimizer from what the store holds (``fleetnas l2o
train``): Stage 1 (device-aware latency network on the training devices' stored latencies; the
accuracy network from the store), synthetic devices, Stage 2 (Method 1 or 2), one artifact.

Defaults: the training devices are HELP's meta-train and meta-valid devices of the space (for
spaces HELP splits), the probe designs HELP's reference designs (``data import`` stores them),
the accuracy network the NAS-Bench-201 table (``nb201``) or OFA's released predictor
(``ofa_mbv3``); other spaces need ``accuracy_predictor`` (a stored predictor artifact).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError, UnknownNameError
from fleetnas.l2o import method1, method2, synthetic
from fleetnas.l2o.artifact import save_optimizer
from fleetnas.l2o.embed import stored_values
from fleetnas.l2o.features import DeviceSet, FeatureSpec, spec_features
from fleetnas.l2o.generate import L2OOptimizer
from fleetnas.l2o.network import OptimizerNet
from fleetnas.l2o.objective import PredictedObjective
from fleetnas.spaces import SearchSpace, get_space

if TYPE_CHECKING:
    from fleetnas.store import Store


@dataclass
class TrainConfig:
    """Settings of :func:`train_optimizer` (see the module docstring for the defaults)."""

    space: str
    name: str
    method: int = 1
    features: str = "probes"
    devices: Sequence[str] | None = None
    synthetic: int = 150
    members: int = 1
    hidden: Sequence[int] = (256, 256)
    epochs: int = 60
    steps: int = 3000
    relaxation: str = "reinforce"
    n_lambda: int = 40
    t_max: float = 0.97
    accuracy_predictor: str | None = None
    latency_predictor: str | None = None
    dataset: str = "cifar10"
    predictor_epochs: int = 40
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if self.method not in (1, 2):
            raise InputError(f"method must be 1 (eq. 9, labels) or 2 (eq. 10), got {self.method}")
        if self.synthetic < 0 or self.members < 1 or self.n_lambda < 2:
            raise InputError("need synthetic >= 0, members >= 1 and n_lambda >= 2")


def lambda_grid(n: int, t_max: float = 0.97) -> np.ndarray:
    """``n`` latency weights λ2 whose ``t = λ2 / (1 + λ2)`` are evenly spaced in
    ``[0, t_max]`` (Method 1's ``Λ_T``)."""
    t = np.linspace(0.0, t_max, n)
    return t / (1.0 - t)


def default_devices(space: SearchSpace) -> list[str]:
    from fleetnas.devices.catalog import help_split

    try:
        split = help_split(space.name)
    except (InputError, UnknownNameError):
        raise InputError(
            f"space {space.name!r} has no default training devices; name them with --devices"
        ) from None
    return [*split["train"], *split["valid"]]


def store_training_data(
    store: Store, space: SearchSpace, names: Sequence[str], probes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, DeviceSet]:
    """``(designs n x D, latencies n x m with NaN where unmeasured, devices)`` of the stored
    latencies of ``names``; each device must have its probe designs measured."""
    from fleetnas.l2o.embed import STATISTICS

    per_dev: list[dict[bytes, float]] = []
    order: dict[bytes, np.ndarray] = {}
    for dev in names:
        got: dict[bytes, float] = {}
        for stat in STATISTICS:
            try:
                a, v = store.get_measurements(space, dev, "latency", stat)
            except UnknownNameError:
                raise InputError(f"device {dev!r} is not in the store") from None
            for row, val in zip(a, v, strict=True):
                got.setdefault(row.tobytes(), float(val))
                order.setdefault(row.tobytes(), row)
        if not got:
            raise InputError(f"device {dev!r} has no stored latency for space {space.name!r}")
        per_dev.append(got)
    keys = list(order)
    archs = np.stack([order[k] for k in keys])
    values = np.array([[d.get(k, np.nan) for d in per_dev] for k in keys], dtype=float)
    feats = np.stack([stored_values(store, space, dev, probes) for dev in names])
    bad = ~np.all(np.isfinite(feats), axis=1)
    if bad.any():
        raise InputError(
            f"device {names[int(np.flatnonzero(bad)[0])]!r} lacks latencies of the probe designs"
        )
    records = [store.get_device(n) for n in names]
    return archs, values, DeviceSet(list(names), probes=feats, spec=spec_features(records))


def _accuracy(store: Store, space: SearchSpace, cfg: TrainConfig) -> tuple[Any, bool]:
    """The accuracy network and whether it is new (to be saved with the optimizer)."""
    from fleetnas.predict import OFAAccuracyPredictor, TableLookup, load_predictor

    if cfg.accuracy_predictor:
        return load_predictor(store, cfg.accuracy_predictor, space), False
    if space.name == "nb201":
        return TableLookup.nb201_accuracy(cfg.dataset, store=store), True
    if space.name == "ofa_mbv3":
        return OFAAccuracyPredictor.from_store(store), True
    raise InputError(
        f"no default accuracy predictor for space {space.name!r}; store one and pass its name "
        "with --accuracy-predictor"
    )


def synthetic_devices(
    space: SearchSpace, real: DeviceSet, probes: np.ndarray, n: int, seed: int
) -> DeviceSet:
    """``n`` synthetic devices: a third from the simulator's families, a third interpolated
    between real devices, the rest perturbed real devices."""
    if n == 0:
        return DeviceSet([])
    rng = np.random.default_rng(seed)
    k = n // 3
    parts = [synthetic.simulated_devices(space, probes, k, rng)]
    if len(real) >= 2:
        parts.append(synthetic.interpolated_devices(real, k, rng))
    parts.append(synthetic.perturbed_devices(real, n - sum(len(p) for p in parts), rng))
    return DeviceSet.concat(parts)


def train_optimizer(
    store: Store, cfg: TrainConfig, progress: Callable[[str], None] | None = None
) -> tuple[L2OOptimizer, dict[str, Any]]:
    """Train and store an optimizer (artifact ``cfg.name``); returns it and a report."""
    from fleetnas.data import reference_archs
    from fleetnas.predict import DeviceAwarePredictor, load_predictor

    cfg.check()
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    space = get_space(cfg.space)
    names = list(cfg.devices) if cfg.devices else default_devices(space)
    if cfg.latency_predictor:
        lat_pred = load_predictor(store, cfg.latency_predictor, space)
        probes = getattr(lat_pred, "probes", None)
        if probes is None:
            raise InputError(f"latency predictor {cfg.latency_predictor!r} has no probe designs")
        probes = space.check(probes)
    else:
        try:
            probes = reference_archs(store, space)
        except UnknownNameError:
            raise InputError(
                f"the store has no reference designs for {space.name!r}; run `fleetnas data "
                "import` first"
            ) from None
    archs, values, real = store_training_data(store, space, names, probes)
    say(f"{len(names)} training devices, {len(archs)} designs")
    new_roles = ["accuracy"]
    if not cfg.latency_predictor:
        ok = np.isfinite(values)
        rows, cols = np.nonzero(ok)
        lat_pred = DeviceAwarePredictor(
            space, probes=probes, features="probes", epochs=cfg.predictor_epochs, seed=cfg.seed
        )
        lat_pred.fit(archs[rows], real.probes[cols], values[rows, cols])
        new_roles.append("latency")
        say(f"latency network fitted ({time.perf_counter() - t0:.1f} s)")
    acc_pred, acc_new = _accuracy(store, space, cfg)
    if not acc_new:
        new_roles.remove("accuracy")
    objective = PredictedObjective(space, acc_pred, lat_pred, seed=cfg.seed)
    devices = DeviceSet.concat(
        [real, synthetic_devices(space, real, probes, cfg.synthetic, cfg.seed)]
    )
    scales = objective.scales(devices)
    spec = FeatureSpec(cfg.features).fit(devices)
    net = OptimizerNet(space, spec, cfg.hidden, cfg.members, cfg.seed)
    if cfg.method == 1:
        lam = lambda_grid(cfg.n_lambda, cfg.t_max)
        if space.size <= 200_000:
            labels = method1.exhaustive_labels(objective, devices, lam, scales)
        else:
            labels = method1.evolution_labels(objective, devices, lam, scales, seed=cfg.seed)
        say(f"labels for {len(devices)} devices x {len(lam)} λ ({time.perf_counter() - t0:.1f} s)")
        hist = method1.train_method1(
            net, devices, lam, labels, method1.Method1Config(epochs=cfg.epochs, seed=cfg.seed)
        )
    else:
        hist = method2.train_method2(
            net,
            objective,
            devices,
            scales,
            method2.Method2Config(
                steps=cfg.steps, relaxation=cfg.relaxation, t_max=cfg.t_max, seed=cfg.seed
            ),
        )
    opt = L2OOptimizer(net, objective, name=cfg.name, probes=probes)
    pnames = {
        "accuracy": cfg.accuracy_predictor or f"{cfg.name}/accuracy",
        "latency": cfg.latency_predictor or f"{cfg.name}/latency",
    }
    report = {
        "name": cfg.name,
        "space": space.name,
        "devices": names,
        "synthetic": cfg.synthetic,
        "designs": len(archs),
        "predictors": pnames,
        "config": {k: v for k, v in asdict(cfg).items() if k != "extra"},
        "train": {k: v for k, v in hist.items() if k != "loss"},
        "seconds": time.perf_counter() - t0,
    }
    report["sha256"] = save_optimizer(
        store,
        cfg.name,
        opt,
        pnames,
        save_predictors=tuple(new_roles),
        extra_meta={"report": report},
    )
    say(f"stored optimizer {cfg.name!r} ({report['seconds']:.1f} s)")
    return opt, report


__all__ = [
    "TrainConfig",
    "default_devices",
    "lambda_grid",
    "store_training_data",
    "synthetic_devices",
    "train_optimizer",
]
