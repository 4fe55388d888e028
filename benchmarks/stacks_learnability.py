"""How many measurements does each runtime stack need, and which model shape does it want?

``benchmarks/predict_heldout.py`` predicts a new stack from its probes, the pool and up to 50
measurements. This benchmark asks what the stack's own table allows without any pool: on each
NB201 stack of ``benchmarks/results/stacks/``, models of the architecture alone (the one-hot
encoding of the cell's six edges) are fitted to N random designs of the table and scored on the
others, at N = 50, 200, 500 and with five-fold cross-validation over the whole table:

- ``additive log``: ridge on the encoding, target log ms (the shape of the few-shot model's
  encoding correction): each choice multiplies the latency by a factor;
- ``additive ms``: ridge on the encoding, target ms with relative weights: each choice adds a
  cost, as the sum of the operators' times would;
- ``trees``: gradient-boosted trees on the encoding, target log ms: any interaction of choices.

Beside them: the two sessions' Spearman (the table's own repeatability, a ceiling for any
predictor) and the few-shot predictor's held-out result at 50 actively chosen measurements
(read from ``results/predict_heldout.json``). Hyperparameters come from cross-validation inside
each training set only; nothing is tuned on the scored designs, and no parameter of any other
benchmark is chosen here.

Run: ``python benchmarks/stacks_learnability.py`` (a few minutes on one core).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from _common import STACKS, environment, write_results
from fleetnas.data.exchange import read_table
from fleetnas.predict.metrics import within
from fleetnas.spaces import get_space

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (50, 200, 500)
SEEDS = 3
FOLDS = 5
ALPHAS = np.logspace(-4, 3, 15)


def stack_sessions(folder: Path = STACKS) -> dict[str, dict[str, Any]]:
    """Per NB201 stack: design strings and their median, session 1 and session 2 latencies."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.csv")):
        frame = read_table(path, space="nb201")
        frame = frame[(frame["space"] == "nb201") & (frame["metric"] == "latency")]
        for dev, rows in frame.groupby("device"):
            wide = rows.pivot_table(index="architecture", columns="statistic", values="value")
            wide = wide.dropna(subset=["median"])
            out[str(dev)] = {
                "designs": list(wide.index),
                **{k: wide[k].to_numpy(float) for k in ("median", "session1", "session2")},
            }
    return out


