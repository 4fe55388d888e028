"""An operator look-up table measured on this machine's ONNX Runtime (1 thread) for
OFA-MobileNetV3 or ProxylessNAS-Mobile, checked against whole-network measurements
(``fleetnas predict lut``).

The table is built by :func:`fleetnas.predict.lut_build.build_lut` through the normal
``onnxruntime:threads=1`` measurer (default timing protocol plus ``--protocol``, workers pinned
to the allowed CPU), so run it under ``taskset -c 0`` to keep it on one core. Its sum is compared
with the measured latency of ``--check`` random designs at the tabulated resolutions (relative
error median / p90, mean signed error, Spearman). Nothing is fitted or tuned: the table is the
operators' measured medians, the check designs are drawn at random after it is built. Baselines
on the same designs, same run: the space's published table (once-for-all's Samsung Note10 for
ofa_mbv3, ProxylessNAS's Google Pixel 1 for proxylessnas: another device and runtime, so
Spearman only, the scale differs) and the FLOPs proxy (Spearman only).

Run: ``python benchmarks/predict_lut.py --space proxylessnas`` (70 operators, results in
``results/predict_lut_proxylessnas``) or ``--space ofa_mbv3 --resolutions 224,160`` (all 25
resolutions without ``--resolutions``: 1,257 operators; results in ``results/predict_lut``).
Resumable: operators and networks are stored in ``--db`` and reused when it runs again.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import environment, load_average, write_results
from fleetnas.devices import Device
from fleetnas.measure import measurer_for
from fleetnas.predict import lut_build as lb
from fleetnas.predict.lut import lut_class
from fleetnas.predict.metrics import spearman
from fleetnas.spaces import get_space
from fleetnas.store import open_store

ROOT = Path(__file__).resolve().parent
DEVICE = "bench-ort-t1"
SPEC = "onnxruntime:threads=1"
#: Published table of each space (another device): the baseline's name and description.
PUBLISHED = {
    "ofa_mbv3": ("ofa_note10", "OFA's Note10 table (other device)"),
    "proxylessnas": ("pixel1", "ProxylessNAS's Pixel 1 table (other device)"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="ofa_mbv3", choices=sorted(PUBLISHED))
    ap.add_argument("--resolutions", default=None, help="e.g. 224,160 (default all)")
    ap.add_argument("--check", type=int, default=lb.N_CHECK)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--protocol",
        default="",
        help="Timing options added to the spec, e.g. best_of=5 (a new device name per value).",
    )
    ap.add_argument("--shared-note", default="", help="Said in the results, e.g. CPU sharing.")
    ap.add_argument("--db", default=None, help="default .cache/predict_lut[_SPACE].db")
    ap.add_argument("--out", default=None, help="default results/predict_lut[_SPACE]")
    args = ap.parse_args()
    tag = "" if args.space == "ofa_mbv3" else f"_{args.space}"
    db = args.db or str(ROOT / ".cache" / f"predict_lut{tag}.db")
    out_stem = Path(args.out or ROOT / "results" / f"predict_lut{tag}")
    sp = get_space(args.space)
    res = lb.check_resolutions(
        [int(r) for r in args.resolutions.split(",")] if args.resolutions else None, sp
    )
    spec = f"{SPEC},{args.protocol}" if args.protocol else SPEC
    device = DEVICE + "".join(f"-{p.replace('=', '')}" for p in args.protocol.split(",") if p)
    env = environment(measurer=spec, affinity=sorted(_affinity()))
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    with open_store(db) as store:
        try:
            store.get_device(device)
        except Exception:
            store.add_device(Device(device, family="desktop_cpu", measurer=spec))
        meter = measurer_for(store.get_device(device), store)
        t0 = time.perf_counter()
        built = lb.build_lut(sp, meter, res, progress=print)
        build_s = time.perf_counter() - t0
        load_mid = load_average()
        t0 = time.perf_counter()
        check = lb.check_lut(
            sp, built.lut, lambda a: meter.measure(sp, a)["latency"], n=args.check, seed=args.seed
        )
        check_s = time.perf_counter() - t0
        lb.save_lut(store, lb.lut_name(device, sp), built.lut, check)
        protocol = meter.timing.protocol()
        identity = meter.identity()
        designs = sp.parse_many(check["designs"])
        ops = lb.operator_space(sp)
        spread = {
            "networks": _stored(store, sp, device, designs),
            "operators": _stored(store, ops, device, ops.operators(res)),
        }
    measured = np.asarray(check["measured_ms"])
    published, published_what = PUBLISHED[sp.name]
    other = lut_class(sp).from_data().predict(designs)
    flops = sp.flops(designs)
    out: dict[str, Any] = {
        "space": sp.name,
        "command": "python benchmarks/predict_lut.py " + " ".join(sys.argv[1:]),
        "environment": {**env, "load_mid": load_mid, "load_after": load_average()},
        "shared_note": args.shared_note,
        "device": device,
        "protocol": protocol,
        "setting": identity.get("setting"),
        "resolutions": list(res),
        "operators": built.operators,
        "operators_measured": built.measured,
        "operators_reused": built.reused,
        "build_wall_s": round(build_s, 1),
        "check_wall_s": round(check_s, 1),
        "lut": {k: v for k, v in check.items() if k not in ("designs",)},
        "baselines": {
            f"{published}_lut_spearman": float(spearman(measured, other)),
            "flops_spearman": float(spearman(measured, flops)),
        },
        "published": {"name": published, "what": published_what},
        "chosen": "nothing: no parameter is fitted or tuned (operator medians summed; check "
        "designs drawn at random after the table was built)",
        "per_resolution": _per_resolution(sp, designs, check),
        "spread": {
            k: {"median_rel_iqr": float(np.median(v["iqr"] / v["median"]))}
            for k, v in spread.items()
        },
        "vs_fastest_sample": {
            k: v
            for k, v in lb.lut_error(
                np.asarray(check["predicted_ms"]), spread["networks"]["min"]
            ).items()
            if k not in ("predicted_ms", "measured_ms")
        },
    }
    write_results(out_stem, out, _markdown(out))
    print(_markdown(out))


def _per_resolution(sp: Any, designs: np.ndarray, check: dict[str, Any]) -> dict[str, Any]:
    from fleetnas.spaces.ofa_mbv3 import R_COL, RESOLUTIONS

    if sp.name != "ofa_mbv3":
        return {}
    r = np.array([RESOLUTIONS[i] for i in designs[:, R_COL]])
    p, m = np.asarray(check["predicted_ms"]), np.asarray(check["measured_ms"])
    out = {}
    for v in sorted(set(r.tolist())):
        k = r == v
        if k.sum() >= 3:
            e = lb.lut_error(p[k], m[k])
            out[str(v)] = {x: e[x] for x in ("n", "median_rel_error", "p90_rel_error", "spearman")}
    return out


def _stored(store: Any, space: Any, device: str, archs: np.ndarray) -> dict[str, np.ndarray]:
    """``median``, ``iqr`` and ``min`` of ``archs`` as the measurer stored them (NaN: none)."""
    out = {}
    for stat in ("median", "iqr", "min"):
        a, v = store.get_measurements(space, device, "latency", stat, archs=archs)
        got = {r.tobytes(): float(x) for r, x in zip(a, v, strict=True)}
        out[stat] = np.array([got.get(r.tobytes(), np.nan) for r in archs])
    return out


def _affinity() -> set[int]:
    import os

    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()


def _markdown(o: dict[str, Any]) -> str:
    e, lut, b, pub = o["environment"], o["lut"], o["baselines"], o["published"]
    rows = [
        "| predictor | designs | median \\|rel. error\\| | p90 \\|rel. error\\| "
        "| mean signed error | Spearman |",
        "|---|---|---|---|---|---|",
        f"| this table (measured here) | {lut['n']} | {100 * lut['median_rel_error']:.1f} % | "
        f"{100 * lut['p90_rel_error']:.1f} % | {100 * lut['mean_signed_rel_error']:+.1f} % | "
        f"{lut['spearman']:.3f} |",
        f"| {pub['what']} | {lut['n']} | - | - | - | {b[pub['name'] + '_lut_spearman']:.3f} |",
        f"| FLOPs | {lut['n']} | - | - | - | {b['flops_spearman']:.3f} |",
    ]
    fast, sp_ = o["vs_fastest_sample"], o["spread"]
    diag = [
        "",
        "Diagnostics of the same run (not headline numbers): the median relative IQR of the "
        f"samples is {100 * sp_['networks']['median_rel_iqr']:.1f} % for the whole networks and "
        f"{100 * sp_['operators']['median_rel_iqr']:.1f} % for the operators; against each "
        "network's fastest sample instead of its median the table's sum has median |rel. error| "
        f"{100 * fast['median_rel_error']:.1f} %, p90 {100 * fast['p90_rel_error']:.1f} %, mean "
        f"signed {100 * fast['mean_signed_rel_error']:+.1f} %, Spearman {fast['spearman']:.3f}.",
    ]
    per = [
        f"| {r} | {v['n']} | {100 * v['median_rel_error']:.1f} % | "
        f"{100 * v['p90_rel_error']:.1f} % | {v['spearman']:.3f} |"
        for r, v in o["per_resolution"].items()
    ]
    per_block = [
        "",
        "Per resolution of the check designs:",
        "",
        "| resolution | designs | median \\|rel. error\\| | p90 | Spearman |",
        "|---|---|---|---|---|",
        *per,
    ]
    shared = f" {o['shared_note']}" if o.get("shared_note") else ""
    return "\n".join(
        [
            f"# Operator look-up table measured on this machine ({o['space']}, ONNX Runtime 1 "
            "thread)",
            "",
            f"`{o['command']}`",
            "",
            f"Machine: {e['cpu']}, {e['cores']} cores (this run on CPUs {e['affinity']}; "
            f"another job held the other core), {e['platform']}.{shared} Load average before / "
            f"after the operators / at the end: {e['load_before']} / {e['load_mid']} / "
            f"{e['load_after']}.",
            f"Device {o['device']!r}, protocol: {o['protocol']}.",
            "",
            f"Resolutions {o['resolutions']}: {o['operators']} distinct operators "
            f"({o['operators_measured']} measured, {o['operators_reused']} reused from the "
            f"store) in {o['build_wall_s']} s; {lut['n']} random designs measured whole in "
            f"{o['check_wall_s']} s. Chosen on any split: {o['chosen']}, so every number is "
            "held out.",
            "",
            *rows,
            *diag,
            "",
            "The mean signed error is the sum's bias: positive when the operators measured alone "
            "are slower than the network (each operator's own session call and copies at its "
            "borders), negative when the network is slower than its parts (an operator timed "
            "alone, again and again, runs with its weights and activations hot in the cache; in a"
            f" network they are evicted by the others). {pub['what'].split(' (')[0]} and FLOPs "
            "rank the same designs without measuring here; their scale is another device's, so "
            "only Spearman is comparable. A load average above the cores allowed preempts long "
            "runs (whole networks, milliseconds) far more than sub-millisecond ones (most "
            "operators), so there the sum falls below the networks: re-run on an idle core "
            "(another `--db`) before trusting the scale.",
            *(per_block if per else []),
        ]
    )


if __name__ == "__main__":
    main()
