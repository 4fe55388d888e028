from __future__ import annotations

import json

from fleetnas.cli.main import main


def test_cli_writes_html_and_pngs_from_plan_and_store(report_data, tmp_path, capsys):
    html, png = tmp_path / "r.html", tmp_path / "figs"
    args = ["report", str(report_data.plan_path), "--html", str(html), "--png", str(png)]
    assert main([*args, "--db", str(report_data.db), "--front-device", "raspi4"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {html}" in out.replace("\n", "")
    names = sorted(p.name for p in png.iterdir())
    assert names == sorted(
        ["fleet.png", "front-raspi4.png", "monotonicity.png", "trace.png", "measurements.png"]
    )
    assert "data-figure='front-raspi4'" in html.read_text()


def test_cli_without_store_notes_missing_panels(report_data, tmp_path, capsys):
    html = tmp_path / "r.html"
    assert main(["report", str(report_data.plan_path), "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "monotonicity: no monotonicity data" in out.replace("\n", " ")
    assert "class='fn-note' data-note='monotonicity'" in html.read_text()


def test_cli_one_line_errors(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["report", str(missing), "--html", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(missing) in err and "not found" in err

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "fleetnas-plan/1", "devices": {"a": 1}}))
    assert main(["report", str(bad), "--html", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert "'devices' must be a list" in err and str(bad) in err.replace("\n", "")

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"format": "fleetnas-plan/1", "devices": []}))
    assert main(["report", str(good)]) == 2
    assert "nothing to write" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_cli_json_lists_what_it_wrote(report_data, tmp_path, capsys):
    html = tmp_path / "r.html"
    assert main(["report", str(report_data.plan_path), "--html", str(html), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "fleetnas-report/1" and doc["written"] == [str(html)]
    assert "monotonicity" in doc["notes"] and html.is_file()
