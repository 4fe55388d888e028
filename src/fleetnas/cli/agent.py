"""``fleetnas agent serve``: run the device agent on this machine."""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path

import typer
from rich.text import Text

from fleetnas.cli.common import err_console
from fleetnas.errors import InputError

app = typer.Typer(help="The device agent: measure on this machine for a remote fleetnas.")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind (loopback unless --allow-remote)."),
    port: int = typer.Option(
        8765, min=0, max=65535, help="Port to listen on (0: a free one, printed at start)."
    ),
    token: str = typer.Option(
        ...,
        envvar="FLEETNAS_AGENT_TOKEN",
        help="Token clients must send (Bearer).",
        show_default=False,
    ),
    runtime: str = typer.Option("onnxruntime", help="onnxruntime, litert, openvino or torch."),
    threads: int = typer.Option(1, help="Intra-op threads."),
    batch: int = typer.Option(1, help="Batch size."),
    precision: str = typer.Option(
        "fp32", help="fp32 or int8 (onnxruntime, litert, openvino), fp16 (litert)."
    ),
    opt: str = typer.Option("all", help="ONNX Runtime graph optimization level."),
    name_prefix: str | None = typer.Option(
        None, help="Device-name prefix (default: this host's name)."
    ),
    repeats: int = typer.Option(10, help="Timed runs per process."),
    processes: int = typer.Option(3, help="Fresh processes per measurement."),
    warmup: int = typer.Option(5, help="Warm-up runs per process."),
    retries: int = typer.Option(2, help="Re-measurements of noisy results."),
    cpus: str | None = typer.Option(None, help="Pin workers to these CPUs, e.g. 0+1."),
    max_body_mb: float = typer.Option(16.0, help="Largest accepted request body (MiB)."),
    queue_size: int = typer.Option(4, min=0, help="Requests that may wait behind the running one."),
    timeout_s: float = typer.Option(600.0, help="Per-request timeout, waiting included."),
    allow_remote: bool = typer.Option(False, help="Allow binding a non-loopback address."),
    url_file: Path | None = typer.Option(
        None,
        "--url-file",
        help="Write the URL it serves on to this file once the port is bound (with --port 0, "
        "how a script learns the free port).",
    ),
) -> None:
    """Serve GET /health, GET /info, POST /measure and POST /measure/onnx until stopped."""
    import uvicorn

    from fleetnas.agent.app import AgentConfig, create_app
    from fleetnas.measure.settings import RuntimeSetting, sanitize_prefix
    from fleetnas.measure.timing import TimingConfig

    if not is_loopback(host) and not allow_remote:
        raise InputError(
            f"refusing to bind {host!r}: the agent binds loopback only unless --allow-remote "
            "is given (then protect the port: anyone with the token can run measurements)"
        )
    setting = RuntimeSetting(runtime, threads, batch, precision, opt)
    timing_opts = {
        "repeats": str(repeats),
        "processes": str(processes),
        "warmup": str(warmup),
        "retries": str(retries),
    }
    if cpus:
        timing_opts["cpus"] = cpus
    config = AgentConfig(
        token=token,
        settings=[setting],
        timing=TimingConfig.from_options(timing_opts),
        name_prefix=sanitize_prefix(name_prefix or socket.gethostname()),
        max_body_bytes=int(max_body_mb * 2**20),
        queue_size=queue_size,
        timeout_s=timeout_s,
    )
    app_ = create_app(config)
    device = config.settings[0].device(prefix=config.name_prefix)
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    url = f"http://{url_host}:{bound}"
    err_console.print(Text(f"fleetnas agent: {device.name} on {url}"), soft_wrap=True)
    if url_file is not None:
        from fleetnas.fileio import atomic_write_text

        atomic_write_text(url_file, url + "\n")
    server = uvicorn.Server(uvicorn.Config(app_, log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, bound before anything says where the agent serves;
    a taken port is an :class:`InputError` naming it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InputError(
                f"port {port} on {host} is already taken (another agent or program listens "
                "there); give a free --port, or --port 0 for any free one"
            ) from None
        raise InputError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock
