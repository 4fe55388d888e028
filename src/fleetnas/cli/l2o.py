"""``fleetnas l2o train|generate``: Approach 2 (learning to optimize) from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fleetnas.cli.common import (
    DbOption,
    JsonOption,
    MarginHelp,
    SpaceOption,
    console,
    deprecated,
    emit,
    emit_doc,
    margin_for,
    open_store_from,
    pick,
    warn,
)
from fleetnas.errors import InputError

if TYPE_CHECKING:
    from fleetnas.l2o.query import Query
    from fleetnas.store import Store

app = typer.Typer(
    help="Approach 2: train an optimizer network, then generate a design per device in one "
    "forward pass.",
    no_args_is_help=True,
)


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    out = [t.strip() for t in text.split(",") if t.strip()]
    if not out:
        raise InputError("--devices must name at least one device")
    return out


@app.command()
def train(
    space_arg: str | None = typer.Argument(None, hidden=True, show_default=False),
    space: str = SpaceOption,
    name: str | None = typer.Option(None, "--name", help="Name of the optimizer artifact."),
    name_old: str | None = deprecated("-n", use="--name"),
    method: int = typer.Option(
        1, help="1: labels x*(d, λ) (eq. 9); 2: predicted objective (eq. 10)."
    ),
    features: str = typer.Option("probes", help="Optimizer input: probes | spec | both."),
    devices: str | None = typer.Option(
        None, help="Comma-separated training devices (default: HELP meta-train + meta-valid)."
    ),
    synthetic: int = typer.Option(150, min=0, help="Synthetic training devices."),
    members: int = typer.Option(1, min=1, help="Optimizer networks in the ensemble."),
    epochs: int = typer.Option(60, min=0, help="Method 1 epochs."),
    steps: int = typer.Option(3000, min=0, help="Method 2 steps."),
    relaxation: str = typer.Option(
        "reinforce", help="Method 2: softmax | gumbel | st | reinforce."
    ),
    accuracy_predictor: str | None = typer.Option(None, help="Stored accuracy predictor name."),
    latency_predictor: str | None = typer.Option(None, help="Stored device-aware predictor name."),
    dataset: str = typer.Option("cifar10", help="NAS-Bench-201 accuracy dataset."),
    predictor_epochs: int = typer.Option(40, min=1, help="Epochs of the latency network."),
    seed: int = typer.Option(0),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Train an optimizer on the store's training devices and store it as an artifact."""
    from fleetnas.l2o.train import TrainConfig, train_optimizer

    if space_arg is not None:
        warn("the positional SPACE is deprecated; use --space SPACE")
        space = space_arg
    name = pick(name, name_old)
    if not name:
        raise InputError("give the optimizer's name with --name NAME")

    cfg = TrainConfig(
        space=space,
        name=name,
        method=method,
        features=features,
        devices=_names(devices),
        synthetic=synthetic,
        members=members,
        epochs=epochs,
        steps=steps,
        relaxation=relaxation,
        accuracy_predictor=accuracy_predictor,
        latency_predictor=latency_predictor,
        dataset=dataset,
        predictor_epochs=predictor_epochs,
        seed=seed,
    )
    say = None if as_json else (lambda msg: console.print(msg, highlight=False, markup=False))
    with open_store_from(db) as store:
        _, report = train_optimizer(store, cfg, progress=say)
    if as_json:
        emit_doc("l2o train", report)


