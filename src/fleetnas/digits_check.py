"""A real end-to-end check of compressed designs: train, export, quantize, measure.

It sits beside :mod:`fleetnas.demo` and only composes the library and public packages: a design
of ``nb201+q`` (:mod:`fleetnas.spaces.compression`) is built with its pruned widths by
``to_torch``, trained on scikit-learn's handwritten digits (``load_digits``: 1,797 8x8 grey
images, 10 classes; kept at 8x8 and repeated to 3 channels: the stages run at 8/4/2 pixels and the
network pools globally),
exported to ONNX, and its int8 blocks are quantized by ONNX Runtime's static QDQ quantizer
(``quantize_static(..., nodes_to_quantize=space.nodes_at(...))``, calibrated on training images).
Accuracy on the held-out split and single-image latency (median and IQR of timed runs on one
thread after warm-up) are *measured* for the fp32 model and for each compressed policy, all with
the same trained weights.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.spaces import get_space

#: A small cell with 3x3 and 1x1 convolutions and skips.
DEFAULT_CELL = (
    "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
)
INPUT = "x"


@dataclass(frozen=True)
class DigitsResult:
    """Measured numbers of one design (same trained weights as the fp32 reference)."""

    design: str
    precision_summary: str
    accuracy: float
    latency_ms_median: float
    latency_ms_iqr: float
    latency_runs: int
    quantized_nodes: int
    dequantize_ops: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def digits_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train x, train y, test x, test y): ``n x 3 x 8 x 8`` float32 in [0, 1], 75/25 split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.repeat((d.images / 16.0).astype(np.float32)[:, None], 3, axis=1)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.75 * len(x))
    tr, te = order[:cut], order[cut:]
    return x[tr], d.target[tr].astype(np.int64), x[te], d.target[te].astype(np.int64)


def train(
    model: Any, x: np.ndarray, y: np.ndarray, epochs: int = 6, seed: int = 0, lr: float = 5e-3
) -> Any:
    """Adam with batch 64, cross-entropy; returns the model in eval mode."""
    import torch

    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(x)), max(1, len(x) // 64)):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return model.eval()


def export(model: Any, path: Path) -> None:
    import warnings

    import torch

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, 8, 8),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=[INPUT],
            output_names=["logits"],
            dynamic_axes={INPUT: {0: "n"}, "logits": {0: "n"}},
        )


def quantize(src: Path, dst: Path, nodes: list[str], calib: np.ndarray) -> None:
    """Static QDQ int8 (uint8 activations, int8 weights) of ``nodes``, calibrated on ``calib``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{INPUT: calib[i : i + 1]} for i in range(len(calib))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_static(
            str(src),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_quantize=nodes,
        )
    finally:
        root.setLevel(level)


def measure(path: Path, x: np.ndarray, y: np.ndarray, runs: int) -> tuple[float, float, float]:
    """(accuracy, median ms, IQR ms) of one model file on one thread."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    pred = sess.run(None, {INPUT: x})[0].argmax(axis=1)
    one = x[:1]
    for _ in range(max(5, runs // 10)):
        sess.run(None, {INPUT: one})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {INPUT: one})
        times.append((time.perf_counter() - t) * 1e3)
    q1, med, q3 = np.percentile(times, [25, 50, 75])
    return float((pred == y).mean()), float(med), float(q3 - q1)


def run(
    cell: str = DEFAULT_CELL,
    policies: tuple[str, ...] = ("q=fp32", "q=int8", "q=fp32,int8,int8"),
    width: str = "w=0.5",
    epochs: int = 6,
    runs: int = 200,
    calibration: int = 64,
    seed: int = 0,
) -> list[DigitsResult]:
    """Train the design ``cell@<width>`` once, then measure it under each precision policy."""
    import onnx
    import torch

    space = get_space("nb201+q")
    designs = [space.parse(f"{cell}@{p};{width}") for p in policies]
    widths = {tuple(space.split(a)[2][0]) for a in designs}
    if len(widths) != 1:
        raise InputError("the digits check trains one network: give every policy one width")
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    xtr, ytr, xte, yte = digits_data(seed)
    model = train(space.to_torch(designs[0]), xtr, ytr, epochs=epochs, seed=seed)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export(model, fp32)
        names = [n.name for n in onnx.load(str(fp32)).graph.node]
        for k, a in enumerate(designs):
            nodes = space.nodes_at(a, names, "int8")
            path = fp32
            if nodes:
                path = Path(tmp) / f"q{k}.onnx"
                quantize(fp32, path, nodes, xtr[:calibration])
            acc, med, iqr = measure(path, xte, yte, runs)
            pol = space.policy(a)
            summary = ",".join(f"{b}:{p['precision']}" for b, p in pol.items())
            ops = [n.op_type for n in onnx.load(str(path)).graph.node]
            out.append(
                DigitsResult(
                    space.format(a),
                    summary,
                    acc,
                    med,
                    iqr,
                    runs,
                    len(nodes),
                    ops.count("DequantizeLinear"),
                )
            )
    return out
