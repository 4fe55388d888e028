"""NAS-Bench-201 / NATS-Bench test accuracies (``nats/nats_bench.csv``) into the store.

The CSV has one row per architecture in official index order with the test accuracy (%) after
200 epochs, averaged over seeds, on CIFAR-10, CIFAR-100 and ImageNet16-120. Accuracy does not
depend on the device, so it is stored on the pseudo-device :data:`ACCURACY_DEVICE` (family
``other``) with metric ``accuracy_<dataset>``, unit ``%``, statistic ``mean``, method
``nats-bench``, ``is_estimate`` false.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from fleetnas.data.common import ImportReport, completed_configs, data_path, run_key
from fleetnas.data.manifest import get_file
from fleetnas.devices import Device
from fleetnas.errors import DataError, InputError, UnknownNameError, unknown
from fleetnas.spaces import SearchSpace, get_space
from fleetnas.store.base import MeasurementBatch, Store

CSV = "nats/nats_bench.csv"
RUN_KIND = "import-nats"
#: The pseudo-device that carries device-independent metrics such as accuracy.
ACCURACY_DEVICE = "none"
UNIT, STATISTIC, METHOD = "%", "mean", "nats-bench"
#: Dataset name -> CSV column.
DATASETS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "imagenet16": "ImageNetTestAccuracy200Epochs",
}
ARCH_COLUMN = "ArchitectureString"
N_ARCHS = 15_625


def accuracy_metric(dataset: str) -> str:
    """``accuracy_<dataset>`` for a dataset of :data:`DATASETS`."""
    if dataset not in DATASETS:
        raise unknown("NAS-Bench-201 dataset", dataset, list(DATASETS))
    return f"accuracy_{dataset}"


def accuracy_device() -> Device:
    return Device(
        ACCURACY_DEVICE,
        "other",
        {},
        description="device-independent metrics (accuracy on a dataset)",
    )


def read_nats(data_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The CSV as a frame: ``architecture`` plus one ``accuracy_<dataset>`` column (%)."""
    path = data_path(data_dir, CSV)
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    need = [ARCH_COLUMN, *DATASETS.values()]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: missing column {missing[0]!r}; expected columns {need}")
    if len(raw) != N_ARCHS:
        raise DataError(f"{path}: {len(raw)} rows, expected {N_ARCHS} (one per architecture)")
    out = pd.DataFrame({"architecture": raw[ARCH_COLUMN].astype(str)})
    for name, col in DATASETS.items():
        values = pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=float)
        bad = ~(np.isfinite(values) & (values >= 0) & (values <= 100))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: line {i + 2}, column {col}: {raw[col].iloc[i]!r} is not an accuracy "
                f"in % (0..100)"
            )
        out[accuracy_metric(name)] = values
    return out


def parse_archs(space: SearchSpace, texts: Sequence[str], where: str) -> np.ndarray:
    try:
        return space.parse_many(list(texts))
    except InputError as exc:
        raise DataError(f"{where}: {exc}") from None


def import_nats(
    store: Store,
    data_dir: str | os.PathLike[str] | None = None,
    datasets: Sequence[str] | None = None,
) -> ImportReport:
    """Import the accuracies of ``datasets`` (default all three); idempotent, one run."""
    wanted = list(DATASETS) if datasets is None else list(dict.fromkeys(datasets))
    for d in wanted:
        accuracy_metric(d)
    done = {d for c in completed_configs(store, RUN_KIND) for d in c.get("datasets", ())}
    todo = [d for d in wanted if d not in done]
    if not todo:
        return ImportReport("nats", "nb201", skipped=True)
    frame = read_nats(data_dir)
    space = get_space("nb201")
    archs = parse_archs(space, frame["architecture"].tolist(), CSV)
    config = {"datasets": todo, "files": {CSV: get_file(CSV).sha256}}
    report = ImportReport("nats", "nb201", devices=[ACCURACY_DEVICE])
    with store.run(RUN_KIND, config, key=run_key(RUN_KIND, config)) as run:
        run.add_device(accuracy_device())
        for d in todo:
            report.rows += run.add_measurements(
                MeasurementBatch(
                    space=space,
                    archs=archs,
                    device=ACCURACY_DEVICE,
                    metric=accuracy_metric(d),
                    values=frame[accuracy_metric(d)].to_numpy(),
                    unit=UNIT,
                    statistic=STATISTIC,
                    n=1,
                    method=METHOD,
                    is_estimate=False,
                )
            )
        report.run_id = run.info.id
    return report


def get_accuracy(
    store: Store, dataset: str = "cifar10", archs: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(archs n x 6, accuracy % n)`` of NAS-Bench-201 stored by :func:`import_nats`;
    :class:`DataError` when the store has none (with the command that imports them)."""
    metric = accuracy_metric(dataset)
    try:
        found = store.get_measurements(
            get_space("nb201"), ACCURACY_DEVICE, metric, STATISTIC, archs=archs
        )
    except UnknownNameError:
        found = (np.zeros((0, 6), dtype=np.int64), np.zeros(0))
    if archs is None and len(found[1]) == 0:
        raise DataError(
            f"the store {store.safe_url} has no NAS-Bench-201 accuracies ({metric}); "
            "run `fleetnas data import nats` first"
        )
    return found
