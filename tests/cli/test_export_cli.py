"""``fleetnas export``: a design or a plan entry as a model file that ONNX Runtime runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fleetnas.cli.main import main

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"


def _run_onnx(path: Path, shape: list[int], x: np.ndarray | None = None) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if x is None:
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def test_export_a_design_to_onnx_that_runs(tmp_path: Path, capsys) -> None:
    out = tmp_path / "deploy" / "cell.onnx"
    assert main(["export", ARCH, "-s", "nb201", "--out", str(out), "--batch", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "fleetnas-export/1" and doc["model_format"] == "onnx"
    assert doc["input_shape"] == [2, 3, 32, 32] and doc["bytes"] == out.stat().st_size
    logits = _run_onnx(out, doc["input_shape"])
    assert logits.shape == (2, 10) and np.isfinite(logits).all()


def test_export_a_plan_entry(tmp_path: Path, capsys) -> None:
    plan = tmp_path / "plan.json"
    entries = [
        {"key": "pixel3@tight", "device": "pixel3", "design": ARCH, "status": "ok"},
        {"key": "pixel3@loose", "device": "pixel3", "design": ARCH, "status": "ok"},
        {"key": "blind@p50", "device": "blind", "design": None, "status": "failed",
         "reason": "no measurer"},
    ]  # fmt: skip
    plan.write_text(json.dumps({"format": "fleetnas-plan/1", "space": "nb201",
                                "devices": entries}))  # fmt: skip
    out = tmp_path / "p3.onnx"
    assert main(["export", "--plan", str(plan), "--entry", "pixel3@tight", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and _run_onnx(out, [1, 3, 32, 32]).shape == (1, 10)
    assert main(["export", "--plan", str(plan), "--entry", "pixel3", "-o", str(out)]) == 2
    assert "give DEVICE@BUDGET" in capsys.readouterr().err
    assert main(["export", "--plan", str(plan), "--entry", "blind@p50", "-o", str(out)]) == 2
    assert "has no design" in capsys.readouterr().err
    assert main(["export", "--plan", str(plan), "--entry", "ghost", "-o", str(out)]) == 2
    assert "no entry 'ghost'" in capsys.readouterr().err


def test_unknown_suffix_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["export", ARCH, "-o", str(tmp_path / "m.pt")]) == 2
    assert "--format onnx|tflite" in capsys.readouterr().err


@pytest.mark.slow
def test_export_tflite_where_litert_is_installed(tmp_path: Path, capsys) -> None:
    from fleetnas.measure.modelfile import tflite_available

    out = tmp_path / "cell.tflite"
    code = main(["export", ARCH, "-o", str(out), "--json"])
    if not tflite_available():
        assert code == 2 and "fleetnas[litert]" in capsys.readouterr().err
        pytest.skip("litert-torch is not installed: TFLite export refuses with the hint")
    assert code == 0
    assert json.loads(capsys.readouterr().out)["model_format"] == "tflite"
    assert out.read_bytes()[4:8] == b"TFL3"
    interpreter = pytest.importorskip("ai_edge_litert.interpreter")
    it = interpreter.Interpreter(model_path=str(out))
    it.allocate_tensors()
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]
    x = np.random.default_rng(0).standard_normal(inp["shape"]).astype(np.float32)
    it.set_tensor(inp["index"], x)
    it.invoke()
    onnx_file = tmp_path / "cell.onnx"
    assert main(["export", ARCH, "-o", str(onnx_file)]) == 0
    # the same network with the same seeded weights as the ONNX file
    np.testing.assert_allclose(
        it.get_tensor(outp["index"]), _run_onnx(onnx_file, list(inp["shape"]), x), atol=1e-2
    )
