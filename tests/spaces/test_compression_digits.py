"""The real end-to-end check: a trained nb201+q design, fp32 vs ONNX Runtime int8, measured."""

from __future__ import annotations

import math

import pytest

from fleetnas.digits_check import run
from fleetnas.errors import InputError


def test_trained_design_quantized_by_onnxruntime_keeps_its_accuracy() -> None:
    fp32, int8, mixed = run(
        policies=("q=fp32", "q=int8", "q=fp32,int8,int8"), epochs=5, runs=40, calibration=32
    )
    assert fp32.design.endswith("@q=fp32;w=0.5") and int8.design.endswith("@q=int8;w=0.5")
    assert fp32.accuracy >= 0.85, fp32
    # the same weights after static int8 quantization of every block
    assert int8.accuracy >= fp32.accuracy - 0.05, (fp32, int8)
    assert mixed.accuracy >= fp32.accuracy - 0.05, (fp32, mixed)
    assert fp32.quantized_nodes == fp32.dequantize_ops == 0
    assert int8.quantized_nodes > mixed.quantized_nodes > 0
    assert int8.dequantize_ops > mixed.dequantize_ops > 0
    for r in (fp32, int8, mixed):
        assert math.isfinite(r.latency_ms_median) and r.latency_ms_median > 0
        assert r.latency_runs == 40


def test_policies_must_share_one_width() -> None:
    with pytest.raises(InputError, match="one width"):
        run(policies=("q=fp32;w=1", "q=int8;w=0.5"), width="")
