"""Energy meters against a fake powercap tree and a fake NVML counter built here."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetnas.errors import MeasurementError
from fleetnas.measure.energy import (
    NullMeter,
    NvmlMeter,
    RaplMeter,
    detect_meter,
    energy_per_inference,
)

MAX_UJ = 262_143_328_850


def _zone(root: Path, key: str, name: str, energy: int, max_uj: int = MAX_UJ) -> Path:
    d = root / key
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def _set(zone: Path, energy: int) -> None:
    (zone / "energy_uj").write_text(f"{energy}\n")


def _get(zone: Path) -> int:
    return int((zone / "energy_uj").read_text())


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "powercap"
    return {
        "root": root,
        "pkg0": _zone(root, "intel-rapl:0", "package-0", 1_000_000),
        "core0": _zone(root, "intel-rapl:0:0", "core", 500_000),
        "dram0": _zone(root, "intel-rapl:0:1", "dram", 100_000),
        "pkg1": _zone(root, "intel-rapl:1", "package-1", 7_000, max_uj=10_000),
        "psys": _zone(root, "intel-rapl:2", "psys", 0),
    }


def test_rapl_sums_packages_and_dram_without_double_counting(tree: dict[str, Path]) -> None:
    meter = RaplMeter(tree["root"])
    assert meter.is_real and meter.read() == 0.0
    _set(tree["pkg0"], 3_000_000)  # +2 J
    _set(tree["core0"], 1_500_000)  # +1 J, part of the package
    _set(tree["dram0"], 600_000)  # +0.5 J
    _set(tree["psys"], 9_000_000)  # platform zone, kept apart
    assert meter.read() == pytest.approx(2.5)
    zones = meter.read_zones()
    assert zones["intel-rapl:0:0 core"] == pytest.approx(1.0)
    assert zones["intel-rapl:2 psys"] == pytest.approx(9.0)
    assert len(zones) == 5


def test_rapl_undoes_counter_wraparound(tree: dict[str, Path]) -> None:
    meter = RaplMeter(tree["root"])
    _set(tree["pkg1"], 9_000)  # +2000 uJ
    assert meter.read() == pytest.approx(0.002)
    _set(tree["pkg1"], 1_000)  # wrapped at 10_000: +2000 uJ
    assert meter.read() == pytest.approx(0.004)
    assert meter.read_zones()["intel-rapl:1 package-1"] == pytest.approx(0.004)


def test_rapl_missing_or_broken_tree_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MeasurementError, match="no RAPL zones"):
        RaplMeter(tmp_path)
    assert not RaplMeter.available(tmp_path)
    z = _zone(tmp_path, "intel-rapl:0", "package-0", 0)
    (z / "energy_uj").write_text("n/a\n")
    with pytest.raises(MeasurementError, match="energy_uj"):
        RaplMeter(tmp_path)


class _FakeMachine:
    """A clock and a package counter that rise with idle and active power."""

    def __init__(self, zone: Path, idle_w: float, active_w: float, step_s: float) -> None:
        self.zone, self.idle_w, self.active_w, self.step_s = zone, idle_w, active_w, step_s
        self.t = 0.0
        self.runs = 0

    def _advance(self, seconds: float, watts: float) -> None:
        self.t += seconds
        max_uj = int((self.zone / "max_energy_range_uj").read_text())
        _set(self.zone, (_get(self.zone) + round(watts * seconds * 1e6)) % max_uj)

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self._advance(seconds, self.idle_w)

    def run(self) -> None:
        self.runs += 1
        self._advance(self.step_s, self.idle_w + self.active_w)


def test_energy_per_inference_subtracts_idle_baseline(tree: dict[str, Path]) -> None:
    meter = RaplMeter(tree["root"])
    # The 10 mJ counter wraps once in the idle window and once in the inference window.
    fake = _FakeMachine(tree["pkg1"], idle_w=0.05, active_w=0.2, step_s=0.001)
    reading = energy_per_inference(
        meter, fake.run, count=36, idle_seconds=0.1, clock=fake.clock, sleep=fake.sleep
    )
    assert fake.runs == 36
    assert reading.joules_per_inference == pytest.approx(0.2 * 0.001, rel=1e-6)
    assert reading.idle_watts == pytest.approx(0.05, rel=1e-6)
    assert reading.window_seconds == pytest.approx(0.036)
    assert reading.is_estimate is False and reading.meter == "rapl"


def test_energy_below_idle_baseline_is_refused(tree: dict[str, Path]) -> None:
    meter = RaplMeter(tree["root"])
    fake = _FakeMachine(tree["pkg0"], idle_w=5.0, active_w=0.0, step_s=0.01)
    with pytest.raises(MeasurementError, match="idle baseline"):
        energy_per_inference(meter, fake.run, 10, 0.2, clock=fake.clock, sleep=fake.sleep)


def test_null_meter_never_yields_a_value() -> None:
    meter = NullMeter()
    assert not meter.is_real
    with pytest.raises(MeasurementError, match="no energy meter"):
        meter.read()
    with pytest.raises(MeasurementError, match="not a real meter"):
        energy_per_inference(meter, lambda: None, 10)


def test_nvml_counter_in_millijoules() -> None:
    counter = {"mj": 123_456.0}
    meter = NvmlMeter(counter=lambda: counter["mj"])
    counter["mj"] += 2_500.0
    assert meter.read() == pytest.approx(2.5)
    counter["mj"] = 0.0
    with pytest.raises(MeasurementError, match="backwards"):
        meter.read()


def test_detect_meter_on_this_machine_answers_honestly() -> None:
    meter = detect_meter("auto")
    assert meter.name in {"rapl", "nvml", "none"}
    assert meter.is_real == (meter.name != "none")
    assert isinstance(detect_meter("none"), NullMeter)
    with pytest.raises(MeasurementError, match="unknown energy meter"):
        detect_meter("joulescope")
