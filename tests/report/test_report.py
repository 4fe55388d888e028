from __future__ import annotations

import copy
import json
from html.parser import HTMLParser

import numpy as np
import pytest
from matplotlib.image import imread
from plotly.offline import get_plotlyjs
from scipy.stats import kendalltau, spearmanr

from fleetnas.errors import InputError
from fleetnas.report import build_figures, read_plan, render_report, summarize, to_plotly
from fleetnas.report.plan import STATUS_COLORS, plan_wall_s, status_counts
from fleetnas.report.sources import fronts, monotonicity, monotonicity_from_store


def _by_key(figs):
    return {f.key: f for f in figs}


# ---- reading the plan ------------------------------------------------------------------------


def test_read_plan_round_trip(report_data):
    assert read_plan(report_data.plan_path) == report_data.plan


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "not found"),
        ("{not json", "is not valid JSON (line 1"),
        ('{"format": "fleetnas-plan/9", "devices": []}', "format 'fleetnas-plan/9'"),
        ('{"format": "fleetnas-plan/1"}', "'devices' must be a list"),
        ('{"devices": [{"family": "x"}]}', "devices[0] must be an object with a 'device'"),
        ('{"devices": [{"device": "a", "trace": 3}]}', "devices[0].trace must be a list"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_read_plan_errors_name_file_and_expectation(tmp_path, content, expected):
    path = tmp_path / "plan.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError) as info:
        read_plan(path)
    msg = str(info.value)
    assert str(path) in msg and expected in msg
    assert "\n" not in msg


# ---- figures from plan + store ----------------------------------------------------------------


def _fleet_points(fig):
    return {
        (float(x), float(y), s.name)
        for s in fig.series
        if not s.name.startswith("oracle")
        for x, y in zip(s.x, s.y, strict=True)
    }


def test_fleet_figure_places_every_entry_at_its_budget_coloured_by_status(plan):
    fig = _by_key(build_figures(plan))["fleet"]
    lo, hi = fig.y_range
    edge = lo + 0.02 * (hi - lo)
    points = _fleet_points(fig)
    ok = [e for e in plan["devices"] if e["status"] == "ok"]
    for e in ok:
        acc, b = e["truth"]["accuracy"], e["budget"]["latency_ms"]
        where = (b, acc) if acc >= edge else (b, edge)
        assert sum(1 for x, y, _ in points if (x, y) == where) == 1, e["device"]
    for st in ("infeasible", "failed"):
        (e,) = [e for e in plan["devices"] if e["status"] == st]
        assert (e["budget"]["latency_ms"], edge, f"{st} (no design)") in points
    assert len(points) == len(plan["devices"])
    for s in fig.series:
        if not s.name.startswith("oracle"):
            assert s.color == STATUS_COLORS[s.name.split(" ")[0]], s.name
    oracle = next(s for s in fig.series if s.name.startswith("oracle"))
    assert sorted(oracle.y) == sorted(e["truth"]["oracle_accuracy"] for e in ok)
    assert {s.name for s in fig.series} >= {"ok · proxy", "ok · proxy-fallback", "ok · l2o"}
    assert "1 infeasible" in fig.caption and "1 failed" in fig.caption
    assert fig.y_label.startswith("true ")
    accs = [e["truth"]["accuracy"] for e in ok]
    assert lo > 50 and hi < 100 and lo < np.percentile(accs, 5) and hi > max(accs)


def test_fleet_figure_draws_a_violation_in_its_colour_and_zooms_past_outliers(plan):
    ok = [e for e in plan["devices"] if e["status"] == "ok"]
    ok[0]["truth"]["violation"] = True
    ok[1]["truth"]["accuracy"] = 10.0
    fig = _by_key(build_figures(plan))["fleet"]
    bad = [s for s in fig.series if s.name.startswith("violation")]
    assert len(bad) == 1 and bad[0].color == STATUS_COLORS["violation"] == "#d62728"
    assert "1 violation" in fig.caption
    assert fig.y_range[0] > 50  # the 10 % outlier does not stretch the axis
    below = [s for s in fig.series if "below the axis" in s.name]
    assert below and ok[1]["budget"]["latency_ms"] in set(below[0].x)
    assert "below" in fig.caption


def test_new_plan_format_without_designs_on_infeasible_entries(plan):
    plan["format"] = "fleetnas-plan/2"
    inf = next(e for e in plan["devices"] if e["status"] == "infeasible")
    inf["design"] = None
    inf["fastest_measured"] = {"design": plan["devices"][0]["design"], "latency_ms": 3.0}
    fig = _by_key(build_figures(plan))["fleet"]
    series = next(s for s in fig.series if s.name == "infeasible (no design)")
    assert "fastest measured" in series.text[0] and "reason:" in series.text[0]
    assert status_counts(plan)["infeasible"] == 1
    plan["format"] = "fleetnas-plan/9"
    with pytest.raises(InputError, match="fleetnas-plan/2"):
        build_figures(plan)


def test_fleet_figure_falls_back_to_predicted_accuracy(plan):
    for e in plan["devices"]:
        e["truth"] = None
    fig = _by_key(build_figures(plan))["fleet"]
    assert "predicted" in fig.y_label
    assert not any(s.name.startswith("oracle") for s in fig.series)
    ys = sorted(y for s in fig.series if "no design" not in s.name for y in s.y)
    assert ys == sorted(e["predicted"]["accuracy"] for e in plan["devices"] if e["status"] == "ok")


def test_store_fronts_are_true_fronts_and_mark_chosen_and_oracle_designs(report_data, plan):
    found, missing = fronts(plan, report_data.store, max_devices=4)
    assert missing == [] and len(found) == 4
    # one device per family first (plan order within a family), the plan's 'front' device first
    assert found[0].device == "gold_6226"
    assert (
        len({next(e["family"] for e in plan["devices"] if e["device"] == f.device) for f in found})
        == 4
    )
    for data in found:
        lat = report_data.tables[data.device]
        acc = report_data.accuracy
        assert data.source == "store" and data.n_designs == len(acc)
        # every design is dominated by (or on) the front: best accuracy within its latency
        order = np.argsort(data.front_latency)
        fl, fa = data.front_latency[order], data.front_accuracy[order]
        k = np.searchsorted(fl, lat, side="right") - 1
        assert (k >= 0).all() and (fa[k] >= acc - 1e-9).all()
        es = [e for e in plan["devices"] if e["device"] == data.device and e["status"] == "ok"]
        for e in es:
            assert data.designs[e["design"]] == pytest.approx(
                (e["truth"]["latency_ms"], e["truth"]["accuracy"])
            )
            oracle = data.oracles[e["budget"]["latency_ms"]]
            assert oracle[1] == pytest.approx(e["truth"]["oracle_accuracy"])
            assert oracle[0] <= e["budget"]["latency_ms"]


def test_front_figure_marks_each_chosen_design_and_budget(report_data, plan):
    figs = _by_key(build_figures(plan, report_data.store, front_devices=["pixel3"]))
    fig = figs["front-pixel3"]
    es = [e for e in plan["devices"] if e["device"] == "pixel3"]
    stars = [
        (x, y) for s in fig.series if s.symbol == "star" for x, y in zip(s.x, s.y, strict=True)
    ]
    assert sorted(stars) == sorted(
        (e["truth"]["latency_ms"], e["truth"]["accuracy"]) for e in es if e["status"] == "ok"
    )
    assert sorted(ln.value for ln in fig.lines) == sorted(e["budget"]["latency_ms"] for e in es)
    assert "15625 designs" in fig.caption


def test_front_from_plan_key_without_store(plan):
    figs = build_figures(plan)
    fronts_drawn = [f for f in figs if f.key.startswith("front-")]
    assert [f.key for f in fronts_drawn] == ["front-gold_6226"]
    entry = next(e for e in plan["devices"] if e.get("front"))
    line = next(s for s in fronts_drawn[0].series if s.name == "Pareto front")
    assert sorted(zip(line.x, line.y, strict=True)) == sorted(map(tuple, entry["front"]))
    assert "as written in the plan" in fronts_drawn[0].caption


def test_requested_front_without_data_becomes_a_note(plan):
    figs = _by_key(build_figures(plan, None, front_devices=["pixel3"]))
    assert "front-pixel3" not in figs
    assert "pixel3" in figs["fronts"].note and not figs["fronts"].drawn


def test_monotonicity_from_store_matches_scipy_and_includes_the_proxy(report_data, plan):
    data = monotonicity_from_store(plan, report_data.store, max_designs=20_000)
    assert data is not None and data.devices[0] == "titan_rtx_1"
    assert set(data.devices) == {"titan_rtx_1", *{e["device"] for e in plan["devices"]}} - {
        "field_phone_17"
    }
    assert data.n_designs == 15625
    k = len(data.devices)
    assert data.spearman.shape == (k, k)
    np.testing.assert_allclose(np.diag(data.spearman), 1.0)
    np.testing.assert_allclose(data.spearman, data.spearman.T)
    i, j = data.devices.index("pixel3"), data.devices.index("gold_6226")
    want = spearmanr(report_data.tables["pixel3"], report_data.tables["gold_6226"]).statistic
    assert data.spearman[i, j] == pytest.approx(want, abs=1e-12)
    tau = kendalltau(report_data.tables["pixel3"], report_data.tables["gold_6226"]).statistic
    assert data.kendall[i, j] == pytest.approx(tau, abs=1e-12)
    off = ~np.eye(k, dtype=bool)
    assert ((data.flip_share[off] > 0) & (data.flip_share[off] < 0.5)).all()
    # pairs that agree more in rank flip fewer design pairs
    assert spearmanr(data.spearman[off], data.flip_share[off]).statistic < -0.9
    # families are grouped
    fams = data.families[1:]
    assert fams == sorted(fams)


def test_monotonicity_block_in_plan_wins_over_store(report_data, plan):
    plan["monotonicity"] = {
        "devices": ["pixel3", "raspi4"],
        "spearman": [[1.0, 0.97], [0.97, 1.0]],
        "flip_share": [[0.0, 0.05], [0.05, 0.0]],
    }
    data = monotonicity(plan, report_data.store)
    assert data.source == "plan" and data.devices == ["pixel3", "raspi4"]
    fig = _by_key(build_figures(plan, report_data.store))["monotonicity"]
    assert fig.heatmap.z[0, 1] == 0.97
    assert "flipped pairs 5.0%" in fig.heatmap.hover[0][1]


def test_trace_figure_follows_the_longest_trace_or_the_named_device(plan):
    fig = _by_key(build_figures(plan))["trace"]
    longest = max((e for e in plan["devices"] if e.get("trace")), key=lambda e: len(e["trace"]))
    assert longest["device"] in fig.title
    measured = sorted(y for s in fig.series if not s.y2 and s.name != "measured" for y in s.y)
    assert measured == sorted(s["measured_latency_ms"] for s in longest["trace"])
    over = next(s for s in fig.series if s.name == "over budget")
    assert (over.y > longest["budget"]["latency_ms"]).all()
    assert fig.lines[0].value == longest["budget"]["latency_ms"]
    named = _by_key(build_figures(plan, trace_device="fpga@p70"))["trace"]
    assert "fpga@p70" in named.title
    missing = _by_key(build_figures(plan, trace_device="raspi4"))["trace"]
    assert not missing.drawn and "raspi4" in missing.note


def _step(k: int, phase: str, ms: float) -> dict:
    return {"step": k, "phase": phase, "t": None, "measured_latency_ms": ms, "design": f"d{k}"}


def test_trace_figure_prefers_a_real_search_and_draws_probes_apart(plan):
    probed = copy.deepcopy(plan["devices"][0])
    probed.update(key="probed@p50", device="probed", method="proxy")
    probed["trace"] = [_step(k + 1, "probe", 1.0 + k) for k in range(10)] + [
        _step(11, "search", 2.5)
    ]
    searched = copy.deepcopy(probed)
    searched.update(key="searched@p50", device="searched")
    searched["trace"] = [_step(k + 1, "probe", 1.0 + k) for k in range(3)] + [
        _step(k + 4, "search", ms) for k, ms in enumerate((2.0, 3.5, 2.8, 2.9))
    ]
    mine = {"devices": [probed, searched]}
    fig = _by_key(build_figures(mine))["trace"]
    assert "searched@p50" in fig.title
    probes = next(s for s in fig.series if s.name == "probe")
    assert probes.symbol != "circle" and list(probes.x) == [1, 2, 3]
    line = next(s for s in fig.series if s.name == "measured")
    assert list(line.x) == [4, 5, 6, 7] and "3 probes" in fig.caption
    dots = [s for s in fig.series if s.name in ("within budget", "over budget")]
    assert sorted(x for s in dots for x in s.x) == [4, 5, 6, 7]
    named = _by_key(build_figures(mine, trace_device="probed"))["trace"]
    assert len(next(s for s in named.series if s.name == "probe").x) == 10
    assert list(next(s for s in named.series if s.name == "measured").x) == [11]


def test_measurement_histogram_counts_every_entry(plan):
    fig = _by_key(build_figures(plan))["measurements"]
    total = sum(s.y.sum() for s in fig.series)
    assert total == len(plan["devices"])
    weighted = sum((s.x * s.y).sum() for s in fig.series)
    assert weighted == sum(e["measurements"] for e in plan["devices"])


def test_summary_tables_count_statuses_and_regret(plan):
    rows = {r["method"]: r for r in summarize(plan, "method")}
    assert rows["all"]["entries"] == len(plan["devices"])
    assert rows["all"]["ok"] + rows["all"]["infeasible"] + rows["all"]["failed"] == len(
        plan["devices"]
    )
    ok = next(e for e in plan["devices"] if e["status"] == "ok")
    ok["truth"]["violation"] = True
    after = summarize(plan, "method")[-1]
    assert (after["ok"], after["violations"]) == (rows["all"]["ok"] - 1, 1)
    assert after["ok"] + after["violations"] + after["infeasible"] + after["failed"] == len(
        plan["devices"]
    )
    l2o = [e for e in plan["devices"] if e["method"] == "l2o"]
    assert rows["l2o"]["failed"] == 1
    regrets = [e["truth"]["regret_pp"] for e in l2o if e["truth"]]
    assert rows["l2o"]["mean_regret_pp"] == pytest.approx(np.mean(regrets))
    fam = {r["family"]: r for r in summarize(plan, "family")}
    assert fam["all"]["measurements"] == sum(e["measurements"] for e in plan["devices"])


def test_empty_plan_gives_notes_not_errors():
    plan = {"format": "fleetnas-plan/1", "plan": "empty", "devices": []}
    figs = build_figures(plan)
    assert figs and not any(f.drawn for f in figs)
    assert all(f.note for f in figs)


# ---- rendering --------------------------------------------------------------------------------


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts += 1
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "action") and value is not None:
                self.refs.append((tag, name, value))


