"""``fleetnas measure``: values, cost and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetnas.cli.main import main

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
SPEC = "onnxruntime:repeats=2,processes=1,warmup=1,retries=0"


def test_measure_prints_values_and_cost_and_reuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_cache: Path
) -> None:
    db = str(tmp_path / "store.db")
    assert main(["measure", "nb201", "-d", SPEC, "-a", ARCH, "--db", db, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device"] == "local-ort-t1-b1-fp32-optall" and out["units"]["latency"] == "ms"
    assert out["rows"][0]["architecture"] == ARCH and out["rows"][0]["latency (ms)"] > 0
    assert out["cost"]["measurements"] == 1 and out["run"] is not None
    assert main(["measure", "nb201", "-d", SPEC, "-a", ARCH, "--db", db, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["cost"] == {"measurements": 0, "device_seconds": 0.0, "reused": 1}
    assert again["rows"][0]["latency (ms)"] == out["rows"][0]["latency (ms)"]


def test_measure_user_mistakes_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "store.db")
    assert main(["measure", "nb201", "-d", "bogus:x", "-n", "1", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "unknown measurer 'bogus'" in err and "onnxruntime" in err and "Traceback" not in err
    assert main(["measure", "nb201", "-d", SPEC, "-n", "1", "-a", ARCH, "--db", db]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["measure", "nb201", "-d", SPEC, "-a", "|conv~0|", "--db", db]) == 2
    assert "nb201 string" in capsys.readouterr().err
