"""Runtime settings of this machine: each distinct setting is its own device.

A :class:`RuntimeSetting` (runtime, intra-op threads, batch size, precision, graph optimization
level) plus the host's CPU model, core count and memory make a :class:`~fleetnas.devices.Device`
of family ``local_runtime`` named like ``local-ort-t1-b1-fp32-optall``. So this one machine is a
small real fleet (1 vs 2 threads x batch 1 vs 8 x fp32 vs int8 ...).
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

from fleetnas.devices import Device
from fleetnas.errors import InputError
from fleetnas.measure.spec import parse_options

RUNTIMES = ("onnxruntime", "torch")
PRECISIONS = {"onnxruntime": ("fp32", "int8"), "torch": ("fp32",)}
#: ONNX Runtime graph optimization levels (``GraphOptimizationLevel.ORT_*``).
OPT_LEVELS = ("disable", "basic", "extended", "all")
_SHORT = {"onnxruntime": "ort", "torch": "torch"}
#: Keys of a spec string that select the device (the rest are measuring options).
SETTING_KEYS = ("threads", "batch", "precision", "opt")


@dataclass(frozen=True)
class RuntimeSetting:
    """How a network is run locally: the part of a device's identity we control."""

    runtime: str = "onnxruntime"
    threads: int = 1
    batch: int = 1
    precision: str = "fp32"
    opt: str = "all"

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise InputError(f"runtime {self.runtime!r} is not one of {', '.join(RUNTIMES)}")
        if not 1 <= self.threads <= 256:
            raise InputError(f"threads must be between 1 and 256, got {self.threads}")
        if not 1 <= self.batch <= 4096:
            raise InputError(f"batch must be between 1 and 4096, got {self.batch}")
        if self.precision not in PRECISIONS[self.runtime]:
            raise InputError(
                f"precision {self.precision!r} is not offered by {self.runtime}; expected "
                f"{' or '.join(PRECISIONS[self.runtime])}"
            )
        if self.opt not in OPT_LEVELS:
            raise InputError(f"opt {self.opt!r} is not one of {', '.join(OPT_LEVELS)}")
        if self.runtime == "torch" and self.opt != "all":
            raise InputError("opt (graph optimization level) applies to onnxruntime only")

    @property
    def slug(self) -> str:
        """``ort-t1-b1-fp32-optall`` / ``torch-t1-b1-fp32``."""
        base = f"{_SHORT[self.runtime]}-t{self.threads}-b{self.batch}-{self.precision}"
        return base + (f"-opt{self.opt}" if self.runtime == "onnxruntime" else "")

    def device_name(self, prefix: str = "local") -> str:
        return f"{prefix}-{self.slug}"

    def spec(self) -> str:
        """The measurer spec string of this setting."""
        body = f"threads={self.threads},batch={self.batch},precision={self.precision}"
        if self.runtime == "onnxruntime":
            body += f",opt={self.opt}"
        return f"{self.runtime}:{body}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RuntimeSetting:
        known = {"runtime", *SETTING_KEYS}
        extra = sorted(set(d) - known)
        if extra:
            raise InputError(
                f"unknown runtime setting(s) {', '.join(extra)}; expected "
                f"{', '.join(sorted(known))}"
            )
        return cls(**{k: _coerce(k, v) for k, v in d.items()})

    @classmethod
    def parse(cls, runtime: str, arg: str) -> tuple[RuntimeSetting, dict[str, str]]:
        """``("onnxruntime", "threads=2,batch=8,repeats=5")`` -> the setting and the remaining
        (measuring) options."""
        opts = parse_options(arg, f"{runtime} spec")
        chosen = {k: opts.pop(k) for k in SETTING_KEYS if k in opts}
        return cls.from_dict({"runtime": runtime, **chosen}), opts

    def device(self, prefix: str = "local", host: dict[str, Any] | None = None) -> Device:
        """This setting on the host described by ``host`` (default: this machine)."""
        host = host if host is not None else host_features()
        features: dict[str, Any] = {
            "runtime": self.runtime,
            "runtime_version": runtime_version(self.runtime),
            "threads": self.threads,
            "batch_size": self.batch,
            "precision": self.precision,
            **({"graph_opt": self.opt} if self.runtime == "onnxruntime" else {}),
            **host,
        }
        return Device(
            name=self.device_name(prefix),
            family="local_runtime",
            features=features,
            measurer=self.spec(),
            description=f"{self.runtime} on {host.get('cpu_model', 'this CPU')}",
        )


def _coerce(key: str, value: Any) -> Any:
    if key in ("threads", "batch"):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise InputError(f"{key} must be an integer, got {value!r}") from None
    return str(value)


def runtime_version(runtime: str) -> str:
    try:
        return metadata.version(runtime)
    except metadata.PackageNotFoundError:
        return "absent"


def host_features() -> dict[str, Any]:
    """Spec features of this machine: CPU model, cores, memory, architecture."""
    from fleetnas.store.hostinfo import host_info

    info = host_info()
    return {
        "cpu_model": info.get("cpu_model", ""),
        "cores": int(info.get("cpu_count") or os.cpu_count() or 1),
        "memory_gb": round(_memory_bytes() / 2**30, 1),
        "machine": info.get("machine", ""),
    }


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def sanitize_prefix(text: str) -> str:
    """A device-name prefix from a host name: lowercase letters, digits and dashes."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out or "agent"
