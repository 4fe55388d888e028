"""ONNX export of a space's networks, cached on disk by (space, arch hash, batch, precision,
opset, quantized nodes).

Networks come from :meth:`SearchSpace.to_torch` with weights seeded by the architecture hash
(latency does not depend on the values, but identical files make the cache reproducible).
int8 models use ONNX Runtime's *static* quantization in QDQ format (weights and activations
int8/uint8), calibrated on a few seeded standard-normal inputs: dynamic quantization would turn
convolutions into ``ConvInteger``, which runs several times slower than fp32 on CPUs and is not
what an int8 deployment uses by default; it is offered as its own precision ``int8dyn`` (the
``quant=dynamic`` setting) so the two can be compared as separate devices. ``nodes``
restricts int8 quantization to the named ONNX nodes (a per-block compression policy); the
default quantizes every supported node. Files are written to a temporary name and renamed into
place, so a killed export never leaves a truncated model in the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fleetnas.errors import MeasurementError
from fleetnas.paths import cache_dir

if TYPE_CHECKING:
    from fleetnas.spaces import SearchSpace

OPSET = 17
INPUT_NAME = "input"
CALIBRATION_SAMPLES = 8


@dataclass(frozen=True)
class Exported:
    """An exported model: where it is and whether this call had to build it."""

    path: Path
    cached: bool
    seconds: float


def onnx_cache_dir() -> Path:
    return cache_dir() / "onnx"


#: Precisions :func:`export_onnx` makes: fp32, static QDQ int8, dynamic int8.
ONNX_PRECISIONS = ("fp32", "int8", "int8dyn")


def onnx_path(
    space: SearchSpace,
    arch: np.ndarray,
    batch: int,
    precision: str,
    opset: int = OPSET,
    nodes: Sequence[str] | None = None,
) -> Path:
    """Where the model of ``arch`` lives in the cache."""
    tag = ""
    if nodes:
        tag = "-n" + hashlib.sha1("\n".join(sorted(nodes)).encode()).hexdigest()[:10]
    key = f"{space.name}-{space.arch_hash(arch)}-b{batch}-{precision}{tag}-op{opset}.onnx"
    return onnx_cache_dir() / key


def export_onnx(
    space: SearchSpace,
    arch: np.ndarray,
    batch: int = 1,
    precision: str = "fp32",
    opset: int = OPSET,
    nodes: Sequence[str] | None = None,
) -> Exported:
    """The cached ONNX model of one architecture (``D`` int array), exporting it if absent;
    ``nodes`` (int8 precisions only) names the nodes to quantize."""
    import time

    if precision not in ONNX_PRECISIONS:
        raise MeasurementError(
            f"cannot export precision {precision!r}; expected {', '.join(ONNX_PRECISIONS)}"
        )
    t0 = time.perf_counter()
    path = onnx_path(space, arch, batch, precision, opset, nodes if precision != "fp32" else None)
    if path.exists():
        return Exported(path, True, time.perf_counter() - t0)
    path.parent.mkdir(parents=True, exist_ok=True)
    if precision == "fp32":
        _export_fp32(space, arch, batch, opset, path)
    else:
        fp32 = export_onnx(space, arch, batch, "fp32", opset).path
        if precision == "int8":
            shape = space.input_shape(arch, batch)
            _quantize_int8(fp32, shape, path, seed=_seed(space, arch), nodes=nodes)
        else:
            _quantize_dynamic(fp32, path, nodes=nodes)
    return Exported(path, False, time.perf_counter() - t0)


def _seed(space: SearchSpace, arch: np.ndarray) -> int:
    return int(space.arch_hash(arch)[:8], 16)


def _export_fp32(space: SearchSpace, arch: np.ndarray, batch: int, opset: int, path: Path) -> None:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed(space, arch))
        model = space.to_torch(arch).eval()
        x = torch.randn(*space.input_shape(arch, batch))
    with _atomic(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                (x,),
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=["output"],
                do_constant_folding=True,
            )
        except Exception as exc:  # torch raises many types; the message names the cause
            raise MeasurementError(
                f"ONNX export of {space.name} {space.format(arch)!r} failed: {exc}"
            ) from exc


def _quantize_dynamic(src: Path, path: Path, nodes: Sequence[str] | None = None) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with _atomic(path) as tmp:
            quantize_dynamic(
                str(src),
                str(tmp),
                weight_type=QuantType.QInt8,
                nodes_to_quantize=list(nodes) if nodes else None,
            )
    except Exception as exc:
        raise MeasurementError(f"dynamic int8 quantization of {src.name} failed: {exc}") from exc
    finally:
        root.setLevel(level)


def _quantize_int8(
    src: Path,
    shape: tuple[int, ...],
    path: Path,
    seed: int,
    nodes: Sequence[str] | None = None,
) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Random(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(seed)
            self._batches = iter(
                [
                    {INPUT_NAME: rng.standard_normal(shape).astype(np.float32)}
                    for _ in range(CALIBRATION_SAMPLES)
                ]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer warns through the root logger
    try:
        with tempfile.TemporaryDirectory(dir=path.parent) as tmpdir:
            pre = Path(tmpdir) / "pre.onnx"
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            with _atomic(path) as tmp:
                quantize_static(
                    str(pre),
                    str(tmp),
                    _Random(),
                    quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    nodes_to_quantize=list(nodes) if nodes else None,
                )
    except MeasurementError:
        raise
    except Exception as exc:
        raise MeasurementError(f"int8 quantization of {src.name} failed: {exc}") from exc
    finally:
        root.setLevel(level)


@contextlib.contextmanager
def _atomic(path: Path):
    """A temporary file next to ``path`` that replaces it only when the block succeeds."""
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".onnx.tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
