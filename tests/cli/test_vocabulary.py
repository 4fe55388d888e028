"""One vocabulary across verbs (issue 19): a short flag means one thing wherever it appears, a
letter retired as a deprecated alias is not a visible flag anywhere, every ``--space`` defaults
to the same space and the documented measurement cap says what Approach 1 does."""

from __future__ import annotations

from collections import defaultdict

import click
import pytest
import typer

from fleetnas.cli.common import DEFAULT_SPACE
from fleetnas.cli.main import app, main


def _options() -> list[tuple[str, click.Option]]:
    out: list[tuple[str, click.Option]] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])
        out.extend((" ".join(path), p) for p in cmd.params if p.param_type_name == "option")

    walk(typer.main.get_command(app), [])
    return out


def _shorts(p: click.Option) -> list[str]:
    return [o for o in (*p.opts, *p.secondary_opts) if len(o) == 2]


def test_a_short_flag_means_one_thing_everywhere() -> None:
    meaning: dict[str, set[str]] = defaultdict(set)
    retired: dict[str, list[str]] = defaultdict(list)
    for verb, p in _options():
        for flag in _shorts(p):
            (retired[flag].append(verb) if p.hidden else meaning[flag].add(str(p.name)))
    assert {f: m for f, m in meaning.items() if len(m) > 1} == {}
    # -d was a measurer spec in `measure` and a device in `l2o generate`: gone as a visible flag;
    # -n is --count everywhere (l2o train's old -n for --name still works, with a warning)
    assert {f: sorted(meaning[f]) for f in retired if f in meaning and f != "-n"} == {}
    assert meaning["-n"] == {"count"} and meaning["-s"] == {"space"}
    assert meaning["-m"] == {"measurer"} and "-d" not in meaning


#: Verbs where --space narrows what a file or the store holds, so "not given" means "any".
FILTERS = {"data import", "data export"}


def test_every_space_option_has_one_default() -> None:
    # a verb that works on a few spaces only (predict lut: spaces with operators) requires it
    opts = [(verb, p) for verb, p in _options() if "--space" in p.opts]
    spaces = [(verb, p.default) for verb, p in opts if not p.required]
    assert len(spaces) >= 10
    assert {verb for verb, p in opts if p.required} <= {"predict lut"}
    assert {verb: d for verb, d in spaces if d != DEFAULT_SPACE and verb not in FILTERS} == {}
    assert {verb: d for verb, d in spaces if verb in FILTERS} == dict.fromkeys(FILTERS)


def test_margin_and_the_measurement_cap_read_the_same_in_every_verb() -> None:
    margins = {verb: p for verb, p in _options() if p.name == "margin"}
    assert set(margins) == {"plan", "l2o generate"}
    assert all(p.default is None for p in margins.values())  # the space's calibrated margin
    rules = {verb: p for verb, p in _options() if p.name == "hybrid_rule"}
    assert set(rules) == {"plan", "l2o generate"}
    assert all("bisection" in p.help and "improvement" in p.help for p in rules.values())
    caps = {verb: p.help or "" for verb, p in _options() if p.name == "max_measurements"}
    for verb in ("plan", "optimize"):
        assert "10" in caps[verb] and "up to 20" in caps[verb] and "cap_extended" in caps[verb]


@pytest.mark.parametrize(
    ("argv", "warning"),
    [
        (["predict", "-d", "ghost", "--count", "2"], "-d is deprecated; use --device"),
        (["predict", "--device", "ghost", "--sample", "2"], "--sample is deprecated; use --count"),
        (["l2o", "generate", "toy", "-d", "ghost", "--lambda", "1"], "-d is deprecated"),
    ],
)
def test_retired_spellings_still_work_and_say_what_to_use(
    tmp_path, capsys: pytest.CaptureFixture[str], argv: list[str], warning: str
) -> None:
    assert main([*argv, "--db", str(tmp_path / "s.db")]) == 2  # no such device: one line
    err = capsys.readouterr().err
    assert warning in err and "Traceback" not in err and len(err.strip().splitlines()) == 2
