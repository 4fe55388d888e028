"""The ``fleetnas`` console script: assembles the command groups and turns user mistakes
(:class:`~fleetnas.errors.FleetnasError`) into one line on stderr and exit code 2."""

from __future__ import annotations

import sys

import typer

from fleetnas import __version__
from fleetnas.cli import agent as agent_cmd
from fleetnas.cli import data as data_cmd
from fleetnas.cli import demo as demo_cmd
from fleetnas.cli import devices as devices_cmd
from fleetnas.cli import export as export_cmd
from fleetnas.cli import l2o as l2o_cmd
from fleetnas.cli import measure as measure_cmd
from fleetnas.cli import monotonicity as monotonicity_cmd
from fleetnas.cli import optimize as optimize_cmd
from fleetnas.cli import plan as plan_cmd
from fleetnas.cli import predict as predict_cmd
from fleetnas.cli import report as report_cmd
from fleetnas.cli import search as search_cmd
from fleetnas.cli import spaces as spaces_cmd
from fleetnas.cli.common import err_console, print_error
from fleetnas.errors import FleetnasError

app = typer.Typer(
    name="fleetnas",
    help="The best DNN design for every device of a diverse edge fleet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
app.add_typer(data_cmd.app, name="data")
app.add_typer(spaces_cmd.app, name="spaces")
app.add_typer(devices_cmd.app, name="devices")
app.add_typer(measure_cmd.app, name="measure")
app.add_typer(agent_cmd.app, name="agent")
app.add_typer(l2o_cmd.app, name="l2o")
app.add_typer(predict_cmd.app, name="predict")
app.command("optimize")(optimize_cmd.optimize)
app.command("search")(search_cmd.search)
app.command("export")(export_cmd.export)
app.command("monotonicity")(monotonicity_cmd.monotonicity)
app.command("report")(report_cmd.report)
app.command("demo")(demo_cmd.demo)
plan_cmd.register(app)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"fleetnas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_print_version,
        is_eager=True,
        help="Print the fleetnas version and exit.",
    ),
) -> None:
    """The best DNN design for every device of a diverse edge fleet."""


@app.command()
def version() -> None:
    """Print the fleetnas version (same as --version)."""
    typer.echo(__version__)


_USAGE_ERRORS = {"UsageError", "BadParameter", "MissingParameter", "NoSuchOption", "BadOptionUsage"}


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; FleetnasError -> one line on stderr, exit code 2."""
    try:
        code = app(args=argv, standalone_mode=False)
    except FleetnasError as exc:
        print_error(str(exc))
        return 2
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except KeyboardInterrupt:
        err_console.print("interrupted; nothing half-written was kept")
        return 130
    except SystemExit as exc:
        return int(exc.code or 0)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except Exception as exc:
        # Usage errors come from typer's bundled click (or click itself): one line, exit 2.
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            return 2 if type(exc).__name__ in _USAGE_ERRORS else int(exc.exit_code)
        raise
    # without standalone mode click returns the code of ``typer.Exit(code)`` instead of raising
    if code == 130:  # typer turns a Ctrl-C inside a command into a returned 130
        err_console.print("interrupted; nothing half-written was kept")
    return code if type(code) is int else 0


if __name__ == "__main__":
    sys.exit(main())