def test_render_report_writes_self_contained_html_and_pngs(report_data, tmp_path):
    html_path, png_dir = tmp_path / "report.html", tmp_path / "png"
    result = render_report(report_data.plan_path, html_path, png_dir, store=report_data.store)
    assert result.html == html_path and result.notes == {}
    page = html_path.read_text(encoding="utf-8")
    # plotly.js embedded exactly once
    js = get_plotlyjs()
    assert page.count(js[:300]) == 1 and page.count(js[-300:]) == 1
    refs = _Refs()
    refs.feed(page)
    external = [r for r in refs.refs if r[2].strip().lower().startswith(("http:", "https:", "//"))]
    assert external == []
    assert refs.scripts >= 2 + len(result.figures)
    # one figure div + JSON payload per drawn figure
    for key in result.figures:
        assert f"data-figure='{key}'" in page and f"id='fig-{key}-json'" in page
    assert len(result.figures) == 8  # fleet, 4 fronts, monotonicity, trace, measurements
    for family in ("server_cpu", "mobile_cpu", "fpga"):
        assert f"<td>{family}</td>" in page
    # PNGs: one per drawn figure, real images of the chosen resolution
    assert sorted(p.name for p in result.pngs) == sorted(f"{k}.png" for k in result.figures)
    for p in result.pngs:
        img = imread(p)
        assert img.shape[0] > 400 and img.shape[1] > 600
        assert img[..., :3].std() > 0.05  # not blank
    assert not list(png_dir.glob(".*"))  # no temporary files left


