"""Benchmark of the device simulator (issue 3): calibration to real devices, synthetic fleets.

Sections (all run by default; ``--only`` picks some):

- ``calibration``: one :class:`~fleetnas.sim.DeviceModel` fitted to each of the 27 HELP
  NAS-Bench-201 device settings (family, batch size, precision and spec peak/bandwidth from the
  device catalog) on a random ``--fit`` architectures; Spearman, MAPE and MdAPE on the other
  15,625 - ``--fit``. Baselines in the same run on the same held-out cells: FLOPs as a latency
  proxy (Spearman only), the uncalibrated model (family prior centre + catalog specs), and a
  per-(edge, op) lookup table (linear least squares on the one-hot encoding, fitted on the same
  cells: the additive model a LUT gives).
- ``fbnet``: the same on HELP's 27 FBNet settings (5,000 sampled designs, depthwise layers).
- ``ofa``: the same on HELP's 12 OFA-MobileNetV3 GPU settings (5,000 subnets).
- ``fleet``: pairwise Spearman between devices over all 15,625 NB201 cells: the 27 real HELP
  settings (351 pairs), a synthetic fleet of ``--fleet`` devices from the default family mix,
  a fleet of the same size drawn around the 27 calibrated models, and the calibrated models
  themselves; quantiles and the two-sample Kolmogorov-Smirnov distance to the real pairs.
- ``speed``: 10,000 simulated devices x 15,625 NB201 cells with :func:`latency_matrix`, against
  a per-layer Python loop over the same formulas (timed on a slice, per device-design pair).

Writes ``benchmarks/results/sim_calibration.json`` and ``sim_calibration.md``. Run from the
repository root:
``FLEETNAS_DATA_DIR=../shared/data .venv/bin/python benchmarks/sim_calibration.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import ks_2samp, rankdata, spearmanr

from _common import environment, write_results

RESULTS = Path(__file__).resolve().parent / "results"
QUANTILES = (0, 5, 10, 25, 50, 75, 90, 95, 100)


# ---- calibration ---------------------------------------------------------------------------
def _precision(features: dict[str, Any]) -> str:
    from fleetnas.sim import PRECISIONS

    p = str(features.get("precision") or "fp32")
    return p if p in PRECISIONS else "fp32"


def _lut_predict(space, archs_fit, y_fit, archs_eval) -> np.ndarray:
    """Per-(decision, choice) additive lookup table fitted by least squares."""
    x_fit = np.c_[np.ones(len(archs_fit)), space.encode(archs_fit)]
    x_eval = np.c_[np.ones(len(archs_eval)), space.encode(archs_eval)]
    w = np.linalg.lstsq(x_fit, y_fit, rcond=None)[0]
    return np.maximum(x_eval @ w, 1e-6)


def calibrate_space(space_name: str, n_fit: int, restarts: int, seed: int) -> dict[str, Any]:
    from fleetnas.data.help import read_archs, read_latencies
    from fleetnas.devices.catalog import help_devices
    from fleetnas.sim import calibrate, fit_report, latency_matrix, prior_model

    space, archs = read_archs(None, space_name)
    perm = np.random.default_rng(seed).permutation(len(archs))
    fit, held = np.sort(perm[:n_fit]), np.sort(perm[n_fit:])
    flops = space.flops(archs[held])
    rows, models = [], {}
    for dev in help_devices(space_name):
        y = read_latencies(None, space_name, dev.name)
        feats = dev.features
        kw = dict(
            batch_size=int(feats.get("batch_size") or 1),
            precision=_precision(feats),
            specs=feats,
        )
        t0 = time.perf_counter()
        model, rep = calibrate(
            space, archs[fit], y[fit], dev.family, restarts=restarts, max_fit=n_fit, seed=seed, **kw
        )
        seconds = time.perf_counter() - t0
        held_rep = fit_report(latency_matrix(model, space, archs[held])[0], y[held])
        uncal = prior_model(dev.family, feats, kw["batch_size"], kw["precision"])
        uncal_rep = fit_report(latency_matrix(uncal, space, archs[held])[0], y[held])
        lut_rep = fit_report(_lut_predict(space, archs[fit], y[fit], archs[held]), y[held])
        rows.append(
            {
                "device": dev.name,
                "family": dev.family,
                "batch_size": kw["batch_size"],
                "spearman": held_rep["spearman"],
                "mape": held_rep["mape"],
                "mdape": held_rep["mdape"],
                "spearman_fit": rep.spearman,
                "seconds": seconds,
                "flops_spearman": float(spearmanr(flops, y[held]).statistic),
                "uncalibrated_spearman": uncal_rep["spearman"],
                "uncalibrated_mape": uncal_rep["mape"],
                "lut_spearman": lut_rep["spearman"],
                "lut_mape": lut_rep["mape"],
            }
        )
        models[dev.name] = model.to_dict()
        print(
            f"  {space_name} {dev.name:15s} rho {held_rep['spearman']:.3f} "
            f"mape {held_rep['mape']:7.1f} mdape {held_rep['mdape']:5.1f} "
            f"(lut {lut_rep['spearman']:.3f}, flops {rows[-1]['flops_spearman']:.3f}) "
            f"{seconds:.1f}s",
            flush=True,
        )
    rho = np.array([r["spearman"] for r in rows])
    summary = {
        "devices": len(rows),
        "n_fit": int(n_fit),
        "n_heldout": len(held),
        "spearman_mean": float(rho.mean()),
        "spearman_median": float(np.median(rho)),
        "spearman_min": float(rho.min()),
        "devices_spearman_over_0.9": int((rho > 0.9).sum()),
        "mdape_median": float(np.median([r["mdape"] for r in rows])),
        "mape_median": float(np.median([r["mape"] for r in rows])),
        "seconds_mean": float(np.mean([r["seconds"] for r in rows])),
        "lut_spearman_mean": float(np.mean([r["lut_spearman"] for r in rows])),
        "flops_spearman_mean": float(np.mean([r["flops_spearman"] for r in rows])),
        "uncalibrated_spearman_mean": float(np.mean([r["uncalibrated_spearman"] for r in rows])),
    }
    return {"summary": summary, "devices": rows, "models": models}


# ---- fleets ----------------------------------------------------------------------------------
def pairwise_spearman(lat: np.ndarray) -> np.ndarray:
    """Upper-triangle Spearman correlations between the rows of an ``m x n`` latency matrix."""
    r = rankdata(lat, axis=1)
    r -= r.mean(axis=1, keepdims=True)
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    c = r @ r.T
    return c[np.triu_indices(len(lat), 1)]


def describe(values: np.ndarray, real: np.ndarray | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "pairs": len(values),
        "mean": float(values.mean()),
        "quantiles": {f"p{q}": float(np.percentile(values, q)) for q in QUANTILES},
    }
    if real is not None:
        out["ks_vs_real"] = float(ks_2samp(values, real).statistic)
    return out


def fleet_section(n_fleet: int, seed: int, calibrated: dict[str, dict]) -> dict[str, Any]:
    from fleetnas.data.help import read_archs, read_latencies
    from fleetnas.devices.catalog import help_devices
    from fleetnas.sim import DeviceModel, fleet_around, generate_fleet, latency_matrix

    space, archs = read_archs(None, "nb201")
    real = np.array([read_latencies(None, "nb201", d.name) for d in help_devices("nb201")])
    real_pw = pairwise_spearman(real)
    out: dict[str, Any] = {"real": describe(real_pw)}
    fleet = generate_fleet(n_fleet, rng=seed)
    lat = latency_matrix([d.model for d in fleet], space, archs)
    out["synthetic"] = describe(pairwise_spearman(lat), real_pw)
    fams = np.array([d.model.family for d in fleet])
    within = {}
    for fam in sorted(set(fams)):
        sub = lat[fams == fam]
        if len(sub) > 1:
            within[fam] = float(np.median(pairwise_spearman(sub)))
    out["synthetic"]["within_family_median"] = within
    out["synthetic"]["families"] = {f: int((fams == f).sum()) for f in sorted(set(fams))}
    if calibrated:
        models = [DeviceModel.from_dict(m) for m in calibrated.values()]
        cal = latency_matrix(models, space, archs)
        out["calibrated"] = describe(pairwise_spearman(cal), real_pw)
        around = fleet_around(models, n_fleet, rng=seed)
        lat_a = latency_matrix([d.model for d in around], space, archs)
        out["around_calibrated"] = describe(pairwise_spearman(lat_a), real_pw)
        out["around_calibrated"]["spread"] = 0.2
    return out


# ---- speed -----------------------------------------------------------------------------------
def _loop_latency(model, space, archs) -> np.ndarray:
    """Baseline: price every layer of every design in Python with the documented formulas."""
    from fleetnas.sim.model import ROOFLINE_P

    out = np.empty(len(archs))
    b = model.batch_size
    for j, a in enumerate(archs):
        total = model.fixed_ms
        for layer in space.layers(a):
            out_elems = layer.out_ch * layer.out_hw**2
            util = b * out_elems / (b * out_elems + model.knee)
            eff = getattr(model, f"eff_{layer.kind}")
            t_c = 2.0 * layer.macs * b / (model.peak_gflops * 1e9 * eff * util) * 1e3
            moved = (b * layer.activation_elems + layer.params) * model.bytes_per_elem
            t_m = moved / (model.mem_bandwidth_gbs * model.eff_mem * 1e9) * 1e3
            roof = (t_c**ROOFLINE_P + t_m**ROOFLINE_P) ** (1 / ROOFLINE_P)
            ovh = model.overhead_us * 1e-3
            total += ovh + roof - model.overlap * min(ovh, roof)
            if layer.kind in ("conv", "dwconv", "pwconv"):
                extra = 2.0 * b * out_elems * model.bytes_per_elem
                t_x = extra / (model.mem_bandwidth_gbs * model.eff_mem * 1e9) * 1e3
                total += model.unfused_ops * (ovh + t_x - model.overlap * min(ovh, t_x))
        out[j] = total
    return out


def speed_section(seed: int, n_devices: int) -> dict[str, Any]:
    from fleetnas.data.help import read_archs
    from fleetnas.sim import generate_fleet, latency_matrix, layer_table
    from fleetnas.sim.features import clear_layer_tables

    space, archs = read_archs(None, "nb201")
    clear_layer_tables()
    t0 = time.perf_counter()
    layer_table(space, archs)
    featurize = time.perf_counter() - t0
    models = [d.model for d in generate_fleet(n_devices, rng=seed)]
    t0 = time.perf_counter()
    lat = latency_matrix(models, space, archs)
    ours = time.perf_counter() - t0
    slice_archs = archs[:: len(archs) // 300][:300]
    t0 = time.perf_counter()
    base = np.array([_loop_latency(m, space, slice_archs) for m in models[:3]])
    loop = time.perf_counter() - t0
    np.testing.assert_allclose(base, latency_matrix(models[:3], space, slice_archs), rtol=1e-9)
    per_pair_ours = ours / lat.size
    per_pair_loop = loop / base.size
    return {
        "devices": n_devices,
        "designs": len(archs),
        "featurize_seconds": featurize,
        "latency_matrix_seconds": ours,
        "ours_ns_per_pair": per_pair_ours * 1e9,
        "loop_ns_per_pair": per_pair_loop * 1e9,
        "speedup": per_pair_loop / per_pair_ours,
        "loop_extrapolated_seconds": per_pair_loop * lat.size,
    }


# ---- report ----------------------------------------------------------------------------------
def markdown(res: dict[str, Any]) -> str:
    lines = ["# Simulator calibration and synthetic fleets (issue 3)", ""]
    lines.append(f"Environment: {res['environment']['cpu']}, {res['environment']['cores']} CPUs.")
    lines.append("")
    for key, title in (
        ("calibration", "HELP NAS-Bench-201"),
        ("fbnet", "HELP FBNet"),
        ("ofa", "HELP OFA-MobileNetV3"),
    ):
        if key not in res:
            continue
        sec = res[key]
        s = sec["summary"]
        lines += [
            f"## Calibration: {title} ({s['devices']} settings, fit on {s['n_fit']}, "
            f"scored on {s['n_heldout']} held-out designs)",
            "",
            f"Calibrated sim: mean Spearman {s['spearman_mean']:.3f} (median "
            f"{s['spearman_median']:.3f}, min {s['spearman_min']:.3f}; "
            f"{s['devices_spearman_over_0.9']}/{s['devices']} above 0.9), median MdAPE "
            f"{s['mdape_median']:.1f} %, median MAPE {s['mape_median']:.1f} %, "
            f"{s['seconds_mean']:.1f} s per device. Baselines: per-(decision, op) LUT fitted on "
            f"the same designs {s['lut_spearman_mean']:.3f}, FLOPs {s['flops_spearman_mean']:.3f},"
            f" uncalibrated model {s['uncalibrated_spearman_mean']:.3f} (mean Spearman).",
            "",
            "| device | family | batch | Spearman | MAPE % | MdAPE % | s | LUT Spearman | "
            "FLOPs Spearman | uncalibrated Spearman |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in sec["devices"]:
            lines.append(
                f"| {r['device']} | {r['family']} | {r['batch_size']} | {r['spearman']:.3f} | "
                f"{r['mape']:.1f} | {r['mdape']:.1f} | {r['seconds']:.1f} | "
                f"{r['lut_spearman']:.3f} | {r['flops_spearman']:.3f} | "
                f"{r['uncalibrated_spearman']:.3f} |"
            )
        lines.append("")
    if "fleet" in res:
        f = res["fleet"]
        lines += [
            "## Pairwise Spearman between devices (all 15,625 NB201 cells)",
            "",
            "| set | pairs | mean | " + " | ".join(f"p{q}" for q in QUANTILES) + " | KS vs real |",
            "|---|---:|---:|" + "---:|" * len(QUANTILES) + "---:|",
        ]
        for key, label in (
            ("real", "real HELP (27)"),
            ("synthetic", "synthetic fleet (default mix)"),
            ("around_calibrated", "fleet around calibrated (spread 0.2)"),
            ("calibrated", "calibrated models (27)"),
        ):
            if key in f:
                d = f[key]
                qs = " | ".join(f"{d['quantiles'][f'p{q}']:.3f}" for q in QUANTILES)
                ks = f"{d['ks_vs_real']:.3f}" if "ks_vs_real" in d else "-"
                lines.append(f"| {label} | {d['pairs']} | {d['mean']:.3f} | {qs} | {ks} |")
        w = f["synthetic"]["within_family_median"]
        lines += [
            "",
            "Median within-family Spearman of the synthetic fleet: "
            + ", ".join(f"{k} {v:.3f}" for k, v in w.items())
            + ".",
            "",
        ]
    if "speed" in res:
        s = res["speed"]
        lines += [
            "## Speed",
            "",
            f"{s['devices']:,} devices x {s['designs']:,} designs: "
            f"{s['latency_matrix_seconds']:.2f} s with `latency_matrix` "
            f"({s['ours_ns_per_pair']:.1f} ns per pair) vs {s['loop_ns_per_pair']:.0f} ns per pair "
            f"for a per-layer Python loop (x{s['speedup']:.0f}; the loop would take "
            f"{s['loop_extrapolated_seconds'] / 3600:.1f} h). One-off layer featurization of the "
            f"space: {s['featurize_seconds']:.1f} s.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", choices=("calibration", "fbnet", "ofa", "fleet", "speed"))
    ap.add_argument("--fit", type=int, default=3000, help="NB201 designs per calibration fit")
    ap.add_argument("--fit-5k", type=int, default=2000, help="FBNet/OFA designs per fit")
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--fleet", type=int, default=1000, help="synthetic fleet size")
    ap.add_argument("--speed-devices", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not os.environ.get("FLEETNAS_DATA_DIR"):
        print("set FLEETNAS_DATA_DIR to the public data folder (../shared/data)", file=sys.stderr)
        return 2
    only = set(args.only or ("calibration", "fbnet", "ofa", "fleet", "speed"))
    res: dict[str, Any] = {"environment": environment(), "args": vars(args)}
    t0 = time.perf_counter()
    if "calibration" in only or "fleet" in only:
        print("calibration: HELP NB201", flush=True)
        res["calibration"] = calibrate_space("nb201", args.fit, args.restarts, args.seed)
    if "fbnet" in only:
        print("calibration: HELP FBNet", flush=True)
        res["fbnet"] = calibrate_space("fbnet", args.fit_5k, args.restarts, args.seed)
    if "ofa" in only:
        print("calibration: HELP OFA-MobileNetV3", flush=True)
        res["ofa"] = calibrate_space("ofa_mbv3", args.fit_5k, args.restarts, args.seed)
    if "fleet" in only:
        print("fleet: pairwise Spearman", flush=True)
        res["fleet"] = fleet_section(args.fleet, args.seed, res["calibration"]["models"])
    if "speed" in only:
        print("speed", flush=True)
        res["speed"] = speed_section(args.seed, args.speed_devices)
    res["seconds"] = time.perf_counter() - t0
    md = markdown(res)
    write_results(RESULTS / "sim_calibration", res, md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
