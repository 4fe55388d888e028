"""How a number is obtained: measurers bound to one device, and energy meters.

``get_measurer("onnxruntime:threads=1,batch=8")``, ``get_measurer("litert:precision=int8")``,
``get_measurer("openvino:precision=int8,hint=latency")``, ``get_measurer("table:pixel3", store)``,
``get_measurer("agent:http://127.0.0.1:8765", store, token=...)`` build measurers from spec strings.
"""

from __future__ import annotations

from fleetnas.measure.base import (
    MEASURERS,
    UNMEASURABLE,
    MeasurementCost,
    Measurer,
    MeasureResult,
)
from fleetnas.measure.spec import (
    get_measurer,
    measurer_for,
    measurer_kinds,
    parse_options,
    split_spec,
)

__all__ = [
    "MEASURERS",
    "UNMEASURABLE",
    "MeasureResult",
    "MeasurementCost",
    "Measurer",
    "get_measurer",
    "measurer_for",
    "measurer_kinds",
    "parse_options",
    "split_spec",
]
