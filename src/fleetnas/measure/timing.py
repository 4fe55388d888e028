"""The real timing protocol: warm up, repeat, repeat again in fresh processes, flag noise.

:func:`time_models` runs ``processes`` fresh worker processes one after another (never in
parallel: they would distort each other), each loading every model, warming it up and timing
it ``repeats`` times (:mod:`fleetnas.measure.worker`). Samples of all processes are pooled into
median, p90, IQR, min and n. A model is *noisy* when its relative IQR is large, when the
per-process medians disagree, or when its samples split into two modes with a wide gap (seen
with two threads on a shared two-core machine). Noisy models are measured again in new
processes up to ``retries`` times; the cleanest attempt is kept and, if every attempt was
noisy, it is kept with ``noisy = 1`` rather than silently. The spread of the per-process
medians (``session_spread``) is each value's noise estimate from independent sessions.

Every real measurer (ONNX Runtime, LiteRT, OpenVINO, torch) shares this protocol;
:meth:`TimingConfig.protocol` is its canonical text, stored as the device feature ``protocol``,
so values taken under two protocols never count as one device. Workers are pinned with
:func:`os.sched_setaffinity` to ``cpus`` when given, or by default (``pin=1``) to the last
``threads`` CPUs this process may use, where the platform offers affinity at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fleetnas.errors import InputError, MeasurementError

#: Environment variables set for the worker so that every library uses ``threads`` threads.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class TimingConfig:
    """How hard to measure. Defaults suit networks that run in milliseconds."""

    warmup: int = 5
    repeats: int = 10
    #: Each sample is the fastest of this many back-to-back runs (1: every run is a sample).
    #: On a shared or virtual machine, neighbours only ever slow a run down, so the fastest of
    #: a few is a far steadier sample than one run (see ``benchmarks/stacks.py``).
    best_of: int = 1
    processes: int = 3
    retries: int = 2
    #: Noisy when IQR / median exceeds this.
    rel_iqr_max: float = 0.10
    #: Noisy when (max - min) / median of the per-process medians exceeds this.
    process_spread_max: float = 0.10
    #: Bimodal when the widest gap between sorted samples exceeds this share of the median ...
    gap_min: float = 0.10
    #: ... and the smaller side holds at least this share of the samples.
    minor_mode_min: float = 0.15
    cpus: tuple[int, ...] | None = None
    #: Pin each worker to the last ``threads`` allowed CPUs when ``cpus`` is not given (where
    #: the platform has CPU affinity); ``pin=0`` leaves placement to the scheduler.
    pin: bool = True
    energy: bool = False
    energy_count: int = 50
    energy_idle_s: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if (
            self.warmup < 0
            or self.repeats < 1
            or self.best_of < 1
            or self.processes < 1
            or self.retries < 0
        ):
            raise InputError(
                "timing needs warmup >= 0, repeats >= 1, best_of >= 1, processes >= 1, "
                f"retries >= 0; got {self.warmup}, {self.repeats}, {self.best_of}, "
                f"{self.processes}, {self.retries}"
            )

    @classmethod
    def from_options(cls, opts: dict[str, str]) -> TimingConfig:
        """From spec options such as ``repeats=5``, ``processes=2``, ``cpus=0+1``, ``energy=1``
        (strings converted to each field's type by pydantic)."""
        from fleetnas.measure.spec import parse_into

        values: dict[str, Any] = dict(opts)
        if isinstance(values.get("cpus"), str):
            values["cpus"] = values["cpus"].split("+")
        return parse_into(cls, values, "measuring")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cpus"] = list(self.cpus) if self.cpus else None
        return d

    def protocol(self) -> str:
        """The parts of this config that shape a stored value, as one canonical line (the
        device feature ``protocol``); seed and energy settings are not part of it."""
        pin = "+".join(map(str, self.cpus)) if self.cpus else ("auto" if self.pin else "none")
        best = f" best_of={self.best_of}" if self.best_of > 1 else ""
        return (
            f"median of warmup={self.warmup} repeats={self.repeats}{best}"
            f" x sessions={self.processes}"
            f" fresh processes; retries={self.retries} when noisy (rel_iqr>{self.rel_iqr_max:g}"
            f" or session_spread>{self.process_spread_max:g} or bimodal gap>{self.gap_min:g}"
            f"/{self.minor_mode_min:g}); pin={pin}"
        )


def summarize(samples: np.ndarray) -> dict[str, float]:
    """median, p90, IQR, min and n of a 1-D sample array."""
    x = np.asarray(samples, dtype=float)
    q25, q50, q75, q90 = np.percentile(x, [25, 50, 75, 90])
    return {"median": q50, "p90": q90, "iqr": q75 - q25, "min": float(x.min()), "n": len(x)}


def bimodal(samples: np.ndarray, gap_min: float, minor_mode_min: float) -> bool:
    """Two modes: the widest gap between sorted samples is over ``gap_min`` x median, over
    twice the IQR of either side (so a merely wide distribution is not split), and each side
    holds at least ``minor_mode_min`` of the samples."""
    x = np.sort(np.asarray(samples, dtype=float))
    if len(x) < 4:
        return False
    gaps = np.diff(x)
    i = int(np.argmax(gaps))
    smaller = min(i + 1, len(x) - i - 1) / len(x)
    if gaps[i] <= gap_min * np.median(x) or smaller < minor_mode_min:
        return False
    within = max(
        float(np.subtract(*np.percentile(side, [75, 25]))) for side in (x[: i + 1], x[i + 1 :])
    )
    return bool(gaps[i] > 2.0 * within)


def noise_reason(samples: np.ndarray, process_medians: np.ndarray, cfg: TimingConfig) -> str:
    """Why these samples are too noisy to store as one clean value ("" when clean)."""
    s = summarize(samples)
    rel_iqr = s["iqr"] / s["median"] if s["median"] > 0 else 0.0
    if bimodal(samples, cfg.gap_min, cfg.minor_mode_min):
        return "bimodal"
    if rel_iqr > cfg.rel_iqr_max:
        return f"relative IQR {rel_iqr:.2f} > {cfg.rel_iqr_max}"
    pm = np.asarray(process_medians, dtype=float)
    if len(pm) > 1 and s["median"] > 0:
        spread = (pm.max() - pm.min()) / s["median"]
        if spread > cfg.process_spread_max:
            return f"process medians differ by {spread:.2f} > {cfg.process_spread_max}"
    return ""


@dataclass
class Timing:
    """Pooled timings of one model (milliseconds) and how trustworthy they are."""

    samples: np.ndarray
    process_medians: np.ndarray
    noise: str
    attempts: int
    energy_j: float | None = None

    @property
    def noisy(self) -> bool:
        return bool(self.noise)

    @property
    def stats(self) -> dict[str, float]:
        return summarize(self.samples)

    @property
    def session_spread(self) -> float:
        """(max - min) / median of the per-process medians: the noise between independent
        sessions (0 with one process)."""
        pm, med = self.process_medians, float(np.median(self.samples))
        return float((pm.max() - pm.min()) / med) if len(pm) > 1 and med > 0 else 0.0

    def _rank(self) -> tuple[bool, float]:
        s = self.stats
        return (self.noisy, s["iqr"] / s["median"] if s["median"] > 0 else np.inf)


@dataclass
class TimingReport:
    """Every model's :class:`Timing`, the device seconds the workers used, and what each
    worker process reported about itself (pid, affinity, load times)."""

    timings: dict[str, Timing]
    device_seconds: float
    workers: list[dict[str, Any]] = field(default_factory=list)
    #: Models that could not be loaded or run (key -> the runtime's message).
    failures: dict[str, str] = field(default_factory=dict)


def time_models(
    models: list[dict[str, Any]],
    runtime: str,
    threads: int,
    batch: int,
    opt: str = "all",
    cfg: TimingConfig | None = None,
    deadline: float | None = None,
    cancel: threading.Event | None = None,
    keep_going: bool = False,
    hint: str = "latency",
) -> TimingReport:
    """Time ``models`` (worker model entries with unique ``key``) under one setting.

    ``deadline`` is a :func:`time.monotonic` instant after which the running worker is killed
    and :class:`MeasurementError` raised; ``cancel`` stops the same way when set. A model the
    runtime cannot load or run raises :class:`MeasurementError`, or with ``keep_going`` is
    left out of ``timings`` and named in ``failures`` with the runtime's message.
    """
    cfg = cfg or TimingConfig()
    keys = [m["key"] for m in models]
    if len(set(keys)) != len(keys):
        raise InputError("time_models needs unique model keys")
    base_job = {
        "runtime": runtime,
        "threads": threads,
        "batch": batch,
        "opt": opt,
        "hint": hint,
        "warmup": cfg.warmup,
        "repeats": cfg.repeats,
        "best_of": cfg.best_of,
        "cpus": list(cfg.cpus) if cfg.cpus else None,
        "pin": cfg.pin,
        "energy": {"meter": "auto", "count": cfg.energy_count, "idle_s": cfg.energy_idle_s}
        if cfg.energy
        else None,
    }
    best: dict[str, Timing] = {}
    failures: dict[str, str] = {}
    workers: list[dict[str, Any]] = []
    device_seconds = 0.0
    todo = list(models)
    for attempt in range(1, cfg.retries + 2):
        per_key: dict[str, list[list[float]]] = {m["key"]: [] for m in todo}
        energy: dict[str, list[float]] = {m["key"]: [] for m in todo}
        for p in range(cfg.processes):
            job = {**base_job, "models": todo, "seed": cfg.seed + 1000 * attempt + p}
            out, seconds = _run_worker(job, threads, deadline, cancel)
            device_seconds += seconds
            workers.append(
                {k: out.get(k) for k in ("pid", "affinity", "energy_meter")}
                | {"attempt": attempt, "seconds": seconds}
            )
            for key, why in out.get("errors", {}).items():
                if not keep_going:
                    raise MeasurementError(why)
                failures.setdefault(key, why)
            for key, samples in out["times_ms"].items():
                per_key[key].append(samples)
            for key, joules in out.get("energy_j", {}).items():
                energy[key].append(joules)
        for key, runs in per_key.items():
            if key in failures or not runs:
                continue
            pooled = np.concatenate([np.asarray(r, dtype=float) for r in runs])
            medians = np.array([np.median(r) for r in runs])
            t = Timing(
                samples=pooled,
                process_medians=medians,
                noise=noise_reason(pooled, medians, cfg),
                attempts=attempt,
                energy_j=float(np.median(energy[key])) if energy[key] else None,
            )
            prev = best.get(key)
            if prev is None or t._rank() < prev._rank():
                best[key] = t
            best[key].attempts = attempt
        todo = [m for m in todo if m["key"] not in failures and best[m["key"]].noisy]
        if not todo:
            break
    for key in failures:
        best.pop(key, None)
    return TimingReport(
        timings=best, device_seconds=device_seconds, workers=workers, failures=failures
    )


def _run_worker(
    job: dict[str, Any], threads: int, deadline: float | None, cancel: threading.Event | None
) -> tuple[dict[str, Any], float]:
    env = dict(os.environ)
    env.update({k: str(threads) for k in THREAD_ENV})
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetnas.measure.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    payload: str | None = json.dumps(job)
    while True:
        wait = 0.25
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
        try:
            if wait <= 0:
                raise subprocess.TimeoutExpired(proc.args, 0)
            stdout, stderr = proc.communicate(payload, timeout=wait)
            break
        except subprocess.TimeoutExpired:
            payload = None
            expired = deadline is not None and time.monotonic() >= deadline
            if expired or (cancel is not None and cancel.is_set()):
                proc.kill()
                proc.communicate()
                why = "timed out" if expired else "was cancelled"
                msg = f"measurement {why}; the worker process was stopped"
                raise MeasurementError(msg) from None
    seconds = time.perf_counter() - t0
    try:
        out = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
    except json.JSONDecodeError:
        out = {}
    if not out.get("ok"):
        detail = out.get("error") or (stderr.strip().splitlines() or ["no output"])[-1]
        raise MeasurementError(f"measuring worker failed (exit {proc.returncode}): {detail}")
    return out, seconds
