"""The agent application in process: auth, limits, validation, measuring, ONNX upload."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from fleetnas.agent.app import AgentConfig, create_app
from fleetnas.measure.export import export_onnx
from fleetnas.measure.settings import RuntimeSetting
from fleetnas.measure.timing import TimingConfig
from fleetnas.spaces import get_space

with warnings.catch_warnings():  # starlette's notice about httpx, not ours to act on
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "s3cret-token"
SMALL = "|skip_connect~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|skip_connect~2|"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    config = AgentConfig(
        token=TOKEN,
        timing=TimingConfig(repeats=2, processes=1, warmup=1, retries=0),
        max_body_bytes=1 * 2**20,
        queue_size=1,
    )
    with TestClient(create_app(config)) as c:
        yield c


def test_health_needs_no_token_but_info_does(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    r = client.get("/info")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.get("/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/info", headers={"Authorization": TOKEN}).status_code == 401
    info = client.get("/info", headers=AUTH).json()
    slug = info["default_setting"]
    assert slug == "ort-t1-b1-fp32-optall"
    dev = info["devices"][slug]
    assert dev["name"] == "agent-ort-t1-b1-fp32-optall" and dev["fingerprint"]
    assert dev["features"]["threads"] == 1 and dev["features"]["cpu_model"]
    assert "nb201" in info["spaces"] and info["runtimes"]["onnxruntime"]
    assert info["limits"]["max_body_bytes"] == 2**20


def _post(client: TestClient, body: object, **kw: object):
    return client.post("/measure", json=body, headers=AUTH, **kw)


def test_bad_requests_get_clear_4xx(client: TestClient) -> None:
    ok_arch = SMALL
    r = _post(client, {"space": "../../etc/passwd", "archs": [ok_arch]})
    assert r.status_code == 400 and "unknown space" in r.json()["detail"]
    r = _post(client, {"space": "/tmp/evil.yaml", "archs": [ok_arch]})
    assert r.status_code == 400 and "unknown space" in r.json()["detail"]
    r = _post(client, {"space": "nb201", "archs": [ok_arch, "|conv~0|"]})
    assert r.status_code == 400 and "architecture 1 is malformed" in r.json()["detail"]
    r = _post(client, {"space": "nb201", "archs": [ok_arch], "path": "/etc"})
    assert r.status_code == 422 and "path" in r.json()["detail"]
    r = _post(client, {"space": "nb201", "archs": [ok_arch], "setting": "ort-t64"})
    assert r.status_code == 400 and "not offered" in r.json()["detail"]
    r = _post(client, {"space": "nb201", "archs": [ok_arch], "metrics": ["energy"]})
    assert r.status_code == 400 and "energy" in r.json()["detail"]
    r = client.post("/measure", content=b"x" * (2**20 + 1), headers=AUTH)
    assert r.status_code == 413
    r = client.post("/measure", content=b"{", headers=AUTH)
    assert r.status_code == 422


def test_measure_architectures(client: TestClient, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FLEETNAS_CACHE", str(tmp_path))
    r = _post(client, {"space": "nb201", "archs": [SMALL, SMALL]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["device"] == "agent-ort-t1-b1-fp32-optall"
    assert out["archs"] == [SMALL, SMALL]
    lat = np.array(out["values"]["latency"])
    assert lat.shape == (2,) and np.all(lat > 0) and lat[0] == lat[1]
    assert out["stats"]["latency"]["n"] == [2.0, 2.0]
    assert out["cost"]["measurements"] == 1 and out["cost"]["device_seconds"] > 0
    assert out["is_estimate"] == {"latency": False} and out["units"] == {"latency": "ms"}


def test_onnx_upload(client: TestClient, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FLEETNAS_CACHE", str(tmp_path))
    nb201 = get_space("nb201")
    model = export_onnx(nb201, nb201.parse(SMALL)).path.read_bytes()
    headers = {**AUTH, "Content-Type": "application/octet-stream"}
    r = client.post("/measure/onnx", content=model, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["values"]["latency"][0] > 0 and r.json()["cost"]["measurements"] == 1

    r = client.post("/measure/onnx", content=b"\x08\x07garbage", headers=headers)
    assert r.status_code == 400 and "not an ONNX model" in r.json()["detail"]
    r = client.post("/measure/onnx", content=_external_data_model(), headers=headers)
    assert r.status_code == 400 and "external data" in r.json()["detail"]
    r = client.post("/measure/onnx", content=b"\0" * (2**20 + 10), headers=headers)
    assert r.status_code == 413
    r = client.post("/measure/onnx", content=model, headers={"Authorization": "Bearer no"})
    assert r.status_code == 401


def test_failed_upload_does_not_reveal_the_agents_paths(client: TestClient) -> None:
    """Case 5 of issue 18: the 500 for a custom-op model named the agent's temp file."""
    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    model = helper.make_model(graph, opset_imports=opsets).SerializeToString()
    headers = {**AUTH, "Content-Type": "application/octet-stream"}
    r = client.post("/measure/onnx", content=model, headers=headers)
    detail = r.json()["detail"]
    assert r.status_code == 500 and "Frobnicate" in detail
    assert "fleetnas-agent-" not in detail and ".onnx" not in detail
    assert tempfile.gettempdir() + "/" not in detail


def _external_data_model() -> bytes:
    """A valid ONNX graph whose weight points at a file on the server's disk."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0])
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        initializer=[w],
    )
    return helper.make_model(graph).SerializeToString()


def test_config_is_validated() -> None:
    from fleetnas.errors import InputError

    with pytest.raises(InputError, match="token"):
        AgentConfig(token="")
    with pytest.raises(InputError, match="repeat"):
        AgentConfig(token="t", settings=[RuntimeSetting(), RuntimeSetting()])
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="--timeout-s must be a number of seconds > 0"):
            AgentConfig(token="t", timeout_s=bad)
