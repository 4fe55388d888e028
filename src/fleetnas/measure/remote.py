"""Client side of the device agent: ``agent:http://host:port`` measures on a remote machine.

The agent (``fleetnas agent serve``, :mod:`fleetnas.agent.app`) times the networks there; this
measurer sends the architectures in their string form, and the values come back and land in
the store exactly like local ones (one run, written only after the whole answer arrived, so an
agent that dies mid-run leaves nothing behind). Options follow a ``#``:
``agent:http://10.0.0.7:8765#setting=ort-t2-b1-fp32-optall,retries=6``; the token comes from the
``token=`` keyword or ``$FLEETNAS_AGENT_TOKEN``. Connection failures are retried with
exponential backoff, a full agent queue (503) is retried after its Retry-After, and when the
agent stays unreachable a :class:`~fleetnas.errors.MeasurementError` names its URL.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from fleetnas.devices import Device
from fleetnas.errors import InputError, MeasurementError
from fleetnas.measure.base import MEASURERS, MeasurementCost, Measurer, MeasureResult
from fleetnas.measure.spec import parse_options

if TYPE_CHECKING:
    from fleetnas.spaces import SearchSpace
    from fleetnas.store import Store

TOKEN_ENV = "FLEETNAS_AGENT_TOKEN"
#: Errors after which the request is tried again (the agent may be restarting).
RETRYABLE = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.PoolTimeout,
)


class AgentMeasurer(Measurer):
    """Measures through a device agent; bound to one of the settings the agent offers."""

    method = "agent"
    strict_identity = True

    def __init__(
        self,
        url: str,
        token: str,
        store: Store | None = None,
        setting: str | None = None,
        retries: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 900.0,
        reuse: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"agent URL must start with http:// or https://, got {url!r}")
        if not token:
            raise InputError(
                f"agent {url} needs a token: set ${TOKEN_ENV}, or end the spec with "
                f"#token=... (agent:{url}#token=...)"
            )
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff_s = backoff_s
        self._client = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            transport=transport,
        )
        self.remote = self._request("GET", "/info")
        slug = setting or self.remote["default_setting"]
        if slug not in self.remote["devices"]:
            raise InputError(
                f"agent {self.url} does not offer setting {slug!r}; it offers "
                f"{', '.join(self.remote['devices'])}"
            )
        self.setting = slug
        dev = dict(self.remote["devices"][slug])
        dev["measurer"] = f"agent:{self.url}"
        super().__init__(Device.from_dict(dev), store=store, reuse=reuse)
        self.metrics = tuple(self.remote["metrics"][slug])
        self.last_workers: list[dict[str, Any]] = []

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        delay = self.backoff_s
        last: str = ""
        for attempt in range(self.retries + 1):
            try:
                resp = self._client.request(method, path, **kwargs)
            except RETRYABLE as exc:
                last = f"{type(exc).__name__}: {exc}"
                if attempt < self.retries:
                    time.sleep(delay)
                    delay *= 2
                continue
            except httpx.TimeoutException as exc:
                raise MeasurementError(
                    f"agent {self.url} did not answer {method} {path} in time ({exc})"
                ) from None
            if resp.status_code == 503 and attempt < self.retries:
                time.sleep(_retry_after(resp, delay))
                delay *= 2
                continue
            return _decode(resp, self.url, method, path)
        raise MeasurementError(
            f"agent {self.url} is gone: {method} {path} failed after {self.retries + 1} "
            f"attempts ({last or 'queue full'})"
        )

    def _measure(
        self, space: SearchSpace, archs: np.ndarray, metrics: Sequence[str]
    ) -> MeasureResult:
        body = {
            "space": space.name,
            "archs": space.format_many(archs),
            "metrics": list(metrics),
            "setting": self.setting,
        }
        out = self._request("POST", "/measure", json=body)
        if out.get("fingerprint") != self.device.fingerprint:
            raise MeasurementError(
                f"agent {self.url} now reports device {out.get('device')!r} with another "
                f"fingerprint than when it was bound; create a new measurer"
            )
        self.last_workers = out.get("workers", [])
        return _result(archs, out)

    def measure_onnx(self, model: bytes) -> MeasureResult:
        """Latency of an ONNX model (its bytes) on the agent; not written to the store."""
        out = self._request(
            "POST",
            "/measure/onnx",
            content=model,
            params={"setting": self.setting, "metrics": "latency"},
            headers={"Content-Type": "application/octet-stream"},
        )
        result = _result(np.zeros((1, 0), dtype=np.int64), out)
        self.total_cost.add(result.cost)
        return result

    def info(self) -> dict[str, Any]:
        keep = ("fleetnas", "runtimes", "host", "timing", "settings")
        return {
            **super().info(),
            "url": self.url,
            "setting": self.setting,
            "remote": {k: self.remote.get(k) for k in keep},
            "workers": self.last_workers,
            "fingerprint": self.device.fingerprint,
        }

    def close(self) -> None:
        self._client.close()


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _retry_after(resp: httpx.Response, fallback: float) -> float:
    try:
        return min(60.0, max(0.0, float(resp.headers.get("retry-after", fallback))))
    except ValueError:
        return fallback


def _decode(resp: httpx.Response, url: str, method: str, path: str) -> dict[str, Any]:
    try:
        payload = resp.json()
    except ValueError:
        payload = {}
    detail = payload.get("detail", resp.text[:200]) if isinstance(payload, dict) else resp.text
    if resp.status_code == 401:
        raise MeasurementError(f"agent {url} refused the token (401)")
    if 400 <= resp.status_code < 500:
        raise InputError(f"agent {url} rejected {method} {path} ({resp.status_code}): {detail}")
    if resp.status_code >= 500:
        raise MeasurementError(f"agent {url} failed {method} {path} ({resp.status_code}): {detail}")
    if not isinstance(payload, dict):
        raise MeasurementError(f"agent {url} answered {method} {path} with no JSON object")
    return payload


def _result(archs: np.ndarray, out: dict[str, Any]) -> MeasureResult:
    def arr(v: list[float | None]) -> np.ndarray:
        return np.array([np.nan if x is None else x for x in v], dtype=float)

    stats: dict[str, dict[str, np.ndarray]] = {}
    for m, st in out.get("stats", {}).items():
        stats[m] = {k: arr(v) for k, v in st.items()}
        if "n" in stats[m]:
            stats[m]["n"] = stats[m]["n"].astype(np.int64)
    cost = out.get("cost", {})
    return MeasureResult(
        archs=archs,
        values={m: arr(v) for m, v in out["values"].items()},
        units=dict(out.get("units", {})),
        is_estimate={m: bool(v) for m, v in out.get("is_estimate", {}).items()},
        stats=stats,
        cost=MeasurementCost(
            measurements=int(cost.get("measurements", 0)),
            device_seconds=float(cost.get("device_seconds", 0.0)),
        ),
    )


@MEASURERS.register("agent")
def _agent_factory(
    arg: str = "",
    store: Store | None = None,
    device: Device | None = None,
    token: str | None = None,
    **options: Any,
) -> AgentMeasurer:
    url, _, query = arg.partition("#")
    if not url:
        raise InputError("agent measurer needs a URL: 'agent:http://host:port'")
    opts: dict[str, Any] = dict(parse_options(query, "agent spec")) if query else {}
    opts.update(options)
    spec_token = opts.pop("token", None)
    kwargs: dict[str, Any] = {}
    for key, cast in (
        ("setting", str),
        ("retries", int),
        ("backoff_s", float),
        ("timeout_s", float),
        ("reuse", _flag),
        ("transport", None),
    ):
        if key in opts:
            value = opts.pop(key)
            try:
                kwargs[key] = value if cast is None or not isinstance(value, str) else cast(value)
            except ValueError:
                raise InputError(f"agent option {key}={value!r} is not a valid value") from None
    if opts:
        raise InputError(f"unknown agent option(s) {', '.join(sorted(opts))}")
    token = token or spec_token or os.environ.get(TOKEN_ENV, "")
    m = AgentMeasurer(url, token, store=store, **kwargs)
    if device is not None and device.fingerprint != m.device.fingerprint:
        raise MeasurementError(
            f"agent {m.url} serves {m.device.name!r}, not the requested device {device.name!r}"
        )
    return m
