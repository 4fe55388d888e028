"""``fleetnas search``: the best design of a space under a latency budget, from an accuracy
source and a latency source (operator look-up table, stored predictor or a device's measured
table), with :mod:`fleetnas.search` (exhaustive where the space is small, batched evolution
otherwise). No device is measured."""

from __future__ import annotations

from typing import Any

import typer

from fleetnas.cli.common import (
    DataDirOption,
    DbOption,
    JsonOption,
    SpaceOption,
    emit_doc,
    open_store_from,
    print_table,
    say,
)
from fleetnas.errors import InputError

#: Spaces up to this size are searched exhaustively by ``--method auto``.
EXHAUSTIVE_MAX = 100_000
ACCURACY_HELP = (
    "Accuracy source: table (NAS-Bench-201's exact table in the store), ofa (Once-for-All's "
    "released predictor, ofa_mbv3) or predictor:NAME (a stored predictor). Default: table for "
    "nb201, ofa for ofa_mbv3."
)
LATENCY_HELP = (
    "Latency source: lut (the published operator table: OFA's Note10 for ofa_mbv3, "
    "ProxylessNAS's Pixel 1 for proxylessnas), lut:NAME|FILE (a table measured by predict lut, "
    "stored or its --out file), table:DEVICE (the store's "
    "measured latencies of DEVICE) or predictor:NAME (a stored latency predictor)."
)


def accuracy_source(store: Any, space: Any, source: str | None, dataset: str, data_dir: Any):
    """``(name, callable)`` of the accuracy source (see ``--accuracy``)."""
    from fleetnas.cli.optimize import load_accuracy

    source = source or {"nb201": "table", "ofa_mbv3": "ofa"}.get(space.name)
    if source is None:
        raise InputError(
            f"space {space.name!r} needs an accuracy source: --accuracy predictor:NAME"
        )
    kind, _, arg = source.partition(":")
    if kind == "table":
        return f"table:{dataset}", load_accuracy(store, space, dataset, None)
    if kind == "ofa":
        from fleetnas.predict import OFAAccuracyPredictor

        if space.name != "ofa_mbv3":
            raise InputError(f"--accuracy ofa predicts ofa_mbv3 designs, not {space.name!r}")
        return "ofa", _from_store_or_data(OFAAccuracyPredictor, store, data_dir).predict
    if kind == "predictor" and arg:
        return source, load_accuracy(store, space, dataset, arg)
    raise InputError(f"--accuracy {source!r}: expected table, ofa or predictor:NAME")


def latency_source(store: Any, space: Any, source: str, data_dir: Any):
    """``(name, callable)`` of the latency source (see ``--latency``)."""
    kind, _, arg = source.partition(":")
    if kind == "lut":
        from fleetnas.predict.lut import load_lut, lut_class

        published = {"ofa_mbv3": "note10", "proxylessnas": "pixel1"}.get(space.name)
        if not arg and published is None:
            raise InputError(
                f"--latency lut is the published operator table (OFA's for ofa_mbv3, "
                f"ProxylessNAS's for proxylessnas), none for {space.name!r}; use lut:NAME|FILE, "
                "table:DEVICE or predictor:NAME"
            )
        if arg and arg != published:
            return source, load_lut(store, space, arg, what=f"--latency {source}").predict
        cls = lut_class(space)
        return f"lut:{published}", _from_store_or_data(cls, store, data_dir).predict
    if kind == "table" and arg:
        from fleetnas.predict import TableLookup

        store.get_device(arg)
        for statistic in ("median", "mean"):  # real measurers store medians, HELP means
            archs, values = store.get_measurements(space, arg, "latency", statistic)
            if len(archs):
                break
        if len(archs) == 0:
            raise InputError(
                f"the store holds no {space.name} latencies of device {arg!r}; import or "
                "measure them first (fleetnas data import, fleetnas measure)"
            )
        return source, TableLookup(space).fit(archs, values).predict
    if kind == "predictor" and arg:
        from fleetnas.predict import load_predictor

        return source, load_predictor(store, arg, space).predict
    raise InputError(f"--latency {source!r}: expected lut, table:DEVICE or predictor:NAME")


