"""Public datasets in and out: download with checksums, importers, the open exchange format.

``import_all(store)`` imports every public dataset found in the data folder (HELP latencies of
the three spaces, NAS-Bench-201 accuracies, OFA / ProxylessNAS assets), skipping what the store
already holds; ``datasets(store)`` lists what is imported (``fleetnas data list``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from fleetnas import paths
from fleetnas.data.common import ImportReport
from fleetnas.data.download import FetchResult, download, resolve_data_dir, verify
from fleetnas.data.exchange import export_table, import_table, read_table, write_table
from fleetnas.data.help import import_help, reference_archs
from fleetnas.data.manifest import FILES, GROUPS, DataFile
from fleetnas.data.nats import ACCURACY_DEVICE, accuracy_metric, get_accuracy, import_nats
from fleetnas.data.ofa_assets import (
    import_ofa_assets,
    read_acc_predictor,
    read_lut,
    read_specialized_subnets,
)
from fleetnas.errors import DataError, unknown
from fleetnas.store.base import Store

#: Importable parts, in import order (manifest groups; ``ofa`` includes ``proxylessnas``).
PARTS = ("help-nasbench201", "help-fbnet", "help-ofa", "nats", "ofa")
_HELP_SPACE = {"help-nasbench201": "nb201", "help-fbnet": "fbnet", "help-ofa": "ofa_mbv3"}


def part_files(part: str) -> list[str]:
    """Data files (relative paths) an importer of ``part`` reads."""
    if part not in PARTS:
        raise unknown("data part", part, list(PARTS))
    groups = {"ofa", "proxylessnas"} if part == "ofa" else {part}
    files = [f.path for f in FILES if f.group in groups]
    if part.startswith("help-"):
        files = [p for p in files if "/architecture_config/" not in p and p.endswith(".pt")]
        files = [p for p in files if not p.endswith("/metainfo.pt")]
    return files


def available_parts(data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Parts whose files are all present in the data folder."""
    root = paths.data_dir(data_dir)
    return [p for p in PARTS if all((root / f).is_file() for f in part_files(p))]


def import_all(
    store: Store,
    data_dir: str | os.PathLike[str] | None = None,
    parts: Sequence[str] | None = None,
    progress: Callable[[str, ImportReport], None] | None = None,
) -> dict[str, ImportReport]:
    """Import ``parts`` (default: every part present in the data folder) into ``store``.

    Each part is its own idempotent run: parts already imported are skipped (their report has
    ``skipped`` true). Naming a part whose files are missing raises :class:`DataError`; with
    ``parts=None`` a missing part is left out, and a folder with none raises. After each
    part (new or already imported) the store is checkpointed (:meth:`Store.checkpoint`), so
    that a part reported imported lives in the database file, not only in its log.
    """
    root = resolve_data_dir(data_dir)
    if parts is None:
        chosen = available_parts(root)
        if not chosen:
            raise DataError(
                f"public data folder {root} holds none of the datasets fleetnas imports "
                f"(e.g. {part_files('nats')[0]}); set FLEETNAS_DATA_DIR or run "
                f"`fleetnas data download`"
            )
    else:
        chosen = list(parts)
        for p in chosen:
            resolve_data_dir(root, need=part_files(p))
    out = {}
    for part in chosen:
        if part in _HELP_SPACE:
            rep = import_help(store, root, _HELP_SPACE[part])
        elif part == "nats":
            rep = import_nats(store, root)
        else:
            rep = import_ofa_assets(store, root)
        store.checkpoint()
        out[part] = rep
        if progress is not None:
            progress(part, rep)
    return out


@dataclass
class DatasetListing:
    """What the store holds: one row per (space, metric) and the artifacts."""

    series: pd.DataFrame
    artifacts: pd.DataFrame


def datasets(store: Store) -> DatasetListing:
    """Summary for ``fleetnas data list``: per (space, metric) the number of devices,
    measurements, distinct architectures and estimate share; and the stored artifacts."""
    summ = store.measurement_summary()
    if len(summ):
        summ = summ.assign(estimates=summ["estimate_share"] * summ["count"])
        series = (
            summ.groupby(["space", "metric"], sort=True)
            .agg(
                devices=("device", "nunique"),
                rows=("count", "sum"),
                archs=("archs", "max"),
                estimates=("estimates", "sum"),
                newest=("newest", "max"),
            )
            .reset_index()
        )
        series["estimate_share"] = series.pop("estimates") / series["rows"]
    else:
        series = pd.DataFrame(
            columns=["space", "metric", "devices", "rows", "archs", "newest", "estimate_share"]
        )
    arts = pd.DataFrame(
        [(a.kind, a.name, a.sha256, a.created) for a in store.list_artifacts()],
        columns=["kind", "name", "sha256", "created"],
    )
    return DatasetListing(series=series, artifacts=arts)


__all__ = [
    "ACCURACY_DEVICE",
    "FILES",
    "GROUPS",
    "PARTS",
    "DataFile",
    "DatasetListing",
    "FetchResult",
    "ImportReport",
    "accuracy_metric",
    "available_parts",
    "datasets",
    "download",
    "export_table",
    "get_accuracy",
    "import_all",
    "import_help",
    "import_nats",
    "import_ofa_assets",
    "import_table",
    "part_files",
    "read_acc_predictor",
    "read_lut",
    "read_specialized_subnets",
    "read_table",
    "reference_archs",
    "resolve_data_dir",
    "verify",
    "write_table",
]
