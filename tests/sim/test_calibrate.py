"""Calibration: recover a known device, fit a real HELP device, report the fit honestly."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.sim import calibrate, fit_report, latency_matrix, sample_model


def test_recovers_a_known_device_from_its_latencies(nb201, nb201_archs) -> None:
    truth = sample_model("mobile_cpu", rng=11)
    y = latency_matrix(truth, nb201, nb201_archs)[0]
    model, report = calibrate(nb201, nb201_archs, y, "mobile_cpu", restarts=2, seed=0)
    assert report.spearman > 0.99
    assert report.mape < 3.0
    assert report.n == report.n_fit == len(y)
    assert model.family == "mobile_cpu" and model.batch_size == 1
    pred = latency_matrix(model, nb201, nb201_archs)[0]
    assert fit_report(pred, y)["spearman"] == pytest.approx(report.spearman)


def test_noisy_measurements_and_spec_fixing(nb201, nb201_archs) -> None:
    truth = sample_model("desktop_gpu", rng=3, batch_size=32)
    y = latency_matrix(truth, nb201, nb201_archs)[0]
    noisy = y * np.exp(np.random.default_rng(0).normal(0, 0.03, len(y)))
    specs = {"peak_gflops": truth.peak_gflops, "mem_bandwidth_gbs": 500.0, "cores": 4352}
    model, report = calibrate(
        nb201, nb201_archs, noisy, "desktop_gpu", batch_size=32, specs=specs, max_fit=800
    )
    assert model.peak_gflops == truth.peak_gflops
    assert model.mem_bandwidth_gbs == 500.0 and model.cores == 4352
    assert model.batch_size == 32
    assert report.n_fit == 800 and report.n == len(y)
    assert report.spearman > 0.9
    assert report.mdape < 5.0
    free, _ = calibrate(
        nb201,
        nb201_archs[:300],
        noisy[:300],
        "desktop_gpu",
        batch_size=32,
        specs=specs,
        fix_specs=False,
        restarts=1,
    )
    assert free.peak_gflops != truth.peak_gflops


def test_same_seed_same_fit(nb201, nb201_archs) -> None:
    y = latency_matrix(sample_model("npu", rng=1), nb201, nb201_archs[:400])[0]
    a, ra = calibrate(nb201, nb201_archs[:400], y, "npu", restarts=2, seed=5)
    b, rb = calibrate(nb201, nb201_archs[:400], y, "npu", restarts=2, seed=5)
    assert a == b and ra.spearman == rb.spearman


def test_bad_inputs_raise_input_errors(nb201, nb201_archs) -> None:
    y = np.ones(10)
    with pytest.raises(InputError, match="positive"):
        calibrate(nb201, nb201_archs[:10], -y, "npu")
    with pytest.raises(InputError, match="10 architectures but 9"):
        calibrate(nb201, nb201_archs[:10], y[:9], "npu")
    with pytest.raises(InputError, match="family 'toaster'"):
        calibrate(nb201, nb201_archs[:10], y, "toaster")
    with pytest.raises(InputError, match="peak_gflops"):
        calibrate(nb201, nb201_archs[:10], y, "npu", specs={"peak_gflops": "fast"})


@pytest.mark.slow
def test_fits_a_real_help_device(data_dir, nb201) -> None:
    from fleetnas.data.help import read_archs, read_latencies
    from fleetnas.devices.catalog import get_catalog_device

    space, archs = read_archs(data_dir, "nb201")
    device = get_catalog_device("silver_4210r")
    y = read_latencies(data_dir, "nb201", "silver_4210r")
    pick = np.random.default_rng(0).choice(len(y), 1500, replace=False)
    model, report = calibrate(
        space,
        archs[pick],
        y[pick],
        device.family,
        specs=device.features,
        precision=device.features["precision"],
        max_fit=1000,
    )
    assert report.spearman > 0.95
    assert report.mape < 10.0
    assert model.to_features()["peak_gflops"] == pytest.approx(device.features["peak_gflops"])
