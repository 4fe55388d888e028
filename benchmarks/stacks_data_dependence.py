"""How much of a stack's latency is a function of the architecture at all? LiteRT's latency
under the values that flow through the network (input, calibration data, weights).

The stacks tables (``benchmarks/stacks.py``) time every design with random weights (seeded by
the design's hash), full-integer quantization calibrated on random inputs (same seed) and a
random input that the worker draws uniformly over the input type's range. A predictor sees only
the architecture, so any latency change that comes from those values is noise to it. This
benchmark takes designs of the committed NB201 table whose LiteRT models are in the conversion
cache and times each model under the stacks protocol (median of 10 samples, each the fastest of
5 runs, one thread, this process pinned to one CPU) with:

- ``reference``: the cached int8 model, full-range uniform int8 input (as the worker feeds it);
- ``input seed``: another draw of that input; ``zero input``: every input at the zero point;
  ``small input``: a standard-normal float image quantized with the model's input scale;
- ``calibration seed``: the same float model quantized again on other random calibration inputs;
- ``weight seed``: the same architecture with other random weights (converted and quantized
  again);
- ``fp32``: the cached float model with a standard-normal, an all-zero and a x100 input;
- ONNX Runtime (1 thread, all graph optimizations), its cached static-QDQ int8 and fp32 models:
  the worker's standard-normal input against an all-zero and a x100 input, and the
  standard-normal input with denormals flushed to zero (``session.set_denormal_as_zero``).

Reported per variant: median, 90th percentile and maximum of |variant / reference - 1| over the
designs, and the Spearman correlation over designs between the variant and the reference
(how well a perfect architecture-only model of the reference ranks the variant), plus the
committed table's value against the reference (process-to-process reproducibility) and the
same model timed again at the end of its design's turn (this run's own noise floor). Beside it,
over the whole committed table, the median LiteRT int8 / fp32 ratio by how many cell edges carry
each operation.

Run: ``python benchmarks/stacks_data_dependence.py [--designs 24]`` (minutes: the weight-seed
variant converts each design again).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from _common import STACKS, environment, write_results
from fleetnas.measure import convert
from fleetnas.measure.export import onnx_path
from fleetnas.spaces import get_space

RESULTS = Path(__file__).resolve().parent / "results"
INT8 = "local-litert-t1-b1-int8"
FP32 = "local-litert-t1-b1-fp32"
SAMPLES, BEST_OF, WARMUP = 10, 5, 10


def _timed(run: Any) -> float:
    """Median over ``SAMPLES`` of the fastest of ``BEST_OF`` calls of ``run`` (ms), after
    ``WARMUP`` calls."""
    for _ in range(WARMUP):
        run()
    samples = []
    for _ in range(SAMPLES):
        best = np.inf
        for _ in range(BEST_OF):
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
        samples.append(best)
    return 1000.0 * float(np.median(samples))


def time_model(path: Path, feed: Any) -> float:
    """Median over ``SAMPLES`` of the fastest of ``BEST_OF`` runs (ms); ``feed(detail)`` gives
    the input array for the model's input."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], feed(d))
    return _timed(it.invoke)


def full_range(seed: int):
    def feed(d: dict) -> np.ndarray:
        info = np.iinfo(d["dtype"])
        rng = np.random.default_rng(seed)
        return rng.integers(max(info.min, -128), min(info.max, 127) + 1, d["shape"]).astype(
            d["dtype"]
        )

    return feed


def zero_point(d: dict) -> np.ndarray:
    return np.full(d["shape"], d["quantization"][1], dtype=d["dtype"])


def small(d: dict) -> np.ndarray:
    scale, zp = d["quantization"]
    x = np.random.default_rng(0).standard_normal(d["shape"])
    info = np.iinfo(d["dtype"])
    return np.clip(np.round(x / scale) + zp, info.min, info.max).astype(d["dtype"])


def time_ort(path: Path, scale: float, flush_denormals: bool = False) -> float:
    """The same protocol on ONNX Runtime, the input ``scale`` x standard normal."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if flush_denormals:
        so.add_session_config_entry("session.set_denormal_as_zero", "1")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
    feeds = {inp.name: (scale * np.random.default_rng(0).standard_normal(shape)).astype(np.float32)}
    return _timed(lambda: sess.run(None, feeds))


def normal(scale: float):
    def feed(d: dict) -> np.ndarray:
        return (scale * np.random.default_rng(0).standard_normal(d["shape"])).astype(d["dtype"])

    return feed


@contextlib.contextmanager
def _seed_shift(shift: int):
    """The converter's per-design seed (weights and calibration inputs) moved by ``shift``."""
    base = convert._seed
    convert._seed = lambda s, a: base(s, a) + shift  # type: ignore[assignment]
    try:
        yield
    finally:
        convert._seed = base  # type: ignore[assignment]


