"""The timing statistics and noise tests, and the fresh-process protocol's failure modes."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from fleetnas.errors import InputError, MeasurementError
from fleetnas.measure.timing import (
    TimingConfig,
    bimodal,
    noise_reason,
    summarize,
    time_models,
)


def test_summarize_matches_definitions() -> None:
    x = np.array([5.0, 1.0, 3.0, 2.0, 4.0])
    s = summarize(x)
    assert s["median"] == 3.0 and s["min"] == 1.0 and s["n"] == 5
    assert s["iqr"] == pytest.approx(2.0)  # 4 - 2 with linear interpolation
    assert s["min"] <= s["median"] <= s["p90"] <= 5.0


def test_bimodal_gap_test() -> None:
    rng = np.random.default_rng(0)
    two = np.concatenate([rng.normal(1.0, 0.01, 12), rng.normal(1.6, 0.01, 8)])
    one = rng.normal(10.0, 0.2, 40)
    outlier = np.concatenate([rng.normal(1.0, 0.01, 19), [2.0]])
    assert bimodal(two, gap_min=0.1, minor_mode_min=0.15)
    assert not bimodal(one, gap_min=0.1, minor_mode_min=0.15)
    assert not bimodal(outlier, gap_min=0.1, minor_mode_min=0.15)


def test_noise_reasons() -> None:
    cfg = TimingConfig()
    rng = np.random.default_rng(1)
    clean = rng.normal(2.0, 0.01, 30)
    assert noise_reason(clean, np.array([2.0, 2.01, 1.99]), cfg) == ""
    assert noise_reason(clean, np.array([2.0, 2.6]), cfg).startswith("process medians")
    wide = rng.uniform(1.0, 3.0, 30)
    assert "IQR" in noise_reason(wide, np.array([2.0]), cfg)
    modes = np.concatenate([np.full(15, 1.0), np.full(15, 1.5)])
    assert noise_reason(modes, np.array([1.0, 1.5]), cfg) == "bimodal"


def test_timing_options_from_spec() -> None:
    cfg = TimingConfig.from_options({"repeats": "4", "cpus": "0+1", "rel_iqr_max": "0.2"})
    assert (cfg.repeats, cfg.cpus, cfg.rel_iqr_max) == (4, (0, 1), 0.2)
    assert cfg.to_dict()["cpus"] == [0, 1]
    with pytest.raises(InputError, match="unknown measuring option 'repets'"):
        TimingConfig.from_options({"repets": "4"})
    with pytest.raises(InputError, match=r"repeats='many' is not a valid value .*integer"):
        TimingConfig.from_options({"repeats": "many"})
    assert TimingConfig.from_options({"energy": "yes", "processes": "1"}).energy is True
    # a typo in a flag is refused, not read as "off"
    with pytest.raises(InputError, match=r"energy='maybe' .*boolean"):
        TimingConfig.from_options({"energy": "maybe"})
    with pytest.raises(InputError, match="repeats >= 1"):
        TimingConfig.from_options({"repeats": "0"})
    with pytest.raises(InputError, match="repeats >= 1"):
        TimingConfig(repeats=0)


def test_worker_reports_unloadable_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(MeasurementError, match="cannot load model m"):
        time_models(
            [{"key": "m", "onnx": str(bad)}],
            "onnxruntime",
            1,
            1,
            cfg=TimingConfig(processes=1, repeats=1, warmup=0),
        )


def test_deadline_stops_the_worker(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(MeasurementError, match="timed out"):
        time_models(
            [{"key": "m", "onnx": str(tmp_path / "x.onnx")}],
            "onnxruntime",
            1,
            1,
            cfg=TimingConfig(processes=1),
            deadline=time.monotonic() + 0.05,
        )
    assert time.monotonic() - t0 < 5


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(InputError, match="unique"):
        time_models([{"key": "a", "onnx": "x"}, {"key": "a", "onnx": "y"}], "onnxruntime", 1, 1)


def test_best_of_takes_the_fastest_of_several_runs_per_sample() -> None:
    from fleetnas.spaces import get_space

    space = get_space("nb201")
    arch = space.format(space.sample(1, np.random.default_rng(0))[0])
    model = {"key": "m", "space": "nb201", "arch": arch}
    cfg = TimingConfig(processes=1, repeats=4, warmup=1, best_of=3, retries=0)
    t = time_models([model], "torch", 1, 1, cfg=cfg).timings["m"]
    assert t.stats["n"] == 4  # one sample per repeat, each the fastest of 3 runs
    assert "best_of=3" in cfg.protocol()
    # the default protocol text is unchanged, so stored devices keep their identity
    assert "best_of" not in TimingConfig().protocol()
    assert TimingConfig.from_options({"best_of": "5"}).best_of == 5
    with pytest.raises(InputError, match="best_of >= 1"):
        TimingConfig(best_of=0)
