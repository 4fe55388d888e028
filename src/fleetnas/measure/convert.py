"""LiteRT and OpenVINO conversions of a space's networks, cached on disk like the ONNX export.

- **LiteRT** (``.tflite``): the space's :meth:`~fleetnas.spaces.SearchSpace.to_torch` network
  (weights seeded by the architecture hash, as for ONNX) converted by ``litert-torch``; ``fp16``
  stores the weights as float16 (ai-edge-quantizer float casting; compute stays fp32 on CPUs
  without fp16 arithmetic), ``int8`` is full-integer post-training static quantization
  (ai-edge-quantizer ``static_wi8_ai8``: int8 weights per channel, int8 activations, int8 model
  input) calibrated on :data:`CALIBRATION_SAMPLES` seeded standard-normal inputs.
- **ExecuTorch** (``.pte``): the same torch network through ``torch.export`` and
  ``to_edge_transform_and_lower`` with the XNNPACK partitioner (fp32 only for now).
- **OpenVINO** reads the cached fp32 ONNX export directly; ``int8`` is NNCF post-training
  quantization of that model (performance preset) calibrated on the same kind of random inputs,
  saved as OpenVINO IR (``.xml`` + ``.bin``).

Random calibration gives representative *speed* (every quantized op runs in int8), not accuracy.
Conversions run in one child process per batch (``python -m fleetnas.measure.convert``): the
converters print progress and load large libraries, and a design that fails to convert is
reported with the converter's message while the others go on. Files are written under a
temporary name and renamed into place, so a killed conversion never leaves a truncated model.
``nodes`` (int8 only) restricts quantization to the named ONNX nodes (OpenVINO) or TFLite
tensors matching the names (LiteRT), for per-block compression policies; it is part of the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fleetnas.errors import MeasurementError
from fleetnas.measure.export import CALIBRATION_SAMPLES, export_onnx
from fleetnas.paths import cache_dir
from fleetnas.spaces import SearchSpace, get_space

#: Seconds one design may take to convert before the child process is stopped.
CONVERT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Converted:
    """One design's converted model, or why it could not be converted."""

    path: Path | None
    cached: bool
    error: str = ""


def _nodes_tag(nodes: Sequence[str] | None) -> str:
    if not nodes:
        return ""
    return "-n" + hashlib.sha1("\n".join(sorted(nodes)).encode()).hexdigest()[:10]


def model_path(
    runtime: str,
    space: SearchSpace,
    arch: np.ndarray,
    batch: int,
    precision: str,
    nodes: Sequence[str] | None = None,
) -> Path:
    """Where the converted model of ``arch`` lives (``.tflite`` or OpenVINO ``.xml``)."""
    from fleetnas.measure.settings import runtime_version

    if runtime == "litert":
        tool, ext = f"lt{runtime_version('litert-torch', raw=True)}", "tflite"
    elif runtime == "openvino":
        tool, ext = f"nncf{runtime_version('nncf', raw=True)}", "xml"
    elif runtime == "executorch":
        tool, ext = f"et{runtime_version('executorch', raw=True)}", "pte"
    else:
        raise MeasurementError(f"no conversion for runtime {runtime!r}")
    key = f"{space.name}-{space.arch_hash(arch)}-b{batch}-{precision}{_nodes_tag(nodes)}-{tool}"
    return cache_dir() / runtime / f"{key}.{ext}"


