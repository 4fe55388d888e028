"""Real ONNX Runtime and PyTorch measurements of NAS-Bench-201 networks on this machine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from fleetnas.devices import Device
from fleetnas.errors import InputError, MeasurementError
from fleetnas.measure import get_measurer, measurer_for
from fleetnas.measure.energy import detect_meter
from fleetnas.measure.export import export_onnx, onnx_path
from fleetnas.measure.settings import RuntimeSetting
from fleetnas.spaces import get_space
from fleetnas.store import open_store

FAST = "repeats=3,processes=1,warmup=1,retries=0"
CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


@pytest.fixture
def nb201():
    return get_space("nb201")


@pytest.fixture
def store():
    with open_store("memory://") as s:
        yield s


def test_onnxruntime_measures_stores_and_reuses(nb201, store, shared_cache: Path) -> None:
    archs = np.stack([nb201.parse(CONV), nb201.sample(1, rng=0)[0]])
    m = get_measurer("onnxruntime:threads=1,batch=1,repeats=3,processes=2,warmup=1", store=store)
    assert m.device.name == "local-ort-t1-b1-fp32-optall"
    assert m.device.family == "local_runtime"
    assert m.device.features["threads"] == 1 and m.device.features["cores"] >= 1
    r = m.measure(nb201, archs)
    lat = r["latency"]
    assert np.all(np.isfinite(lat)) and np.all(lat > 0)
    st = r.stats["latency"]
    assert np.all(st["min"] <= lat) and np.all(lat <= st["p90"])
    assert np.all(st["n"] == 6)
    assert r.units["latency"] == "ms" and r.is_estimate["latency"] is False
    assert r.cost.measurements == 2 and r.cost.device_seconds > 0
    for a in archs:
        assert onnx_path(nb201, a, 1, "fp32").exists()

    _, stored = store.get_measurements(nb201, m.device.name, "latency", "median", archs)
    np.testing.assert_allclose(stored, lat)
    frame = store.measurements_frame(nb201, [m.device.name])
    assert {"median", "p90", "iqr", "min", "noisy", "attempts"} <= set(frame["statistic"])
    assert set(frame["method"]) == {"onnxruntime"} and not frame["is_estimate"].any()
    run = next(x for x in store.list_runs() if x.id == r.run_id)
    assert run.config["setting"]["threads"] == 1
    assert run.config["host"]["cpu_model"] and "onnxruntime" in run.config["host"]["versions"]

    again = m.measure(nb201, archs)
    assert again.cost.measurements == 0 and again.cost.reused == 2
    np.testing.assert_allclose(again["latency"], lat)
    assert m.total_cost.measurements == 2

    two = get_measurer(f"onnxruntime:threads=2,{FAST}", store=store)
    assert two.device.name == "local-ort-t2-b1-fp32-optall"
    assert two.device.fingerprint != m.device.fingerprint
    two.measure(nb201, archs)
    assert two.last_export[:2] == (0, 2)  # the exported models are shared across threads


def test_batch_eight_takes_longer_than_batch_one(nb201, shared_cache: Path) -> None:
    arch = nb201.parse(CONV)
    one = get_measurer(f"onnxruntime:batch=1,{FAST}").measure(nb201, arch)["latency"][0]
    eight = get_measurer(f"onnxruntime:batch=8,{FAST}").measure(nb201, arch)["latency"][0]
    assert eight > one


def test_int8_is_static_qdq_and_cached(nb201, shared_cache: Path) -> None:
    arch = nb201.parse(CONV)
    first = export_onnx(nb201, arch, 1, "int8")
    ops = {n.op_type for n in onnx.load(str(first.path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert export_onnx(nb201, arch, 1, "int8").cached
    m = get_measurer("onnxruntime:precision=int8,repeats=2,processes=1,warmup=1,retries=0")
    assert m.device.name == "local-ort-t1-b1-int8-optall"
    assert m.measure(nb201, arch)["latency"][0] > 0


def test_torch_eager_runtime(nb201) -> None:
    m = get_measurer("torch:threads=1,repeats=2,processes=1,warmup=1,retries=0")
    assert m.device.name == "local-torch-t1-b1-fp32" and m.method == "torch"
    r = m.measure(nb201, nb201.parse(CONV))
    assert r["latency"][0] > 0 and r.cost.measurements == 1


def test_noisy_results_are_remeasured_and_flagged(nb201, store, shared_cache: Path) -> None:
    # Thresholds of zero make every real measurement "noisy": re-measured, then stored flagged.
    spec = "onnxruntime:repeats=3,processes=1,warmup=1,retries=1,rel_iqr_max=0"
    m = get_measurer(spec, store=store)
    r = m.measure(nb201, nb201.parse(CONV))
    assert np.all(r.stats["latency"]["attempts"] == 2)
    assert np.all(r.stats["latency"]["noisy"] == 1)
    assert len(m.last_report.workers) == 2
    _, flags = store.get_measurements(nb201, m.device.name, "latency", "noisy")
    assert np.all(flags == 1)


def test_same_name_other_setting_is_refused(nb201, store) -> None:
    store.add_device(Device("local-ort-t1-b1-fp32-optall", "local_runtime", {"cores": 999}))
    m = get_measurer(f"onnxruntime:{FAST}", store=store)
    with pytest.raises(MeasurementError, match=r"other features.*cores"):
        m.measure(nb201, nb201.sample(1, rng=0))
    other = get_measurer(f"onnxruntime:{FAST},prefix=lab2", store=store)
    assert other.device.name == "lab2-ort-t1-b1-fp32-optall"


def test_energy_only_with_a_real_meter(nb201) -> None:
    m = get_measurer(f"onnxruntime:{FAST},energy=1")
    if detect_meter().is_real:
        assert "energy" in m.metrics
    else:
        assert m.metrics == ("latency",)
        with pytest.raises(InputError, match="cannot measure energy"):
            m.measure(nb201, nb201.sample(1, rng=0), ["latency", "energy"])


def test_settings_are_validated() -> None:
    with pytest.raises(InputError, match="precision 'int8' is not offered by torch"):
        RuntimeSetting("torch", precision="int8")
    with pytest.raises(
        InputError,
        match=r"onnxruntime spec option threads=.two. is not a valid value \(expected an integer\)",
    ):
        get_measurer("onnxruntime:threads=two")
    with pytest.raises(InputError, match="opt 'max'"):
        get_measurer("onnxruntime:opt=max")
    with pytest.raises(InputError, match="unknown measuring option 'speed'"):
        get_measurer("onnxruntime:speed=11")
    s = RuntimeSetting("onnxruntime", 2, 8, "int8", "basic")
    assert s.device_name() == "local-ort-t2-b8-int8-optbasic"
    assert RuntimeSetting.parse("onnxruntime", s.spec().partition(":")[2])[0] == s


def test_a_device_record_names_its_measurer() -> None:
    dev = RuntimeSetting("onnxruntime", 2, 8, "int8").device()
    m = measurer_for(dev)
    assert m.device is dev and m.setting == RuntimeSetting("onnxruntime", 2, 8, "int8")
    with pytest.raises(InputError, match="has no measurer spec"):
        measurer_for(Device("phone-x"))
