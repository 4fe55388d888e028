"""Local measurement of NAS-Bench-201 networks under each runtime setting of this machine.

For every setting (ONNX Runtime 1 vs 2 threads x batch 1 vs 8 x fp32 vs int8, and PyTorch eager
with 1 thread) the same architectures are measured twice, in two separate sessions (all
settings once, then all settings again, each with fresh worker processes):

- time per measured architecture, first with an empty export cache (ONNX export and int8
  quantization included), then with the cache filled;
- reproducibility between the two sessions: median relative difference |a - b| / mean(a, b)
  and Spearman rank correlation over the architectures;
- share of results flagged noisy after re-measuring.

Baseline, in the same run: a naive protocol (one process, one warm-up, no re-measuring) on the
1- and 2-thread fp32 batch-1 settings, measured twice the same way, for the reproducibility
it buys. Results: ``benchmarks/results/measure_local.{json,md}``.

Run: ``.venv/bin/python benchmarks/measure_local.py`` (about 5-8 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from _common import load_average, write_results
from fleetnas.measure.local import LocalRuntimeMeasurer, local_settings
from fleetnas.measure.settings import RuntimeSetting, host_features, runtime_version
from fleetnas.measure.timing import TimingConfig
from fleetnas.spaces import get_space

RESULTS = Path(__file__).resolve().parent / "results"
PROTOCOL = TimingConfig(warmup=3, repeats=10, processes=2, retries=1)
NAIVE = TimingConfig(warmup=1, repeats=10, processes=1, retries=0)


def measure_once(
    setting: RuntimeSetting, cfg: TimingConfig, archs: np.ndarray, seed: int
) -> dict[str, Any]:
    """One session: a fresh measurer (no store, nothing reused) over ``archs``."""
    space = get_space("nb201")
    cfg = TimingConfig(**{**cfg.to_dict(), "cpus": None, "seed": seed})
    m = LocalRuntimeMeasurer(setting, cfg, store=None, reuse=False)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    r = m.measure(space, archs)
    wall = time.perf_counter() - t0
    exported, cached, export_s = m.last_export
    return {
        "latency_ms": r["latency"].tolist(),
        "noisy": r.stats["latency"]["noisy"].tolist(),
        "attempts": r.stats["latency"]["attempts"].tolist(),
        "wall_s": wall,
        "export_s": export_s,
        "exported": exported,
        "cached": cached,
        "device_s": r.cost.device_seconds,
        "workers": len(m.last_report.workers) if m.last_report else 0,
        "loadavg_1min": load,
    }


def compare(a: list[float], b: list[float]) -> dict[str, float]:
    x, y = np.asarray(a), np.asarray(b)
    rel = np.abs(x - y) / ((x + y) / 2)
    return {
        "median_rel_diff": float(np.median(rel)),
        "p90_rel_diff": float(np.percentile(rel, 90)),
        "spearman": float(spearmanr(x, y).statistic),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=30, help="Architectures per setting.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="Fewer settings (smoke test).")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--rerender", action="store_true", help="Only rebuild the table from the raw results."
    )
    args = ap.parse_args()
    if args.rerender:
        rerender(args.out)
        return

    space = get_space("nb201")
    archs = np.unique(space.sample(args.archs * 2, rng=args.seed), axis=0)[: args.archs]
    settings = local_settings()
    if args.quick:
        settings = [settings[0], settings[-1]]
    baselines = [
        s for s in settings if s.runtime == "onnxruntime" and s.batch == 1 and s.precision == "fp32"
    ]
    load_start = load_average()
    t_start = time.perf_counter()
    sessions: dict[str, list[dict[str, Any]]] = {}
    naive: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="fleetnas-bench-cache-") as cache:
        os.environ["FLEETNAS_CACHE"] = cache  # session 1 starts with an empty export cache
        for session in (1, 2):
            for s in settings:
                print(f"session {session}: {s.slug}", flush=True)
                res = measure_once(s, PROTOCOL, archs, seed=session)
                sessions.setdefault(s.slug, []).append(res)
            for s in baselines:
                print(f"session {session}: {s.slug} (naive baseline)", flush=True)
                naive.setdefault(s.slug, []).append(measure_once(s, NAIVE, archs, seed=session))
    total = time.perf_counter() - t_start

    rows = build_rows([s.slug for s in settings], sessions, naive, len(archs))

    payload = {
        "benchmark": "measure_local",
        "space": "nb201",
        "archs": len(archs),
        "protocol": PROTOCOL.to_dict(),
        "naive_baseline": NAIVE.to_dict(),
        "int8": "onnxruntime static QDQ quantization, random-normal calibration (8 samples)",
        "host": {
            **host_features(),
            "python": platform.python_version(),
            "onnxruntime": runtime_version("onnxruntime"),
            "torch": runtime_version("torch"),
        },
        "loadavg_start": load_start,
        "loadavg_end": load_average(),
        "total_s": total,
        "caveat": "2-core machine shared with other jobs (other test suites ran concurrently); "
        "absolute latencies and reproducibility include that interference.",
        "rows": rows,
        "sessions": sessions,
        "naive_sessions": naive,
        "architectures": space.format_many(archs),
    }
    write_results(args.out / "measure_local", payload, render(payload))
    print(render(payload))


def build_rows(
    slugs: list[str],
    sessions: dict[str, list[dict[str, Any]]],
    naive: dict[str, list[dict[str, Any]]],
    n: int,
) -> list[dict[str, Any]]:
    """One summary row per setting from the raw sessions."""
    rows = []
    for slug in slugs:
        first, second = sessions[slug]
        clean = (np.array(first["noisy"]) == 0) & (np.array(second["noisy"]) == 0)
        row = {
            "setting": slug,
            "device": f"local-{slug}",
            "median_latency_ms": float(np.median(first["latency_ms"] + second["latency_ms"])),
            "s_per_arch_uncached": first["wall_s"] / n,
            "s_per_arch_cached": second["wall_s"] / n,
            "export_s_per_arch": first["export_s"] / n,
            "device_s_per_arch": (first["device_s"] + second["device_s"]) / (2 * n),
            "noisy_share": float(np.mean(first["noisy"] + second["noisy"])),
            "remeasured_share": float(
                np.mean(np.array(first["attempts"] + second["attempts"]) > 1)
            ),
            "loadavg_sessions": [first["loadavg_1min"], second["loadavg_1min"]],
            **compare(first["latency_ms"], second["latency_ms"]),
            "clean_both": int(clean.sum()),
        }
        if clean.sum() >= 5:
            kept = compare(
                list(np.array(first["latency_ms"])[clean]),
                list(np.array(second["latency_ms"])[clean]),
            )
            row["clean_median_rel_diff"] = kept["median_rel_diff"]
            row["clean_spearman"] = kept["spearman"]
        if slug in naive:
            nf, ns = naive[slug]
            base = compare(nf["latency_ms"], ns["latency_ms"])
            row["naive_median_rel_diff"] = base["median_rel_diff"]
            row["naive_spearman"] = base["spearman"]
            row["naive_s_per_arch"] = (nf["wall_s"] + ns["wall_s"]) / (2 * n)
        rows.append(row)
    return rows


def rerender(out: Path) -> None:
    """Recompute the summary rows and the table from the raw sessions of a results file."""
    payload = json.loads((out / "measure_local.json").read_text())
    payload["rows"] = build_rows(
        [r["setting"] for r in payload["rows"]],
        payload["sessions"],
        payload["naive_sessions"],
        payload["archs"],
    )
    write_results(out / "measure_local", payload, render(payload))
    print(render(payload))


def render(p: dict[str, Any]) -> str:
    h = p["host"]
    lines = [
        "# Local measurement of NB201 networks (benchmarks/measure_local.py)",
        "",
        f"{p['archs']} NB201 architectures per setting, measured in two separate sessions "
        f"(fresh worker processes each). Protocol: {p['protocol']['warmup']} warm-ups, "
        f"{p['protocol']['repeats']} repeats x {p['protocol']['processes']} processes, up to "
        f"{p['protocol']['retries']} re-measure of noisy results. Host: {h['cpu_model']}, "
        f"{h['cores']} cores, {h['memory_gb']} GB; onnxruntime {h['onnxruntime']}, torch "
        f"{h['torch']}. Total {p['total_s']:.0f} s; load average "
        f"{p['loadavg_start'][0]:.1f} at start, {p['loadavg_end'][0]:.1f} at end.",
        "",
        f"**Caveat:** {p['caveat']}",
        "",
        "| setting | median latency ms | s/arch uncached | s/arch cached | export s/arch "
        "| median rel. diff | Spearman | noisy | clean in both | clean rel. diff | clean Spearman "
        "| naive rel. diff | naive Spearman | load 1/2 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in p["rows"]:
        load = r["loadavg_sessions"]
        clean = (
            f"{r['clean_median_rel_diff']:.3f} | {r['clean_spearman']:.3f}"
            if "clean_spearman" in r
            else "- | -"
        )
        naive = (
            f"{r['naive_median_rel_diff']:.3f} | {r['naive_spearman']:.3f}"
            if "naive_spearman" in r
            else "- | -"
        )
        lines.append(
            f"| {r['setting']} | {r['median_latency_ms']:.3f} | {r['s_per_arch_uncached']:.2f} "
            f"| {r['s_per_arch_cached']:.2f} | {r['export_s_per_arch']:.2f} "
            f"| {r['median_rel_diff']:.3f} | {r['spearman']:.3f} | {r['noisy_share']:.2f} "
            f"| {r['clean_both']} | {clean} | {naive} | {load[0]:.1f}/{load[1]:.1f} |"
        )
    lines += [
        "",
        "s/arch: wall-clock seconds per architecture of a whole measure() call (export, fresh "
        "worker processes, re-measuring). Exports are keyed by batch and precision, not threads, "
        "so the 2-thread rows find them cached already; the first row also pays the torch "
        "import. Torch has no export step. Load 1/2: 1-minute load average when each session "
        "of that setting started (2 cores). Noisy: share of values still flagged noisy after "
        "re-measuring (stored with noisy = 1); clean: the architectures flagged in neither "
        "session (shown when at least 5). Rel. diff: median over "
        "architectures of |session 1 - session 2| / mean. Naive: one process, one warm-up, no "
        "re-measuring (baseline, fp32 batch 1 only). int8: " + p["int8"] + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
