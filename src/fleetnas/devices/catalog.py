"""The device catalog: spec features of the devices in the public latency data.

The data lives in ``help_catalog.yaml`` next to this module (public specifications, each cited
there, estimated values marked). One *setting* (hardware plus batch size and runtime) is one
:class:`~fleetnas.devices.Device`, shared by every space it was measured in; HELP's file stem
for that setting in each space is kept apart (:func:`help_file_names`).

Device-aware predictors (paper Sec. 5, ``Latency(x; d)``) need the device features ``d`` as
numbers: :func:`numeric_feature_matrix` builds them with a documented imputation.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np
import yaml

from fleetnas.devices.device import Device
from fleetnas.errors import InputError, unknown

#: Numeric spec features every catalog device may carry (in this order by default).
NUMERIC_KEYS: tuple[str, ...] = (
    "cores",
    "clock_ghz",
    "memory_gb",
    "mem_bandwidth_gbs",
    "peak_gflops",
    "tdp_w",
    "batch_size",
    "release_year",
)
_HW_KEYS = (*NUMERIC_KEYS, "kind", "runtime", "precision")

#: fleetnas space name or HELP folder name -> HELP folder name.
HELP_SPACES = {
    "nb201": "nasbench201",
    "nasbench201": "nasbench201",
    "fbnet": "fbnet",
    "ofa_mbv3": "ofa",
    "ofa": "ofa",
}

#: HELP's own meta-train / meta-valid / meta-test device splits (HELP repository README).
HELP_SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "nasbench201": {
        "train": (
            "1080ti_1", "1080ti_32", "1080ti_256", "silver_4114", "silver_4210r",
            "samsung_a50", "pixel3", "essential_ph_1", "samsung_s7",
        ),
        "valid": ("titanx_1", "titanx_32", "titanx_256", "gold_6240"),
        "test": ("titan_rtx_256", "gold_6226", "fpga", "pixel2", "raspi4", "eyeriss"),
    },
    "fbnet": {
        "train": (
            "1080ti_1", "1080ti_32", "1080ti_64", "silver_4114", "silver_4210r",
            "samsung_a50", "pixel3", "essential_ph_1", "samsung_s7",
        ),
        "valid": ("titanx_1", "titanx_32", "titanx_64", "gold_6240"),
        "test": ("fpga", "raspi4", "eyeriss"),
    },
}  # fmt: skip


def help_space(space: str) -> str:
    """HELP's folder name for ``space`` (``nb201`` -> ``nasbench201``, ``ofa_mbv3`` -> ``ofa``)."""
    try:
        return HELP_SPACES[space]
    except KeyError:
        raise unknown("HELP space", space, list(HELP_SPACES)) from None


@functools.cache
def _raw() -> dict[str, Any]:
    text = resources.files("fleetnas.devices").joinpath("help_catalog.yaml").read_text()
    return yaml.safe_load(text)


@functools.cache
def _devices() -> dict[str, Device]:
    raw = _raw()
    out = {}
    for name, setting in raw["settings"].items():
        hw = raw["hardware"][setting["hardware"]]
        defaults = raw["defaults"][hw["kind"]]
        features: dict[str, Any] = {"hardware": hw["name"]}
        features.update({k: hw[k] for k in _HW_KEYS if k in hw})
        for key in ("runtime", "precision"):
            features.setdefault(key, defaults[key])
        features["batch_size"] = setting["batch_size"]
        features["simulated"] = bool(hw.get("simulated", False))
        estimated = set(hw.get("estimated", ())) | {k for k in defaults["estimated"] if k not in hw}
        features["estimated"] = sorted(estimated)
        desc = f"{hw['name']}, batch {setting['batch_size']}, {features['runtime']}"
        out[name] = Device(name, hw["family"], features, measurer=f"table:{name}", description=desc)
    out[BITFUSION.name] = BITFUSION
    return out


#: BitFusion (Sharma et al., ISCA 2018) with APQ's published per-layer latency and energy table
#: (``apq/BitFusion_new.b1.dict``): a device of the ``apq`` space only (feature ``space``),
#: measured by that table (``bitfusion``, :mod:`fleetnas.measure.bitfusion`).
BITFUSION = Device(
    "bitfusion",
    "asic",
    {
        "hardware": "BitFusion bit-flexible accelerator",
        "kind": "asic",
        "batch_size": 1,
        "precision": "bit-flexible",
        "space": "apq",
        "simulated": True,
    },
    measurer="bitfusion",
    description="BitFusion (Sharma et al., ISCA 2018), APQ's published per-layer table",
)


def catalog_devices() -> list[Device]:
    """Every device in the catalog: HELP's 35 settings (27 NAS-Bench-201 ones plus FBNet/OFA
    extras), then Note10 and Pixel 1 of the OFA / ProxylessNAS latency tables, then BitFusion
    (APQ's space, latency and energy)."""
    return list(_devices().values())


def get_catalog_device(name: str) -> Device:
    """The catalog device ``name``; :class:`UnknownNameError` if it is not in the catalog."""
    try:
        return _devices()[name]
    except KeyError:
        raise unknown("catalog device", name, list(_devices())) from None


def catalog_features(name: str) -> dict[str, Any]:
    """A copy of the spec features of catalog device ``name``."""
    return dict(get_catalog_device(name).features)


def help_file_names(space: str) -> dict[str, str]:
    """``{device name: HELP latency file stem}`` for ``space``, in catalog order."""
    folder = help_space(space)
    return {
        name: s["help"][folder] for name, s in _raw()["settings"].items() if folder in s["help"]
    }


def help_devices(space: str) -> list[Device]:
    """The devices HELP measured in ``space`` (27 for nb201 and fbnet, 12 for ofa_mbv3)."""
    return [_devices()[name] for name in help_file_names(space)]


def help_split(space: str) -> dict[str, tuple[str, ...]]:
    """HELP's meta-train/valid/test device names for ``space`` (nb201 and fbnet only)."""
    folder = help_space(space)
    if folder not in HELP_SPLITS:
        raise InputError(f"HELP defines no device split for space {space!r}")
    return dict(HELP_SPLITS[folder])


def numeric_feature_matrix(
    devices: Sequence[Device], keys: Sequence[str] = NUMERIC_KEYS, impute: str = "family_median"
) -> np.ndarray:
    """``n x k`` float64 matrix of the numeric features ``keys`` of ``devices``.

    Missing values are imputed by ``impute``: ``family_median`` (median of the devices of the
    same family in ``devices`` that have the key, else of all of them, else 0), ``median``
    (median over ``devices``, else 0), ``zero``, or ``nan`` (left missing). A present value that
    is not a number raises :class:`InputError`.
    """
    if impute not in ("family_median", "median", "zero", "nan"):
        raise InputError(f"impute must be family_median, median, zero or nan, got {impute!r}")
    x = np.full((len(devices), len(keys)), np.nan)
    for i, dev in enumerate(devices):
        for j, key in enumerate(keys):
            value = dev.features.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(
                    f"device {dev.name!r}: feature {key!r} must be a number, got {value!r}"
                )
            x[i, j] = float(value)
    if impute == "nan":
        return x
    families = np.array([d.family for d in devices])
    for j in range(len(keys)):
        col = x[:, j]
        missing = np.isnan(col)
        if not missing.any():
            continue
        overall = float(np.nanmedian(col)) if (~missing).any() else 0.0
        for i in np.flatnonzero(missing):
            if impute == "zero":
                col[i] = 0.0
                continue
            if impute == "family_median":
                same = (families == families[i]) & ~missing
                if same.any():
                    col[i] = float(np.median(col[same]))
                    continue
            col[i] = overall
    return x
