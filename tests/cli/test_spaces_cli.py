from __future__ import annotations

import json

from fleetnas.cli.main import main


def test_spaces_list_json(capsys):
    assert main(["spaces", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "fleetnas-spaces-list/1"
    assert {"nb201", "fbnet", "ofa_mbv3"} <= {row["space"] for row in doc["spaces"]}


def test_spaces_sample_is_seeded_and_parseable(capsys):
    args = ["spaces", "sample", "--space", "nb201", "-n", "4", "--seed", "3", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == first
    designs = first["designs"]
    assert first["format"] == "fleetnas-spaces-sample/1" and first["space"] == "nb201"
    assert len(designs) == 4 and all(row["mflops"] > 0 for row in designs)
    assert main(["spaces", "show", designs[0]["architecture"], "-s", "nb201", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["architecture"] == designs[0]["architecture"]
    assert len(shown["choices"]) == 6


def test_positional_space_is_a_deprecated_alias(capsys):
    assert main(["spaces", "sample", "fbnet", "--count", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["space"] == "fbnet"
    assert "positional SPACE is deprecated; use --space" in captured.err
    arch = json.loads(captured.out)["designs"][0]["architecture"]
    assert main(["spaces", "show", "fbnet", arch, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["space"] == "fbnet" and "deprecated" in captured.err


def test_malformed_architecture_is_one_line_exit_2(capsys):
    assert main(["spaces", "show", "|bad~0|"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nb201" in err and "expected" in err
    assert "Traceback" not in err


def test_unknown_space_lists_choices(capsys):
    assert main(["spaces", "sample", "--space", "nb999"]) == 2
    err = capsys.readouterr().err
    assert "unknown space 'nb999'" in err and "nb201" in err


def test_usage_error_is_one_line_exit_2(capsys):
    assert main(["spaces", "show"]) == 2
    err = capsys.readouterr().err
    assert "Missing argument" in err and "Traceback" not in err


def test_spaces_sample_is_bounded(capsys):
    """Case 4 of issue 18: -n had no bound (200k designs took 394 MB)."""
    assert main(["spaces", "sample", "-s", "nb201", "-n", "100000000"]) == 2
    err = capsys.readouterr().err.strip()
    assert "at most 10,000" in err and "\n" not in err
    assert main(["spaces", "sample", "-s", "nb201", "-n", "10000", "--json", "--seed", "1"]) == 0
    assert len(json.loads(capsys.readouterr().out)["designs"]) == 10_000
