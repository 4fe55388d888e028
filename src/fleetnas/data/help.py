"""HELP's public latency data (Lee et al., NeurIPS 2021): readers and the store importer.

Files (under ``help/<folder>/`` of the data folder, ``folder`` = ``nasbench201``, ``fbnet`` or
``ofa``): ``latency/<setting>.pt`` lists of latencies in ms, one per architecture of the space's
list; the list is the official NAS-Bench-201 index order (``str_arch2idx.pt``), ``arch.pt``
(FBNet, 5,000 x 22 op indices) or ``ofa_archs.pt`` (5,000 OFA subnets); and
``hardware_embedding_index.pt``, the 10 reference architectures (positions in that list) whose
latencies HELP uses as a device's embedding.

Each setting becomes the catalog :class:`~fleetnas.devices.Device` of
:mod:`fleetnas.devices.catalog` (one device per hardware + batch size, shared across spaces).
Measurements: metric ``latency``, unit ``ms``, statistic ``mean`` (HELP stores one averaged
latency per architecture), method ``help`` or ``hw-nas-bench`` for the four columns HELP took
from HW-NAS-Bench, ``is_estimate`` true only for the simulated Eyeriss and FPGA columns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from fleetnas.data.common import ImportReport, completed_configs, data_path, load_pickle, run_key
from fleetnas.data.manifest import get_file
from fleetnas.devices.catalog import get_catalog_device, help_file_names, help_space
from fleetnas.errors import DataError, InputError, unknown
from fleetnas.spaces import SearchSpace, get_space
from fleetnas.store.base import Artifact, MeasurementBatch, Store

METRIC, UNIT, STATISTIC = "latency", "ms", "mean"
RUN_KIND = "import-help"
REFERENCE_KIND = "reference_archs"
#: HELP columns that come from HW-NAS-Bench (README of the data folder).
HW_NAS_BENCH = frozenset({"eyeriss", "fpga", "pixel3", "raspi4"})
#: fleetnas space name per HELP folder, and the number of architectures HELP lists.
SPACE_OF = {"nasbench201": "nb201", "fbnet": "fbnet", "ofa": "ofa_mbv3"}
N_ARCHS = {"nasbench201": 15_625, "fbnet": 5_000, "ofa": 5_000}
ARCH_FILE = {
    "nasbench201": "help/nasbench201/str_arch2idx.pt",
    "fbnet": "help/fbnet/arch.pt",
    "ofa": "help/ofa/ofa_archs.pt",
}


def latency_file(space: str, device: str) -> str:
    """Path (relative to the data folder) of HELP's latency list for a catalog device."""
    folder = help_space(space)
    names = help_file_names(space)
    if device not in names:
        raise unknown(f"HELP {folder} device", device, list(names))
    return f"help/{folder}/latency/{names[device]}.pt"


