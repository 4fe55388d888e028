"""The digits end-to-end check (:mod:`fleetnas.digits_check`) with its numbers for the docs.

One nb201+q design (width 0.5) trained on scikit-learn's digits, then measured as fp32, all-int8
and a mixed policy (stage 0 fp32, stages 1-2 int8) through ONNX Runtime on one thread. Each
repeat is a fresh process (training, export, quantization and timing again, same seed), so the
spread across repeats shows run-to-run noise on this shared machine.

Writes ``benchmarks/results/compression_digits.json`` and ``.md``. From the repository root:
``.venv/bin/python benchmarks/compression_digits.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from _common import environment, write_results

RESULTS = Path(__file__).resolve().parent / "results"
POLICIES = ("q=fp32", "q=int8", "q=fp32,int8,int8")
CHILD = (
    "import json, sys; from fleetnas.digits_check import run; "
    "print(json.dumps([r.to_dict() for r in run(policies=tuple(sys.argv[1:]), runs=300)]))"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    env = environment(threads=1)
    repeats: list[list[dict[str, Any]]] = []
    for _ in range(args.repeats):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, *POLICIES], capture_output=True, text=True, check=True
        ).stdout
        repeats.append(json.loads(out.strip().splitlines()[-1]))
    rows = []
    for k, policy in enumerate(POLICIES):
        runs = [r[k] for r in repeats]
        med = [r["latency_ms_median"] for r in runs]
        rows.append(
            {
                "policy": policy,
                "design": runs[0]["design"],
                "accuracy": [r["accuracy"] for r in runs],
                "latency_ms_median_of_medians": float(np.median(med)),
                "latency_ms_min_median": float(np.min(med)),
                "latency_ms_max_median": float(np.max(med)),
                "latency_ms_iqr_within_run": [r["latency_ms_iqr"] for r in runs],
                "quantized_nodes": runs[0]["quantized_nodes"],
                "dequantize_ops": runs[0]["dequantize_ops"],
            }
        )
    fp32 = rows[0]["latency_ms_median_of_medians"]
    for r in rows:
        r["latency_ratio_vs_fp32"] = r["latency_ms_median_of_medians"] / fp32
    res = {"environment": env, "repeats": args.repeats, "timed_runs_per_repeat": 300, "rows": rows}
    lines = [
        "# Digits end-to-end check: nb201+q trained, fp32 vs ONNX Runtime int8 (measured)",
        "",
        f"Design `{rows[0]['design'].split('@')[0]}` at width 0.5, trained 6 epochs on "
        "scikit-learn digits (1,347 train / 450 test images, 8x8); static QDQ int8 (uint8 "
        "activations, int8 weights) calibrated on 64 training images. One thread, batch 1, "
        f"{args.repeats} fresh processes x 300 timed runs. Load before: {env['load_before']}.",
        "",
        "| policy | test accuracy (per repeat) | latency ms (median of medians) | min..max "
        "median | ratio vs fp32 | quantized nodes | DequantizeLinear ops |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        accs = ", ".join(f"{a:.3f}" for a in r["accuracy"])
        lines.append(
            f"| {r['policy']} | {accs} | {r['latency_ms_median_of_medians']:.3f} | "
            f"{r['latency_ms_min_median']:.3f}..{r['latency_ms_max_median']:.3f} | "
            f"{r['latency_ratio_vs_fp32']:.2f} | {r['quantized_nodes']} | {r['dequantize_ops']} |"
        )
    write_results(RESULTS / "compression_digits", res, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
