"""``fleetnas monotonicity A B``: how well device A's latency order carries over to device B."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetnas.cli.common import (
    DbOption,
    JsonOption,
    SpaceOption,
    emit_doc,
    open_store_from,
    print_table,
    say,
)


def monotonicity(
    device_a: str = typer.Argument(..., help="Proxy device (store name)."),
    device_b: str = typer.Argument(..., help="Target device (store name)."),
    space: str = SpaceOption,
    metric: str = typer.Option("latency", help="latency | energy."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write the paper's Figure 4 (PNG) for the pair to this path."
    ),
    designs: int = typer.Option(40, min=2, help="Designs shown in the plot."),
    train: int = typer.Option(
        1000, min=10, help="Designs of device A the plot's predictor is trained on."
    ),
    seed: int = typer.Option(0, help="Seed of the plotted and training designs."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Spearman, Kendall and the share of design pairs whose order flips between two devices
    (over every design measured on both), and optionally Figure 4: A's trained predictor vs
    measurements on A and B."""
    from fleetnas.proxy.monotonicity import device_values, pair_stats, plot_figure4
    from fleetnas.spaces import get_space

    sp = get_space(space)
    with open_store_from(db) as store:
        if hasattr(sp, "precisions"):  # compressed: A and B are fp32=DEV,int8=DEV tables
            from fleetnas.measure import parse_options
            from fleetnas.proxy.monotonicity import joint_values

            specs = {d: parse_options(d.removeprefix("ptable:"), d) for d in (device_a, device_b)}
            archs, vals = joint_values(store, sp, specs)
        else:
            archs, vals = device_values(store, sp, [device_a, device_b], metric)
    stats = pair_stats(vals[:, 0], vals[:, 1])
    out = {"space": sp.name, "metric": metric, "a": device_a, "b": device_b, **stats.to_dict()}
    if plot is not None:
        import numpy as np

        from fleetnas.predict import GBTEnsemble

        rng = np.random.default_rng(seed)
        order = rng.permutation(len(archs))
        shown = order[: min(designs, len(archs))]
        fit_on = order[len(shown) : len(shown) + train]
        if len(fit_on) < GBTEnsemble.min_samples:
            fit_on = order[: max(train, GBTEnsemble.min_samples)]
        pred = GBTEnsemble(sp, target="log", n_members=3, seed=seed).fit(
            archs[fit_on], vals[fit_on, 0]
        )
        path = plot_figure4(
            plot,
            pred.predict(archs[shown]),
            vals[shown, 0],
            vals[shown, 1],
            device_a,
            device_b,
            "mJ" if metric == "energy" else "ms",
        )
        out["plot"] = str(path)
        out["plot_designs"] = len(shown)
        out["plot_trained_on"] = len(fit_on)
    if as_json:
        emit_doc("monotonicity", out)
        return
    print_table(
        [
            {"statistic": k, "value": out[k]}
            for k in ("n", "spearman", "kendall", "flip_share", "flip_share_untied", "flipped")
        ],
        title=f"{metric} monotonicity {device_a} -> {device_b} ({sp.name})",
    )
    if plot is not None:
        say(f"Figure 4 written to {out['plot']}")