def read_latencies(data_dir: str | os.PathLike[str] | None, space: str, device: str) -> np.ndarray:
    """``n`` float64 latencies (ms) of ``device`` in HELP's architecture order for ``space``."""
    folder = help_space(space)
    rel = latency_file(space, device)
    raw = load_pickle(data_path(data_dir, rel), rel)
    n = N_ARCHS[folder]
    if not isinstance(raw, list | tuple) or len(raw) != n:
        got = f"{type(raw).__name__} of {len(raw)}" if hasattr(raw, "__len__") else repr(raw)
        raise DataError(f"{rel}: expected a list of {n} latencies in ms, got a {got}")
    try:
        values = np.array([float(v) for v in raw], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{rel}: expected {n} numbers (latencies in ms)") from None
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{rel}: entry {i} is {values[i]!r}; expected positive latencies in ms")
    return values


def read_archs(
    data_dir: str | os.PathLike[str] | None, space: str
) -> tuple[SearchSpace, np.ndarray]:
    """``(space, n x D archs)``: HELP's architecture list for ``space`` in its own order."""
    folder = help_space(space)
    sp = get_space(SPACE_OF[folder])
    rel = ARCH_FILE[folder]
    raw = load_pickle(data_path(data_dir, rel), rel)
    try:
        archs = _ARCH_READERS[folder](sp, raw)
    except (InputError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise DataError(f"{rel}: unexpected content ({type(exc).__name__}: {exc})") from None
    if len(archs) != N_ARCHS[folder]:
        raise DataError(f"{rel}: {len(archs)} architectures, expected {N_ARCHS[folder]}")
    return sp, archs


def _nb201_archs(space: SearchSpace, raw: Any) -> np.ndarray:
    if not isinstance(raw, dict):
        raise TypeError(f"expected a dict arch string -> index, got {type(raw).__name__}")
    strings = [""] * len(raw)
    for text, idx in raw.items():
        strings[int(idx)] = text
    return space.parse_many(strings)


def _fbnet_archs(space: SearchSpace, raw: Any) -> np.ndarray:
    archs = np.array(raw, dtype=np.int64)
    return space.check(archs)


def _ofa_archs(space: SearchSpace, raw: Any) -> np.ndarray:
    items = raw["arch"] if isinstance(raw, dict) else raw
    texts = [
        json.dumps(
            {
                "ks": [int(v) for v in a["ks"]],
                "e": [int(v) for v in a["e"]],
                "d": [int(v) for v in a["d"]],
                "r": int(a["r"]),
            }
        )
        for a in items
    ]
    return space.parse_many(texts)


_ARCH_READERS = {"nasbench201": _nb201_archs, "fbnet": _fbnet_archs, "ofa": _ofa_archs}


def read_reference_indices(data_dir: str | os.PathLike[str] | None, space: str) -> list[int]:
    """HELP's reference architectures for ``space``: positions in :func:`read_archs`' list."""
    folder = help_space(space)
    rel = f"help/{folder}/hardware_embedding_index.pt"
    raw = load_pickle(data_path(data_dir, rel), rel)
    try:
        idx = [int(i) for i in raw]
    except (TypeError, ValueError):
        raise DataError(f"{rel}: expected a list of architecture indices") from None
    n = N_ARCHS[folder]
    if not idx or min(idx) < 0 or max(idx) >= n:
        raise DataError(f"{rel}: expected indices in 0..{n - 1}, got {idx}")
    return idx


def import_help(
    store: Store,
    data_dir: str | os.PathLike[str] | None = None,
    space: str = "nb201",
    devices: Sequence[str] | None = None,
) -> ImportReport:
    """Import HELP's latencies of ``space`` (all its devices, or ``devices``) into ``store``.

    Idempotent: devices that an earlier import already wrote are skipped, and when none is left
    nothing is written. One run (one transaction) holds the devices, their measurements and the
    reference architectures, so a failure leaves the store as it was.
    """
    folder = help_space(space)
    names = list(help_file_names(space))
    wanted = names if devices is None else list(dict.fromkeys(devices))
    for name in wanted:
        if name not in names:
            raise unknown(f"HELP {folder} device", name, names)
    done = {
        d
        for c in completed_configs(store, RUN_KIND)
        if c.get("space") == folder
        for d in c["devices"]
    }
    todo = [d for d in wanted if d not in done]
    sp_name = SPACE_OF[folder]
    if not todo:
        return ImportReport("help", sp_name, devices=[], skipped=True)
    sp, archs = read_archs(data_dir, space)
    lat = {d: read_latencies(data_dir, space, d) for d in todo}
    ref_idx = read_reference_indices(data_dir, space)
    have_ref = any(a.name == sp_name for a in store.list_artifacts(REFERENCE_KIND))
    files = {latency_file(space, d): get_file(latency_file(space, d)).sha256 for d in todo}
    config = {"space": folder, "devices": todo, "files": files}
    report = ImportReport("help", sp_name, devices=todo)
    with store.run(RUN_KIND, config, key=run_key(RUN_KIND, config)) as run:
        for name in todo:
            dev = get_catalog_device(name)
            run.add_device(dev)
            report.rows += run.add_measurements(
                MeasurementBatch(
                    space=sp,
                    archs=archs,
                    device=name,
                    metric=METRIC,
                    values=lat[name],
                    unit=UNIT,
                    statistic=STATISTIC,
                    n=1,
                    method="hw-nas-bench" if name in HW_NAS_BENCH else "help",
                    is_estimate=bool(dev.features.get("simulated", False)),
                )
            )
        if not have_ref:
            run.save_artifact(reference_artifact(sp, archs, ref_idx, folder))
            report.artifacts.append(f"{REFERENCE_KIND}/{sp_name}")
        report.run_id = run.info.id
    return report


def reference_artifact(
    space: SearchSpace, archs: np.ndarray, indices: Sequence[int], folder: str
) -> Artifact:
    """The reference architectures as an artifact (JSON: indices and native strings)."""
    payload = {
        "space": space.name,
        "indices": [int(i) for i in indices],
        "archs": space.format_many(archs[list(indices)]),
    }
    return Artifact(
        name=space.name,
        kind=REFERENCE_KIND,
        payload=json.dumps(payload, indent=1).encode(),
        meta={
            "source": f"HELP help/{folder}/hardware_embedding_index.pt",
            "k": len(indices),
            "index_of": "official NAS-Bench-201 index"
            if folder == "nasbench201"
            else f"position in HELP's {ARCH_FILE[folder].rsplit('/', 1)[-1]}",
        },
    )


def reference_archs(store: Store, space: str | SearchSpace) -> np.ndarray:
    """``K x D`` reference architectures of ``space`` stored by :func:`import_help` (K = 10)."""
    sp = get_space(space) if isinstance(space, str) else space
    art = store.load_artifact(sp.name, REFERENCE_KIND)
    try:
        texts = json.loads(art.payload)["archs"]
    except (ValueError, KeyError, TypeError):
        raise DataError(f"artifact {REFERENCE_KIND}/{sp.name} is not a reference list") from None
    return sp.parse_many(texts)
