"""Real cross-stack tables: the same designs measured on this machine's runtime stacks.

Each stack setting (ONNX Runtime fp32/int8 x 1/2 threads, LiteRT fp32/int8, OpenVINO fp32/int8 by
default) is its own device (setting + host + measurement protocol). The designs are HELP's 10
reference designs followed by a stratified sample of the space (strata: FLOPs deciles; the order
interleaves the strata so every prefix is stratified), so ``--limit`` grows the table without
changing what is already in it. Designs are measured in chunks: every stack measures the chunk
once (session 1, stored and reused on resume), then every stack measures it again with fresh
worker processes (session 2, also stored: the store keeps both runs). Interrupt at any time and
run again: finished work is read back from the SQLite store (``--db``). A new store (another
machine) starts from the committed table: each stack's two sessions are written back under the
stack's own identity (:func:`seed_from_table`), so the table grows from where it ends.

Outputs (``--out``, default ``benchmarks/results``):

- ``stacks/<space>.csv``: the exchange format (wide), per stack the newest ``median`` and both
  sessions (``session1``, ``session2``) of ``latency`` in ms, plus the ``noisy`` flag (metric
  ``noisy``, unit ``flag``) of the stored median;
- ``stacks/<space>-devices.json``: each stack's device record (features: runtime and converter
  versions, quantization, protocol, machine) and the run's load averages;
- ``stacks.json`` / ``stacks.md`` (``stacks_<space>`` for other spaces): per stack the
  two-session noise (median relative difference |s1 - s2| / mean over designs; target <= 2 % at
  1 thread), the Spearman matrix between stacks and against HELP's devices (over the designs
  HELP's table holds), and the int8-vs-fp32 speed-up per stack family (median over designs of
  fp32 / int8, with its IQR).

Run: ``python benchmarks/stacks.py --limit 300`` (hours on a shared 2-core machine; LiteRT
conversion dominates). ``--report-only`` rebuilds the tables from the store.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from _common import environment, write_results
from fleetnas.data.exchange import write_table
from fleetnas.data.help import read_archs, read_latencies, read_reference_indices
from fleetnas.devices.catalog import help_file_names
from fleetnas.errors import FleetnasError
from fleetnas.measure import UNMEASURABLE, get_measurer
from fleetnas.measure.local import LocalRuntimeMeasurer
from fleetnas.paths import data_dir
from fleetnas.spaces import SearchSpace, get_space
from fleetnas.store import open_store

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
#: The protocol every stack is measured under: each of the 10 samples per process is the fastest
#: of 5 back-to-back runs (on this shared virtual machine a plain median of single runs differed
#: by 10-20 % between fresh processes, the median of best-of-5 samples by 1-3 %).
PROTOCOL = "warmup=5,repeats=10,best_of=5,processes=2,retries=1"
STACKS = (
    "onnxruntime:threads=1,precision=fp32",
    "onnxruntime:threads=1,precision=int8",
    "onnxruntime:threads=2,precision=fp32",
    "onnxruntime:threads=2,precision=int8",
    "litert:threads=1,precision=fp32",
    "litert:threads=1,precision=int8",
    "openvino:threads=1,precision=fp32",
    "openvino:threads=1,precision=int8",
)
STRATA = 10


def stack_spec(spec: str) -> str:
    """``spec`` with the protocol and its CPUs: a ``threads=N`` worker is pinned to the machine's
    last N CPUs (by number, not by this process's affinity, so the benchmark itself may run
    under ``taskset`` on the last CPU while two-thread stacks still get two)."""
    from fleetnas.measure import parse_options, split_spec

    threads = int(parse_options(split_spec(spec)[1], "stack spec").get("threads", 1))
    cpus = list(range(os.cpu_count() or 1))[-threads:]
    return f"{spec},{PROTOCOL},cpus={'+'.join(map(str, cpus))}"


def parse_choices(space: SearchSpace, texts: list[str]) -> dict[int, np.ndarray]:
    """``["r=160:224", "ks_0=3,5"]`` -> decision column -> the allowed choice indices (``lo:hi``
    keeps the numeric choices in that closed range, a comma list names them)."""
    names = [d.name for d in space.decisions]
    out: dict[int, np.ndarray] = {}
    for text in texts:
        name, _, values = text.partition("=")
        if name not in names or not values:
            raise SystemExit(
                f"--choices {text!r}: expected DECISION=LO:HI or DECISION=A,B with DECISION one "
                f"of {space.name}'s decisions ({', '.join(names[:4])}, ...)"
            )
        choices = [str(c) for c in space.decisions[names.index(name)].choices]
        if ":" in values:
            lo, hi = map(float, values.split(":"))
            keep = [i for i, c in enumerate(choices) if lo <= float(c) <= hi]
        else:
            keep = [choices.index(v) for v in values.split(",") if v in choices]
        if not keep:
            raise SystemExit(f"--choices {text!r}: no choice of {name} in {values} ({choices})")
        out[names.index(name)] = np.array(keep)
    return out


def design_order(
    space: SearchSpace, seed: int, pool: int = 20000, choices: dict[int, np.ndarray] | None = None
) -> np.ndarray:
    """HELP's reference designs first (where the data has them), then every stratum in turn
    (FLOPs deciles) of the candidates: the whole space where it is small enough to enumerate,
    else HELP's table of the space (so the stacks join HELP's devices design by design), else a
    seeded pool of ``pool`` samples. ``choices`` (column -> allowed choice indices) restricts
    the candidates, not the references."""
    rng = np.random.default_rng(seed)
    refs = np.zeros((0, space.n_decisions), dtype=np.int64)
    help_archs = None
    with contextlib.suppress(FleetnasError):  # no HELP data for this space: no references
        help_archs = read_archs(None, space.name)[1]
        refs = help_archs[read_reference_indices(None, space.name)]
    if space.size <= 100_000:
        archs = space.enumerate()
    elif help_archs is not None:
        archs = help_archs
    else:
        archs = space.sample(pool, rng)
    finite = space.size <= 100_000 or help_archs is not None
    for col, allowed in (choices or {}).items():
        if finite:  # keep the allowed designs
            archs = archs[np.isin(archs[:, col], allowed)]
        else:  # sampled: draw the decision from its allowed choices
            archs[:, col] = rng.choice(allowed, len(archs))
    archs = np.unique(space.canonicalize(archs), axis=0)
    flops = np.asarray(space.flops(archs), dtype=float)
    edges = np.quantile(flops, np.linspace(0, 1, STRATA + 1)[1:-1])
    stratum = np.searchsorted(edges, flops, side="right")
    lists = [rng.permutation(np.flatnonzero(stratum == s)).tolist() for s in range(STRATA)]
    order = [i for row in zip(*lists, strict=False) for i in row]
    longest = max(map(len, lists))
    order += [lst[j] for j in range(min(map(len, lists)), longest) for lst in lists if j < len(lst)]
    seen = {r.tobytes() for r in refs}
    rest = [archs[i] for i in order if archs[i].tobytes() not in seen]
    return np.concatenate([refs, np.array(rest, dtype=np.int64).reshape(-1, space.n_decisions)])


def seed_from_table(
    store: Any, space: SearchSpace, measurers: dict[str, LocalRuntimeMeasurer], csv: Path
) -> None:
    """A new store (a new machine: ``benchmarks/.state/`` is not committed) starts from the
    committed table: each stack's two sessions are written back as two measure runs under that
    stack's own identity, so the run goes on where the table ends instead of starting over.
    Stacks the store already holds, or the table lacks, are left alone."""
    from fleetnas.data.exchange import read_table
    from fleetnas.measure.base import MeasureResult

    if not csv.exists():
        return
    table = None
    for m in measurers.values():
        if len(store.measurements_frame(space, [m.device.name], ["latency"])):
            continue
        if table is None:
            table = read_table(csv, space=space.name)
        rows = table[table["device"] == m.device.name]
        if rows.empty:
            continue
        wide = rows.pivot_table(
            index="architecture", columns=["metric", "statistic"], values="value", aggfunc="last"
        )
        if ("latency", "session1") not in wide or ("latency", "session2") not in wide:
            continue
        wide = wide.dropna(subset=[("latency", "session1"), ("latency", "session2")])
        archs = space.parse_many(list(wide.index))
        noisy = wide.get(("noisy", "median"))
        for session in ("session1", "session2"):
            stats = (
                {"noisy": noisy.to_numpy(float)}
                if session == "session2" and noisy is not None
                else {}
            )
            m._write(  # the measurer's own store path: its identity on every batch
                space,
                archs,
                MeasureResult(
                    archs=archs,
                    values={"latency": wide[("latency", session)].to_numpy(float)},
                    units={"latency": "ms"},
                    stats={"latency": stats},
                ),
            )
        print(
            f"{m.device.name}: {len(archs)} designs x 2 sessions read back from {csv}", flush=True
        )


def session_frame(store: Any, space: SearchSpace, devices: list[str]) -> pd.DataFrame:
    """Long frame of the stored medians with a ``session`` number per design and device (runs
    in order), plus the ``noisy`` flags and the unmeasurable records."""
    frame = store.measurements_frame(space, devices, ["latency"])
    if frame.empty:
        return frame.assign(session=[])
    frame = frame.sort_values(["run", "timestamp"], kind="stable")
    med = frame[frame["statistic"] == "median"].copy()
    med["session"] = med.groupby(["device", "architecture"]).cumcount() + 1
    return pd.concat(
        [med, frame[frame["statistic"].isin(["noisy", UNMEASURABLE])].assign(session=0)]
    )


def sessions_done(frame: pd.DataFrame, device: str, texts: list[str]) -> np.ndarray:
    """Per design, how many sessions are stored on ``device`` (2 for unmeasurable ones)."""
    f = frame[frame["device"] == device] if len(frame) else frame
    med = f[f["statistic"] == "median"].groupby("architecture")["session"].max() if len(f) else {}
    bad = set(f[f["statistic"] == UNMEASURABLE]["architecture"]) if len(f) else set()
    return np.array([2 if t in bad else int(med.get(t, 0)) for t in texts])


def measure(args: argparse.Namespace) -> None:
    space = get_space(args.space)
    order = design_order(space, args.seed, choices=parse_choices(space, args.choices))
    order = order[: args.limit]
    texts = space.format_many(order)
    if args.prepare_only:
        prepare(args, space, order)
        return
    log = args.out / "stacks" / f"{space.name}-loads.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open_store(args.db) as store:
        measurers: dict[str, LocalRuntimeMeasurer] = {
            spec: get_measurer(stack_spec(spec), store=store) for spec in args.stacks
        }
        fresh = {spec: get_measurer(stack_spec(spec), store=store, reuse=False)
                 for spec in args.stacks}  # fmt: skip
        seed_from_table(store, space, measurers, args.out / "stacks" / f"{space.name}.csv")
        # what the store holds already, read once: complete chunks are skipped without a query
        stored = session_frame(store, space, [m.device.name for m in measurers.values()])
        held = [sessions_done(stored, m.device.name, texts) for m in measurers.values()]
        t_start = time.monotonic()
        for lo in range(0, len(order), args.chunk):
            if min(h[lo : lo + args.chunk].min() for h in held) >= 2:
                continue
            if args.hours and time.monotonic() - t_start > args.hours * 3600:
                print("time budget used up; run again to go on", flush=True)
                break
            chunk, ctexts = order[lo : lo + args.chunk], texts[lo : lo + args.chunk]
            for session in (1, 2):
                frame = session_frame(store, space, [m.device.name for m in measurers.values()])
                for spec, m in measurers.items():
                    done = sessions_done(frame, m.device.name, ctexts)
                    todo = np.flatnonzero(done < session)
                    if not len(todo):
                        continue
                    load = os.getloadavg()[0]
                    t0 = time.perf_counter()
                    # session 1 reuses nothing new; session 2 must take fresh values
                    r = (m if session == 1 else fresh[spec]).measure(space, chunk[todo])
                    wall = time.perf_counter() - t0
                    noisy = np.nanmean(r.stats.get("latency", {}).get("noisy", np.nan))
                    row = {"stack": m.device.name, "session": session, "designs": len(todo),
                           "loadavg_1min": round(load, 2), "wall_s": round(wall, 2),
                           "failures": len(r.failures), "time": time.time()}  # fmt: skip
                    with log.open("a") as fh:  # opened per row: a replaced file loses nothing
                        fh.write(json.dumps(row) + "\n")
                    print(
                        f"[{lo + len(chunk)}/{len(order)}] s{session} {m.device.name}: "
                        f"{len(todo)} designs {wall:.0f} s, load {load:.1f}, noisy {noisy:.2f}, "
                        f"unmeasurable {len(r.failures)}",
                        flush=True,
                    )
    report(args)


def prepare(args: argparse.Namespace, space: SearchSpace, order: np.ndarray) -> None:
    """Convert (export, quantize) the designs for every stack without timing anything, last
    design first: run beside a measuring process (``nice``, on another CPU) so that one finds
    its models in the cache; the two meet in the middle."""
    with open_store(args.db) as store:
        ms = [get_measurer(stack_spec(spec), store=store) for spec in args.stacks]
        for hi in range(len(order), 0, -args.chunk):
            chunk = order[max(0, hi - args.chunk) : hi]
            t0 = time.perf_counter()
            for m in ms:
                m.prepare(space, chunk)
            print(f"prepared designs {max(0, hi - args.chunk)}..{hi}: "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip


def _failure_messages(runs: dict[int, Any], used: list[int], archs: set[str]) -> dict:
    """``{device: {design: the runtime's message}}`` from the measure runs' configs."""
    out: dict[str, dict[str, str]] = {}
    for r in used:
        cfg = runs[r].config if r in runs else {}
        for text, why in (cfg.get(UNMEASURABLE) or {}).items():
            if text in archs:
                out.setdefault(cfg.get("device", "?"), {})[text] = why
    return out


def _rel_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) / ((a + b) / 2)


def _iqr(x: np.ndarray) -> float:
    q75, q25 = np.percentile(x, [75, 25])
    return float(q75 - q25)


def report(args: argparse.Namespace) -> None:
    space = get_space(args.space)
    with open_store(args.db) as store:
        devices = [get_measurer(stack_spec(spec), store=store).device for spec in args.stacks]
        names = [d.name for d in devices]
        frame = session_frame(store, space, names)
        runs = {r.id: r for r in store.list_runs("measure")}
    if frame.empty:
        print("nothing measured yet")
        return
    med = frame[frame["statistic"] == "median"]
    s1 = med[med["session"] == 1].pivot(index="architecture", columns="device", values="value")
    s2 = med[med["session"] == 2].pivot(index="architecture", columns="device", values="value")
    s1 = s1.reindex(columns=names)
    s2 = s2.reindex(index=s1.index, columns=names)
    both = s1.notna() & s2.notna()
    complete = both.all(axis=1)
    table = ((s1 + s2) / 2)[complete]
    noisy = frame[frame["statistic"] == "noisy"]
    bad = frame[frame["statistic"] == UNMEASURABLE]

    # exchange-format export: newest median, both sessions and noisy flags per stack
    rows = []
    for stat, src in (("session1", s1), ("session2", s2)):
        long = src[complete].reset_index().melt(id_vars="architecture", var_name="device")
        rows.append(long.assign(statistic=stat))
    newest = med.sort_values("session").drop_duplicates(["device", "architecture"], keep="last")
    cols = ["architecture", "device", "value"]
    rows.append(newest[newest["architecture"].isin(table.index)][cols].assign(statistic="median"))
    flags = noisy.drop_duplicates(["device", "architecture"], keep="last")
    noisy_rows = flags[flags["architecture"].isin(table.index)][cols]
    rows.append(noisy_rows.assign(statistic="median", metric="noisy", unit="flag"))
    out = pd.concat(rows, ignore_index=True)
    out["metric"] = out["metric"].fillna("latency") if "metric" in out else "latency"
    out["unit"] = out["unit"].fillna("ms") if "unit" in out else "ms"
    out = out.assign(space=space.name, n=1, is_estimate=False, method="stacks")
    out = out.sort_values(["device", "statistic"], kind="stable")
    stem = args.out / "stacks" / space.name
    write_table(out, stem.with_suffix(".csv"), shape="wide")
    loads_path = stem.parent / f"{space.name}-loads.jsonl"
    loads = (
        [json.loads(x) for x in loads_path.read_text().splitlines()] if loads_path.exists() else []
    )
    used = sorted(set(frame["run"]))
    stem.parent.joinpath(f"{space.name}-devices.json").write_text(
        json.dumps(
            {
                "space": space.name,
                "protocol_spec": PROTOCOL,
                "devices": [d.to_dict() for d in devices],
                "host": next((runs[r].host for r in used if r in runs), {}),
                "runs": len(used),
                "unmeasurable": _failure_messages(runs, used, set(bad["architecture"])),
            },
            indent=1,
        )
        + "\n"
    )

    # two-session noise per stack
    noise = {}
    for d in names:
        ok = both[d]
        rel = _rel_diff(s1.loc[ok, d].to_numpy(), s2.loc[ok, d].to_numpy())
        fl = flags[flags["device"] == d]["value"].to_numpy()
        noise[d] = {
            "designs": int(ok.sum()),
            "median_rel_diff": float(np.median(rel)) if len(rel) else None,
            "p90_rel_diff": float(np.percentile(rel, 90)) if len(rel) else None,
            "session_spearman": float(spearmanr(s1.loc[ok, d], s2.loc[ok, d]).statistic)
            if ok.sum() > 2
            else None,
            "noisy_share": float(np.mean(fl)) if len(fl) else None,
            "unmeasurable": int((bad["device"] == d).sum()),
            "median_ms": float(np.median((s1.loc[ok, d] + s2.loc[ok, d]) / 2))
            if ok.any()
            else None,
        }
    # Spearman between stacks, and with HELP's devices
    rho = table.rank().corr(method="pearson") if len(table) > 2 else pd.DataFrame()
    help_rho: dict[str, dict[str, float]] = {}
    help_skipped = None
    try:  # over the designs HELP's table of the space holds (all of them where drawn from it)
        help_archs = space.format_many(read_archs(None, space.name)[1])
        pos = {t: i for i, t in enumerate(help_archs)}
        shared = [t for t in table.index if t in pos]
        idx = [pos[t] for t in shared]
        for dev in help_file_names(space.name) if len(shared) > 2 else ():
            lat = read_latencies(None, space.name, dev)[idx]
            help_rho[dev] = {
                d: float(spearmanr(table.loc[shared, d], lat).statistic) for d in names
            }
    except FleetnasError as exc:
        help_skipped = f"HELP comparison skipped: {exc}"
        print(help_skipped)
    # int8 vs fp32 speed-up per stack family
    speedups = {}
    for d in names:
        if "-int8" not in d:
            continue
        base = d.replace("-int8", "-fp32")
        if base in table:
            ratio = (table[base] / table[d]).to_numpy()
            speedups[d.replace("-int8", "")] = {
                "designs": len(ratio),
                "median": float(np.median(ratio)),
                "iqr": _iqr(ratio),
                "p10": float(np.percentile(ratio, 10)),
                "p90": float(np.percentile(ratio, 90)),
                "faster_share": float(np.mean(ratio > 1)),
            }
    payload = {
        "benchmark": "stacks",
        "space": space.name,
        "designs_complete": int(complete.sum()),
        "designs_started": len(s1),
        "protocol_spec": PROTOCOL,
        "protocol": devices[0].features.get("protocol"),
        "stacks": names,
        "noise": noise,
        "spearman": {a: {b: float(rho.loc[a, b]) for b in names} for a in names}
        if len(rho)
        else {},
        "spearman_help": help_rho,
        "spearman_help_skipped": help_skipped,
        "speedup_int8": speedups,
        "env": environment(data_dir=str(data_dir())),
        "loads": {
            "median_loadavg_1min": float(np.median([x["loadavg_1min"] for x in loads]))
            if loads
            else None,
            "max_loadavg_1min": float(max(x["loadavg_1min"] for x in loads)) if loads else None,
        },
        "versions": {
            d.name: {
                k: d.features.get(k)
                for k in (
                    "runtime_version",
                    "converter",
                    "quantization",
                    "hint",
                    "inference_precision",
                    "graph_opt",
                )
                if k in d.features
            }
            for d in devices
        },
        "caveat": "2-core machine shared with other engineers' jobs: the run was pinned to the "
        "last CPU (1-thread stacks and conversions there, 2-thread stacks on both) while other "
        "jobs used the first; the load averages (recorded per chunk in "
        "stacks/<space>-loads.jsonl) count both CPUs. Values flagged noisy were re-measured "
        "once.",
    }
    if len(rho):
        payload["figure"] = correlation_figure(
            rho, help_rho, names, stem.parent / f"{space.name}-spearman.png"
        ).name
    name = "stacks" if space.name == "nb201" else f"stacks_{space.name}"
    write_results(args.out / name, payload, render(payload))
    print(render(payload))


def correlation_figure(
    rho: pd.DataFrame, help_rho: dict[str, dict[str, float]], names: list[str], path: Path
) -> Path:
    """Heatmap PNG of the Spearman matrix: the stacks against each other (left) and against
    HELP's devices (right, where the space has HELP data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    short = [n.removeprefix("local-") for n in names]
    panels = [("between this machine's stacks", rho.loc[names, names].to_numpy(), short)]
    if help_rho:
        mat = np.array([[help_rho[h][n] for h in help_rho] for n in names])
        panels.append(("against HELP's devices", mat, list(help_rho)))
    widths = [len(p[2]) for p in panels]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4 + 0.32 * sum(widths), 5.2),
        gridspec_kw={"width_ratios": widths}, squeeze=False,
    )  # fmt: skip
    for i, (ax, (title, mat, cols)) in enumerate(zip(axes[0], panels, strict=True)):
        im = ax.imshow(mat, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
        ax.set_yticks(range(len(short)), short if i == 0 else [], fontsize=7)  # rows are shared
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.7, label="Spearman")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _f(x: Any, fmt: str = ".3f") -> str:
    return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, fmt)


