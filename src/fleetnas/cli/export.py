"""``fleetnas export``: a design (native string, or a plan entry's chosen design) as a runnable
model file: ONNX always, TFLite where the LiteRT converter (``litert-torch``) is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from fleetnas.cli.common import JsonOption, SpaceOption, emit_doc, say
from fleetnas.errors import InputError


def _plan_design(plan_path: Path, entry: str) -> tuple[str, str, dict[str, Any]]:
    """``(space, design, entry)`` of the plan entry ``DEVICE`` or ``DEVICE@BUDGET``."""
    from fleetnas.fleet import read_plan

    doc = read_plan(plan_path)
    entries = doc.get("devices", [])
    hits = [e for e in entries if e.get("key") == entry or e.get("device") == entry]
    if not hits:
        keys = sorted(str(e.get("key") or e.get("device")) for e in entries)
        shown = ", ".join(keys[:10]) + (f", ... ({len(keys)} in all)" if len(keys) > 10 else "")
        raise InputError(f"plan {str(plan_path)!r} has no entry {entry!r}; entries: {shown}")
    if len(hits) > 1:
        keys = ", ".join(str(e.get("key")) for e in hits)
        raise InputError(
            f"plan {str(plan_path)!r}: device {entry!r} has {len(hits)} entries ({keys}); "
            "give DEVICE@BUDGET"
        )
    e = hits[0]
    if not e.get("design"):
        raise InputError(
            f"plan entry {e.get('key', entry)!r} has no design (status {e.get('status')!r}: "
            f"{e.get('reason')})"
        )
    return str(doc["space"]), str(e["design"]), e


def export(
    design: str | None = typer.Argument(
        None, help="The design in its space's native string form (or use --plan/--entry)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Model file to write (.onnx or .tflite)."),
    space: str = SpaceOption,
    plan: Path | None = typer.Option(None, "--plan", help="plan.json whose entry to export."),
    entry: str | None = typer.Option(
        None, "--entry", help="The plan entry: DEVICE or DEVICE@BUDGET (with --plan)."
    ),
    fmt: str | None = typer.Option(
        None, "--format", help="onnx | tflite (default: from the --out suffix)."
    ),
    batch: int = typer.Option(1, min=1, help="Batch size of the model's input."),
    as_json: bool = JsonOption,
) -> None:
    """Write a design's network as an ONNX (or TFLite) file for deployment: the same network,
    with the same seeded weights, that the onnxruntime measurer times."""
    from fleetnas.measure.modelfile import write_model
    from fleetnas.spaces import get_space

    source: dict[str, Any] = {}
    if plan is not None or entry is not None:
        if design is not None or plan is None or entry is None:
            raise InputError("give a DESIGN, or --plan PLAN.json with --entry DEVICE[@BUDGET]")
        space, design, e = _plan_design(plan, entry)
        source = {"plan": str(plan), "entry": e.get("key", entry)}
    elif design is None:
        raise InputError("give a DESIGN, or --plan PLAN.json with --entry DEVICE[@BUDGET]")
    sp = get_space(space)
    arch = sp.parse(design)
    written = write_model(sp, arch, out, fmt, batch)
    doc = {
        "space": sp.name,
        "design": sp.format(arch),
        **source,
        "out": str(written.path),
        "model_format": written.format,
        "input_shape": list(written.input_shape),
        "bytes": written.bytes,
        "wall_s": written.seconds,
    }
    if as_json:
        emit_doc("export", doc)
        return
    shape = "x".join(map(str, written.input_shape))
    say(f"wrote {written.path} ({written.format}, input {shape}, {written.bytes:,} bytes)")


__all__ = ["export"]
