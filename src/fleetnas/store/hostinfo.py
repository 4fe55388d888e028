"""What machine and software produced a run: stored with every run so numbers stay explainable."""

from __future__ import annotations

import os
import platform
import socket
import sys
from functools import lru_cache
from importlib import metadata
from typing import Any

#: Distributions whose versions are recorded when installed (read from metadata, not imported).
LIBRARIES = ("fleetnas", "numpy", "torch", "onnxruntime", "sqlalchemy")

#: Environment variables that change how many threads a runtime uses.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def host_info() -> dict[str, Any]:
    """JSON-able description of this host: hostname, platform, Python, library versions,
    CPU model, core count, CPU affinity and thread-count environment variables."""
    info: dict[str, Any] = dict(_static_info())
    info["affinity"] = _affinity()
    info["thread_env"] = {k: os.environ[k] for k in THREAD_VARS if k in os.environ}
    return info


@lru_cache(maxsize=1)
def _static_info() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_impl": sys.implementation.name,
        "versions": _versions(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
    }


def _versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "processor\t: ")):
                    value = line.split(":", 1)[1].strip()
                    if value and not value.isdigit():
                        return value
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _affinity() -> list[int] | None:
    getter = getattr(os, "sched_getaffinity", None)
    if getter is None:
        return None
    try:
        return sorted(getter(0))
    except OSError:
        return None
