"""Once-for-All and ProxylessNAS released assets: accuracy predictor weights and latency tables.

- ``ofa/acc_predictor.pth``: state_dict of OFA's ImageNet accuracy predictor for OFA-MobileNetV3,
  an MLP 128-400-400-400-1 (ReLU between layers, keys ``0``, ``2``, ``4``, ``6``). Its input
  encoding is the space's (:func:`fleetnas.spaces.ofa_mbv3.ofa_accuracy_features`).
- ``ofa/note10/<r>_lookup_table.yaml``: Samsung Note10 per-operator latency (ms: count, mean,
  std) of OFA-MobileNetV3 at input resolution ``r`` in 160..224.
- ``proxylessnas/mobile_trim.yaml``: Google Pixel 1 per-operator latency (ms: count, mean, var)
  of the ProxylessNAS space at resolution 224.
- ``ofa/ofa_specialized_subnet_names.txt``: OFA's 50 released subnets with the device, measured
  latency (or FLOPs) and top-1 accuracy carried in each name.

The ``read_*`` functions return plain dicts (no store needed, e.g. for a LUT predictor);
:func:`import_ofa_assets` stores them as artifacts: ``accuracy_predictor/ofa_mbv3`` (payload =
the original bytes), ``latency_lut/note10`` and ``latency_lut/pixel1`` (JSON of
:func:`read_lut`'s dict) and ``specialized_subnets/ofa_mbv3`` (JSON list).
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections import OrderedDict
from typing import Any

import yaml

from fleetnas.data.common import ImportReport, data_path, load_pickle, run_key
from fleetnas.data.manifest import get_file
from fleetnas.errors import DataError, unknown
from fleetnas.store.base import Artifact, Store

ACC_PREDICTOR = "ofa/acc_predictor.pth"
NOTE10_RESOLUTIONS = (160, 176, 192, 208, 224)
PIXEL1_LUT = "proxylessnas/mobile_trim.yaml"
SUBNETS = "ofa/ofa_specialized_subnet_names.txt"
RUN_KIND = "import-ofa"
#: Layer sizes of the OFA accuracy predictor MLP.
ACC_PREDICTOR_LAYERS = (128, 400, 400, 400, 1)
#: LUT name -> (device described, table files by resolution).
LUTS: dict[str, dict[int, str]] = {
    "note10": {r: f"ofa/note10/{r}_lookup_table.yaml" for r in NOTE10_RESOLUTIONS},
    "pixel1": {224: PIXEL1_LUT},
}
LUT_DEVICES = {
    "note10": "Samsung Galaxy Note10 (OFA-MobileNetV3 operators, TFLite)",
    "pixel1": "Google Pixel 1 (ProxylessNAS operators, TFLite)",
}
LUT_SPACES = {"note10": "ofa_mbv3", "pixel1": "proxylessnas"}


def read_acc_predictor(data_dir: str | os.PathLike[str] | None = None) -> OrderedDict[str, Any]:
    """OFA's accuracy predictor state_dict (torch tensors), shapes checked."""
    raw = load_pickle(data_path(data_dir, ACC_PREDICTOR), ACC_PREDICTOR)
    if not isinstance(raw, dict):
        raise DataError(f"{ACC_PREDICTOR}: expected a state_dict, got {type(raw).__name__}")
    sizes = ACC_PREDICTOR_LAYERS
    expected = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        expected[f"{2 * i}.weight"] = (n_out, n_in)
        expected[f"{2 * i}.bias"] = (n_out,)
    got = {k: tuple(getattr(v, "shape", ())) for k, v in raw.items()}
    if got != expected:
        raise DataError(
            f"{ACC_PREDICTOR}: state_dict shapes {got} differ from the expected MLP "
            f"{'-'.join(map(str, sizes))} ({expected})"
        )
    return OrderedDict(raw)


def read_lut(data_dir: str | os.PathLike[str] | None, name: str) -> dict[str, Any]:
    """A per-operator latency table: ``{"device", "space", "unit": "ms", "tables": {r: ops}}``.

    ``ops`` maps OFA's operator key string (e.g.
    ``expanded_conv-input:10x10x136-output:10x10x136-expand:408-kernel:3-stride:1-idskip:1-se:1-hs:1``)
    to ``{"count": int, "mean": float, "std": float}``; Pixel 1's variances become ``std``.
    """
    if name not in LUTS:
        raise unknown("latency table", name, list(LUTS))
    tables = {}
    for res, rel in LUTS[name].items():
        tables[res] = _read_lut_file(data_dir, rel)
    return {"device": name, "space": LUT_SPACES[name], "unit": "ms", "tables": tables}


def _read_lut_file(data_dir: str | os.PathLike[str] | None, rel: str) -> dict[str, dict]:
    path = data_path(data_dir, rel)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    return _check_lut_entries(raw, str(path))


def _check_lut_entries(raw: Any, path: str) -> dict[str, dict]:
    if not isinstance(raw, dict) or not raw:
        raise DataError(f"{path}: expected a mapping operator key -> {{count, mean, std|var}}")
    out = {}
    for key, entry in raw.items():
        try:
            mean = float(entry["mean"])
            count = int(entry["count"])
            std = float(entry["std"]) if "std" in entry else float(entry["var"]) ** 0.5
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"{path}: entry {key!r} must have count, mean and std (or var), got {entry!r}"
            ) from None
        if not mean > 0 or count < 1 or not std >= 0:
            raise DataError(f"{path}: entry {key!r} has mean {mean}, count {count}, std {std}")
        out[str(key)] = {"count": count, "mean": mean, "std": std}
    return out


