"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``; ``.ci/run``
installs it) loads the page offline, every figure must be drawn by plotly with all its traces,
the console must stay free of errors, and the page may request nothing but itself."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from matplotlib.image import imread

from fleetnas.report import render_report
from fleetnas.report.plan import STATUS_COLORS, status_counts

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


HEADER_JS = """JSON.stringify({
  counts: Object.fromEntries(Array.from(document.querySelectorAll('#status-counts [data-status]'))
    .map(el => [el.dataset.status, Number(el.dataset.count)])),
  shown: Object.fromEntries(Array.from(document.querySelectorAll('#status-counts [data-status]'))
    .map(el => [el.dataset.status, el.textContent.trim()])),
  badges: Object.fromEntries(Array.from(document.querySelectorAll('#status-counts [data-status]'))
    .map(el => { const r = el.getBoundingClientRect();
                 return [el.dataset.status, [r.left, r.top, r.width, r.height]]; })),
  answer: document.querySelector('[data-answer]').dataset.answer,
  glance: document.querySelector('#glance').getBoundingClientRect().top,
  firstFigure: document.querySelector('div.fn-figure').getBoundingClientRect().top,
  families: Array.from(document.querySelectorAll('#glance table tbody tr td:first-child'))
    .map(td => td.textContent),
})"""


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)], dtype=float) / 255.0


def _has_colour(img: np.ndarray, hex_color: str, box=None, tol: float = 0.03) -> int:
    """Pixels of ``img`` (in ``box`` = left, top, width, height) within ``tol`` of a colour."""
    part = img[..., :3]
    if box is not None:
        x, y, w, h = (round(v) for v in box)
        part = part[y : y + h, x : x + w]
    return int((np.abs(part - _rgb(hex_color)).max(axis=-1) < tol).sum())


def test_first_screen_shows_status_counts_in_their_colours(chromium, plan, tmp_path):
    """The header's counts are read back from the rendered DOM and each non-zero badge is
    found in its status colour in the screenshot; the fleet figure shows the status colours.
    A plan with one violation and a changed count must read differently."""
    ok = [e for e in plan["devices"] if e["status"] == "ok"]
    ok[0]["truth"]["violation"] = True
    expected = status_counts(plan)
    assert expected == {"ok": len(ok) - 1, "violation": 1, "infeasible": 1, "failed": 1}
    page = tmp_path / "status.html"
    render_report(plan, page)
    with Browser(chromium, tmp_path / "profile") as browser:
        browser.open(page.as_uri())
        end = time.monotonic() + 20
        while json.loads(browser.evaluate(STATE_JS))["figures"][0]["rendered"] in (None, "pending"):
            assert time.monotonic() < end, "fleet figure still drawing after 20 s"
            time.sleep(0.1)
        header = json.loads(browser.evaluate(HEADER_JS))
        shot = browser.screenshot(tmp_path / "status.png")
    assert header["counts"] == expected
    assert header["shown"]["violation"] == "1 violation"
    assert header["answer"] == "some"
    assert header["glance"] < header["firstFigure"] < 900  # family table and figure: first screen
    assert {"mobile_cpu", "server_cpu", "all"} <= set(header["families"])
    img = imread(shot)
    for status, colour in STATUS_COLORS.items():
        box = header["badges"][status]
        assert _has_colour(img, colour, box) > 0.3 * box[2] * box[3], status
    fleet_top = header["firstFigure"]
    fleet_box = (0, fleet_top, img.shape[1], 470)
    for status in ("ok", "violation", "infeasible"):
        assert _has_colour(img, STATUS_COLORS[status], fleet_box, tol=0.06) > 10, status


def test_status_pixels_catch_a_page_without_them(chromium, plan, tmp_path):
    """The pixel check can fail: with every entry ok, no red is drawn anywhere."""
    plan["devices"] = [e for e in plan["devices"] if e["status"] == "ok"]
    page = tmp_path / "all-ok.html"
    render_report(plan, page)
    with Browser(chromium, tmp_path / "profile") as browser:
        browser.open(page.as_uri())
        time.sleep(1.0)
        header = json.loads(browser.evaluate(HEADER_JS))
        shot = browser.screenshot(tmp_path / "all-ok.png")
    assert header["counts"]["violation"] == 0 and header["answer"] == "all"
    img = imread(shot)
    top = img[: int(header["firstFigure"]) + 470]
    assert _has_colour(top, STATUS_COLORS["violation"]) == 0
    assert _has_colour(top, STATUS_COLORS["ok"]) > 100


OVERLAP_JS = """JSON.stringify(Array.from(
  document.querySelectorAll("div.fn-figure[data-figure^='front-']")).map(el => {
    const traces = el.querySelectorAll('g.scatterlayer g.trace');
    const stars = el.data.map((d, i) => [d.name, i]).filter(([n]) => n.startsWith('chosen'))
      .flatMap(([, i]) => Array.from(traces[i].querySelectorAll('path.point'))
        .map(p => p.getBoundingClientRect()));
    const labels = Array.from(el.querySelectorAll('g.annotation'))
      .map(a => a.getBoundingClientRect());
    const hit = (a, b) => a.left < b.right && b.left < a.right
      && a.top < b.bottom && b.top < a.bottom;
    return {key: el.dataset.figure, stars: stars.length, labels: labels.length,
            overlaps: stars.reduce((n, s) => n + labels.filter(l => hit(s, l)).length, 0)};
  }))"""


def test_budget_labels_do_not_cover_the_chosen_stars(chromium, report_data, tmp_path):
    page = tmp_path / "fronts.html"
    render_report(report_data.plan, page, store=report_data.store)
    with Browser(chromium, tmp_path / "profile") as browser:
        browser.open(page.as_uri())
        end = time.monotonic() + 20
        while any(
            f["rendered"] in (None, "pending")
            for f in json.loads(browser.evaluate(STATE_JS))["figures"]
        ):
            assert time.monotonic() < end, "figures still drawing after 20 s"
            time.sleep(0.1)
        fronts = json.loads(browser.evaluate(OVERLAP_JS))
    assert len(fronts) == 4
    for f in fronts:
        assert f["stars"] >= 1 and f["labels"] >= 1, f
        assert f["overlaps"] == 0, f
