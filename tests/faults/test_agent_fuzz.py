"""A fuzz of the agent's HTTP API (issue 18, fault suite): hypothesis drives every endpoint
of the real application through FastAPI's TestClient with arbitrary methods, tokens, query
strings and bodies. Every answer is one of the documented statuses with a one-line JSON
``detail``; nothing is a 500 and no answer names a file of the agent's machine."""

from __future__ import annotations

import json
import os
import string
import tempfile
import warnings
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetnas.agent.app import AgentConfig, create_app
from fleetnas.measure.timing import TimingConfig
from fleetnas.spaces import get_space

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "fuzz-token-0123"
NB201 = get_space("nb201")
VALID = NB201.format_many(NB201.sample(2, 0))
#: What the agent may answer: ok, bad request, no token, unknown path, wrong method, too large,
#: malformed, queue full, too slow.
STATUSES = {200, 400, 401, 404, 405, 413, 422, 503, 504}
URL_SAFE = string.ascii_letters + string.digits + "-._~/%?&=+;:@!$'()*,"
PATHS = ["/health", "/info", "/measure", "/measure/onnx", "/", "/measure/", "/docs", "/../etc"]


#: Requests per test: ``FLEETNAS_FUZZ_EXAMPLES`` (benchmarks/faults.py raises it), else 150.
EXAMPLES = int(os.environ.get("FLEETNAS_FUZZ_EXAMPLES", "150"))
#: Requests sent per test (read by benchmarks/faults.py for its figures).
FUZZED: Counter[str] = Counter()


def make_client() -> TestClient:
    """The real agent application in a TestClient (enter it to run its lifespan)."""
    config = AgentConfig(
        token=TOKEN,
        timing=TimingConfig(repeats=1, processes=1, warmup=0, retries=0),
        max_body_bytes=64 * 1024,
        queue_size=1,
        timeout_s=60.0,
    )
    return TestClient(create_app(config), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client():
    with make_client() as c:
        yield c


json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
measure_bodies = st.fixed_dictionaries(
    {},
    optional={
        "space": st.one_of(st.sampled_from(["nb201", "fbnet", "../nb201", "/etc/x.yaml", ""]),
                           json_leaves),
        "archs": st.one_of(
            st.lists(st.one_of(st.sampled_from(["|bad~0|", "", VALID[0][:-3]]),
                               st.text(max_size=30)), max_size=3),
            json_values,
        ),
        "metrics": st.one_of(st.lists(st.sampled_from(["latency", "energy", "x", ""]), max_size=3),
                             json_values),
        "setting": st.one_of(st.sampled_from(["nosuch", "ort-t1-b1-fp32-optall"]), json_leaves),
        "extra": json_values,
    },
)  # fmt: skip
auth = st.sampled_from(
    [None, f"Bearer {TOKEN}", "Bearer wrong", TOKEN, f"bearer {TOKEN}", f"Bearer {TOKEN} x", ""]
)


def _check(resp) -> None:
    assert resp.status_code in STATUSES, (resp.status_code, resp.text[:300])
    if resp.status_code >= 400:
        detail = resp.json()["detail"]
        text = detail if isinstance(detail, str) else json.dumps(detail)
        assert "\n" not in text
        assert "fleetnas-agent-" not in text and tempfile.gettempdir() + "/" not in text


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=st.one_of(st.sampled_from(PATHS), st.text(URL_SAFE, max_size=20).map(lambda t: "/" + t)),
    token=auth,
    body=st.one_of(
        measure_bodies.map(lambda b: json.dumps(b).encode()),
        json_values.map(lambda b: json.dumps(b).encode()),
        st.binary(max_size=2048),
    ),
    query=st.dictionaries(st.sampled_from(["setting", "metrics", "x"]), st.text(max_size=10),
                          max_size=2),
)  # fmt: skip
def test_every_endpoint_answers_a_documented_status(client, method, path, token, body, query):
    FUZZED["agent_requests"] += 1
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = token
    try:
        resp = client.request(method, path, content=body, headers=headers, params=query)
    except UnicodeEncodeError:  # not a request a client can send (non-latin-1 header)
        return
    _check(resp)


@settings(max_examples=max(5, EXAMPLES // 5), deadline=None)
@given(size=st.integers(64 * 1024 + 1, 256 * 1024))
def test_bodies_over_the_limit_are_413(client, size):
    FUZZED["agent_large_bodies"] += 1
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/octet-stream"}
    resp = client.post("/measure/onnx", content=b"\0" * size, headers=headers)
    assert resp.status_code == 413