def _quantize(space, arch, fp32: Path, out: Path) -> None:
    item = {"fp32": str(fp32), "out": str(out), "precision": "int8", "nodes": None, "batch": 1}
    convert._litert_quantized(item, space, arch)


def requantize(space, arch, fp32: Path, out: Path, seed_shift: int) -> None:
    """``fp32`` quantized again with the calibration inputs of another seed."""
    with _seed_shift(seed_shift):
        _quantize(space, arch, fp32, out)


def reweight(space, arch, tmp: Path, seed_shift: int) -> Path:
    """Another random-weight network of ``arch``, converted and quantized."""
    fp32, out = tmp / f"w{seed_shift}-fp32.tflite", tmp / f"w{seed_shift}-int8.tflite"
    with _seed_shift(seed_shift):
        convert._litert_fp32(space, arch, 1, fp32)
        _quantize(space, arch, fp32, out)
    return out


def summarize(ref: np.ndarray, val: np.ndarray) -> dict[str, float]:
    rel = np.abs(val / ref - 1.0)
    return {
        "median_abs_change": float(np.median(rel)),
        "p90_abs_change": float(np.quantile(rel, 0.9)),
        "max_abs_change": float(rel.max()),
        "share_over_10pct": float(np.mean(rel > 0.10)),
        "spearman_with_reference": float(spearmanr(ref, val)[0]),
    }


#: Variant columns and the column each is compared with.
COMPARED = {
    "reference": ("reference again", "table", "input seed", "zero input", "small input",
                  "calibration seed 1", "calibration seed 2", "weight seed"),
    "fp32 reference": ("fp32 zero input", "fp32 x100 input"),
    "ort int8 reference": ("ort int8 zero input", "ort int8 x100 input",
                           "ort int8 denormals flushed"),
    "ort fp32 reference": ("ort fp32 zero input", "ort fp32 x100 input",
                           "ort fp32 denormals flushed"),
}  # fmt: skip


