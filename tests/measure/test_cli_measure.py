"""``fleetnas measure``: values, cost and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetnas.cli.main import main

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
SPEC = "onnxruntime:repeats=2,processes=1,warmup=1,retries=0"
SIM = "sim:family=mobile_cpu,peak_gflops=10,mem_bandwidth_gbs=10,overhead_us=5,knee=1"


def test_measure_prints_values_and_cost_and_reuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_cache: Path
) -> None:
    db = str(tmp_path / "store.db")
    args = ["measure", "--space", "nb201", "-m", SPEC, "-a", ARCH, "--db", db, "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "fleetnas-measure/1"
    assert out["device"] == "local-ort-t1-b1-fp32-optall" and out["units"]["latency"] == "ms"
    row = out["rows"][0]
    assert row["architecture"] == ARCH and row["latency_ms"] > 0
    assert row["latency_p90_ms"] >= row["latency_ms"] * 0.5
    assert row["latency (ms)"] == row["latency_ms"]
    assert row["deprecated_keys"]["latency (ms)"] == "use latency_ms"
    assert out["cost"]["measurements"] == 1 and out["run"] is not None
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["cost"] == {"measurements": 0, "device_seconds": 0.0, "reused": 1}
    assert again["rows"][0]["latency_ms"] == row["latency_ms"]


def test_old_flags_still_work_and_say_what_to_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_cache: Path
) -> None:
    db = str(tmp_path / "store.db")
    assert main(["measure", "nb201", "-d", SPEC, "--sample", "1", "--db", db, "--json"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)["rows"]) == 1
    assert "-d is deprecated; use --measurer (-m)" in captured.err
    assert "--sample is deprecated; use --count (-n)" in captured.err
    assert "positional SPACE is deprecated; use --space" in captured.err


def test_measure_onnx_file_locally_and_refused_by_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_cache: Path
) -> None:
    from fleetnas.measure.modelfile import write_model
    from fleetnas.spaces import get_space

    sp = get_space("nb201")
    model = write_model(sp, sp.parse(ARCH), tmp_path / "mine.onnx").path
    db = str(tmp_path / "store.db")
    assert main(["measure", "--onnx", str(model), "-m", SPEC, "--db", db, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == str(model) and out["rows"][0]["latency_ms"] > 0
    assert out["cost"]["measurements"] == 1
    assert main(["measure", "--onnx", str(model), "-m", SIM, "--db", db]) == 2
    assert "cannot run a model file" in capsys.readouterr().err
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    assert main(["measure", "--onnx", str(tmp_path / "junk.onnx"), "-m", SPEC, "--db", db]) == 2
    assert "is not an ONNX model" in capsys.readouterr().err


def test_measure_user_mistakes_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "store.db")
    assert main(["measure", "-m", "bogus:x", "-n", "1", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "unknown measurer 'bogus'" in err and "onnxruntime" in err and "Traceback" not in err
    assert main(["measure", "-m", SPEC, "-n", "1", "-a", ARCH, "--db", db]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["measure", "-m", SPEC, "-a", "|conv~0|", "--db", db]) == 2
    assert "nb201 string" in capsys.readouterr().err
