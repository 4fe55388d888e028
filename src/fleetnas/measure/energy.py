"""Energy meters and energy per inference.

An :class:`EnergyMeter` reads a cumulative energy counter in joules. Two real meters exist:
Intel RAPL through the Linux powercap sysfs tree (:class:`RaplMeter`; also AMD's RAPL, which
the same driver exposes) and NVIDIA's NVML total-energy counter (:class:`NvmlMeter`).
:class:`NullMeter` stands for "no meter": it refuses to read, so nobody can report an energy
number that was not measured.

Energy per inference (:func:`energy_per_inference`) is the counter delta over a timed window of
``count`` repeated inferences, minus the idle power (measured just before, over
``idle_seconds``) times the window length, divided by ``count``.
"""

from __future__ import annotations

import ctypes
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fleetnas.errors import MeasurementError

DEFAULT_POWERCAP = "/sys/class/powercap"


class EnergyMeter(ABC):
    """A cumulative energy counter in joules."""

    #: Short name recorded with measurements (``"rapl"``, ``"nvml"``, ``"none"``).
    name: str = ""
    #: True only for meters that read real hardware counters.
    is_real: bool = False

    @abstractmethod
    def read(self) -> float:
        """Joules accumulated since the meter was created (monotone, wrap-arounds undone)."""

    def describe(self) -> dict[str, object]:
        return {"meter": self.name, "is_real": self.is_real}


class NullMeter(EnergyMeter):
    """No meter: reading raises, so no energy value can be fabricated."""

    name = "none"
    is_real = False

    def read(self) -> float:
        raise MeasurementError("no energy meter is available on this machine (RAPL/NVML absent)")


@dataclass
class _Zone:
    name: str
    path: Path
    max_uj: int
    last_uj: int
    total_uj: int = 0


class RaplMeter(EnergyMeter):
    """All RAPL zones under a powercap tree (``intel-rapl:N`` and ``intel-rapl:N:M``).

    Each zone's ``energy_uj`` wraps at ``max_energy_range_uj``; a reading lower than the
    previous one is taken as one wrap (poll at least once per wrap period, minutes at full
    load). :meth:`read` returns the energy of the package zones
    plus DRAM subzones (cores and uncore are parts of a package and are not added twice; a
    ``psys`` platform zone, which covers everything, is kept apart). :meth:`read_zones` gives
    every zone separately.
    """

    name = "rapl"
    is_real = True

    def __init__(self, root: str | os.PathLike[str] = DEFAULT_POWERCAP) -> None:
        self.root = Path(root)
        paths = sorted(self.root.glob("intel-rapl:*"), key=lambda p: _zone_key(p.name))
        if not paths:
            raise MeasurementError(f"no RAPL zones under {self.root} (no intel-rapl:* entries)")
        self._zones: dict[str, _Zone] = {}
        for p in paths:
            label = _read_text(p / "name")
            raw = _read_int(p / "energy_uj")
            max_uj = _read_int(p / "max_energy_range_uj")
            self._zones[p.name] = _Zone(name=label, path=p, max_uj=max_uj, last_uj=raw)

    @classmethod
    def available(cls, root: str | os.PathLike[str] = DEFAULT_POWERCAP) -> bool:
        """Whether a readable RAPL tree exists at ``root``."""
        try:
            cls(root)
        except MeasurementError:
            return False
        return True

    def _poll(self) -> None:
        for zone in self._zones.values():
            raw = _read_int(zone.path / "energy_uj")
            delta = raw - zone.last_uj
            if delta < 0:
                delta += zone.max_uj
            zone.total_uj += delta
            zone.last_uj = raw

    def read_zones(self) -> dict[str, float]:
        """Joules per zone (``"intel-rapl:0 package-0"`` -> J) since the meter was created."""
        self._poll()
        return {f"{key} {z.name}": z.total_uj / 1e6 for key, z in self._zones.items()}

    def read(self) -> float:
        self._poll()
        total = 0
        for key, zone in self._zones.items():
            top = key.count(":") == 1
            if (top and zone.name != "psys") or (not top and zone.name.startswith("dram")):
                total += zone.total_uj
        return total / 1e6

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "zones": [f"{k} {z.name}" for k, z in self._zones.items()]}