def summarize_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Every variant against its reference, over the designs that have both."""
    frame = pd.DataFrame(rows)
    out = {}
    for ref, cols in COMPARED.items():
        for c in cols:
            if ref in frame and c in frame:
                both = frame[[ref, c]].dropna().to_numpy(float)
                out[c] = summarize(both[:, 0], both[:, 1]) | {"reference": ref}
    return out


def op_ratios(table: pd.DataFrame, space: Any) -> dict[str, dict[str, float]]:
    """Median LiteRT int8 / fp32 latency ratio over the whole table by how many edges of the
    cell carry each operation (what an additive model can and cannot see)."""
    from fleetnas.spaces.nb201 import OPS

    ok = table[f"{INT8}[latency:ms:median]"].notna() & table[f"{FP32}[latency:ms:median]"].notna()
    t = table[ok]
    archs = space.parse_many(t["architecture"].tolist())
    ratio = (t[f"{INT8}[latency:ms:median]"] / t[f"{FP32}[latency:ms:median]"]).to_numpy()
    out = {}
    for k, op in enumerate(OPS):
        count = (archs == k).sum(axis=1)
        out[op] = {
            str(c): float(np.median(ratio[count == c]))
            for c in range(4)
            if (count == c).sum() >= 10
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--ratios-only",
        action="store_true",
        help="Recompute the int8/fp32 ratios over the committed table (it grew) and rewrite the "
        ".md; the timed variants stay as measured.",
    )
    args = ap.parse_args()
    if args.ratios_only:
        stem = args.out / "stacks_data_dependence"
        res = json.loads(stem.with_suffix(".json").read_text())
        table = pd.read_csv(STACKS / "nb201.csv")
        res["int8_over_fp32_by_op_count"] = op_ratios(table, get_space("nb201"))
        res["ratios_designs"] = len(table)
        write_results(stem, res, markdown(res))
        return 0
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    space = get_space("nb201")
    table = pd.read_csv(STACKS / "nb201.csv")
    cached = []
    for text in table["architecture"]:
        a = space.parse(text)
        q, f = (convert.model_path("litert", space, a, 1, p) for p in ("int8", "fp32"))
        if q.exists() and f.exists():
            cached.append((text, a, q, f))
    pick = np.random.default_rng(args.seed).permutation(len(cached))[: args.designs]
    rows = []
    t_start = time.perf_counter()
    for k in pick:
        text, arch, q, f = cached[k]
        row: dict[str, Any] = {"architecture": text}
        row["table"] = float(
            table.loc[table.architecture == text, f"{INT8}[latency:ms:median]"].iloc[0]
        )
        row["reference"] = time_model(q, full_range(0))
        row["input seed"] = time_model(q, full_range(1))
        row["zero input"] = time_model(q, zero_point)
        row["small input"] = time_model(q, small)
        with tempfile.TemporaryDirectory() as tmp:
            for shift in (1, 2):
                out = Path(tmp) / f"c{shift}.tflite"
                requantize(space, arch, f, out, 7919 * shift)
                row[f"calibration seed {shift}"] = time_model(out, full_range(0))
            row["weight seed"] = time_model(reweight(space, arch, Path(tmp), 104729), full_range(0))
        row["reference again"] = time_model(q, full_range(0))  # the noise floor of this run
        row["fp32 reference"] = time_model(f, normal(1.0))
        row["fp32 zero input"] = time_model(f, normal(0.0))
        row["fp32 x100 input"] = time_model(f, normal(100.0))
        for prec in ("int8", "fp32"):
            onnx = onnx_path(space, arch, 1, prec)
            if onnx.exists():
                row[f"ort {prec} reference"] = time_ort(onnx, 1.0)
                row[f"ort {prec} zero input"] = time_ort(onnx, 0.0)
                row[f"ort {prec} x100 input"] = time_ort(onnx, 100.0)
                row[f"ort {prec} denormals flushed"] = time_ort(onnx, 1.0, flush_denormals=True)
        rows.append(row)
        print(f"{len(rows)}/{len(pick)} {text}: " + ", ".join(
            f"{k} {v:.3f}" for k, v in row.items() if k != "architecture"
        ), flush=True)  # fmt: skip
    variants = summarize_rows(rows)
    res = {
        "host": environment(),
        "config": {"designs": len(rows), "seed": args.seed, "samples": SAMPLES,
                   "best_of": BEST_OF, "threads": 1, "stack": INT8},
        "variants": variants,
        "int8_over_fp32_by_op_count": op_ratios(table, space),
        "ratios_designs": len(table),
        "designs": rows,
        "total_s": time.perf_counter() - t_start,
    }  # fmt: skip
    write_results(args.out / "stacks_data_dependence", res, markdown(res))
    print(markdown(res))
    return 0


LABELS = {
    "table": "committed table (other processes)",
    "reference again": "reference again (this run's noise floor)",
}


def markdown(res: dict[str, Any]) -> str:
    c = res["config"]
    lines = [
        "# Latency under the values in the network: LiteRT and ONNX Runtime (issues 15, 16)",
        "",
        f"{c['designs']} NB201 designs of the committed stacks table (random pick, seed "
        f"{c['seed']}) whose LiteRT models are cached; each model timed in this process under the "
        f"stacks protocol (median of {c['samples']} samples, each the fastest of {c['best_of']} "
        "runs, 1 thread, pinned). The reference is the table's int8 model with the worker's "
        "full-range uniform int8 input; fp32 rows compare the float model with a standard-normal "
        "input. No parameter is chosen here.",
        "",
        "| variant | median abs. change | p90 | max | share > 10 % | Spearman with the reference |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in res["variants"].items():
        label = LABELS.get(name, name)
        lines.append(
            f"| {label} | {v['median_abs_change']:.1%} | {v['p90_abs_change']:.1%} | "
            f"{v['max_abs_change']:.1%} | {v['share_over_10pct']:.0%} | "
            f"{v['spearman_with_reference']:.3f} |"
        )
    lines += [
        "",
        "LiteRT int8 / fp32 latency ratio (median over the whole committed table"
        + (f", {res['ratios_designs']:,} designs" if "ratios_designs" in res else "")
        + ") by the number of cell edges that carry each operation:",
        "",
        "| operation | 0 edges | 1 | 2 | 3 |",
        "|---|---|---|---|---|",
    ]
    for op, by in res.get("int8_over_fp32_by_op_count", {}).items():
        cells = [f"{by[c]:.2f}" if c in by else "" for c in ("0", "1", "2", "3")]
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
