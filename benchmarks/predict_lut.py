"""An operator look-up table measured on this machine's ONNX Runtime (1 thread) for
OFA-MobileNetV3, checked against whole-network measurements (``fleetnas predict lut``).

The table is built by :func:`fleetnas.predict.lut_build.build_lut` through the normal
``onnxruntime:threads=1`` measurer (default timing protocol, workers pinned to the allowed CPU),
so run it under ``taskset -c 0`` to keep it on one core. Its sum is compared with the measured
latency of ``--check`` random subnets at the tabulated resolutions (relative error median / p90,
mean signed error, Spearman). Baselines on the same designs, same run: once-for-all's published
Samsung Note10 table (another device and runtime: Spearman only, the scale differs) and the FLOPs
proxy (Spearman only).

Run: ``python benchmarks/predict_lut.py --resolutions 224,160`` (all 25
resolutions without ``--resolutions``: 1,257 operators). Resumable: operators and networks are
stored in ``--db`` and reused when it runs again.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import environment, load_average, write_results
from fleetnas.devices import Device
from fleetnas.measure import measurer_for
from fleetnas.predict import OFALatencyLUT
from fleetnas.predict import lut_build as lb
from fleetnas.predict.metrics import spearman
from fleetnas.spaces import get_space
from fleetnas.store import open_store

ROOT = Path(__file__).resolve().parent
DEVICE = "bench-ort-t1"
SPEC = "onnxruntime:threads=1"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolutions", default=None, help="e.g. 224,160 (default all 25)")
    ap.add_argument("--check", type=int, default=lb.N_CHECK)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--db", default=str(ROOT / ".cache" / "predict_lut.db"))
    ap.add_argument("--out", default=str(ROOT / "results" / "predict_lut"))
    args = ap.parse_args()
    res = lb.check_resolutions(
        [int(r) for r in args.resolutions.split(",")] if args.resolutions else None
    )
    env = environment(measurer=SPEC, affinity=sorted(_affinity()))
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    sp = get_space("ofa_mbv3")
    with open_store(args.db) as store:
        try:
            store.get_device(DEVICE)
        except Exception:
            store.add_device(Device(DEVICE, family="desktop_cpu", measurer=SPEC))
        meter = measurer_for(store.get_device(DEVICE), store)
        t0 = time.perf_counter()
        built = lb.build_lut(sp, meter, res, progress=print)
        build_s = time.perf_counter() - t0
        load_mid = load_average()
        t0 = time.perf_counter()
        check = lb.check_lut(
            sp, built.lut, lambda a: meter.measure(sp, a)["latency"], n=args.check, seed=args.seed
        )
        check_s = time.perf_counter() - t0
        lb.save_lut(store, lb.lut_name(DEVICE, sp), built.lut, check)
        protocol = meter.timing.protocol()
        identity = meter.identity()
    designs = sp.parse_many(check["designs"])
    measured = np.asarray(check["measured_ms"])
    note10 = OFALatencyLUT.from_data().predict(designs)
    flops = sp.flops(designs)
    out: dict[str, Any] = {
        "environment": {**env, "load_mid": load_mid, "load_after": load_average()},
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
            "ofa_note10_lut_spearman": float(spearman(measured, note10)),
            "flops_spearman": float(spearman(measured, flops)),
        },
        "per_resolution": _per_resolution(sp, designs, check),
    }
    write_results(Path(args.out), out, _markdown(out))
    print(_markdown(out))


def _per_resolution(sp: Any, designs: np.ndarray, check: dict[str, Any]) -> dict[str, Any]:
    from fleetnas.spaces.ofa_mbv3 import R_COL, RESOLUTIONS

    r = np.array([RESOLUTIONS[i] for i in designs[:, R_COL]])
    p, m = np.asarray(check["predicted_ms"]), np.asarray(check["measured_ms"])
    out = {}
    for v in sorted(set(r.tolist())):
        k = r == v
        if k.sum() >= 3:
            e = lb.lut_error(p[k], m[k])
            out[str(v)] = {x: e[x] for x in ("n", "median_rel_error", "p90_rel_error", "spearman")}
    return out


def _affinity() -> set[int]:
    import os

    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()


def _markdown(o: dict[str, Any]) -> str:
    e, lut, b = o["environment"], o["lut"], o["baselines"]
    rows = [
        "| predictor | designs | median \\|rel. error\\| | p90 \\|rel. error\\| "
        "| mean signed error | Spearman |",
        "|---|---|---|---|---|---|",
        f"| this table (measured here) | {lut['n']} | {100 * lut['median_rel_error']:.1f} % | "
        f"{100 * lut['p90_rel_error']:.1f} % | {100 * lut['mean_signed_rel_error']:+.1f} % | "
        f"{lut['spearman']:.3f} |",
        f"| OFA's Note10 table (other device) | {lut['n']} | - | - | - | "
        f"{b['ofa_note10_lut_spearman']:.3f} |",
        f"| FLOPs | {lut['n']} | - | - | - | {b['flops_spearman']:.3f} |",
    ]
    per = [
        f"| {r} | {v['n']} | {100 * v['median_rel_error']:.1f} % | "
        f"{100 * v['p90_rel_error']:.1f} % | {v['spearman']:.3f} |"
        for r, v in o["per_resolution"].items()
    ]
    return "\n".join(
        [
            "# Operator look-up table measured on this machine (ofa_mbv3, ONNX Runtime 1 thread)",
            "",
            "`python benchmarks/predict_lut.py --resolutions "
            f"{','.join(map(str, o['resolutions']))}`",
            "",
            f"Machine: {e['cpu']}, {e['cores']} cores (this run on CPUs {e['affinity']}; "
            f"another job held the other core), {e['platform']}. Load average before / after "
            f"the operators / at the end: {e['load_before']} / {e['load_mid']} / "
            f"{e['load_after']}.",
            f"Protocol: {o['protocol']}.",
            "",
            f"Resolutions {o['resolutions']}: {o['operators']} distinct operators "
            f"({o['operators_measured']} measured, {o['operators_reused']} reused from the "
            f"store) in {o['build_wall_s']} s; {lut['n']} random subnets measured whole in "
            f"{o['check_wall_s']} s.",
            "",
            *rows,
            "",
            "The mean signed error is the sum's bias: positive when the operators measured alone "
            "are slower than the network (each operator's own session call and copies at its "
            "borders), negative when the network is slower than its parts (an operator timed "
            "alone, again and again, runs with its weights and activations hot in the cache; in a"
            " network they are evicted by the others). OFA's Note10 table and FLOPs rank the same"
            " designs without measuring here; their scale is another device's, so only Spearman "
            "is comparable. A load average above the cores allowed preempts long runs (whole "
            "networks, milliseconds) far more than sub-millisecond ones (most operators), so "
            "there the sum falls below the networks: re-run on an idle core (another `--db`) "
            "before trusting the scale.",
            "",
            "Per resolution of the check designs:",
            "",
            "| resolution | designs | median \\|rel. error\\| | p90 | Spearman |",
            "|---|---|---|---|---|",
            *per,
        ]
    )


if __name__ == "__main__":
    main()