class NvmlMeter(EnergyMeter):
    """NVIDIA GPU energy from NVML's total-energy counter (millijoules since driver load).

    ``counter`` returns that counter in millijoules; by default it is read through
    ``libnvidia-ml`` (``nvmlDeviceGetTotalEnergyConsumption``) for GPU ``index``.
    """

    name = "nvml"
    is_real = True

    def __init__(self, index: int = 0, counter: Callable[[], float] | None = None) -> None:
        self.index = index
        self._counter = counter or _nvml_counter(index)
        self._start_mj = float(self._counter())

    @classmethod
    def available(cls, index: int = 0) -> bool:
        try:
            cls(index)
        except MeasurementError:
            return False
        return True

    def read(self) -> float:
        now = float(self._counter())
        if now < self._start_mj:
            raise MeasurementError(
                f"NVML energy counter of GPU {self.index} went backwards (driver reloaded?)"
            )
        return (now - self._start_mj) / 1e3


def detect_meter(kind: str = "auto") -> EnergyMeter:
    """The meter ``kind`` (``"rapl"``, ``"nvml"``, ``"none"``), or for ``"auto"`` the first
    real meter that answers, else :class:`NullMeter`."""
    if kind == "none":
        return NullMeter()
    if kind == "rapl":
        return RaplMeter()
    if kind == "nvml":
        return NvmlMeter()
    if kind != "auto":
        raise MeasurementError(f"unknown energy meter {kind!r}; expected auto, rapl, nvml or none")
    for factory in (RaplMeter, NvmlMeter):
        try:
            return factory()
        except MeasurementError:
            continue
    return NullMeter()


@dataclass(frozen=True)
class EnergyReading:
    """Energy per inference and how it was obtained."""

    joules_per_inference: float
    window_seconds: float
    idle_watts: float
    count: int
    meter: str
    is_estimate: bool


def energy_per_inference(
    meter: EnergyMeter,
    run_fn: Callable[[], object],
    count: int,
    idle_seconds: float = 0.5,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], object] = time.sleep,
) -> EnergyReading:
    """(E(window) - P_idle * t(window)) / count, where the window runs ``run_fn`` ``count``
    times and P_idle is the counter's rate over ``idle_seconds`` of sleep just before.

    Raises :class:`MeasurementError` when the meter is not real or the window's energy does
    not rise above the idle baseline (then ``count`` is too small for the meter's resolution).
    """
    if not meter.is_real:
        raise MeasurementError(f"energy meter {meter.name!r} is not a real meter; no energy value")
    if count < 1 or idle_seconds <= 0:
        raise MeasurementError(
            f"energy_per_inference needs count >= 1 and idle_seconds > 0, got {count}, "
            f"{idle_seconds}"
        )
    e0, t0 = meter.read(), clock()
    sleep(idle_seconds)
    e1, t1 = meter.read(), clock()
    idle_watts = (e1 - e0) / (t1 - t0)
    e2, t2 = meter.read(), clock()
    for _ in range(count):
        run_fn()
    e3, t3 = meter.read(), clock()
    window = t3 - t2
    active = (e3 - e2) - idle_watts * window
    if active <= 0:
        raise MeasurementError(
            f"energy over {count} inferences ({e3 - e2:.4g} J in {window:.3g} s) does not exceed "
            f"the idle baseline ({idle_watts:.3g} W); use more inferences per window"
        )
    return EnergyReading(
        joules_per_inference=active / count,
        window_seconds=window,
        idle_watts=idle_watts,
        count=count,
        meter=meter.name,
        is_estimate=False,
    )


def _zone_key(name: str) -> tuple[int, ...]:
    parts = name.split(":")[1:]
    return tuple(int(p) if p.isdigit() else -1 for p in parts)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise MeasurementError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_int(path: Path) -> int:
    text = _read_text(path)
    try:
        return int(text)
    except ValueError:
        raise MeasurementError(f"{path} holds {text!r}, expected an integer") from None


def _nvml_counter(index: int) -> Callable[[], float]:
    try:
        lib = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        raise MeasurementError("NVML is not available (libnvidia-ml.so.1 not found)") from None
    handle = ctypes.c_void_p()
    if lib.nvmlInit_v2() != 0:
        raise MeasurementError("NVML could not be initialised")
    if lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.byref(handle)) != 0:
        raise MeasurementError(f"NVML has no GPU with index {index}")

    def read() -> float:
        value = ctypes.c_ulonglong()
        rc = lib.nvmlDeviceGetTotalEnergyConsumption(handle, ctypes.byref(value))
        if rc != 0:
            raise MeasurementError(f"NVML total-energy counter of GPU {index} unavailable ({rc})")
        return float(value.value)

    read()
    return read