def render(p: dict[str, Any]) -> str:
    names = p["stacks"]
    short = {n: n.removeprefix("local-") for n in names}
    lines = [
        "# Cross-stack latency tables (benchmarks/stacks.py)",
        "",
        f"{p['designs_complete']} {p['space']} designs measured in two sessions on all "
        f"{len(names)} stacks ({p['designs_started']} started): HELP's 10 reference designs, "
        "then a FLOPs-stratified sample. Protocol: " + str(p["protocol"]) + ". Host: "
        f"{p['env']['cpu']}, {p['env']['cores']} cores. Load average (1 min) per chunk: median "
        f"{_f(p['loads']['median_loadavg_1min'], '.1f')}, max "
        f"{_f(p['loads']['max_loadavg_1min'], '.1f')}.",
        "",
        f"**Caveat:** {p['caveat']}",
        "",
        "## Two-session noise per stack",
        "",
        "| stack | designs | median ms | median rel. diff | p90 rel. diff | session Spearman "
        "| noisy | unmeasurable |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        z = p["noise"][n]
        lines.append(
            f"| {short[n]} | {z['designs']} | {_f(z['median_ms'])} | {_f(z['median_rel_diff'])} "
            f"| {_f(z['p90_rel_diff'])} | {_f(z['session_spearman'])} "
            f"| {_f(z['noisy_share'], '.2f')} | {z['unmeasurable']} |"
        )
    lines += [
        "",
        "Rel. diff: |session 1 - session 2| / mean, median over designs (target <= 0.02 at 1 "
        "thread). Noisy: share of stored values flagged noisy after one re-measure.",
        "",
        "## int8 vs fp32 speed-up per stack (fp32 ms / int8 ms)",
        "",
        "| stack | designs | median | IQR | p10 | p90 | int8 faster |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, z in p["speedup_int8"].items():
        lines.append(
            f"| {k.removeprefix('local-')} | {z['designs']} | {_f(z['median'], '.2f')} | "
            f"{_f(z['iqr'], '.2f')} | {_f(z['p10'], '.2f')} | {_f(z['p90'], '.2f')} | "
            f"{_f(z['faster_share'], '.2f')} |"
        )
    if p["spearman"]:
        lines += ["", "## Spearman rank correlation between stacks", ""]
        lines.append("| | " + " | ".join(short[n] for n in names) + " |")
        lines.append("|---" * (len(names) + 1) + "|")
        for a in names:
            lines.append(
                f"| {short[a]} | "
                + " | ".join(_f(p["spearman"][a][b], ".2f") for b in names)
                + " |"
            )
    if p["spearman_help"]:
        lines += ["", "## Spearman against HELP's devices (same designs)", ""]
        lines.append("| HELP device | " + " | ".join(short[n] for n in names) + " |")
        lines.append("|---" * (len(names) + 1) + "|")
        for dev, row in p["spearman_help"].items():
            lines.append(f"| {dev} | " + " | ".join(_f(row[n], ".2f") for n in names) + " |")
    elif p.get("spearman_help_skipped"):
        lines += ["", f"**{p['spearman_help_skipped']}** (set FLEETNAS_DATA_DIR)."]
    if p.get("figure"):
        lines += ["", f"![Spearman between stacks and with HELP](stacks/{p['figure']})"]
    lines += [
        "",
        f"Tables in the exchange format: `benchmarks/results/stacks/{p['space']}.csv` (wide; per "
        "stack `latency` `median`, `session1`, `session2` in ms and the `noisy` flag), device "
        "records "
        f"with versions, conversion and protocol in `stacks/{p['space']}-devices.json`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="nb201")
    ap.add_argument("--limit", type=int, default=300, help="Designs (a prefix of the order).")
    ap.add_argument("--chunk", type=int, default=20, help="Designs per chunk.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hours", type=float, default=0.0, help="Stop after this long (0: no limit).")
    ap.add_argument("--stacks", nargs="+", default=list(STACKS), help="Measurer specs.")
    ap.add_argument("--db", default=str(ROOT / ".state" / "stacks.sqlite"))
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument(
        "--choices", nargs="*", default=[], help="Restrict the designs, e.g. r=160:224 (OFA)."
    )
    ap.add_argument(
        "--prepare-only", action="store_true", help="Only convert the models (last design first)."
    )
    args = ap.parse_args()
    if "://" not in args.db:
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        report(args)
    else:
        measure(args)


if __name__ == "__main__":
    main()