def convert_many(
    runtime: str,
    space: SearchSpace,
    archs: np.ndarray,
    batch: int,
    precision: str,
    nodes: Sequence[str] | None = None,
) -> list[Converted]:
    """The converted model of every row of ``archs`` (``n x D``), converting the missing ones
    in one child process; a failed design gets ``path=None`` and the converter's message."""
    archs = space.check(archs)
    out: list[Converted | None] = [None] * len(archs)
    items: list[dict[str, Any]] = []
    where: dict[str, list[int]] = {}
    for i, arch in enumerate(archs):
        path = model_path(runtime, space, arch, batch, precision, nodes)
        if path.exists():
            out[i] = Converted(path, True)
            continue
        if str(path) in where:
            where[str(path)].append(i)
            continue
        item: dict[str, Any] = {
            "runtime": runtime,
            "space": space.name,
            "arch": space.format(arch),
            "batch": batch,
            "precision": precision,
            "out": str(path),
            "nodes": list(nodes) if nodes else None,
        }
        if runtime == "openvino":
            try:
                item["onnx"] = str(export_onnx(space, arch, batch, "fp32").path)
            except MeasurementError as exc:
                out[i] = Converted(None, False, str(exc))
                continue
            if precision == "fp32":  # OpenVINO reads the ONNX export itself
                out[i] = Converted(Path(item["onnx"]), True)
                continue
        elif runtime == "litert" and precision != "fp32":
            item["fp32"] = str(model_path(runtime, space, arch, batch, "fp32"))
        where[str(path)] = [i]
        items.append(item)
    if items:
        errors = _run_child(items)
        for item in items:
            err = errors.get(item["out"], "")
            path = Path(item["out"])
            for i in where[item["out"]]:
                out[i] = Converted(None if err else path, False, err)
    return [c for c in out if c is not None]


