"""Runtime settings of this machine: each distinct setting is its own device.

A :class:`RuntimeSetting` (runtime, intra-op threads, batch size, precision, and the runtime's own
knobs: ONNX Runtime's graph optimization level and int8 quantization mode, OpenVINO's performance
hint) plus the host's CPU model, core count and memory, plus the measurement protocol
(:meth:`~fleetnas.measure.timing.TimingConfig.protocol`), make a
:class:`~fleetnas.devices.Device` of family ``local_runtime`` named like
``local-ort-t1-b1-fp32-optall``. So this one machine is a small real fleet (ONNX Runtime, LiteRT,
OpenVINO, PyTorch eager x threads x batch x precision ...), and two protocols on one setting are
two devices: their fingerprints differ, so a store never merges their values.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from fleetnas.devices import Device
from fleetnas.errors import InputError
from fleetnas.measure.spec import parse_into, parse_options, split_spec

if TYPE_CHECKING:
    from fleetnas.measure.timing import TimingConfig

RUNTIMES = ("onnxruntime", "torch", "litert", "openvino", "executorch")
PRECISIONS = {
    "onnxruntime": ("fp32", "int8"),
    "torch": ("fp32",),
    "litert": ("fp32", "fp16", "int8"),
    "openvino": ("fp32", "int8"),
    "executorch": ("fp32",),
}
#: ONNX Runtime graph optimization levels (``GraphOptimizationLevel.ORT_*``).
OPT_LEVELS = ("disable", "basic", "extended", "all")
#: ONNX Runtime int8 modes: static QDQ (calibrated activations) or dynamic (weights only ahead).
QUANT_MODES = ("static", "dynamic")
#: OpenVINO performance hints.
HINTS = ("latency", "throughput")
_SHORT = {
    "onnxruntime": "ort",
    "torch": "torch",
    "litert": "litert",
    "openvino": "ov",
    "executorch": "et",
}
#: The package whose version identifies each runtime.
_PACKAGE = {
    "onnxruntime": "onnxruntime",
    "torch": "torch",
    "litert": "ai-edge-litert",
    "openvino": "openvino",
    "executorch": "executorch",
}
#: Keys of a spec string that select the device (the rest are measuring options).
SETTING_KEYS = ("threads", "batch", "precision", "opt", "quant", "hint")


@dataclass(frozen=True)
class RuntimeSetting:
    """How a network is run locally: the part of a device's identity we control."""

    runtime: str = "onnxruntime"
    threads: int = 1
    batch: int = 1
    precision: str = "fp32"
    opt: str = "all"
    quant: str = "static"
    hint: str = "latency"

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
        if self.runtime != "onnxruntime" and self.opt != "all":
            raise InputError("opt (graph optimization level) applies to onnxruntime only")
        if self.quant not in QUANT_MODES:
            raise InputError(f"quant {self.quant!r} is not one of {', '.join(QUANT_MODES)}")
        if self.quant == "dynamic" and (self.runtime, self.precision) != ("onnxruntime", "int8"):
            raise InputError("quant=dynamic applies to onnxruntime with precision=int8 only")
        if self.hint not in HINTS:
            raise InputError(f"hint {self.hint!r} is not one of {', '.join(HINTS)}")
        if self.runtime != "openvino" and self.hint != "latency":
            raise InputError("hint (performance hint) applies to openvino only")

    @property
    def slug(self) -> str:
        """``ort-t1-b1-fp32-optall``, ``ort-t1-b1-int8dyn-optall``, ``torch-t1-b1-fp32``,
        ``litert-t1-b1-int8``, ``ov-t1-b1-fp32-latency``, ``et-t1-b1-fp32``."""
        precision = self.precision + ("dyn" if self.quant == "dynamic" else "")
        base = f"{_SHORT[self.runtime]}-t{self.threads}-b{self.batch}-{precision}"
        if self.runtime == "onnxruntime":
            return f"{base}-opt{self.opt}"
        if self.runtime == "openvino":
            return f"{base}-{self.hint}"
        return base

    def device_name(self, prefix: str = "local") -> str:
        return f"{prefix}-{self.slug}"

    def spec(self) -> str:
        """The measurer spec string of this setting."""
        body = f"threads={self.threads},batch={self.batch},precision={self.precision}"
        if self.runtime == "onnxruntime":
            body += f",opt={self.opt}"
            if self.quant != "static":
                body += f",quant={self.quant}"
        if self.runtime == "openvino":
            body += f",hint={self.hint}"
        return f"{self.runtime}:{body}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RuntimeSetting:
        """From a mapping of setting keys (strings as written in a spec are converted)."""
        return parse_into(cls, d, f"{d.get('runtime', 'runtime')} spec")

    @classmethod
    def parse(cls, runtime: str, arg: str) -> tuple[RuntimeSetting, dict[str, str]]:
        """``("onnxruntime", "threads=2,batch=8,repeats=5")`` -> the setting and the remaining
        (measuring) options."""
        opts = parse_options(arg, f"{runtime} spec")
        chosen = {k: opts.pop(k) for k in SETTING_KEYS if k in opts}
        return cls.from_dict({"runtime": runtime, **chosen}), opts

    def device(
        self,
        prefix: str = "local",
        host: dict[str, Any] | None = None,
        timing: TimingConfig | None = None,
    ) -> Device:
        """This setting on the host described by ``host`` (default: this machine), measured
        under ``timing``'s protocol (default: :class:`TimingConfig`'s)."""
        from fleetnas.measure.timing import TimingConfig

        host = host if host is not None else host_features()
        features: dict[str, Any] = {
            "runtime": self.runtime,
            "runtime_version": runtime_version(self.runtime),
            "threads": self.threads,
            "batch_size": self.batch,
            "precision": self.precision,
            **self._runtime_features(),
            "protocol": (timing or TimingConfig()).protocol(),
            **host,
        }
        return Device(
            name=self.device_name(prefix),
            family="local_runtime",
            features=features,
            measurer=self.spec(),
            description=f"{self.runtime} on {host.get('cpu_model', 'this CPU')}",
        )

    def _runtime_features(self) -> dict[str, Any]:
        """What else identifies the setting: how the model was converted and is executed."""
        if self.runtime == "onnxruntime":
            out: dict[str, Any] = {"graph_opt": self.opt}
            if self.precision == "int8":
                out["quantization"] = (
                    "static QDQ, random-normal calibration"
                    if self.quant == "static"
                    else "dynamic (QOperator, weights int8 ahead of time)"
                )
            return out
        if self.runtime == "litert":
            return {
                "converter": f"litert-torch {runtime_version('litert-torch', raw=True)}",
                "delegate": "xnnpack",
                **(
                    {"quantization": _LITERT_QUANT[self.precision]}
                    if self.precision in _LITERT_QUANT
                    else {}
                ),
            }
        if self.runtime == "executorch":
            return {
                "converter": "torch.export + to_edge_transform_and_lower",
                "delegate": "xnnpack",
            }
        if self.runtime == "openvino":
            out = {"hint": self.hint, "inference_precision": "f32"}
            if self.precision == "int8":
                out["quantization"] = (
                    f"nncf {runtime_version('nncf', raw=True)} post-training, "
                    "random-normal calibration"
                )
            return out
        return {}


#: How LiteRT's reduced precisions are made (ai-edge-quantizer on the fp32 flatbuffer).
_LITERT_QUANT = {
    "fp16": "weights float16 (ai-edge-quantizer float casting), fp32 compute",
    "int8": "full-integer static (ai-edge-quantizer static_wi8_ai8), random-normal calibration",
}


def local_device(spec: str, prefix: str | None = None) -> Device:
    """This machine's record for a local runtime spec (``onnxruntime:threads=1,repeats=5``,
    ``litert:precision=int8``...): its setting and its measurement protocol are its identity."""
    from fleetnas.measure.timing import TimingConfig

    kind, arg = split_spec(spec)
    setting, rest = RuntimeSetting.parse(kind, arg)
    name_prefix = rest.pop("prefix", prefix or "local")
    return setting.device(prefix=name_prefix, timing=TimingConfig.from_options(rest))


def runtime_version(runtime: str, raw: bool = False) -> str:
    """The installed version of ``runtime`` (a runtime name, or a package name with ``raw``);
    ``"absent"`` when it is not installed."""
    try:
        return metadata.version(runtime if raw else _PACKAGE.get(runtime, runtime))
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
