"""The device agent: a small FastAPI server that measures on the machine it runs on.

It plays the role TVM's RPC server plays for TVM: a central fleetnas sends architectures (in
their string form) or an ONNX model, the agent times them with its local runtime settings and
answers with the values, spread statistics and cost. Endpoints:

- ``GET /health``: liveness and queue length (no token needed; reveals nothing else).
- ``GET /info``: devices (fingerprint, spec features), runtimes, settings offered, limits.
- ``POST /measure``: JSON ``{"space", "archs": [str], "metrics", "setting"}``.
- ``POST /measure/onnx``: the raw bytes of an ONNX model (``?metrics=&setting=``).

Security: every endpoint but ``/health`` needs ``Authorization: Bearer <token>`` (compared in
constant time); bodies over the limit get 413 before they are read whole; only registered
space names are accepted (never a path); an uploaded model is written only to a temporary file
the server names, and models that reference external data files are refused. Measurements run
one at a time (:class:`~fleetnas.agent.queue.SerialQueue`): 503 with Retry-After when the line
is full, 504 when a request's timeout passes.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import shutil
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fleetnas import __version__
from fleetnas.agent.queue import QueueFull, QueueTimeout, SerialQueue
from fleetnas.errors import FleetnasError, InputError, MeasurementError
from fleetnas.measure.local import LocalRuntimeMeasurer
from fleetnas.measure.settings import RUNTIMES, RuntimeSetting, host_features, runtime_version
from fleetnas.measure.timing import TimingConfig, time_models

MAX_ARCHS = 512
API_VERSION = 1


@dataclass
class AgentConfig:
    """What an agent offers and how strictly it guards itself."""

    token: str
    settings: list[RuntimeSetting] = field(default_factory=lambda: [RuntimeSetting()])
    timing: TimingConfig = field(default_factory=TimingConfig)
    name_prefix: str = "agent"
    max_body_bytes: int = 16 * 2**20
    queue_size: int = 4
    timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if not self.token:
            raise InputError("the agent needs a non-empty token")
        if not self.settings:
            raise InputError("the agent needs at least one runtime setting")
        slugs = [s.slug for s in self.settings]
        if len(set(slugs)) != len(slugs):
            raise InputError(f"the agent's settings repeat: {', '.join(slugs)}")
        if self.max_body_bytes < 1:
            raise InputError(f"max body size must be positive, got {self.max_body_bytes}")
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise InputError(
                f"--timeout-s must be a number of seconds > 0 (the longest a request may wait "
                f"and run), got {self.timeout_s}"
            )
        if self.queue_size < 0:
            raise InputError(f"--queue-size must be >= 0, got {self.queue_size}")


class MeasureRequest(BaseModel):
    """Body of ``POST /measure``."""

    model_config = ConfigDict(extra="forbid")

    space: str = Field(min_length=1, max_length=64)
    archs: list[str] = Field(min_length=1, max_length=MAX_ARCHS)
    metrics: list[str] = Field(default_factory=lambda: ["latency"], min_length=1, max_length=8)
    setting: str | None = Field(default=None, max_length=128)


class HTTPError(Exception):
    """An error answered with ``status`` and a one-line ``detail``."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