def _run_child(items: list[dict[str, Any]]) -> dict[str, str]:
    """Convert ``items`` in a child process; ``out path -> error message`` for failures."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TQDM_DISABLE="1")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "fleetnas.measure.convert"],
            input=json.dumps({"items": items}),
            capture_output=True,
            text=True,
            env=env,
            timeout=CONVERT_TIMEOUT_S * len(items),
        )
    except subprocess.TimeoutExpired:
        return {it["out"]: "conversion timed out" for it in items if not Path(it["out"]).exists()}
    try:
        lines = proc.stdout.strip().splitlines()
        reply = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        reply = {}
    if "errors" not in reply:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        why = f"converter process failed (exit {proc.returncode}): {tail}"
        return {it["out"]: why for it in items if not Path(it["out"]).exists()}
    return dict(reply["errors"])


# ---- inside the child process ----------------------------------------------------------------


def _seed(space: SearchSpace, arch: np.ndarray) -> int:
    return int(space.arch_hash(arch)[:8], 16)


@contextlib.contextmanager
def _atomic_file(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o644)  # a cache file, readable like the others (mkstemp makes it private)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _litert_fp32(space: SearchSpace, arch: np.ndarray, batch: int, path: Path) -> None:
    import litert_torch
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed(space, arch))
        net = space.to_torch(arch).eval()
        x = torch.randn(*space.input_shape(arch, batch))
    with _atomic_file(path) as tmp, torch.no_grad():
        litert_torch.convert(net, (x,)).export(str(tmp))


def _executorch_fp32(space: SearchSpace, arch: np.ndarray, batch: int, path: Path) -> None:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed(space, arch))
        net = space.to_torch(arch).eval()
        x = torch.randn(*space.input_shape(arch, batch))
    with torch.no_grad():
        program = torch.export.export(net, (x,))
        lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
        buffer = lowered.to_executorch().buffer
    with _atomic_file(path) as tmp:
        tmp.write_bytes(buffer)


def _litert_quantized(item: dict[str, Any], space: SearchSpace, arch: np.ndarray) -> None:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import qtyping, quantizer, recipe

    fp32 = Path(item["fp32"])
    if not fp32.exists():
        _litert_fp32(space, arch, int(item["batch"]), fp32)
    q = quantizer.Quantizer(str(fp32))
    regexes = [f".*{n}.*" for n in item["nodes"]] if item.get("nodes") else [".*"]
    for rx in regexes:
        if item["precision"] == "int8":
            q.add_static_config(
                regex=rx,
                operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                activation_num_bits=8,
                weight_num_bits=8,
            )
        else:
            q.add_weight_only_config(
                regex=rx,
                operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                num_bits=16,
                algorithm_key=recipe.AlgorithmName.FLOAT_CASTING,
            )
    calibration = None
    if q.need_calibration:
        sigs = Interpreter(model_path=str(fp32)).get_signature_list()
        key = next(iter(sigs))
        name = sigs[key]["inputs"][0]
        rng = np.random.default_rng(_seed(space, arch))
        shape = space.input_shape(arch, int(item["batch"]))
        data = [
            {name: rng.standard_normal(shape).astype(np.float32)}
            for _ in range(CALIBRATION_SAMPLES)
        ]
        calibration = q.calibrate({key: data})
    result = q.quantize(calibration)
    out = Path(item["out"])
    with _atomic_file(out) as tmp:
        tmp.unlink()
        result.export_model(str(tmp), overwrite=True)


def _openvino_int8(item: dict[str, Any], space: SearchSpace, arch: np.ndarray) -> None:
    import nncf
    import openvino as ov

    model = ov.Core().read_model(item["onnx"])
    rng = np.random.default_rng(_seed(space, arch))
    shape = space.input_shape(arch, int(item["batch"]))
    data = [rng.standard_normal(shape).astype(np.float32) for _ in range(CALIBRATION_SAMPLES)]
    ignored = None
    if item.get("nodes"):
        import onnx

        keep = set(item["nodes"])
        names = [n.name for n in onnx.load(item["onnx"]).graph.node if n.name not in keep]
        ignored = nncf.IgnoredScope(names=names, validate=False)
    kwargs: dict[str, Any] = {"ignored_scope": ignored} if ignored is not None else {}
    q = nncf.quantize(
        model,
        nncf.Dataset(data),
        subset_size=CALIBRATION_SAMPLES,
        preset=nncf.QuantizationPreset.PERFORMANCE,
        **kwargs,
    )
    out = Path(item["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmpdir:
        xml = Path(tmpdir) / out.name
        ov.save_model(q, str(xml))
        os.replace(xml.with_suffix(".bin"), out.with_suffix(".bin"))
        os.replace(xml, out)  # the .xml appears last: its presence means both files are whole


def convert_item(item: dict[str, Any]) -> None:
    """Convert one design described by a child-process ``item`` (raises on failure)."""
    space = get_space(item["space"])
    arch = space.parse(item["arch"])
    out = Path(item["out"])
    if out.exists():
        return
    if item["runtime"] == "litert":
        if item["precision"] == "fp32":
            _litert_fp32(space, arch, int(item["batch"]), out)
        else:
            _litert_quantized(item, space, arch)
    elif item["runtime"] == "executorch" and item["precision"] == "fp32":
        _executorch_fp32(space, arch, int(item["batch"]), out)
    elif item["runtime"] == "openvino" and item["precision"] == "int8":
        _openvino_int8(item, space, arch)
    else:
        raise MeasurementError(f"cannot convert {item['runtime']} {item['precision']}")


def main() -> int:
    """Child process: read ``{"items": [...]}``, convert each, print ``{"errors": {...}}``."""
    job = json.loads(sys.stdin.read())
    reply_fd = os.dup(1)
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryFile(mode="w+") as log:
        os.dup2(log.fileno(), 1)  # converters print progress on both streams
        os.dup2(log.fileno(), 2)
        for item in job["items"]:
            t0 = time.perf_counter()
            try:
                convert_item(item)
            except Exception as exc:  # converters raise many types; the message names the cause
                text = " ".join(str(exc).split()) or type(exc).__name__
                errors[item["out"]] = f"{item['runtime']} {item['precision']} conversion of " + (
                    f"{item['arch']!r} failed: {text[:400]}"
                )
            seconds[item["out"]] = time.perf_counter() - t0
    with os.fdopen(reply_fd, "w") as reply:
        reply.write(json.dumps({"errors": errors, "seconds": seconds}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