def _fit_predict(model: str, x: np.ndarray, y: np.ndarray, x_new: np.ndarray) -> np.ndarray:
    if model == "additive log":
        return np.exp(RidgeCV(alphas=ALPHAS).fit(x, np.log(y)).predict(x_new))
    if model == "additive ms":
        reg = RidgeCV(alphas=ALPHAS).fit(x, y, sample_weight=1.0 / y**2)
        return np.maximum(reg.predict(x_new), 1e-3 * float(np.min(y)))
    leaf = max(2, min(20, len(y) // 10))  # small training sets still split
    trees = HistGradientBoostingRegressor(
        max_iter=300, learning_rate=0.05, min_samples_leaf=leaf, random_state=0
    )
    return np.exp(trees.fit(x, np.log(y)).predict(x_new))


def _scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"spearman": float(spearmanr(y, p)[0]), "within10": within(y, p, 0.10)}


def learn(x: np.ndarray, y: np.ndarray, model: str) -> dict[str, dict[str, float]]:
    """Scores of ``model`` at each training size (mean over seeds) and under cross-validation."""
    out: dict[str, dict[str, float]] = {}
    for n in SIZES:
        if n >= len(y):
            continue
        rows = []
        for s in range(SEEDS):
            idx = np.random.default_rng(s).choice(len(y), n, replace=False)
            rest = np.ones(len(y), dtype=bool)
            rest[idx] = False
            rows.append(_scores(y[rest], _fit_predict(model, x[idx], y[idx], x[rest])))
        out[str(n)] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    pred = np.zeros_like(y)
    for tr, te in KFold(FOLDS, shuffle=True, random_state=0).split(x):
        pred[te] = _fit_predict(model, x[tr], y[tr], x[te])
    out["cv"] = _scores(y, pred)
    return out


def few_shot_50(path: Path = RESULTS / "predict_heldout.json") -> dict[str, dict[str, float]]:
    """The few-shot predictor's held-out scores at 50 active measurements, per stack."""
    if not path.exists():
        return {}
    res = json.loads(path.read_text())
    targets = res["splits"].get("runtime stacks", {}).get("targets", {})
    acq = res["chosen"]["acquisition"]
    return {
        t.removeprefix("stack:"): {k: v["active"][acq]["50"][k] for k in ("spearman", "within10")}
        for t, v in targets.items()
    }


MODELS = ("additive log", "additive ms", "trees")


def _table(res: dict[str, Any], key: str, digits: int, title: str, lead: bool = False) -> list[str]:
    """One markdown table of ``key`` per stack and model; ``lead`` adds the designs and the
    two-session Spearman."""
    models = [(m, n) for m in MODELS for n in (*map(str, SIZES), "cv")]
    head = ["stack", *(["designs", "sessions"] if lead else []), "few-shot, 50 active"]
    head += [f"{m}, {'all' if n == 'cv' else n}" for m, n in models]
    lines = [f"{title}:", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for dev, r in res["stacks"].items():
        fs = r.get("few_shot_50")
        row = [dev, *([str(r["designs"]), f"{r['sessions_spearman']:.3f}"] if lead else [])]
        row.append("" if fs is None else f"{fs[key]:.{digits}f}")
        for m, n in models:
            v = r["models"][m].get(n)
            row.append("" if v is None else f"{v[key]:.{digits}f}")
        lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def markdown(res: dict[str, Any]) -> str:
    env = res["environment"]
    lines = [
        "# What each runtime stack's table allows (benchmarks/stacks_learnability.py)",
        "",
        f"Machine: {env['cpu']}, {env['cores']} cores; {res['seconds']:.0f} s. NB201 stacks of "
        "`benchmarks/results/stacks/`; models of the architecture alone (one-hot encoding), "
        f"fitted on N random designs of the table and scored on the rest (mean of {SEEDS} "
        f"seeds), and {FOLDS}-fold cross-validation over the whole table ('all'). No pool, no "
        "probes; hyperparameters by cross-validation inside each training set. The few-shot "
        "column is `predict_heldout.py`'s committed held-out result (pool = HELP's 27 columns, "
        "50 actively chosen measurements), scored on the table as it stood when that benchmark "
        "last ran, which may be smaller than this one; the sessions column is the table's own "
        "two-session "
        "Spearman, a ceiling for any predictor.",
        "",
        *_table(res, "spearman", 3, "Spearman", lead=True),
        *_table(res, "within10", 2, "±10 % share (predictions within 10 % of the measured value)"),
        *res["notes"],
        "",
    ]
    return "\n".join(lines)


def notes(res: dict[str, Any]) -> list[str]:
    """What the numbers say, computed from them."""
    st = res["stacks"]
    out = []
    for dev, r in st.items():
        m = r["models"]
        best_add = max(m["additive log"]["cv"]["spearman"], m["additive ms"]["cv"]["spearman"])
        gain = m["trees"]["cv"]["spearman"] - best_add
        if gain > 0.03:
            out.append(
                f"- {dev}: not additive in the edges' choices; trees over the whole table reach "
                f"Spearman {m['trees']['cv']['spearman']:.3f} against {best_add:.3f} for the "
                f"best additive model (at 50 designs: trees {m['trees']['50']['spearman']:.3f})."
            )
        ceiling = r["sessions_spearman"]
        if ceiling < 0.9:
            out.append(
                f"- {dev}: its two sessions agree only to Spearman {ceiling:.3f}; no predictor "
                "of the architecture can rank its table much better than that."
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(RESULTS / "stacks_learnability"))
    ap.add_argument("--report-only", action="store_true", help="Rewrite the .md from the .json.")
    args = ap.parse_args(argv)
    if args.report_only:
        res = json.loads(Path(args.out).with_suffix(".json").read_text())
        write_results(Path(args.out), res, markdown(res))
        return 0
    t0 = time.perf_counter()
    space = get_space("nb201")
    fs = few_shot_50()
    res: dict[str, Any] = {
        "environment": environment(),
        "split": "each stack's own table, random training designs, scored on the rest; "
        "nothing chosen here",
        "stacks": {},
    }
    for dev, t in stack_sessions().items():
        x = space.encode(space.parse_many(t["designs"])).astype(float)
        y = t["median"]
        ok = np.isfinite(t["session1"]) & np.isfinite(t["session2"])
        r: dict[str, Any] = {
            "designs": len(y),
            "sessions_spearman": float(spearmanr(t["session1"][ok], t["session2"][ok])[0]),
            "models": {m: learn(x, y, m) for m in MODELS},
        }
        if dev in fs:
            r["few_shot_50"] = fs[dev]
        res["stacks"][dev] = r
        print(f"{dev}: " + ", ".join(f"{m} {r['models'][m]['cv']['spearman']:.3f}" for m in MODELS))
    res["seconds"] = time.perf_counter() - t0
    res["notes"] = notes(res)
    write_results(Path(args.out), res, markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