def _parse_features(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--features must be comma-separated numbers, got {text!r}") from None
    if not vals:
        raise InputError("--features must hold at least one number")
    return vals


@app.command()
def generate(
    name: str = typer.Argument(..., help="Optimizer artifact name (from `l2o train`)."),
    device: list[str] = typer.Option(
        None, "--device", help="Device name in the store (repeatable)."
    ),
    device_old: list[str] = deprecated("-d", use="--device", default=None),
    features: str | None = typer.Option(
        None,
        "--features",
        "-f",
        help="Raw device features in the optimizer's mode, comma-separated.",
    ),
    fleet: Path | None = typer.Option(None, "--fleet", help="Fleet file (YAML/CSV) with budgets."),
    lam: float | None = typer.Option(None, "--lambda", "-l", help="Latency weight λ2 (eq. 4/8)."),
    lam_energy: float = typer.Option(0.0, "--lambda-energy", help="Energy weight λ1."),
    latency_ms: float | None = typer.Option(
        None, "--latency-ms", "-b", help="Latency budget (ms)."
    ),
    verify: bool = typer.Option(
        False, "--verify", help="Hybrid mode: verify budgets with real measurements."
    ),
    max_measurements: int = typer.Option(
        3,
        min=1,
        help="Hybrid mode (--verify): real measurements per (device, budget) that check the "
        "network's proposals, at most; the probe latencies the network reads are not counted "
        "here (--measure takes them).",
    ),
    hybrid_rule: str = typer.Option(
        "auto",
        help="Hybrid mode (--verify): bisection (over the proposals ordered by predicted "
        "latency) | improvement (next the proposal of largest accuracy gain x P(meets the "
        "budget)) | auto (improvement where the latency predictor has an interval calibration).",
    ),
    margin: float | None = typer.Option(None, min=0.0, help=MarginHelp, show_default=False),
    refine: int = typer.Option(2, min=0, help="Local refinement rounds on the prediction."),
    measure: bool = typer.Option(
        False, "--measure", help="Measure missing probe latencies through the device's measurer."
    ),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Generate designs for devices (by name, raw features or a fleet file), for a trade-off
    weight λ or a latency budget."""
    from fleetnas.l2o.artifact import load_optimizer
    from fleetnas.l2o.query import Query, answer

    device = pick(device, device_old)
    given = sum([bool(device), features is not None, fleet is not None])
    if given != 1:
        raise InputError("give exactly one of --device (repeatable), --features or --fleet")
    if lam is not None and latency_ms is not None:
        raise InputError("give --lambda or --latency-ms, not both")
    if fleet is None and lam is None and latency_ms is None:
        raise InputError("give a trade-off weight --lambda or a budget --latency-ms")
    pair = None if lam is None else (lam_energy, lam)
    with open_store_from(db) as store:
        opt = load_optimizer(store, name)
        margin = margin_for(opt.space.name, margin)
        if fleet is not None:
            queries = _fleet_queries(str(fleet), store, pair, latency_ms)
        elif features is not None:
            queries = [Query(features=_parse_features(features), lam=pair, latency_ms=latency_ms)]
        else:
            queries = [
                Query(device=store.get_device(d), lam=pair, latency_ms=latency_ms) for d in device
            ]
        if verify and all(q.lam is not None for q in queries):
            raise InputError("--verify needs latency budgets (--latency-ms or a fleet's budgets)")
        rows = answer(
            store,
            opt,
            queries,
            verify=verify,
            max_measurements=max_measurements,
            margin=margin,
            refine_rounds=refine,
            measure=measure,
            rule=hybrid_rule,
        )
    if as_json:
        emit_doc("l2o generate", {"optimizer": name, "margin": margin, "designs": rows})
        return
    cols = [c for c in rows[0] if c != "lambda"]
    emit(rows, False, columns=cols, title=f"{len(rows)} designs from optimizer {name!r}")


def _fleet_queries(
    path: str,
    store: Store,
    pair: tuple[float, float] | None,
    latency_ms: float | None,
) -> list[Query]:
    """One query per (device, budget) of a fleet file; ``--lambda``/``--latency-ms`` override
    the file's budgets. Devices the store does not know are taken from the file."""
    from fleetnas.errors import UnknownNameError
    from fleetnas.fleet import read_fleet
    from fleetnas.l2o.query import Query

    fl = read_fleet(path)
    out = []
    for fd in fl:
        try:
            rec = store.get_device(fd.name)
        except UnknownNameError:
            rec = fd.device
        if pair is not None or latency_ms is not None:
            out.append(Query(device=rec, lam=pair, latency_ms=latency_ms))
            continue
        if not fd.budgets:
            raise InputError(
                f"fleet {path}: device {fd.name!r} has no budgets; give --lambda or --latency-ms"
            )
        for b in fd.budgets:
            if b.latency is None:
                raise InputError(f"fleet {path}: budget {b.label!r} of {fd.name!r} has no latency")
            if b.energy is not None:
                raise InputError(
                    f"fleet {path}: budget {b.label!r} of {fd.name!r} has an energy limit; "
                    "l2o generate answers latency budgets"
                )
            out.append(
                Query(
                    device=rec,
                    latency_ms=b.latency.value,
                    latency_quantile=b.latency.quantile,
                    label=b.label,
                )
            )
    return out
