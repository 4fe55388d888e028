"""APQ's joint space on BitFusion: fleetnas's per-device search against APQ's own evolution.

Both searches maximize the same *modelled* accuracy (:class:`fleetnas.predict.compressed_accuracy.
ModelledAccuracy`; APQ's quantization-aware predictor is not public in a reachable form) under
the same BitFusion latency budget, summed from APQ's published table
(``apq/BitFusion_new.b1.dict``).

- APQ: their public code (mit-han-lab/apq at 428190a, ``methods/evolution/evolution_finder.py``,
  ``utils/converter.py``, ``utils/latency_predictor.py``) run unmodified in this process, read
  at benchmark time from the local mirror of the repository (``APQ_MIRROR``, default
  ``/work/.mirror/mit-han-lab+apq/repo/.git``; nothing of it is copied into fleetnas). Their
  settings as ``search.py``/``evo_main_gather.py`` call it: population 100, 50 mutations + 50
  crossovers per iteration, 500 iterations, mutation probability 0.1 per layer, parents = top
  quarter. Their own ``LatencyPredictor`` prices designs from the same table file. Two shims,
  both stated in the results: ``random.sample`` on dict keys (removed in Python 3.11) gets a
  list, and the accuracy predictor is our modelled accuracy behind their
  ``predict_accuracy(specs)`` interface.
- fleetnas: :func:`fleetnas.search.evolve` (batched) with :class:`ConstrainedObjective`, the
  vectorized :class:`fleetnas.predict.BitFusionCost` and the modelled accuracy.

Reported per budget and seed: APQ's final best accuracy ``q*``, APQ's time to first reach
``q*`` (generous to APQ: not its full run time), fleetnas's time to reach ``q*`` and the ratio,
plus fleetnas's best within 1 s and 5 s; the time APQ's loop spends inside our accuracy adapter
(parsing its specs, the modelled accuracy) is reported and taken out in a second ratio, so the
adapter does not flatter us. A cross-check compares APQ's ``predict_lat`` with
``BitFusionCost`` on 2,000 of APQ's random specs.

Writes ``benchmarks/results/apq.json`` and ``apq.md``. From the repository root:
``FLEETNAS_DATA_DIR=../shared/data .venv/bin/python benchmarks/apq.py`` (``--quick``: one
budget, one seed).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import environment, write_results

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_MIRROR = "/work/.mirror/mit-han-lab+apq/repo/.git"
APQ_FILES = (
    "utils/converter.py",
    "utils/latency_predictor.py",
    "utils/accuracy_predictor.py",
    "methods/evolution/evolution_finder.py",
)
BUDGETS = (8.0, 11.0, 14.0)


def data_dir() -> Path:
    from fleetnas.paths import data_dir as default

    return Path(os.environ.get("FLEETNAS_DATA_DIR") or default())


# ---- APQ's public code, read from the mirror -----------------------------------------------
class _ListSample:
    """``random`` for APQ's converter: ``sample`` of a dict-keys view takes it as a list
    (Python >= 3.11 refuses sets and views); everything else is the real module."""

    def __getattr__(self, name: str) -> Any:
        return getattr(random, name)

    @staticmethod
    def sample(population: Any, k: int) -> list[Any]:
        return random.sample(list(population), k)


def load_apq(mirror: str, workdir: Path) -> dict[str, Any]:
    """Write APQ's files from the mirror's HEAD into ``workdir`` and import them."""
    if not Path(mirror).exists():
        raise SystemExit(
            f"APQ mirror {mirror} not found: fetch github:mit-han-lab/apq first or set APQ_MIRROR"
        )
    commit = subprocess.run(
        ["git", f"--git-dir={mirror}", "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for rel in APQ_FILES:
        text = subprocess.run(
            ["git", f"--git-dir={mirror}", "show", f"HEAD:{rel}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        path = workdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    lut = workdir / "lut"
    lut.mkdir(exist_ok=True)
    target = lut / "BitFusion_new.b1.dict"
    if not target.exists():
        target.symlink_to(data_dir() / "apq" / "BitFusion_new.b1.dict")
    sys.path.insert(0, str(workdir))
    converter = importlib.import_module("utils.converter")
    converter.random = _ListSample()  # type: ignore[attr-defined]
    lp = importlib.import_module("utils.latency_predictor")
    ef = importlib.import_module("methods.evolution.evolution_finder")
    with contextlib.chdir(workdir):
        latency = lp.LatencyPredictor(type="latency")
        energy = lp.LatencyPredictor(type="energy")
    return {
        "commit": commit,
        "converter": converter,
        "latency": latency,
        "energy": energy,
        "ef": ef,
    }


class ModelledForAPQ:
    """APQ's accuracy-predictor interface (``predict_accuracy(specs)`` -> tensor) over our
    modelled accuracy; records (time, best accuracy entering APQ's population) per call."""

    def __init__(self, space: Any, acc: Any) -> None:
        self.space, self.acc = space, acc
        self.t0 = time.perf_counter()
        self.trace: list[tuple[float, float, float]] = []
        self.best = -np.inf
        self.evaluations = 0
        self.spent = 0.0

    def predict_accuracy(self, specs: list[dict[str, Any]]) -> Any:
        import torch

        t = time.perf_counter()
        archs = np.stack([self.space.parse_dict(s) for s in specs])
        y = self.acc.predict(archs) / 100.0
        self.evaluations += len(specs)
        # APQ adds only the first `mutation_numbers` (= half) of each batch to its population
        self.best = max(self.best, float(y[: len(specs) // 2].max()))
        self.spent += time.perf_counter() - t
        self.trace.append((time.perf_counter() - self.t0, self.best * 100.0, self.spent))
        return torch.as_tensor(y)


def run_apq(apq: dict[str, Any], space: Any, acc: Any, budget: float, seed: int) -> dict[str, Any]:
    random.seed(seed)
    np.random.seed(seed)
    wrapped = ModelledForAPQ(space, acc)
    finder = apq["ef"].EvolutionFinder(apq["latency"], wrapped)
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        _, best_valids, info = finder.run_evolution_search(
            max_time_budget=500, population_size=100, mutation_numbers=50, constraint=budget
        )
    wall = time.perf_counter() - wrapped.t0
    q = float(best_valids[-1]) * 100.0
    reach, spent = next((t, a) for t, b, a in wrapped.trace if b >= q - 1e-9)
    arch = space.parse_dict(info[1])
    return {
        "accuracy": q,
        "latency": float(info[2]),
        "design": space.format(arch),
        "wall_s": wall,
        "time_to_best_s": reach,
        "adapter_s_to_best": spent,
        "time_to_best_excl_adapter_s": reach - spent,
        "evaluations": wrapped.evaluations,
    }


# ---- fleetnas ------------------------------------------------------------------------------
def run_fleetnas(space: Any, acc: Any, lat: Any, budget: float, seed: int, seconds: float) -> Any:
    from fleetnas.search import ConstrainedObjective, EvolutionConfig, evolve

    obj = ConstrainedObjective(accuracy=acc.predict, latency=lat.predict, latency_budget=budget)
    cfg = EvolutionConfig(
        population=100,
        children=400,
        generations=10**9,
        mutation_ratio=0.5,
        local_ratio=0.2,
        mutation_prob=2.0 / space.n_decisions,
        time_budget_s=seconds,
    )
    return evolve(space, obj, cfg, seed=seed)


def cross_check(apq: dict[str, Any], space: Any, lat: Any, energy: Any, n: int) -> dict[str, Any]:
    """APQ's predict_lat vs BitFusionCost on ``n`` of APQ's random (valid) specs."""
    random.seed(0)
    np.random.seed(0)
    conv = apq["converter"].Converter()
    specs = []
    while len(specs) < n:
        s = conv.random_spec()
        if conv.is_valid(s):
            specs.append(s)
    archs = np.stack([space.parse_dict(s) for s in specs])
    theirs_l = np.array([apq["latency"].predict_lat(s) for s in specs])
    theirs_e = np.array([apq["energy"].predict_lat(s) for s in specs])
    t = time.perf_counter()
    ours_l = lat.predict(archs)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    for s in specs:
        apq["latency"].predict_lat(s)
    t_theirs = time.perf_counter() - t
    return {
        "designs": n,
        "max_abs_diff_latency": float(np.abs(theirs_l - ours_l).max()),
        "max_abs_diff_energy": float(np.abs(theirs_e - energy.predict(archs)).max()),
        "latency_range": [float(theirs_l.min()), float(theirs_l.max())],
        "apq_predict_lat_us_per_design": 1e6 * t_theirs / n,
        "fleetnas_us_per_design": 1e6 * t_ours / n,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one budget, one seed")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0, help="fleetnas time budget per run")
    args = ap.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    torch.set_num_threads(1)
    from fleetnas.predict import BitFusionCost
    from fleetnas.predict.compressed_accuracy import ModelledAccuracy
    from fleetnas.spaces import get_space

    space = get_space("apq")
    lat = BitFusionCost.from_data(data_dir(), metric="latency")
    energy = BitFusionCost.from_data(data_dir(), metric="energy")
    acc = ModelledAccuracy(space)
    budgets = BUDGETS[1:2] if args.quick else BUDGETS
    seeds = range(1 if args.quick else args.seeds)
    with tempfile.TemporaryDirectory() as tmp:
        apq = load_apq(os.environ.get("APQ_MIRROR", DEFAULT_MIRROR), Path(tmp))
        check = cross_check(apq, space, lat, energy, 2000)
        acc.predict(space.sample(400, 0))  # warm both paths once
        lat.predict(space.sample(400, 0))
        rows = []
        for budget in budgets:
            for seed in seeds:
                theirs = run_apq(apq, space, acc, budget, seed)
                ours = run_fleetnas(space, acc, lat, budget, seed, args.seconds)
                t_ours = ours.time_to_reach(theirs["accuracy"] - 1e-9)
                rows.append(
                    {
                        "budget": budget,
                        "seed": seed,
                        "apq": theirs,
                        "fleetnas": {
                            "accuracy": ours.accuracy,
                            "latency": ours.latency,
                            "design": space.format(ours.best),
                            "wall_s": ours.wall_time_s,
                            "evaluations": ours.evaluations,
                            "time_to_apq_quality_s": t_ours,
                            "best_at_1s": ours.best_at(1.0),
                            "best_at_5s": ours.best_at(5.0),
                        },
                        "ratio_time_to_equal_quality": theirs["time_to_best_s"] / t_ours,
                        "ratio_excl_adapter": theirs["time_to_best_excl_adapter_s"] / t_ours,
                    }
                )
                print(
                    f"budget {budget}: APQ {theirs['accuracy']:.3f} in "
                    f"{theirs['time_to_best_s']:.1f} s "
                    f"(run {theirs['wall_s']:.1f} s); fleetnas reaches it in {t_ours:.3f} s, "
                    f"best {ours.accuracy:.3f}",
                    flush=True,
                )
    ratios = [r["ratio_time_to_equal_quality"] for r in rows]
    res = {
        "environment": environment(threads=1),
        "apq_commit": apq["commit"],
        "apq_shims": [
            "utils.converter.random.sample gets list(dict_keys) (Python 3.11 refuses views)",
            "accuracy predictor = fleetnas ModelledAccuracy behind predict_accuracy(specs)",
        ],
        "accuracy_source": "modelled",
        "cross_check": check,
        "rows": rows,
        "ratio_min": float(np.min(ratios)),
        "ratio_median": float(np.median(ratios)),
        "ratio_excl_adapter_min": float(min(r["ratio_excl_adapter"] for r in rows)),
    }
    write_results(RESULTS / "apq", res, markdown(res))


def markdown(res: dict[str, Any]) -> str:
    c = res["cross_check"]
    lines = [
        "# APQ space on BitFusion: fleetnas search vs APQ's evolution (same run)",
        "",
        f"APQ code: mit-han-lab/apq at {res['apq_commit'][:7]}, run from its mirror "
        f"(shims: {'; '.join(res['apq_shims'])}). Accuracy: **modelled** for both "
        "(fleetnas.predict.compressed_accuracy; no public quantization-aware accuracy data). "
        "Latency: BitFusion table, summed by APQ's own `LatencyPredictor` for APQ and by "
        "`BitFusionCost` for fleetnas.",
        "",
        f"Cross-check on {c['designs']} APQ random specs: max |APQ - fleetnas| latency "
        f"{c['max_abs_diff_latency']:.2g}, energy {c['max_abs_diff_energy']:.2g}; "
        f"APQ {c['apq_predict_lat_us_per_design']:.0f} µs/design, fleetnas "
        f"{c['fleetnas_us_per_design']:.2f} µs/design (batched).",
        "",
        "| budget (ms) | seed | APQ acc (%) | APQ time to it (s) | of which our accuracy "
        "adapter (s) | APQ run (s) | fleetnas time to APQ acc (s) | ratio | ratio without "
        "adapter | fleetnas best @1 s | @5 s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        a, f = r["apq"], r["fleetnas"]
        lines.append(
            f"| {r['budget']:g} | {r['seed']} | {a['accuracy']:.3f} | {a['time_to_best_s']:.1f} | "
            f"{a['adapter_s_to_best']:.1f} | {a['wall_s']:.1f} | "
            f"{f['time_to_apq_quality_s']:.3f} | {r['ratio_time_to_equal_quality']:.0f}x | "
            f"{r['ratio_excl_adapter']:.0f}x | {f['best_at_1s']:.3f} | {f['best_at_5s']:.3f} |"
        )
    lines += [
        "",
        f"Time-to-equal-quality ratio (APQ / fleetnas): min {res['ratio_min']:.0f}x, "
        f"median {res['ratio_median']:.0f}x; without the time APQ spends in our accuracy "
        f"adapter (parsing its specs, the modelled accuracy) min "
        f"{res['ratio_excl_adapter_min']:.0f}x (target >= 50x). One thread; machine shared "
        f"(load before: {res['environment']['load_before']}).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
