"""Every command with ``--json`` is documented in docs/cli-json.md with its format name."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetnas.cli.main import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli-json.md"


def _json_commands() -> list[str]:
    out = []

    def walk(cmd, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])
        if any(p.name == "as_json" for p in cmd.params):
            out.append(" ".join(path))

    walk(typer.main.get_command(app), [])
    return sorted(out)


def test_every_json_command_is_documented_with_its_format():
    text = DOC.read_text()
    commands = _json_commands()
    assert {"search", "export", "report", "data export", "devices list", "plan"} <= set(commands)
    for command in commands:
        name = "plan-run" if command == "plan" else command.replace(" ", "-")
        assert f"| `{command}` | `fleetnas-{name}/1` |" in text, command
