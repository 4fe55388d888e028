"""LiteRT, OpenVINO and ONNX Runtime int8 modes on tiny NAS-Bench-201 networks, the shared
measurement protocol as part of the device identity, and unmeasurable designs."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import onnx
import pytest

from fleetnas.errors import InputError, MeasurementError
from fleetnas.measure import UNMEASURABLE, get_measurer, measurer_kinds
from fleetnas.measure.convert import model_path
from fleetnas.measure.export import export_onnx, onnx_path
from fleetnas.measure.local import LocalRuntimeMeasurer
from fleetnas.measure.settings import RuntimeSetting, local_device
from fleetnas.measure.timing import TimingConfig, time_models
from fleetnas.spaces import get_space
from fleetnas.store import open_store

FAST = "repeats=3,processes=2,warmup=1,retries=0"
# A tiny cell: one 1x1 convolution, the rest skips and zeros.
TINY = "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|none~0|skip_connect~1|none~2|"
OTHER = "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


needs_litert = pytest.mark.skipif(
    not _has("ai_edge_litert", "litert_torch", "ai_edge_quantizer"),
    reason="the [litert] extra (ai-edge-litert, litert-torch) is not installed",
)
needs_executorch = pytest.mark.skipif(
    not _has("executorch"), reason="the [executorch] extra (executorch) is not installed"
)
needs_openvino = pytest.mark.skipif(
    not _has("openvino", "nncf"), reason="the [openvino] extra (openvino, nncf) is not installed"
)


@pytest.fixture
def nb201():
    return get_space("nb201")


@pytest.fixture
def store():
    with open_store("memory://") as s:
        yield s


@needs_litert
def test_litert_fp32_int8_fp16_measure_and_cache(nb201, store, shared_cache: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    arch = nb201.parse(TINY)
    m = get_measurer(f"litert:threads=1,precision=int8,{FAST}", store=store)
    assert m.device.name == "local-litert-t1-b1-int8" and m.method == "litert"
    assert "full-integer" in m.device.features["quantization"]
    r = m.measure(nb201, arch)
    assert r["latency"][0] > 0 and not r.failures and r.cost.measurements == 1
    assert r.stats["latency"]["n"][0] == 6
    int8 = model_path("litert", nb201, arch, 1, "int8")
    fp32 = model_path("litert", nb201, arch, 1, "fp32")
    assert int8.exists() and fp32.exists()  # the fp32 conversion is the quantizer's input
    it = Interpreter(model_path=str(int8))
    assert it.get_input_details()[0]["dtype"] == np.int8  # full-integer: int8 model input
    ops = {d["dtype"] for d in it.get_tensor_details()}
    assert np.int8 in ops

    f32 = get_measurer(f"litert:threads=1,precision=fp32,{FAST}")
    assert f32.measure(nb201, arch)["latency"][0] > 0
    assert f32.last_export[:2] == (0, 1)  # converted once, taken from the cache
    assert Interpreter(model_path=str(fp32)).get_input_details()[0]["dtype"] == np.float32

    f16 = get_measurer(f"litert:precision=fp16,{FAST}")
    assert f16.measure(nb201, arch)["latency"][0] > 0
    half = model_path("litert", nb201, arch, 1, "fp16")
    dtypes = {d["dtype"] for d in Interpreter(model_path=str(half)).get_tensor_details()}
    assert np.float16 in dtypes
    assert len({m.device.fingerprint, f32.device.fingerprint, f16.device.fingerprint}) == 3


@needs_openvino
def test_openvino_fp32_from_onnx_and_nncf_int8(nb201, store, shared_cache: Path) -> None:
    arch = nb201.parse(TINY)
    m = get_measurer(f"openvino:threads=1,precision=fp32,hint=latency,{FAST}", store=store)
    assert m.device.name == "local-ov-t1-b1-fp32-latency"
    assert m.device.features["inference_precision"] == "f32"
    r = m.measure(nb201, arch)
    assert r["latency"][0] > 0 and not r.failures
    assert onnx_path(nb201, arch, 1, "fp32").exists()  # read straight from the ONNX export
    assert m.last_report.workers[0]["pid"] > 0

    q = get_measurer(f"openvino:precision=int8,{FAST}", store=store)
    assert q.device.name == "local-ov-t1-b1-int8-latency"
    assert q.measure(nb201, arch)["latency"][0] > 0
    ir = model_path("openvino", nb201, arch, 1, "int8")
    assert ir.exists() and ir.with_suffix(".bin").exists()
    assert 'type="FakeQuantize"' in ir.read_text()
    again = get_measurer(f"openvino:precision=int8,{FAST}")
    again.measure(nb201, arch)
    assert again.last_export[:2] == (0, 1)


@needs_executorch
def test_executorch_xnnpack_program_measures_and_is_cached(nb201, shared_cache: Path) -> None:
    arch = nb201.parse(TINY)
    m = get_measurer(f"executorch:threads=1,{FAST}")
    assert m.device.name == "local-et-t1-b1-fp32" and m.device.features["delegate"] == "xnnpack"
    r = m.measure(nb201, arch)
    assert r["latency"][0] > 0 and not r.failures and r.cost.measurements == 1
    pte = model_path("executorch", nb201, arch, 1, "fp32")
    assert pte.exists() and pte.stat().st_size > 0
    again = get_measurer(f"executorch:threads=1,{FAST}")
    again.measure(nb201, arch)
    assert again.last_export[:2] == (0, 1)
    with pytest.raises(InputError, match="precision 'int8' is not offered by executorch"):
        get_measurer("executorch:precision=int8")


def test_onnxruntime_dynamic_int8_is_its_own_device(nb201, shared_cache: Path) -> None:
    arch = nb201.parse(TINY)
    ex = export_onnx(nb201, arch, 1, "int8dyn")
    ops = {n.op_type for n in onnx.load(str(ex.path)).graph.node}
    assert "ConvInteger" in ops and "QuantizeLinear" not in ops
    dyn = get_measurer(f"onnxruntime:precision=int8,quant=dynamic,{FAST}")
    static = get_measurer(f"onnxruntime:precision=int8,{FAST}")
    assert dyn.device.name == "local-ort-t1-b1-int8dyn-optall"
    assert static.device.name == "local-ort-t1-b1-int8-optall"
    assert dyn.device.fingerprint != static.device.fingerprint
    assert dyn.device.measurer.endswith("quant=dynamic")
    assert dyn.measure(nb201, arch)["latency"][0] > 0
    assert dyn.last_export[:2] == (0, 1)


def test_int8_export_can_quantize_chosen_nodes_only(nb201, shared_cache: Path) -> None:
    arch = nb201.parse(TINY)
    fp32 = onnx.load(str(export_onnx(nb201, arch, 1, "fp32").path))
    convs = [n.name for n in fp32.graph.node if n.op_type == "Conv"]
    some = export_onnx(nb201, arch, 1, "int8", nodes=convs[:1])
    every = export_onnx(nb201, arch, 1, "int8")
    assert some.path != every.path

    def quantized(path: Path) -> int:
        return sum(n.op_type == "DequantizeLinear" for n in onnx.load(str(path)).graph.node)

    assert 0 < quantized(some.path) < quantized(every.path)


def test_settings_of_the_new_runtimes_are_validated() -> None:
    assert {"litert", "openvino"} <= set(measurer_kinds())
    with pytest.raises(InputError, match="precision 'fp16' is not offered by openvino"):
        RuntimeSetting("openvino", precision="fp16")
    with pytest.raises(InputError, match="quant=dynamic applies to onnxruntime"):
        RuntimeSetting("onnxruntime", precision="fp32", quant="dynamic")
    with pytest.raises(InputError, match=r"hint .* applies to openvino only"):
        RuntimeSetting("onnxruntime", hint="throughput")
    with pytest.raises(InputError, match=r"opt .* applies to onnxruntime only"):
        RuntimeSetting("litert", opt="basic")
    s = RuntimeSetting("openvino", 2, 1, "int8", hint="throughput")
    assert s.slug == "ov-t2-b1-int8-throughput"
    assert RuntimeSetting.parse("openvino", s.spec().partition(":")[2])[0] == s
    lt = RuntimeSetting("litert", precision="fp16")
    assert lt.device().features["delegate"] == "xnnpack"
    assert lt.device().features["runtime_version"] != "absent" or not _has("ai_edge_litert")


def test_protocol_is_part_of_the_device_identity(nb201, store, shared_cache: Path) -> None:
    a = local_device("onnxruntime:threads=1,repeats=3,processes=2")
    b = local_device("onnxruntime:threads=1,repeats=5,processes=2")
    assert a.name == b.name and a.fingerprint != b.fingerprint
    assert "repeats=3" in a.features["protocol"] and "repeats=5" in b.features["protocol"]
    assert "pin=auto" in a.features["protocol"]  # pinned by default
    assert "pin=none" in local_device("onnxruntime:pin=0").features["protocol"]
    assert "pin=0" in local_device("onnxruntime:cpus=0").features["protocol"]
    # seed and energy settings do not change what a value means
    assert local_device("onnxruntime:seed=3").fingerprint == local_device("onnxruntime").fingerprint

    first = get_measurer(f"onnxruntime:{FAST}", store=store)
    first.measure(nb201, nb201.parse(TINY))
    other = get_measurer("onnxruntime:repeats=4,processes=2,warmup=1,retries=0", store=store)
    with pytest.raises(MeasurementError, match=r"other features.*protocol|another setting"):
        other.measure(nb201, nb201.parse(TINY))
    with pytest.raises(InputError, match="recorded under the protocol"):
        LocalRuntimeMeasurer(RuntimeSetting(), TimingConfig(repeats=7), device=first.device)


def test_fleet_file_devices_carry_the_spec_protocol(tmp_path: Path) -> None:
    from fleetnas.fleet.fleetfile import read_fleet

    path = tmp_path / "fleet.yaml"
    path.write_text(
        "name: stacks\n"
        "devices:\n"
        "  - name: phone-like\n"
        "    measurer: litert:threads=1,precision=int8,repeats=4\n"
        "    budgets: [5]\n"
        "  - name: intel-like\n"
        "    measurer: openvino:threads=1,precision=fp32\n"
        "    budgets: [5]\n"
    )
    fleet = read_fleet(path)
    lt, ov = (d.device for d in fleet.devices)
    assert lt.features["runtime"] == "litert" and "repeats=4" in lt.features["protocol"]
    assert ov.features["hint"] == "latency" and lt.measurer_kind == "litert"


def test_pinning_puts_a_one_thread_worker_on_one_cpu(tmp_path: Path, shared_cache: Path) -> None:
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("this platform has no CPU affinity")
    nb201 = get_space("nb201")
    path = export_onnx(nb201, nb201.parse(TINY), 1, "fp32").path
    cfg = TimingConfig(processes=1, repeats=2, warmup=0, retries=0)
    report = time_models([{"key": "m", "onnx": str(path)}], "onnxruntime", 1, 1, cfg=cfg)
    allowed = sorted(os.sched_getaffinity(0))
    assert report.workers[0]["affinity"] == allowed[-1:]
    free = TimingConfig(processes=1, repeats=2, warmup=0, retries=0, pin=False)
    report = time_models([{"key": "m", "onnx": str(path)}], "onnxruntime", 1, 1, cfg=free)
    assert report.workers[0]["affinity"] == allowed


def test_a_design_that_fails_to_load_is_unmeasurable_and_the_rest_go_on(
    nb201, store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETNAS_CACHE", str(tmp_path))
    good, bad = nb201.parse(TINY), nb201.parse(OTHER)
    broken = onnx_path(nb201, bad, 1, "fp32")
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not an onnx model")  # a cached export the runtime cannot load
    m = get_measurer(f"onnxruntime:{FAST}", store=store)
    r = m.measure(nb201, np.stack([good, bad]))
    assert r["latency"][0] > 0 and np.isnan(r["latency"][1])
    assert list(r.failures) == [1] and "cannot load model" in r.failures[1]
    assert r.cost.measurements == 1

    _, flag = store.get_measurements(nb201, m.device.name, "latency", UNMEASURABLE)
    assert list(flag) == [1.0]
    found, _ = store.get_measurements(nb201, m.device.name, "latency", "median")
    assert [nb201.format(a) for a in found] == [TINY]
    run = next(x for x in store.list_runs("measure") if x.id == r.run_id)
    assert "cannot load model" in run.config[UNMEASURABLE][OTHER]

    again = m.measure(nb201, np.stack([good, bad]))
    assert again.cost.measurements == 0 and again.cost.reused == 2
    assert list(again.failures) == [1] and np.isnan(again["latency"][1])
    with pytest.raises(MeasurementError, match="could not be measured"):
        m.measure_within(nb201, bad[None, :], ["latency"], deadline=None)
