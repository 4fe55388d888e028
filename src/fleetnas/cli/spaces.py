"""``fleetnas spaces list|sample|show``."""

from __future__ import annotations

import typer

from fleetnas.cli.common import JsonOption, SpaceOption, emit, emit_doc, print_table, warn
from fleetnas.errors import InputError
from fleetnas.spaces import get_space, space_names

app = typer.Typer(help="Design spaces: list them, sample designs, show one design.")


@app.command("list")
def list_spaces(as_json: bool = JsonOption) -> None:
    """List the built-in design spaces."""
    rows = []
    for name in space_names():
        space = get_space(name)
        rows.append({"space": name, "decisions": space.n_decisions, "size": f"{space.size:.4g}"})
    emit(rows, as_json, "spaces list", "spaces", title="design spaces")


def _old_space(positional: str | None, space: str) -> str:
    if positional is None:
        return space
    warn("the positional SPACE is deprecated; use --space SPACE")
    return positional


#: The most designs ``spaces sample`` prints (200,000 took 394 MB of memory to render).
MAX_SAMPLE = 10_000


@app.command()
def sample(
    space_arg: str | None = typer.Argument(None, hidden=True, show_default=False),
    space: str = SpaceOption,
    count: int = typer.Option(5, "--count", "-n", min=1, help="How many designs."),
    seed: int = typer.Option(0, help="Random seed."),
    as_json: bool = JsonOption,
) -> None:
    """Sample random designs and print their native strings with FLOPs and parameters."""
    if count > MAX_SAMPLE:
        raise InputError(
            f"-n {count} is more designs than `spaces sample` prints (at most {MAX_SAMPLE:,}: "
            f"every row costs about 2 kB to render); ask for fewer, or call "
            f"SearchSpace.sample from Python for large batches"
        )
    sp = get_space(_old_space(space_arg, space))
    archs = sp.sample(count, seed)
    flops, params = sp.flops(archs), sp.params(archs)
    rows = [
        {"architecture": s, "mflops": f / 1e6, "mparams": p / 1e6}
        for s, f, p in zip(sp.format_many(archs), flops, params, strict=True)
    ]
    if as_json:
        emit_doc("spaces sample", {"space": sp.name, "seed": seed, "designs": rows})
        return
    emit(rows, False, title=f"{count} designs from {sp.name}")


@app.command()
def show(
    first: str = typer.Argument(..., help="The design in the space's native string form."),
    second: str | None = typer.Argument(None, hidden=True, show_default=False),
    space: str = SpaceOption,
    as_json: bool = JsonOption,
) -> None:
    """Show one design: its decisions, canonical form, FLOPs, parameters and layers."""
    architecture = first if second is None else second
    sp = get_space(_old_space(None if second is None else first, space))
    arch = sp.canonicalize(sp.parse(architecture)[None, :])[0]
    info = {
        "space": sp.name,
        "architecture": sp.format(arch),
        "hash": sp.arch_hash(arch),
        "choices": {d.name: d.choices[int(i)] for d, i in zip(sp.decisions, arch, strict=True)},
        "mflops": float(sp.flops(arch[None, :])[0]) / 1e6,
        "mparams": float(sp.params(arch[None, :])[0]) / 1e6,
    }
    if sp.has_network:
        info["layers"] = len(sp.layers(arch))
    policy = sp.policy(arch) if hasattr(sp, "policy") else None
    if policy is not None:
        info["compression"] = policy
    if as_json:
        emit_doc("spaces show", info)
        return
    skip = ("choices", "compression")
    print_table([{"key": k, "value": v} for k, v in info.items() if k not in skip])
    if policy is not None:
        rows = [{"block": b, **p} for b, p in policy.items()]
        print_table(rows, title="compression policy")
        return
    print_table([{"decision": k, "choice": v} for k, v in info["choices"].items()])
