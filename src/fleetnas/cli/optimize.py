"""``fleetnas optimize``: Approach 1 for one device, printing the search trace and the design."""

from __future__ import annotations

from typing import Any

import typer

from fleetnas.cli.common import (
    DbOption,
    JsonOption,
    MeasurerHelp,
    SpaceOption,
    console,
    emit_doc,
    open_store_from,
    print_table,
    with_aliases,
)
from fleetnas.errors import InputError


def load_accuracy(store: Any, space: Any, dataset: str, predictor: str | None) -> Any:
    """The accuracy callable: a stored predictor artifact, or NAS-Bench-201's exact table."""
    if predictor:
        from fleetnas.predict import load_predictor

        return load_predictor(store, predictor, space).predict
    if space.name != "nb201":
        raise InputError(
            f"space {space.name!r} needs an accuracy predictor: pass --accuracy-predictor NAME "
            "(a predictor artifact in the store)"
        )
    from fleetnas.data import get_accuracy
    from fleetnas.predict import TableLookup

    archs, _ = get_accuracy(store, dataset)
    if len(archs) == 0:
        raise InputError(
            "the store holds no NAS-Bench-201 accuracies; run `fleetnas data import` first"
        )
    return TableLookup.nb201_accuracy(dataset, store=store).predict


def resolve_measurer(store: Any, device: str | None, spec: str | None, token: str | None) -> Any:
    """The measurer of the target from ``--measurer`` (or the device's own record)."""
    from fleetnas.errors import UnknownNameError
    from fleetnas.measure import get_measurer, measurer_for

    if spec is None:
        if not device:
            raise InputError("give the target with --device (and optionally --measurer)")
        return measurer_for(store.get_device(device), store)
    kind = spec.split(":", 1)[0].strip()
    if kind == "table":
        name = spec.partition(":")[2].strip() or device
        if not name:
            raise InputError("--measurer table needs --device (the stored device to replay)")
        if device and name != device:
            raise InputError(f"--measurer {spec!r} replays {name!r}, not --device {device!r}")
        return get_measurer(f"table:{name}", store=store)
    if kind in ("onnxruntime", "torch"):
        m = get_measurer(spec, store=store)
        if device and device != m.device.name:
            raise InputError(
                f"--measurer {spec!r} measures this machine as device {m.device.name!r}, not "
                f"{device!r}; leave --device out or give that name"
            )
        return m
    dev = None
    if device:
        try:
            dev = store.get_device(device)
        except UnknownNameError:
            dev = None
    options = {"token": token} if kind == "agent" and token else {}
    return get_measurer(spec, store=store, device=dev, **options)


#: Keys of :meth:`Approach1Result.to_dict` renamed with their units in ``--json``.
RENAMED = {
    "latency": "latency_ms",
    "energy": "energy_mj",
    "latency_budget": "latency_budget_ms",
    "energy_budget": "energy_budget_mj",
}


def optimize(
    space: str = SpaceOption,
    device: str | None = typer.Option(None, "--device", help="Target device (store name)."),
    proxy: str = typer.Option("auto", "--proxy", help="Proxy device name, or auto (pool)."),
    latency_ms: float = typer.Option(..., "--latency-ms", help="Latency budget in ms."),
    energy_mj: float | None = typer.Option(None, "--energy-mj", help="Energy budget in mJ."),
    measurer: str | None = typer.Option(
        None, "--measurer", "-m", help=MeasurerHelp + " (default: the device's own measurer)."
    ),
    method: str = typer.Option("guided", help="guided | model | algorithm1 | front."),
    max_measurements: int | None = typer.Option(
        None,
        min=0,
        help="Hard cap on target measurements, probes and fallback included (default: 10, "
        "up to 20 while the expected gain stays high; the result says cap_extended).",
    ),
    probes: int = typer.Option(3, help="Probe designs measured to choose the proxy."),
    fallback: bool = typer.Option(True, help="Train the target's own predictor on failure."),
    dataset: str = typer.Option("cifar10", help="NAS-Bench-201 accuracy: cifar10|cifar100|..."),
    accuracy_predictor: str | None = typer.Option(
        None, help="Accuracy predictor artifact (spaces other than nb201)."
    ),
    token: str | None = typer.Option(
        None, envvar="FLEETNAS_AGENT_TOKEN", help="Token of an agent: measurer.", show_default=False
    ),
    seed: int = typer.Option(0, help="Seed of the fallback's designs."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Find the most accurate design that meets the budget on a device with Approach 1: a few
    measurements on the target guided by a proxy device's predictor."""
    from fleetnas.proxy import Approach1Config, ProxyPool, Workspace, check_budgets, optimize_device
    from fleetnas.spaces import get_space

    check_budgets(latency_ms, energy_mj)
    sp = get_space(space)
    cfg = Approach1Config(
        method=method,
        max_measurements=max_measurements,
        n_probes=probes,
        fallback=fallback,
        seed=seed,
    )
    with open_store_from(db) as store:
        m = resolve_measurer(store, device, measurer, token)
        acc = load_accuracy(store, sp, dataset, accuracy_predictor)
        pool = ProxyPool.from_store(store, sp)
        if proxy != "auto" and proxy not in pool:
            from fleetnas.errors import unknown

            raise unknown("proxy", proxy, pool.names)
        ws = Workspace(sp, acc, pool)
        result = optimize_device(ws, m, latency_ms, energy_mj, proxy=proxy, config=cfg, store=store)
    if as_json:
        emit_doc("optimize", with_aliases(result.to_dict(), RENAMED))
        return
    rows = []
    for s in result.trace:
        rows.append(
            {
                "step": s.step,
                "phase": s.phase,
                "t / L'": s.key,
                "candidate": s.arch,
                "latency ms": s.latency,
                **({"energy mJ": s.energy} if energy_mj is not None else {}),
                "new": "yes" if s.new else "reused",
                "decision": s.decision,
            }
        )
    if rows:
        print_table(rows, title=f"{result.method} on {result.device} (proxy {result.proxy})")
    lat = f"{result.latency:.4g} ms (budget {latency_ms:g})"
    en = "" if result.energy is None else f", energy {result.energy:.4g} mJ"
    console.print(
        f"{result.status}: {result.arch_str}\n"
        f"predicted accuracy {result.predicted_accuracy:.4g}, measured latency {lat}{en}\n"
        f"measurements {result.measurements} (probes {result.probes}, fallback "
        f"{result.fallback_measurements}), reused {result.reused}, device "
        f"{result.device_seconds:.3g} s"
        + (f"; fell back and registered {result.registered!r}" if result.fell_back else ""),
        highlight=False,
        markup=False,
    )
    if result.status != "ok":
        console.print(
            "no measured design meets the budget: this is the fastest one measured",
            highlight=False,
        )


__all__ = ["load_accuracy", "optimize", "resolve_measurer"]
