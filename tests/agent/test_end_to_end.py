"""Real agent processes on 127.0.0.1: two devices (1 vs 2 threads), a wrong token, a kill."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from fleetnas.errors import InputError, MeasurementError
from fleetnas.measure import get_measurer
from fleetnas.spaces import get_space
from fleetnas.store import open_store

TOKEN = "e2e-token-0123456789"
ARCHS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
    "|skip_connect~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
)


class Agent:
    """An agent on a port the OS picks (``--port 0``): it writes its URL once bound, so no
    other program can take the port between choosing and binding it."""

    _started = 0

    def __init__(self, home: Path, threads: int, repeats: int) -> None:
        Agent._started += 1
        self.url = ""
        self.url_file = home / f"agent-{Agent._started}.url"
        self.log = home / f"agent-{Agent._started}.log"
        env = {**os.environ, "FLEETNAS_HOME": str(home), "FLEETNAS_CACHE": str(home / "cache")}
        env.pop("FLEETNAS_AGENT_TOKEN", None)
        cmd = [
            sys.executable, "-m", "fleetnas.cli.main", "agent", "serve",
            "--port", "0", "--url-file", str(self.url_file), "--token", TOKEN,
            "--threads", str(threads),
            "--name-prefix", "e2e", "--repeats", str(repeats), "--processes", "1",
            "--warmup", "1", "--retries", "0",
        ]  # fmt: skip
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(
                cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                pytest.fail(f"agent exited early: {self.log.read_text()[-2000:]}")
            if not self.url and self.url_file.is_file():
                self.url = self.url_file.read_text().strip()
            if not self.url:
                time.sleep(0.1)
                continue
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        pytest.fail(f"agent on {self.url or '(no URL yet)'} not ready after {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        else:  # the agent itself is gone; end what it started in its group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    home = tmp_path_factory.mktemp("agents")
    started = {
        "t1": Agent(home, threads=1, repeats=3),
        "t2": Agent(home, threads=2, repeats=3),
        "victim": Agent(home, threads=1, repeats=3000),
    }
    try:
        for a in started.values():
            a.wait_ready()
        yield started
    finally:
        for a in started.values():
            a.stop()


@pytest.fixture
def store(tmp_path: Path):
    with open_store(str(tmp_path / "store.db")) as s:
        yield s


def test_two_agents_measure_as_two_devices(agents: dict[str, Agent], store) -> None:
    nb201 = get_space("nb201")
    archs = nb201.parse_many(ARCHS)
    results = {}
    for key in ("t1", "t2"):
        m = get_measurer(f"agent:{agents[key].url}", store=store, token=TOKEN)
        r = m.measure(nb201, archs)
        assert r.cost.measurements == 2 and r.cost.device_seconds > 0
        assert np.all(r["latency"] > 0) and r.is_estimate["latency"] is False
        _, stored = store.get_measurements(nb201, m.device.name, "latency", "median", archs)
        np.testing.assert_allclose(stored, r["latency"])
        assert m.measure(nb201, archs).cost.reused == 2
        results[key] = m
    one, two = results["t1"].device, results["t2"].device
    assert (one.name, two.name) == ("e2e-ort-t1-b1-fp32-optall", "e2e-ort-t2-b1-fp32-optall")
    assert one.fingerprint != two.fingerprint
    stored = {d.name: d for d in store.list_devices("local_runtime")}
    assert stored[one.name].measurer == f"agent:{agents['t1'].url}"
    assert stored[two.name].features["threads"] == 2
    runs = [r for r in store.list_runs("measure")]
    assert {r.config["url"] for r in runs} == {agents["t1"].url, agents["t2"].url}


def test_wrong_token_is_refused(agents: dict[str, Agent]) -> None:
    url = agents["t1"].url
    r = httpx.get(f"{url}/info", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    r = httpx.post(f"{url}/measure", json={"space": "nb201", "archs": [ARCHS[0]]})
    assert r.status_code == 401
    with pytest.raises(MeasurementError, match="refused the token"):
        get_measurer(f"agent:{url}", token="nope")


def test_token_in_the_spec_is_accepted(agents: dict[str, Agent], monkeypatch) -> None:
    """Case 5 of issue 18: the missing-token message advised ``#token=``, which was refused."""
    monkeypatch.delenv("FLEETNAS_AGENT_TOKEN", raising=False)
    url = agents["t1"].url
    with pytest.raises(InputError, match=r"needs a token: set \$FLEETNAS_AGENT_TOKEN, or end"):
        get_measurer(f"agent:{url}")
    m = get_measurer(f"agent:{url}#token={TOKEN},retries=1")
    assert m.device.name == "e2e-ort-t1-b1-fp32-optall"
    assert TOKEN not in (m.device.measurer or "")
    with pytest.raises(MeasurementError, match="refused the token"):
        get_measurer(f"agent:{url}#token=nope")


def test_agent_killed_mid_run_leaves_nothing(agents: dict[str, Agent], store) -> None:
    victim = agents["victim"]
    nb201 = get_space("nb201")
    m = get_measurer(f"agent:{victim.url}#retries=2,backoff_s=0.1", store=store, token=TOKEN)
    runs_before = len(store.list_runs())
    errors: list[BaseException] = []

    def call() -> None:
        try:
            m.measure(nb201, nb201.parse_many(ARCHS))
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=call)
    t.start()
    t0 = time.monotonic()
    while not httpx.get(f"{victim.url}/health").json()["busy"]:
        assert time.monotonic() - t0 < 30, "the agent never started measuring"
        time.sleep(0.05)
    victim.proc.kill()
    t.join(30)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], MeasurementError)
    assert victim.url in str(errors[0]) and "gone" in str(errors[0])
    assert len(store.list_runs()) == runs_before
    assert len(store.measurements_frame(nb201, [m.device.name])) == 0
    assert m.total_cost.measurements == 0


def test_cli_measures_a_user_onnx_file_through_the_agent(
    agents: dict[str, Agent],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from fleetnas.cli.main import main
    from fleetnas.measure.modelfile import write_model

    nb201 = get_space("nb201")
    model = write_model(nb201, nb201.parse(ARCHS[1]), tmp_path / "user.onnx").path
    args = ["measure", "--onnx", str(model), "-m", f"agent:{agents['t1'].url}"]
    monkeypatch.setenv("FLEETNAS_AGENT_TOKEN", TOKEN)
    assert main([*args, "--db", str(tmp_path / "s.db"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device"] == "e2e-ort-t1-b1-fp32-optall"
    assert out["rows"][0]["latency_ms"] > 0 and out["cost"]["measurements"] == 1
