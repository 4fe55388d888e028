"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``; ``.ci/run``
installs it) loads the page offline, every figure must be drawn by plotly with all its traces,
the console must stay free of errors, and the page may request nothing but itself."""

from __future__ import annotations

import json
import time

import pytest
from matplotlib.image import imread

from fleetnas.report import render_report

pytest.importorskip("websockets", reason="the browser test needs `websockets` (dev extra)")

from report_browser import Browser, find_chromium

STATE_JS = """JSON.stringify({
  figures: Array.from(document.querySelectorAll('div.fn-figure')).map(el => ({
    key: el.dataset.figure,
    rendered: el.dataset.rendered || null,
    svgs: el.querySelectorAll('svg.main-svg').length,
    traces: el.querySelectorAll('g.trace, g.hm').length,
    data: (el.data || []).length,
    height: el.getBoundingClientRect().height,
  })),
  notes: Array.from(document.querySelectorAll('.fn-note')).map(el => el.textContent),
  plotly: typeof Plotly === 'undefined' ? null : Plotly.version,
})"""


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = find_chromium()
    if exe is None:
        pytest.skip("chromium not installed (apt-get install chromium; .ci/run installs it)")
    return exe


def _load(chromium, page, tmp_path, shot_name):
    with Browser(chromium, tmp_path / "profile") as browser:
        browser.open(page.as_uri())
        end = time.monotonic() + 20
        while True:
            state = json.loads(browser.evaluate(STATE_JS))
            if all(f["rendered"] not in (None, "pending") for f in state["figures"]):
                break
            assert time.monotonic() < end, f"figures still drawing after 20 s: {state}"
            time.sleep(0.1)
        shot = browser.screenshot(tmp_path / shot_name)
        return state, browser.errors(), browser.requests(), shot


def test_every_figure_renders_offline_without_console_errors(chromium, report_data, tmp_path):
    page = tmp_path / "report.html"
    result = render_report(report_data.plan, page, store=report_data.store)
    state, errors, requests, shot = _load(chromium, page, tmp_path, "report.png")

    assert errors == []
    assert state["plotly"]
    assert [f["key"] for f in state["figures"]] == result.figures
    for f in state["figures"]:
        assert f["rendered"] == "1", f
        assert f["svgs"] >= 1 and f["height"] > 200, f
        assert f["traces"] == f["data"] > 0, f
    assert state["notes"] == []
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    img = imread(shot)
    assert img.shape[0] > 2000 and img[..., :3].std() > 0.05


def test_page_with_missing_panels_shows_notes_and_still_renders(chromium, plan, tmp_path):
    page = tmp_path / "no-store.html"
    result = render_report(plan, page)  # no store: only the plan's own front, no heatmap
    assert set(result.notes) == {"monotonicity"}
    state, errors, requests, _ = _load(chromium, page, tmp_path, "no-store.png")
    assert errors == []
    assert all(f["rendered"] == "1" and f["traces"] == f["data"] for f in state["figures"])
    assert len(state["figures"]) == len(result.figures)
    assert any("monotonicity" in n for n in state["notes"])
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []


def test_a_broken_figure_is_caught(chromium, plan, tmp_path):
    """The checks above can fail: a corrupt figure payload and a page script error are seen."""
    page = tmp_path / "broken.html"
    render_report(plan, page)
    text = page.read_text(encoding="utf-8")
    start = text.index("<script type='application/json' id='fig-fleet-json'>")
    text = text[: start + 60] + "{broken" + text[start + 60 :]
    text = text.replace("</body>", "<script>noSuchFunction();</script></body>")
    page.write_text(text, encoding="utf-8")
    state, errors, _, _ = _load(chromium, page, tmp_path, "broken.png")
    by_key = {f["key"]: f for f in state["figures"]}
    assert by_key["fleet"]["rendered"] == "error" and by_key["fleet"]["svgs"] == 0
    assert all(f["rendered"] == "1" for k, f in by_key.items() if k != "fleet")
    assert any("figure fig-fleet" in e for e in errors)
    assert any("noSuchFunction" in e for e in errors)
