"""One fresh measuring process: ``python -m fleetnas.measure.worker`` reads a JSON job on stdin
and writes one JSON line with the timings on stdout.

The job names a runtime (``onnxruntime``, ``openvino``, ``litert``, ``executorch`` or
``torch``), intra-op threads, batch size, graph optimization level (ONNX Runtime), performance
hint (OpenVINO), optional CPU affinity, warm-up and repeat counts, and the models: ONNX files
(``{"key", "onnx"}``, read by ONNX Runtime and OpenVINO), OpenVINO IR files (``{"key", "ir"}``),
LiteRT flatbuffers (``{"key", "tflite"}``), ExecuTorch programs (``{"key", "pte"}``) or space
networks (``{"key", "space", "arch"}``, torch only). Each model is loaded, warmed up, then timed
``repeats`` times back to back (each sample the fastest of ``best_of`` runs); models run in a
seeded random order so slow drift does not always hit the same architecture. A model that
fails to load or run is reported under ``errors`` with the runtime's message and the others go
on. The worker imports only what its
runtime needs, exits when its parent dies, and never runs models in parallel.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

_OPT = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
}


class JobError(Exception):
    """The job cannot run; the message goes back to the parent."""


def _ort_runner(model: dict[str, Any], job: dict[str, Any]) -> Callable[[], object]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(job["threads"])
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _OPT[job.get("opt", "all")])
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(model["onnx"], so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise JobError(f"ONNX Runtime cannot load model {model['key']}: {exc}") from None
    rng = np.random.default_rng(int(job.get("seed", 0)))
    feeds = {}
    for inp in sess.get_inputs():
        dtype = _ORT_TYPES.get(inp.type)
        if dtype is None:
            raise JobError(f"model {model['key']}: input {inp.name!r} has type {inp.type}")
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        if inp.shape and not (isinstance(inp.shape[0], int) and inp.shape[0] > 0):
            shape[0] = int(job["batch"])
        feeds[inp.name] = rng.standard_normal(shape).astype(dtype)
    return lambda: sess.run(None, feeds)


def _random_feed(rng: np.random.Generator, shape: list[int], dtype: Any) -> np.ndarray:
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.integer):
        info = np.iinfo(dt)
        return rng.integers(max(info.min, -128), min(info.max, 127) + 1, shape).astype(dt)
    return rng.standard_normal(shape).astype(dt)


def _litert_runner(model: dict[str, Any], job: dict[str, Any]) -> Callable[[], object]:
    from ai_edge_litert.interpreter import Interpreter

    try:
        it = Interpreter(model_path=model["tflite"], num_threads=int(job["threads"]))
        it.allocate_tensors()
    except Exception as exc:
        raise JobError(f"LiteRT cannot load model {model['key']}: {exc}") from None
    rng = np.random.default_rng(int(job.get("seed", 0)))
    for d in it.get_input_details():
        it.set_tensor(d["index"], _random_feed(rng, [int(v) for v in d["shape"]], d["dtype"]))
    return it.invoke


_OV_CORE: list[Any] = []


def _openvino_runner(model: dict[str, Any], job: dict[str, Any]) -> Callable[[], object]:
    import openvino as ov

    if not _OV_CORE:
        _OV_CORE.append(ov.Core())
    hint = str(job.get("hint", "latency")).upper()
    config: dict[str, Any] = {
        "PERFORMANCE_HINT": hint,
        "INFERENCE_NUM_THREADS": int(job["threads"]),
        "INFERENCE_PRECISION_HINT": "f32",  # the CPU plugin would pick bf16 where it can
    }
    if hint == "LATENCY":
        config["NUM_STREAMS"] = 1
    path = model.get("ir") or model["onnx"]
    try:
        compiled = _OV_CORE[0].compile_model(path, "CPU", config)
        req = compiled.create_infer_request()
    except Exception as exc:
        raise JobError(f"OpenVINO cannot load model {model['key']}: {exc}") from None
    rng = np.random.default_rng(int(job.get("seed", 0)))
    feeds = {}
    for i, port in enumerate(compiled.inputs):
        shape = [int(d) for d in port.get_shape()]
        feeds[i] = _random_feed(rng, shape, port.get_element_type().to_dtype())
    return lambda: req.infer(feeds)


def _executorch_runner(model: dict[str, Any], job: dict[str, Any]) -> Callable[[], object]:
    import torch
    from executorch.runtime import Runtime

    try:
        method = Runtime.get().load_program(model["pte"]).load_method("forward")
    except Exception as exc:
        raise JobError(f"ExecuTorch cannot load model {model['key']}: {exc}") from None
    meta = method.metadata
    rng = np.random.default_rng(int(job.get("seed", 0)))
    inputs = []
    for i in range(meta.num_inputs()):
        shape = [int(d) for d in meta.input_tensor_meta(i).sizes()]
        inputs.append(torch.from_numpy(rng.standard_normal(shape).astype(np.float32)))
    return lambda: method.execute(inputs)


def _torch_runner(model: dict[str, Any], job: dict[str, Any]) -> Callable[[], object]:
    import torch

    from fleetnas.spaces import get_space

    space = get_space(model["space"])
    arch = space.parse(model["arch"])
    seed = int(space.arch_hash(arch)[:8], 16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = space.to_torch(arch).eval()
        x = torch.randn(*space.input_shape(arch, int(job["batch"])))

    def run() -> object:
        with torch.inference_mode():
            return net(x)

    return run


def _setup(job: dict[str, Any]) -> None:
    cpus = job.get("cpus")
    if not cpus and job.get("pin") and hasattr(os, "sched_getaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        cpus = allowed[-max(1, min(int(job["threads"]), len(allowed))) :]
    if cpus:
        try:
            os.sched_setaffinity(0, {int(c) for c in cpus})
        except (OSError, AttributeError, ValueError) as exc:
            raise JobError(f"cannot pin to CPUs {cpus}: {exc}") from None
    if job["runtime"] == "executorch":
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

        _unsafe_reset_threadpool(int(job["threads"]))
    if job["runtime"] == "torch":
        import torch

        torch.set_num_threads(int(job["threads"]))
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(1)


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Time every model of ``job``; returns ``times_ms[key] -> list`` and run facts."""
    parent = os.getppid()
    _setup(job)
    make = {
        "onnxruntime": _ort_runner,
        "torch": _torch_runner,
        "litert": _litert_runner,
        "openvino": _openvino_runner,
        "executorch": _executorch_runner,
    }.get(job["runtime"])
    if make is None:
        raise JobError(f"unknown runtime {job['runtime']!r}")
    warmup, repeats = int(job["warmup"]), int(job["repeats"])
    best_of = int(job.get("best_of", 1))
    energy = job.get("energy")
    meter = None
    if energy:
        from fleetnas.measure.energy import detect_meter

        meter = detect_meter(energy.get("meter", "auto"))
        if not meter.is_real:
            meter = None
    order = np.random.default_rng(int(job.get("seed", 0))).permutation(len(job["models"]))
    times: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    energies: dict[str, float] = {}
    load_s: dict[str, float] = {}
    for i in order:
        if os.getppid() != parent:
            raise JobError("parent process is gone")
        model = job["models"][int(i)]
        t0 = time.perf_counter()
        try:
            run = make(model, job)
            load_s[model["key"]] = time.perf_counter() - t0
            for _ in range(warmup):
                run()
            samples = []
            for _ in range(repeats):
                best = None
                for _ in range(best_of):
                    t = time.perf_counter_ns()
                    run()
                    took = time.perf_counter_ns() - t
                    best = took if best is None else min(best, took)
                samples.append(best / 1e6)
        except JobError as exc:
            errors[model["key"]] = str(exc)
            continue
        except Exception as exc:  # the runtime's own error types; its message names the cause
            errors[model["key"]] = f"{job['runtime']} failed on model {model['key']}: {exc}"
            continue
        times[model["key"]] = samples
        if meter is not None:
            from fleetnas.measure.energy import energy_per_inference

            reading = energy_per_inference(
                meter, run, int(energy.get("count", 50)), float(energy.get("idle_s", 0.5))
            )
            energies[model["key"]] = reading.joules_per_inference
        del run
    return {
        "ok": True,
        "times_ms": times,
        "errors": errors,
        "energy_j": energies,
        "energy_meter": meter.name if meter is not None else "none",
        "load_s": load_s,
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "pid": os.getpid(),
    }


def main() -> int:
    try:
        job = json.loads(sys.stdin.read())
        out = run_job(job)
    except JobError as exc:
        out = {"ok": False, "error": str(exc)}
    except Exception as exc:
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