_SUBNET = re.compile(
    r"^(?:flops-(?P<flops>\d+)M|(?P<device>.+?)_(?:lat|gpu(?P<batch>\d+))-(?P<lat>[\d.]+)ms)"
    r"_top1-(?P<top1>[\d.]+)_finetune-(?P<ft>\d+)$"
)


def read_specialized_subnets(data_dir: str | os.PathLike[str] | None = None) -> list[dict]:
    """OFA's released subnets: ``name, device, batch, latency_ms, mflops, top1, finetune_epochs``
    (``None`` where a name does not carry the value)."""
    path = data_path(data_dir, SUBNETS)
    out = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        m = _SUBNET.match(name)
        if m is None:
            raise DataError(
                f"{path}: line {line_no} {name!r} is not like "
                f"'<device>_lat-<ms>ms_top1-<acc>_finetune-<epochs>'"
            )
        out.append(
            {
                "name": name,
                "device": m["device"],
                "batch": int(m["batch"]) if m["batch"] else (1 if m["device"] else None),
                "latency_ms": float(m["lat"]) if m["lat"] else None,
                "mflops": float(m["flops"]) if m["flops"] else None,
                "top1": float(m["top1"]),
                "finetune_epochs": int(m["ft"]),
            }
        )
    return out


def read_lut_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A table file written by ``fleetnas predict lut --out`` (YAML or JSON of
    :func:`read_lut`'s dict, ``tables`` keyed by resolution), or one flat table in the layout
    of ProxylessNAS's ``mobile_trim.yaml`` (its resolution read off the stem's key); entries
    checked as OFA's."""
    from pathlib import Path

    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())  # JSON is YAML
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read latency table {p}: {type(exc).__name__}: {exc}") from None
    if isinstance(raw, dict) and "tables" not in raw and _stem_resolution(raw) is not None:
        return {"device": p.stem, "unit": "ms", "tables": {
            _stem_resolution(raw): _check_lut_entries(raw, str(p))}}  # fmt: skip
    if not isinstance(raw, dict) or not isinstance(raw.get("tables"), dict) or not raw["tables"]:
        raise DataError(
            f"{p}: expected a latency table with 'tables': {{resolution: ops}}, or one "
            "table of operator keys -> {count, mean, std|var} like mobile_trim.yaml"
        )
    tables = {}
    for res, ops in raw["tables"].items():
        try:
            r = int(res)
        except (TypeError, ValueError):
            raise DataError(f"{p}: resolution {res!r} is not an integer") from None
        tables[r] = _check_lut_entries(ops, f"{p} @{r}")
    return {**raw, "tables": tables}


def _stem_resolution(raw: dict[Any, Any]) -> int | None:
    """The input resolution of a flat table (``mobile_trim.yaml``'s layout: operator keys at
    the top level), read off its stem key ``Conv-input:RxRx3-...``; ``None`` if it has none."""
    for key in raw:
        m = re.match(r"^Conv-input:(\d+)x\1x3-", str(key))
        if m:
            return int(m[1])
    return None


def lut_from_artifact(artifact: Artifact) -> dict[str, Any]:
    """Inverse of the ``latency_lut`` artifact: the dict of :func:`read_lut` (int resolutions)."""
    d = json.loads(artifact.payload)
    d["tables"] = {int(r): t for r, t in d["tables"].items()}
    return d


def import_ofa_assets(store: Store, data_dir: str | os.PathLike[str] | None = None) -> ImportReport:
    """Store the OFA accuracy predictor, the Note10 and Pixel 1 tables and the subnet list."""
    rels = [ACC_PREDICTOR, SUBNETS, *[r for t in LUTS.values() for r in t.values()]]
    config = {"files": {r: get_file(r).sha256 for r in rels}}
    key = run_key(RUN_KIND, config)
    if store.has_run(key):
        return ImportReport("ofa", "ofa_mbv3", skipped=True)
    read_acc_predictor(data_dir)
    acc_bytes = data_path(data_dir, ACC_PREDICTOR).read_bytes()
    luts = {name: read_lut(data_dir, name) for name in LUTS}
    subnets = read_specialized_subnets(data_dir)
    arts = [
        Artifact(
            name="ofa_mbv3",
            kind="accuracy_predictor",
            payload=acc_bytes,
            meta={
                "source": f"han-cai/files {ACC_PREDICTOR}",
                "format": "torch state_dict",
                "layers": list(ACC_PREDICTOR_LAYERS),
                "activation": "relu",
                "output": "ImageNet top-1 accuracy (fraction)",
                "encoder": "fleetnas.spaces.ofa_mbv3.ofa_accuracy_features (once-for-all "
                "ofa/nas/accuracy_predictor/arch_encoder.py MobileNetArchEncoder)",
            },
        ),
        *[
            Artifact(
                name=name,
                kind="latency_lut",
                payload=json.dumps(lut, sort_keys=True).encode(),
                meta={
                    "device": LUT_DEVICES[name],
                    "space": lut["space"],
                    "unit": "ms",
                    "resolutions": sorted(lut["tables"]),
                    "source": ", ".join(LUTS[name].values()),
                },
            )
            for name, lut in luts.items()
        ],
        Artifact(
            name="ofa_mbv3",
            kind="specialized_subnets",
            payload=json.dumps(subnets).encode(),
            meta={"source": f"han-cai/files {SUBNETS}", "count": len(subnets)},
        ),
    ]
    report = ImportReport("ofa", "ofa_mbv3")
    with store.run(RUN_KIND, config, key=key) as run:
        for art in arts:
            run.save_artifact(art)
            report.artifacts.append(f"{art.kind}/{art.name}")
        report.run_id = run.info.id
    return report