def create_app(config: AgentConfig) -> FastAPI:
    """The agent's ASGI application for ``config``."""
    measurers = {
        s.slug: LocalRuntimeMeasurer(s, config.timing, device_prefix=config.name_prefix)
        for s in config.settings
    }
    default = config.settings[0].slug
    queue = SerialQueue(size=config.queue_size, timeout_s=config.timeout_s)
    token = config.token.encode()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["tmp"] = tempfile.mkdtemp(prefix="fleetnas-agent-")
        try:
            yield
        finally:
            queue.shutdown()
            shutil.rmtree(state["tmp"], ignore_errors=True)

    app = FastAPI(
        title="fleetnas agent",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, exc: HTTPError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    def authorize(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token)
        if not ok:
            raise HTTPError(401, "missing or wrong token", {"WWW-Authenticate": "Bearer"})

    async def read_body(request: Request) -> bytes:
        limit = config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise HTTPError(413, f"request body over the limit of {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPError(413, f"request body over the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def pick(slug: str | None, metrics: list[str]) -> LocalRuntimeMeasurer:
        m = measurers.get(slug or default)
        if m is None:
            raise HTTPError(
                400, f"setting {slug!r} is not offered; offered: {', '.join(measurers)}"
            )
        missing = [x for x in metrics if x not in m.metrics]
        if missing:
            raise HTTPError(
                400,
                f"metric(s) {', '.join(missing)} not offered by "
                f"{m.device.name!r}; offered: {', '.join(m.metrics)}",
            )
        return m

    async def run_queued(job: Any) -> Any:
        try:
            return await queue.submit(job)
        except QueueFull as exc:
            raise HTTPError(503, str(exc), {"Retry-After": str(exc.retry_after)}) from None
        except QueueTimeout as exc:
            raise HTTPError(504, str(exc)) from None
        except InputError as exc:
            raise HTTPError(400, str(exc)) from None
        except MeasurementError as exc:
            if "timed out" in str(exc):
                raise HTTPError(504, str(exc)) from None
            raise HTTPError(500, str(exc)) from None
        except FleetnasError as exc:
            raise HTTPError(500, str(exc)) from None

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "pending": queue.pending, "busy": queue.running}

    @app.get("/info")
    async def info(request: Request) -> dict[str, Any]:
        authorize(request)
        from fleetnas.spaces import space_names

        return {
            "api": API_VERSION,
            "fleetnas": __version__,
            "default_setting": default,
            "devices": {slug: m.device.to_dict() for slug, m in measurers.items()},
            "settings": {slug: m.setting.to_dict() for slug, m in measurers.items()},
            "metrics": {slug: list(m.metrics) for slug, m in measurers.items()},
            "runtimes": {r: runtime_version(r) for r in RUNTIMES},
            "spaces": space_names(),
            "host": host_features(),
            "timing": config.timing.to_dict(),
            "limits": {
                "max_body_bytes": config.max_body_bytes,
                "max_archs": MAX_ARCHS,
                "queue_size": config.queue_size,
                "timeout_s": config.timeout_s,
            },
        }

    @app.post("/measure")
    async def measure(request: Request) -> dict[str, Any]:
        authorize(request)
        body = await read_body(request)
        try:
            req = MeasureRequest.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            raise HTTPError(422, f"malformed request at {where}: {first.get('msg')}") from None
        from fleetnas.spaces import get_space, space_names

        known = space_names()
        if req.space not in known:
            raise HTTPError(400, f"unknown space {req.space!r}; expected one of {', '.join(known)}")
        space = get_space(req.space)
        rows = []
        for i, text in enumerate(req.archs):
            try:
                rows.append(space.parse(text))
            except FleetnasError as exc:
                raise HTTPError(400, f"architecture {i} is malformed: {exc}") from None
        archs = np.stack(rows)
        m = pick(req.setting, req.metrics)

        def job(deadline: float, cancel: Any) -> Any:
            return m.measure_within(space, archs, req.metrics, deadline, cancel)

        result = await run_queued(job)
        return {
            "device": m.device.name,
            "fingerprint": m.device.fingerprint,
            "archs": space.format_many(archs),
            **_result_payload(result.values, result.units, result.is_estimate, result.stats),
            "cost": {
                "measurements": result.cost.measurements,
                "device_seconds": result.cost.device_seconds,
            },
            "workers": m.last_report.workers if m.last_report is not None else [],
        }

    @app.post("/measure/onnx")
    async def measure_onnx(
        request: Request, setting: str | None = None, metrics: str = "latency"
    ) -> dict[str, Any]:
        authorize(request)
        wanted = [x for x in metrics.split(",") if x]
        m = pick(setting, wanted)
        if m.setting.runtime != "onnxruntime":
            raise HTTPError(400, f"setting {m.setting.slug!r} does not run ONNX models")
        if wanted != ["latency"]:
            raise HTTPError(400, "an uploaded ONNX model can be measured for latency only")
        body = await read_body(request)
        check_onnx(body)
        fd, path = tempfile.mkstemp(suffix=".onnx", dir=state["tmp"])
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        digest = hashlib.sha256(body).hexdigest()

        def job(deadline: float, cancel: Any) -> Any:
            return time_models(
                [{"key": "upload", "onnx": path}],
                "onnxruntime",
                m.setting.threads,
                m.setting.batch,
                m.setting.opt,
                config.timing,
                deadline=deadline,
                cancel=cancel,
            )

        try:
            report = await run_queued(job)
        except HTTPError as exc:
            detail = _hide_path(exc.detail, path, state["tmp"])
            raise HTTPError(exc.status, detail, exc.headers) from None
        finally:
            os.unlink(path)
        t = report.timings["upload"]
        s = t.stats
        stats = {
            "p90": [s["p90"]],
            "iqr": [s["iqr"]],
            "min": [s["min"]],
            "noisy": [float(t.noisy)],
            "attempts": [float(t.attempts)],
            "n": [s["n"]],
        }
        return {
            "device": m.device.name,
            "fingerprint": m.device.fingerprint,
            "model_sha256": digest,
            "values": {"latency": [s["median"]]},
            "units": {"latency": "ms"},
            "is_estimate": {"latency": False},
            "stats": {"latency": stats},
            "noise": t.noise,
            "cost": {"measurements": 1, "device_seconds": report.device_seconds},
        }

    app.state.queue = queue
    app.state.measurers = measurers
    return app


def _hide_path(detail: str, path: str, folder: str) -> str:
    """``detail`` without the agent's file system layout (the upload's temporary file and
    folder): a caller learns what failed, not where the agent keeps its files."""
    out = detail.replace(path, "the uploaded model").replace(os.path.basename(path), "model")
    return out.replace(folder, "the agent's upload folder")


def check_onnx(body: bytes) -> None:
    """Refuse bytes that are not an ONNX model, or a model that points at external files."""
    import onnx

    try:
        model = onnx.load_model_from_string(body)
    except Exception:
        raise HTTPError(400, "the uploaded body is not an ONNX model") from None
    if not model.graph.node:
        raise HTTPError(400, "the uploaded ONNX model has no nodes")
    for tensor in _tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise HTTPError(
                400,
                "ONNX models with external data files are not accepted; "
                "embed the weights in the model",
            )


def _tensors(graph: Any):
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for g in attr.graphs:
                yield from _tensors(g)


def _result_payload(
    values: dict[str, np.ndarray],
    units: dict[str, str],
    is_estimate: dict[str, bool],
    stats: dict[str, dict[str, np.ndarray]],
) -> dict[str, Any]:
    def floats(a: np.ndarray) -> list[float | None]:
        return [float(v) if np.isfinite(v) else None for v in np.asarray(a, dtype=float)]

    return {
        "values": {m: floats(v) for m, v in values.items()},
        "units": dict(units),
        "is_estimate": {m: bool(v) for m, v in is_estimate.items()},
        "stats": {m: {k: floats(v) for k, v in st.items()} for m, st in stats.items()},
    }