def test_html_escapes_plan_strings(plan, tmp_path):
    plan["plan"] = "<script>alert(1)</script>"
    plan["devices"][0]["family"] = "</script><b>x</b>"
    out = render_report(plan, tmp_path / "r.html").html.read_text()
    assert "<script>alert(1)</script>" not in out
    assert "</script><b>x</b>" not in out


def test_plotly_payload_is_plain_json(report_data, plan):
    for fig in build_figures(plan, report_data.store):
        if fig.drawn:
            payload = to_plotly(fig)
            text = json.dumps(payload, allow_nan=False)
            assert len(payload["data"]) == len(fig.series) + (fig.heatmap is not None)
            assert "NaN" not in text


def test_nothing_written_when_png_target_is_a_file(report_data, tmp_path):
    blocker = tmp_path / "png"
    blocker.write_text("a file")
    with pytest.raises(InputError, match="is a file"):
        render_report(copy.deepcopy(report_data.plan), tmp_path / "r.html", blocker)
    assert not (tmp_path / "r.html").exists()


def test_render_report_needs_a_target(plan):
    with pytest.raises(InputError, match="nothing to write"):
        render_report(plan)


def test_wall_time_is_the_plans_own_not_the_last_reusing_run(plan):
    plan["summary"].update(wall_s=0.419, run={"reused": len(plan["devices"])})
    value, label = plan_wall_s(plan)
    assert label.startswith("compute s") and value == pytest.approx(
        sum(e.get("wall_s") or 0 for e in plan["devices"])
    )
    plan["summary"]["plan_wall_s"] = 81.5
    assert plan_wall_s(plan) == (81.5, "plan wall s")
    del plan["summary"]["plan_wall_s"]
    plan["summary"]["run"] = {"reused": 0}
    assert plan_wall_s(plan) == (0.419, "plan wall s")
