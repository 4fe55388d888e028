"""The analytical device model: pricing formulas, vectorization, serialization."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.sim import DeviceModel, energy_matrix, latency_matrix, layer_table
from fleetnas.sim.model import ROOFLINE_P
from fleetnas.spaces import Layer, get_space


def _gpu(**kw) -> DeviceModel:
    base = dict(
        family="desktop_gpu",
        peak_gflops=11000.0,
        mem_bandwidth_gbs=480.0,
        overhead_us=20.0,
        knee=5e4,
        fixed_ms=0.5,
    )
    return DeviceModel(**{**base, **kw})


def _layer_ms(m: DeviceModel, layer: Layer) -> tuple[float, float]:
    """Scalar re-implementation of the documented formulas: (ms, dynamic mJ)."""
    b = m.batch_size
    out = layer.out_ch * layer.out_hw**2
    flops = 2.0 * layer.macs * b
    util = b * out / (b * out + m.knee)
    eff = getattr(m, f"eff_{layer.kind}")
    t_c = flops / (m.peak_gflops * 1e9 * eff * util) * 1e3
    moved = (b * layer.activation_elems + layer.params) * m.bytes_per_elem
    t_m = moved / (m.mem_bandwidth_gbs * m.eff_mem * 1e9) * 1e3
    roof = (t_c**ROOFLINE_P + t_m**ROOFLINE_P) ** (1 / ROOFLINE_P)
    ovh = m.overhead_us * 1e-3
    t = ovh + roof - m.overlap * min(ovh, roof)
    if layer.kind in ("conv", "dwconv", "pwconv"):
        extra = 2 * b * out * m.bytes_per_elem
        t_pass = extra / (m.mem_bandwidth_gbs * m.eff_mem * 1e9) * 1e3
        t += m.unfused_ops * (ovh + t_pass - m.overlap * min(ovh, t_pass))
        moved += m.unfused_ops * extra
    dyn = (flops * m.energy_pj_per_flop + moved * m.energy_pj_per_byte) * 1e-9
    return t, dyn


@pytest.mark.parametrize("space_name", ["nb201", "fbnet", "ofa_mbv3"])
def test_matrix_matches_layer_by_layer_sum(space_name: str) -> None:
    space = get_space(space_name)
    archs = space.sample(6, rng=3)
    models = [
        _gpu(unfused_ops=2.0, overlap=0.9),
        _gpu(batch_size=32, precision="fp16", unfused_ops=0.3, overlap=0.4),
        _gpu(family="npu", eff_dwconv=0.01),
    ]
    lat = latency_matrix(models, space, archs)
    en = energy_matrix(models, space, archs)
    assert lat.shape == en.shape == (3, 6)
    for i, m in enumerate(models):
        for j, a in enumerate(archs):
            costs = [_layer_ms(m, layer) for layer in space.layers(a)]
            want_lat = m.fixed_ms + sum(c[0] for c in costs)
            want_en = sum(c[1] for c in costs) + m.static_power_w * want_lat
            assert lat[i, j] == pytest.approx(want_lat, rel=1e-9)
            assert en[i, j] == pytest.approx(want_en, rel=1e-9)


def test_roofline_limits_and_overheads(nb201, nb201_archs) -> None:
    base = _gpu(batch_size=256)
    lat = latency_matrix(base, nb201, nb201_archs)[0]
    # more bandwidth, more compute -> never slower; overhead adds exactly per layer
    faster = latency_matrix(base.with_(peak_gflops=22000.0), nb201, nb201_archs)[0]
    assert np.all(faster <= lat + 1e-12) and np.any(faster < lat)
    table = layer_table(nb201, nb201_archs)
    n_layers = table.totals()["layers"]
    more = latency_matrix(base.with_(overhead_us=120.0), nb201, nb201_archs)[0]
    np.testing.assert_allclose(more - lat, n_layers * 0.1, rtol=1e-9)


def test_overlap_hides_overhead_behind_work(nb201, nb201_archs) -> None:
    sync = _gpu(overhead_us=40.0)
    lat_sync = latency_matrix(sync, nb201, nb201_archs)[0]
    lat_async = latency_matrix(sync.with_(overlap=1.0), nb201, nb201_archs)[0]
    no_ovh = latency_matrix(sync.with_(overhead_us=1e-9), nb201, nb201_archs)[0]
    assert np.all(lat_async < lat_sync)
    assert np.all(lat_async >= no_ovh - 1e-12)
    n_layers = layer_table(nb201, nb201_archs).totals()["layers"]
    assert np.all(lat_async >= sync.fixed_ms + n_layers * 0.04 - 1e-9)


def test_large_batch_amortizes_small_layers(nb201, nb201_archs) -> None:
    per_image = {
        b: latency_matrix(_gpu(batch_size=b, fixed_ms=0.0), nb201, nb201_archs)[0] / b
        for b in (1, 32, 256)
    }
    assert np.all(per_image[32] < per_image[1])
    assert np.all(per_image[256] < per_image[32])
    # at batch 1 a GPU follows the layer count, at 256 the work: FLOPs explain more of it
    flops = nb201.flops(nb201_archs)

    def corr(x: np.ndarray) -> float:
        return float(np.corrcoef(x, flops)[0, 1])

    assert corr(per_image[256]) > corr(per_image[1])


def test_energy_is_dynamic_plus_static_power(nb201, nb201_archs) -> None:
    m = _gpu()
    lat = latency_matrix(m, nb201, nb201_archs)[0]
    e1 = energy_matrix(m, nb201, nb201_archs)[0]
    e2 = energy_matrix(m.with_(static_power_w=m.static_power_w + 10.0), nb201, nb201_archs)[0]
    np.testing.assert_allclose(e2 - e1, 10.0 * lat, rtol=1e-9)
    assert np.all(e1 > m.static_power_w * lat)


def test_spec_round_trip_is_exact() -> None:
    m = _gpu(eff_dwconv=0.0123456789, batch_size=32, precision="int8", cores=4352)
    again = DeviceModel.from_spec(m.to_spec())
    assert again == m
    assert again.to_features() == m.to_features()
    feats = m.to_features()
    assert feats["peak_gflops"] == pytest.approx(11000.0)
    assert feats["batch_size"] == 32 and feats["precision"] == "int8"
    assert feats["kind"] == "gpu" and feats["simulated"] is True


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"precision": "fp64"}, "precision"),
        ({"batch_size": 0}, "batch_size"),
        ({"peak_gflops": -1.0}, "peak_gflops"),
        ({"eff_conv": float("nan")}, "eff_conv"),
    ],
)
def test_bad_parameters_are_rejected(change: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        _gpu(**change)


def test_from_dict_names_unknown_and_missing_keys() -> None:
    d = _gpu().to_dict()
    with pytest.raises(InputError, match="warp_size"):
        DeviceModel.from_dict({**d, "warp_size": 32})
    with pytest.raises(InputError, match="knee"):
        DeviceModel.from_dict({k: v for k, v in d.items() if k != "knee"})
    with pytest.raises(InputError, match="overhead_us"):
        DeviceModel.from_dict({**d, "overhead_us": "fast"})