def _from_store_or_data(cls: Any, store: Any, data_dir: Any) -> Any:
    from fleetnas.errors import FleetnasError

    try:
        return cls.from_store(store)
    except FleetnasError:
        return cls.from_data(data_dir)


def search(
    space: str = SpaceOption,
    latency_ms: float = typer.Option(..., "--latency-ms", help="Latency budget in ms."),
    latency: str | None = typer.Option(None, "--latency", help=LATENCY_HELP),
    device: str | None = typer.Option(
        None, "--device", help="Stored device: same as --latency table:DEVICE."
    ),
    accuracy: str | None = typer.Option(None, "--accuracy", help=ACCURACY_HELP),
    dataset: str = typer.Option("cifar10", help="NAS-Bench-201 accuracy: cifar10|cifar100|..."),
    method: str = typer.Option(
        "auto", help=f"auto (exhaustive up to {EXHAUSTIVE_MAX:,} designs) | exhaustive | evolution."
    ),
    time_s: float = typer.Option(5.0, "--time-s", min=0.01, help="Evolution: seconds to search."),
    seed: int = typer.Option(0, help="Seed of the evolution."),
    resolutions: str | None = typer.Option(
        None, help="ofa_mbv3: comma-separated input resolutions allowed (e.g. 160,176,192)."
    ),
    db: str | None = DbOption,
    data_dir: str | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """The most accurate design of a space whose predicted latency meets the budget (eqs. 1-3),
    from an accuracy source and a latency source; no device is measured."""
    from fleetnas.search import (
        ConstrainedObjective,
        EvolutionConfig,
        Normalization,
        evolve,
        exhaustive_search,
    )
    from fleetnas.spaces import get_space

    if (latency is None) == (device is None):
        raise InputError("give the latency source with --latency SOURCE or --device NAME")
    if method not in ("auto", "exhaustive", "evolution"):
        raise InputError(f"--method must be auto, exhaustive or evolution, got {method!r}")
    sp = get_space(space)
    allowed = _allowed(sp, resolutions)
    with open_store_from(db) as store:
        acc_name, acc = accuracy_source(store, sp, accuracy, dataset, data_dir)
        lat_name, lat = latency_source(store, sp, latency or f"table:{device}", data_dir)
        small = sp.size <= EXHAUSTIVE_MAX and allowed is None
        if method == "exhaustive" and not small:
            raise InputError(
                f"--method exhaustive: {sp.name} has {sp.size:.3g} designs; use evolution"
            )
        norm = Normalization.fit(sp, acc, lat, n=1024, seed=seed)
        objective = ConstrainedObjective(acc, lat, norm=norm, latency_budget=latency_ms)
        if method == "exhaustive" or (method == "auto" and small):
            result = exhaustive_search(sp, objective)
        else:
            cfg = EvolutionConfig(generations=10**9, time_budget_s=time_s)
            result = evolve(sp, objective, cfg, seed=seed, allowed=allowed, keep_front=False)
    doc = {
        "space": sp.name,
        "design": sp.format(result.best),
        "feasible": result.feasible,
        "predicted_accuracy": result.accuracy,
        "predicted_latency_ms": result.latency,
        "latency_budget_ms": latency_ms,
        "accuracy_source": acc_name,
        "latency_source": lat_name,
        "method": result.method,
        "evaluations": result.evaluations,
        "wall_s": result.wall_time_s,
        "seed": seed,
    }
    if as_json:
        emit_doc("search", doc)
        return
    print_table([{"key": k, "value": v} for k, v in doc.items() if k != "design"],
                title=f"best {sp.name} design under {latency_ms:g} ms")  # fmt: skip
    say(doc["design"])
    if not result.feasible:
        say("no design meets the budget by the latency source: this is the closest one found")


def _allowed(space: Any, resolutions: str | None) -> dict[str, list[int]] | None:
    if resolutions is None:
        return None
    if space.name != "ofa_mbv3":
        raise InputError("--resolutions applies to ofa_mbv3 only")
    try:
        values = [int(v) for v in resolutions.split(",") if v.strip()]
    except ValueError:
        raise InputError(
            f"--resolutions must be comma-separated integers, got {resolutions!r}"
        ) from None
    return {"r": values}


__all__ = ["accuracy_source", "latency_source", "search"]
