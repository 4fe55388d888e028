"""Benchmark of the performance networks (issue 4): device-aware latency prediction with 10
measurements per unseen device, on HELP's own device splits, against baselines in the same run.

Protocol (HELP, NeurIPS 2021): NAS-Bench-201 (15,625 designs, 27 device settings) and FBNet
(5,000 sampled designs) with HELP's meta-train / meta-valid / meta-test devices. Predictors train
on the meta-train devices (all their designs); kernel parameters of ours are chosen on the
meta-valid devices; each meta-test device is seen only through its latencies on HELP's 10
reference designs (``hardware_embedding_index.pt``), and everything else is unseen. Scores are
per test device on two sets: *all* designs but the 10 probes, and *HELP's query set* (designs
900..1899 with each device's 10 % fastest and slowest removed, as HELP's loader does).

Methods, in the same run:

- ``ours``: :class:`fleetnas.predict.DeviceAwarePredictor` (fleet-trained trunk whose outputs
  are the training devices' log-latency profiles plus a log-FLOPs profile, and a GP head
  conditioned on the 10 probe latencies; closed-form adaptation);
- ``flops``: FLOPs, mapped to ms by a log-log line through the 10 probes;
- ``best-train-device``: the training device whose latencies rank the 10 probes best, mapped to
  the target by a log-log line through the probes;
- ``ridge``: ridge regression (leave-one-out choice of the penalty) of the target's log-latency
  on the training devices' measured log-latencies, fit to the 10 probes;
- ``mlp-embed``: a HELP-like device-aware MLP on [encoding ; standardized log probe latencies]
  trained on all (design, device) pairs, plus a per-device affine correction in log space;
- HELP's published mean Spearman (0.932 NB201, 0.910 FBNet; HELP's own query set).

Variants of ours: our own probe rule (quantiles of the fleet profile), spec features only
(zero measurements), probes + spec, without the FLOPs profile, and training on meta-train +
meta-valid devices.
Leave-one-family-out: train on every HELP device outside a family, test on the family (phones;
CPUs = Xeons and Raspberry Pi 4). Also: accuracy and single-device latency predictors (MLP vs
GBT from 1,000 samples), the Note10 / Pixel 1 tables and OFA's accuracy predictor.

Timings are wall-clock on this shared 2-core machine (other jobs were running, so they are
pessimistic). Run: ``.venv/bin/python benchmarks/predictors.py`` (about 6-10 minutes).
Results: ``benchmarks/results/predictors.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.linear_model import RidgeCV

from _common import environment
from fleetnas.data.help import read_archs, read_latencies, read_reference_indices
from fleetnas.devices.catalog import (
    get_catalog_device,
    help_devices,
    help_split,
    numeric_feature_matrix,
)
from fleetnas.predict import (
    DeviceAwarePredictor,
    GBTEnsemble,
    MLPEnsemble,
    OFAAccuracyPredictor,
    OFALatencyLUT,
    ProxylessLatencyLUT,
    TableLookup,
    proxylessnas_space,
)
from fleetnas.predict._nn import EnsembleMLP, train_ensemble
from fleetnas.predict.metrics import regression_report

RESULTS = Path(__file__).resolve().parent / "results"
HELP_PUBLISHED = {"nb201": 0.932, "fbnet": 0.910}
TARGETS = {"nb201": 0.95, "fbnet": 0.93}
KERNEL_GRID = [(a, c, s) for a in (0.5, 1.0, 2.0) for c in (0.0, 0.1, 0.3, 1.0) for s in (0.1, 0.3)]
FAMILIES = {
    "phones": ("mobile_cpu", "mobile_gpu"),
    "cpus": ("server_cpu", "desktop_cpu", "embedded_cpu"),
}
KEYS = ("spearman", "kendall", "mape", "within5", "within10")


# ---- data ----------------------------------------------------------------------------------
def load(root: Path, space: str) -> dict[str, Any]:
    sp, archs = read_archs(root, space)
    devices = [d.name for d in help_devices(space)]
    lat = {d: read_latencies(root, space, d) for d in devices}
    return {"space": sp, "archs": archs, "lat": lat, "probes": read_reference_indices(root, space)}


def eval_masks(data: dict[str, Any], device: str, probe_idx: list[int]) -> dict[str, np.ndarray]:
    n = len(data["archs"])
    base = np.ones(n, dtype=bool)
    base[probe_idx] = False
    query = np.arange(900, 1900)
    y = data["lat"][device][query]
    order = query[np.argsort(y, kind="stable")]
    keep = order[int(len(order) * 0.1) : int(len(order) * 0.9)]
    q = np.zeros(n, dtype=bool)
    q[keep] = True
    return {"all": base, "help_query": q & base}


def score(data: dict[str, Any], preds: dict[str, np.ndarray], probe_idx: list[int]) -> dict:
    """Per device and mean, on both evaluation sets."""
    out: dict[str, Any] = {}
    for subset in ("all", "help_query"):
        rows = {}
        for dev, p in preds.items():
            m = eval_masks(data, dev, probe_idx)[subset]
            rep = regression_report(data["lat"][dev][m], p[m])
            rows[dev] = {k: round(float(rep[k]), 4) for k in KEYS}
        mean = {k: round(float(np.mean([r[k] for r in rows.values()])), 4) for k in KEYS}
        out[subset] = {"per_device": rows, "mean": mean}
    return out


# ---- baselines -----------------------------------------------------------------------------
def loglog_map(x: np.ndarray, probe_idx: list[int], y_probe: np.ndarray) -> np.ndarray:
    lx = np.log(x)
    coef = np.polyfit(lx[probe_idx], np.log(y_probe), 1)
    return np.exp(np.polyval(coef, lx))


def flops_baseline(data, train, tests, probe_idx):
    flops = data["space"].flops(data["archs"])
    return {d: loglog_map(flops, probe_idx, data["lat"][d][probe_idx]) for d in tests}


def best_device_baseline(data, train, tests, probe_idx):
    out, chosen = {}, {}
    for d in tests:
        yp = np.log(data["lat"][d][probe_idx])

        def key(t: str, yp: np.ndarray = yp) -> tuple[float, float]:
            lx = np.log(data["lat"][t][probe_idx])
            rho = spearmanr(lx, yp)[0]
            resid = np.polyfit(lx, yp, 1, full=True)[1]
            return (-np.nan_to_num(rho, nan=-1.0), float(resid[0]) if len(resid) else 0.0)

        best = min(train, key=key)
        chosen[d] = best
        out[d] = loglog_map(data["lat"][best], probe_idx, data["lat"][d][probe_idx])
    return out, chosen


def ridge_baseline(data, train, tests, probe_idx):
    z = np.log(np.stack([data["lat"][t] for t in train], axis=1))
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    out = {}
    for d in tests:
        reg = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(
            z[probe_idx], np.log(data["lat"][d][probe_idx])
        )
        out[d] = np.exp(reg.predict(z))
    return out


def mlp_embed_baseline(data, train, tests, probe_idx, seed=0):
    """HELP-like: MLP on [encoding ; device embedding], then an affine log correction."""
    sp, archs = data["space"], data["archs"]
    enc = sp.encode(archs)

    def embed(d: str) -> tuple[np.ndarray, float, float]:
        lp = np.log(data["lat"][d][probe_idx])
        mu, sd = lp.mean(), max(lp.std(), 1e-3)
        return (lp - mu) / sd, mu, sd

    rng = np.random.default_rng(seed)
    rows, targets = [], []
    for d in train:
        e, mu, sd = embed(d)
        idx = rng.choice(len(archs), size=min(len(archs), 6000), replace=False)
        rows.append(np.c_[enc[idx], np.repeat(e[None], len(idx), axis=0)])
        targets.append((np.log(data["lat"][d][idx]) - mu) / sd)
    x = np.concatenate(rows).astype(np.float32)
    y = np.concatenate(targets)[:, None]
    t0 = time.perf_counter()
    net = EnsembleMLP(x.shape[1], (128, 128), 1, 3, seed=seed)
    train_ensemble(net, x, y, epochs=15, batch_size=256, lr=2e-3, weight_decay=1e-4, seed=seed)
    train_s = time.perf_counter() - t0
    out = {}
    for d in tests:
        e, mu, sd = embed(d)
        xin = np.c_[enc, np.repeat(e[None], len(enc), axis=0)].astype(np.float32)
        with torch.no_grad():
            z = net(torch.as_tensor(xin)).mean(dim=0)[:, 0].numpy()
        logp = mu + sd * z
        coef = np.polyfit(logp[probe_idx], np.log(data["lat"][d][probe_idx]), 1)
        out[d] = np.exp(np.polyval(coef, logp))
    return out, train_s


# ---- ours ----------------------------------------------------------------------------------
def fit_ours(data, train, probe_idx, seed=0, **params) -> tuple[DeviceAwarePredictor, float]:
    Y = np.stack([data["lat"][t] for t in train], axis=1)
    t0 = time.perf_counter()
    pred = DeviceAwarePredictor(data["space"], probes=data["archs"][probe_idx], seed=seed, **params)
    pred.fit(data["archs"], Y[probe_idx].T, Y)
    return pred, time.perf_counter() - t0


def predict_ours(pred, data, tests, probe_idx) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    feats = np.stack([data["lat"][d][probe_idx] for d in tests])
    cold, warm = [], []
    for f in feats:
        pred.clear_cache()
        t0 = time.perf_counter()
        pred.predict(data["archs"], f[None])
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pred.predict(data["archs"], f[None])
        warm.append(time.perf_counter() - t0)
    pred.clear_cache()
    t0 = time.perf_counter()
    mean = pred.predict(data["archs"], feats)
    all_s = time.perf_counter() - t0
    timing = {
        "adapt_and_predict_one_device_s": float(np.median(cold)),
        "adapt_and_predict_one_device_cached_designs_s": float(np.median(warm)),
        "predict_all_designs_x_test_devices_s": all_s,
        "n_designs": len(data["archs"]),
    }
    return {d: mean[:, j] for j, d in enumerate(tests)}, timing


def select_kernel(pred, data, valid, probe_idx) -> tuple[DeviceAwarePredictor, list[dict]]:
    trials = []
    best, best_key = pred, None
    for a, c, s in KERNEL_GRID:
        cand = pred.with_kernel(a, c, s)
        preds, _ = predict_ours(cand, data, valid, probe_idx)
        sc = score(data, preds, probe_idx)["all"]["mean"]
        trials.append({"trunk_scale": a, "encoding_scale": c, "noise": s, **sc})
        key = (sc["spearman"], sc["within10"])
        if best_key is None or key > best_key:
            best, best_key = cand, key
    return best, trials


def spec_matrix(devices: list[str]) -> np.ndarray:
    devs = [get_catalog_device(d) for d in devices]
    kinds = sorted({d.features.get("kind", "other") for d in help_devices("nb201")})
    onehot = np.array([[float(d.features.get("kind") == k) for k in kinds] for d in devs])
    return np.c_[numeric_feature_matrix(devs), onehot]


def run_space(root: Path, space: str, seed: int) -> dict[str, Any]:
    data = load(root, space)
    split = help_split(space)
    train, valid, tests = list(split["train"]), list(split["valid"]), list(split["test"])
    probe_idx = data["probes"]
    res: dict[str, Any] = {"devices": {"train": train, "valid": valid, "test": tests}}

    pred, train_s = fit_ours(data, train, probe_idx, seed=seed)
    pred, trials = select_kernel(pred, data, valid, probe_idx)
    chosen = {k: getattr(pred, k) for k in ("trunk_scale", "encoding_scale", "noise")}
    preds, timing = predict_ours(pred, data, tests, probe_idx)
    methods: dict[str, Any] = {"ours": score(data, preds, probe_idx)}
    res["ours_kernel"] = chosen
    res["kernel_selection_on_valid"] = trials
    res["timing"] = {"train_s": train_s, **timing}

    methods["flops"] = score(data, flops_baseline(data, train, tests, probe_idx), probe_idx)
    best, chosen_dev = best_device_baseline(data, train, tests, probe_idx)
    methods["best-train-device"] = score(data, best, probe_idx)
    res["best_train_device_choice"] = chosen_dev
    methods["ridge"] = score(data, ridge_baseline(data, train, tests, probe_idx), probe_idx)
    emb, emb_s = mlp_embed_baseline(data, train, tests, probe_idx, seed=seed)
    methods["mlp-embed"] = score(data, emb, probe_idx)
    res["timing"]["mlp_embed_train_s"] = emb_s

    # Variants of ours.
    own = pred.suggest_probes(data["archs"], k=10)
    own_idx = [int(np.flatnonzero((data["archs"] == a).all(axis=1))[0]) for a in own]
    own_pred, _ = predict_ours(pred.with_probes(own), data, tests, own_idx)
    variants = {"ours, own probe rule": score(data, own_pred, own_idx)}
    res["own_probe_indices"] = own_idx

    y_train = np.stack([data["lat"][t] for t in train], axis=1)
    spec_tr, spec_te = spec_matrix(train), spec_matrix(tests)
    zero = DeviceAwarePredictor(data["space"], features="spec", seed=seed, **chosen)
    zero.fit(data["archs"], spec_tr, y_train)
    zmean = zero.predict(data["archs"], spec_te)
    variants["ours, spec features only (0 measurements)"] = score(
        data, {d: zmean[:, j] for j, d in enumerate(tests)}, probe_idx
    )
    both = DeviceAwarePredictor(
        data["space"], probes=data["archs"][probe_idx], features="both", seed=seed, **chosen
    )
    both.fit(data["archs"], np.c_[y_train[probe_idx].T, spec_tr], y_train)
    feats_te = np.c_[np.stack([data["lat"][d][probe_idx] for d in tests]), spec_te]
    bmean = both.predict(data["archs"], feats_te)
    variants["ours, probes + spec"] = score(
        data, {d: bmean[:, j] for j, d in enumerate(tests)}, probe_idx
    )
    plain, _ = fit_ours(data, train, probe_idx, seed=seed, flops_profile=False)
    plain, _ = select_kernel(plain, data, valid, probe_idx)
    variants["ours without the FLOPs profile"] = score(
        data, predict_ours(plain, data, tests, probe_idx)[0], probe_idx
    )
    pooled, _ = fit_ours(data, train + valid, probe_idx, seed=seed, **chosen)
    variants["ours, trained on meta-train + meta-valid"] = score(
        data, predict_ours(pooled, data, tests, probe_idx)[0], probe_idx
    )
    variants["ridge, trained on meta-train + meta-valid"] = score(
        data, ridge_baseline(data, train + valid, tests, probe_idx), probe_idx
    )
    res["methods"] = methods
    res["variants"] = variants
    res["lofo"] = leave_family_out(data, space, probe_idx, seed, chosen)
    return res


def leave_family_out(data, space, probe_idx, seed, kernel) -> dict[str, Any]:
    out = {}
    devices = help_devices(space)
    for name, fams in FAMILIES.items():
        tests = [d.name for d in devices if d.family in fams]
        train = [d.name for d in devices if d.family not in fams]
        pred, train_s = fit_ours(data, train, probe_idx, seed=seed, **kernel)
        best, _ = best_device_baseline(data, train, tests, probe_idx)
        out[name] = {
            "train": train,
            "test": tests,
            "train_s": train_s,
            "ours": score(data, predict_ours(pred, data, tests, probe_idx)[0], probe_idx),
            "ridge": score(data, ridge_baseline(data, train, tests, probe_idx), probe_idx),
            "best-train-device": score(data, best, probe_idx),
            "flops": score(data, flops_baseline(data, train, tests, probe_idx), probe_idx),
        }
    return out


# ---- single-device and accuracy predictors -------------------------------------------------
def single_device(root: Path, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cases = {"nb201": ["gold_6226", "pixel3", "titan_rtx_256"], "fbnet": ["raspi4", "fpga"]}
    rng = np.random.default_rng(seed)
    for space, devs in cases.items():
        data = load(root, space)
        idx = rng.permutation(len(data["archs"]))
        tr, te = idx[:1000], idx[1000:]
        for d in devs:
            y = data["lat"][d]
            row = {}
            for name, cls in (("mlp", MLPEnsemble), ("gbt", GBTEnsemble)):
                t0 = time.perf_counter()
                model = cls(data["space"], target="log", seed=seed).fit(data["archs"][tr], y[tr])
                fit_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                p = model.predict(data["archs"][te])
                rep = regression_report(y[te], p)
                row[name] = {k: round(float(rep[k]), 4) for k in KEYS}
                row[name].update(fit_s=fit_s, predict_s=time.perf_counter() - t0)
            out[f"{space}/{d}"] = row
    return out


def accuracy(root: Path, seed: int) -> dict[str, Any]:
    table = TableLookup.nb201_accuracy("cifar10", data_dir=root)
    sp = table.space
    archs = sp.enumerate()
    y = table.predict(archs)
    idx = np.random.default_rng(seed).permutation(len(archs))
    tr, te = idx[:1000], idx[1000:]
    out = {}
    for name, cls, kw in (("mlp", MLPEnsemble, {}), ("gbt", GBTEnsemble, {"target": "identity"})):
        t0 = time.perf_counter()
        model = cls(sp, seed=seed, **kw).fit(archs[tr], y[tr])
        fit_s = time.perf_counter() - t0
        rep = regression_report(y[te], model.predict(archs[te]))
        out[name] = {k: round(float(rep[k]), 4) for k in KEYS} | {"fit_s": fit_s}
    t0 = time.perf_counter()
    table.predict(archs)
    out["lookup_15625_s"] = time.perf_counter() - t0
    return out


def released(root: Path) -> dict[str, Any]:
    from fleetnas.spaces import get_space

    sp = get_space("ofa_mbv3")
    lut = OFALatencyLUT.from_data(root)
    acc = OFAAccuracyPredictor.from_data(root)
    x = sp.sample(10_000, 0)
    t0 = time.perf_counter()
    lut.predict(x)
    lut_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    acc.predict(x)
    acc_s = time.perf_counter() - t0
    subnets = {
        "smallest (k3 e3 d2, r160)": {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 160},
        "MobileNetV3-like (k3-7 mixed, e4, d3, r224)": {
            "ks": [3, 3, 5, 5] * 5,
            "e": [4] * 20,
            "d": [3] * 5,
            "r": 224,
        },
        "mid (k5 e4 d3, r192)": {"ks": [5] * 20, "e": [4] * 20, "d": [3] * 5, "r": 192},
        "mid (k5 e4 d3, r200, interpolated)": {
            "ks": [5] * 20,
            "e": [4] * 20,
            "d": [3] * 5,
            "r": 200,
        },
        "largest (k7 e6 d4, r224)": {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224},
    }
    rows = {}
    for name, d in subnets.items():
        a = sp.parse_dict(d)
        rows[name] = {
            "note10_ms": round(float(lut.predict(a)[0]), 2),
            "ofa_top1": round(float(acc.predict(a)[0]), 4),
        }
    # How well the phone table ranks HELP's OFA GPU latencies (proxy monotonicity, Sec. 4.2).
    data = load(root, "ofa_mbv3")
    note = lut.predict(data["archs"])
    mono = {d: round(float(spearmanr(note, v)[0]), 4) for d, v in data["lat"].items()}
    px = ProxylessLatencyLUT.from_data(root)
    ps = proxylessnas_space()
    pxa = ps.sample(10_000, 0)
    t0 = time.perf_counter()
    pxl = px.predict(pxa)
    px_s = time.perf_counter() - t0
    return {
        "note10_lut_10000_designs_s": lut_s,
        "ofa_accuracy_10000_designs_s": acc_s,
        "note10_exact_resolutions": lut.exact_resolutions,
        "subnets": rows,
        "note10_vs_help_ofa_gpu_spearman": mono,
        "pixel1_lut_10000_designs_s": px_s,
        "pixel1_latency_range_ms": [round(float(pxl.min()), 1), round(float(pxl.max()), 1)],
    }


# ---- report --------------------------------------------------------------------------------
def markdown(res: dict[str, Any]) -> str:
    lines = ["# Performance networks (issue 4)", ""]
    lines.append(
        "Device-aware latency prediction with 10 measurements per unseen device (HELP's split "
        "and reference designs). Spearman / Kendall / MAPE % / ±10 % share; *all* = every "
        "design but the 10 probes, *query* = HELP's query set (designs 900-1899, 10-90 % "
        "trimmed). Timings on a shared 2-core CPU (pessimistic)."
    )
    for space in ("nb201", "fbnet"):
        r = res[space]
        lines += ["", f"## {space}: test devices {', '.join(r['devices']['test'])}", ""]
        lines.append(
            "| method | Spearman all | Kendall all | MAPE all | ±10% all | "
            "Spearman query | ±10% query |"
        )
        lines.append("|---|---|---|---|---|---|---|")
        rows = {**r["methods"], **r["variants"]}
        for name, sc in rows.items():
            a, q = sc["all"]["mean"], sc["help_query"]["mean"]
            lines.append(
                f"| {name} | {a['spearman']:.3f} | {a['kendall']:.3f} | {a['mape']:.1f} | "
                f"{a['within10']:.3f} | {q['spearman']:.3f} | {q['within10']:.3f} |"
            )
        lines.append(f"| HELP (published, query set) | | | | | {HELP_PUBLISHED[space]:.3f} | |")
        lines += ["", "Per test device (ours, all designs but probes):", ""]
        lines.append("| device | Spearman | Kendall | MAPE % | ±5% | ±10% | ridge Spearman |")
        lines.append("|---|---|---|---|---|---|---|")
        for d, v in r["methods"]["ours"]["all"]["per_device"].items():
            rs = r["methods"]["ridge"]["all"]["per_device"][d]["spearman"]
            lines.append(
                f"| {d} | {v['spearman']:.3f} | {v['kendall']:.3f} | {v['mape']:.1f} | "
                f"{v['within5']:.3f} | {v['within10']:.3f} | {rs:.3f} |"
            )
        t = r["timing"]
        lines += [
            "",
            f"Kernel chosen on meta-valid: {r['ours_kernel']}. Training {t['train_s']:.1f} s; "
            f"adaptation + prediction of all {t['n_designs']} designs for one new device "
            f"{1000 * t['adapt_and_predict_one_device_s']:.0f} ms; all designs x all test "
            f"devices {1000 * t['predict_all_designs_x_test_devices_s']:.0f} ms. Best training "
            f"device picked by the baseline: {r['best_train_device_choice']}. With the designs' "
            f"trunk outputs cached (same candidate set, another device): "
            f"{1000 * t['adapt_and_predict_one_device_cached_designs_s']:.0f} ms per device.",
            "",
            "Leave one family out (mean over the family's devices, all designs but probes):",
            "",
            "| held out | devices | ours Spearman | ours ±10% | ridge Spearman | best-device "
            "Spearman | FLOPs Spearman |",
            "|---|---|---|---|---|---|---|",
        ]
        for fam, v in r["lofo"].items():
            lines.append(
                f"| {fam} | {', '.join(v['test'])} | {v['ours']['all']['mean']['spearman']:.3f} | "
                f"{v['ours']['all']['mean']['within10']:.3f} | "
                f"{v['ridge']['all']['mean']['spearman']:.3f} | "
                f"{v['best-train-device']['all']['mean']['spearman']:.3f} | "
                f"{v['flops']['all']['mean']['spearman']:.3f} |"
            )
    lines += ["", "## Single-device latency predictors (1,000 training designs)", ""]
    lines.append(
        "| space/device | MLP Spearman | MLP ±10% | MLP fit s | GBT Spearman | GBT ±10% | "
        "GBT fit s |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for k, v in res["single_device"].items():
        m, g = v["mlp"], v["gbt"]
        lines.append(
            f"| {k} | {m['spearman']:.3f} | {m['within10']:.3f} | {m['fit_s']:.1f} | "
            f"{g['spearman']:.3f} | {g['within10']:.3f} | {g['fit_s']:.1f} |"
        )
    acc = res["accuracy"]
    lines += [
        "",
        "## NAS-Bench-201 CIFAR-10 accuracy from 1,000 designs",
        "",
        f"MLP ensemble: Spearman {acc['mlp']['spearman']:.3f}, Kendall {acc['mlp']['kendall']:.3f}"
        f" ({acc['mlp']['fit_s']:.1f} s); GBT: Spearman {acc['gbt']['spearman']:.3f}, Kendall "
        f"{acc['gbt']['kendall']:.3f} ({acc['gbt']['fit_s']:.1f} s); exact lookup of all 15,625 "
        f"designs {1000 * acc['lookup_15625_s']:.1f} ms.",
    ]
    rel = res["released"]
    lines += ["", "## Released predictors (OFA-MobileNetV3)", ""]
    lines.append("| subnet | Note10 LUT ms | OFA predicted top-1 |")
    lines.append("|---|---|---|")
    for k, v in rel["subnets"].items():
        lines.append(f"| {k} | {v['note10_ms']:.2f} | {v['ofa_top1']:.4f} |")
    mono = rel["note10_vs_help_ofa_gpu_spearman"]
    lines += [
        "",
        f"10,000 designs: Note10 LUT {1000 * rel['note10_lut_10000_designs_s']:.1f} ms, OFA "
        f"accuracy MLP {1000 * rel['ofa_accuracy_10000_designs_s']:.0f} ms, Pixel 1 LUT "
        f"(ProxylessNAS space) {1000 * rel['pixel1_lut_10000_designs_s']:.1f} ms. Spearman of "
        f"the Note10 LUT against HELP's OFA GPU latencies: min {min(mono.values()):.3f}, max "
        f"{max(mono.values()):.3f}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("FLEETNAS_DATA_DIR", "../shared/data"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    root = Path(args.data)
    torch.set_num_threads(2)
    res: dict[str, Any] = {
        "host": environment(torch_threads=2),
        "targets": {"spearman": TARGETS, "within10": 0.85, "train_s": 300, "adapt_s": 1.0},
        "help_published_spearman": HELP_PUBLISHED,
    }
    t0 = time.perf_counter()
    for space in ("nb201", "fbnet"):
        if args.only is None or space in args.only:
            res[space] = run_space(root, space, args.seed)
            print(space, json.dumps(res[space]["methods"]["ours"]["all"]["mean"]), flush=True)
    if args.only is None or "single" in args.only:
        res["single_device"] = single_device(root, args.seed)
    if args.only is None or "accuracy" in args.only:
        res["accuracy"] = accuracy(root, args.seed)
    if args.only is None or "released" in args.only:
        res["released"] = released(root)
    res["total_s"] = time.perf_counter() - t0
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "predictors.json").write_text(json.dumps(res, indent=1))
    if args.only is None:
        (RESULTS / "predictors.md").write_text(markdown(res))
    print(f"done in {res['total_s']:.0f} s")


if __name__ == "__main__":
    main()
