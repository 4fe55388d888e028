"""Model files in and out: a design as a deployable ONNX (or TFLite) file, and the checks a
user's own ONNX file passes before it is timed.

ONNX files come from the same export the ``onnxruntime`` measurer times
(:func:`fleetnas.measure.export.export_onnx`, weights seeded by the design's hash), so the file a
user deploys is the network whose latency was measured. TFLite files are converted with
``litert-torch`` (Google's LiteRT converter for PyTorch) when it is importable.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fleetnas.errors import InputError, MeasurementError

if TYPE_CHECKING:
    from fleetnas.spaces import SearchSpace

FORMATS = ("onnx", "tflite")


@dataclass(frozen=True)
class ModelFile:
    """A written model file: its path, format, input shape, size and the seconds it took."""

    path: Path
    format: str
    input_shape: tuple[int, ...]
    bytes: int
    seconds: float


def format_of(path: Path, fmt: str | None = None) -> str:
    """The model format named by ``fmt`` or by the file's suffix (``.onnx``, ``.tflite``)."""
    name = (fmt or path.suffix.lstrip(".")).lower()
    if name not in FORMATS:
        raise InputError(
            f"cannot tell the model format of {str(path)!r}: give a .onnx or .tflite file name "
            f"or --format {'|'.join(FORMATS)}"
        )
    return name


def tflite_available() -> bool:
    """Whether the LiteRT converter (``litert-torch``) can be imported."""
    import importlib.util

    return importlib.util.find_spec("litert_torch") is not None


def write_model(
    space: SearchSpace, arch: np.ndarray, path: Path, fmt: str | None = None, batch: int = 1
) -> ModelFile:
    """Write the network of ``arch`` (``D`` int array) to ``path`` as ONNX or TFLite."""
    fmt = format_of(path, fmt)
    if not space.has_network:
        raise InputError(f"space {space.name!r} has no runnable network to export")
    if batch < 1:
        raise InputError(f"batch must be >= 1, got {batch}")
    shape = tuple(int(v) for v in space.input_shape(arch, batch))
    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        from fleetnas.measure.export import export_onnx

        shutil.copyfile(export_onnx(space, arch, batch, "fp32").path, path)
    else:
        _write_tflite(space, arch, path, shape)
    return ModelFile(path, fmt, shape, path.stat().st_size, time.perf_counter() - t0)


def _write_tflite(space: SearchSpace, arch: np.ndarray, path: Path, shape: tuple[int, ...]) -> None:
    if not tflite_available():
        raise InputError(
            "TFLite export needs the LiteRT converter: pip install 'fleetnas[litert]' "
            "(litert-torch); ONNX export works without it"
        )
    import litert_torch
    import torch

    from fleetnas.measure.export import _seed

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed(space, arch))
        model = space.to_torch(arch).eval()
    try:
        with _stdout_to_stderr():
            converted = litert_torch.convert(model, (torch.zeros(*shape),))
            converted.export(str(path))
    except Exception as exc:  # the converter raises many types; the message names the cause
        raise MeasurementError(
            f"TFLite conversion of {space.name} {space.format(arch)!r} failed: {exc}"
        ) from exc


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send what a converter prints (Python or native, file descriptor 1) to stderr, so
    machine output on stdout stays clean."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def check_onnx_bytes(model: bytes, source: str = "the model") -> None:
    """Refuse bytes that are not a self-contained ONNX model (no nodes, external data)."""
    import onnx

    try:
        proto = onnx.load_model_from_string(model)
    except Exception:
        raise InputError(f"{source} is not an ONNX model") from None
    if not proto.graph.node:
        raise InputError(f"{source} is an ONNX model with no nodes")
    for tensor in proto.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise InputError(
                f"{source} keeps its weights in external data files; embed them in the model "
                "(onnx.save_model(..., save_as_external_data=False))"
            )


def read_onnx_file(path: Path) -> bytes:
    """The bytes of a user's ONNX file, checked (:func:`check_onnx_bytes`)."""
    if not path.is_file():
        raise InputError(f"ONNX file {str(path)!r} does not exist")
    data = path.read_bytes()
    check_onnx_bytes(data, f"file {str(path)!r}")
    return data


__all__ = [
    "FORMATS",
    "ModelFile",
    "check_onnx_bytes",
    "format_of",
    "read_onnx_file",
    "tflite_available",
    "write_model",
]
