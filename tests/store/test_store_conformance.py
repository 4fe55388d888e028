"""The Store conformance suite: the same behaviour from every backend (see conftest.py)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest
from store_toy_space import RenamedChoicesSpace, ToySpace

from fleetnas.devices import Device
from fleetnas.errors import InputError, StoreError, UnknownNameError
from fleetnas.store import (
    MEASUREMENT_COLUMNS,
    SUMMARY_COLUMNS,
    Artifact,
    MeasurementBatch,
    Store,
)
from fleetnas.store.base import COUNTED

PIXEL = Device("pixel2", "mobile_cpu", {"cores": 8, "clock_ghz": 2.35}, measurer="table:pixel2")
GPU = Device("titan_1", "desktop_gpu", {"batch_size": 1, "memory_gb": 24.0})


def batch(space, archs, values, device="pixel2", metric="latency", **kw) -> MeasurementBatch:
    kw.setdefault("unit", "ms")
    return MeasurementBatch(space, archs, device, metric, values, **kw)


def write(store: Store, *batches: MeasurementBatch, devices=(), kind="test", key=None) -> None:
    with store.run(kind, {"n": len(batches)}, key=key) as run:
        for d in devices:
            run.add_device(d)
        for b in batches:
            run.add_measurements(b)


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(COUNTED, 0)


# ---- devices ------------------------------------------------------------------------------------
def test_devices_round_trip_and_update_by_name(store):
    write(store, devices=[PIXEL, GPU])
    assert store.get_device("pixel2") == PIXEL
    assert store.get_device("pixel2").fingerprint == PIXEL.fingerprint
    assert [d.name for d in store.list_devices()] == ["pixel2", "titan_1"]
    assert store.list_devices("desktop_gpu") == [GPU]
    newer = Device("pixel2", "mobile_cpu", {"cores": 4}, description="big cores only")
    store.add_device(newer)
    assert store.get_device("pixel2") == newer
    assert len(store.list_devices()) == 2


def test_unknown_device_names_what_exists(store, space):
    store.add_device(PIXEL)
    with pytest.raises(UnknownNameError, match=r"unknown device 'pixel3'.*pixel2"):
        store.get_device("pixel3")
    with pytest.raises(UnknownNameError, match="pixel3"):
        store.get_measurements(space, "pixel3", "latency")


def test_measuring_an_unknown_device_registers_it(store, space):
    write(store, batch(space, space.sample(3, rng=0), [1.0, 2.0, 3.0], device="newbox"))
    assert store.get_device("newbox") == Device("newbox")
    store.add_device(Device("newbox", "embedded_cpu", {"cores": 2}))
    assert store.get_device("newbox").family == "embedded_cpu"


# ---- measurements -------------------------------------------------------------------------------
def test_measurements_round_trip(store, space):
    archs = space.enumerate()[::7]
    values = np.linspace(1.0, 9.0, len(archs))
    write(store, batch(space, archs, values, n=5, method="table:help", is_estimate=False))
    got_archs, got = store.get_measurements(space, "pixel2", "latency")
    order = np.lexsort(got_archs.T[::-1])
    expected = np.lexsort(archs.T[::-1])
    np.testing.assert_array_equal(got_archs[order], archs[expected])
    np.testing.assert_allclose(got[order], values[expected])
    assert got_archs.dtype == np.int64


def test_get_measurements_with_archs_keeps_their_order(store, space):
    archs = space.enumerate()[:50]
    write(store, batch(space, archs, np.arange(50.0)))
    unmeasured = space.enumerate()[-1]
    ask = np.stack([archs[40], unmeasured, archs[3], archs[40]])
    got_archs, got = store.get_measurements(space, "pixel2", "latency", archs=ask)
    np.testing.assert_array_equal(got_archs, ask[[0, 2, 3]])
    np.testing.assert_allclose(got, [40.0, 3.0, 40.0])


def test_statistic_and_metric_are_separate_series(store, space):
    archs = space.sample(20, rng=1)
    write(
        store,
        batch(space, archs, np.full(20, 2.0), statistic="median"),
        batch(space, archs, np.full(20, 3.0), statistic="p90"),
        batch(space, archs, np.full(20, 70.0), metric="accuracy", unit="%"),
    )
    assert np.all(store.get_measurements(space, "pixel2", "latency")[1] == 2.0)
    assert np.all(store.get_measurements(space, "pixel2", "latency", "p90")[1] == 3.0)
    assert np.all(store.get_measurements(space, "pixel2", "accuracy")[1] == 70.0)
    assert len(store.get_measurements(space, "pixel2", "energy")[1]) == 0


def test_newest_value_wins(store, space):
    archs = space.enumerate()[:30]
    write(store, batch(space, archs, np.full(30, 1.0)))
    write(store, batch(space, archs[10:20], np.full(10, 2.0)))
    with store.run("twice") as run:
        run.add_measurements(batch(space, archs[15:20], np.full(5, 3.0)))
        run.add_measurements(batch(space, archs[18:20], np.full(2, 4.0)))
    got_archs, got = store.get_measurements(space, "pixel2", "latency", archs=archs)
    np.testing.assert_array_equal(got_archs, archs)
    expected = np.array([1.0] * 10 + [2.0] * 5 + [3.0] * 3 + [4.0] * 2 + [1.0] * 10)
    np.testing.assert_allclose(got, expected)
    assert len(store.get_measurements(space, "pixel2", "latency")[1]) == 30


def test_a_series_read_again_sees_writes_from_another_handle(backend, space):
    """Reads may be cached per handle; a batch written through another handle (another
    process, the driver of a plan) is seen by the next read, and callers may change what
    they got without changing later answers."""
    reader, writer = backend.open(), backend.open()
    archs = space.enumerate()[:20]
    write(writer, batch(space, archs, np.full(20, 1.0)), devices=[PIXEL])
    got_archs, got = reader.get_measurements(space, "pixel2", "latency")
    assert np.all(got == 1.0) and len(got) == 20
    got[:] = -5.0
    got_archs[:] = 0
    again_archs, again = reader.get_measurements(space, "pixel2", "latency")
    np.testing.assert_array_equal(again, np.full(20, 1.0))
    assert len({a.tobytes() for a in again_archs}) == 20
    write(writer, batch(space, archs[:5], np.full(5, 7.0)))
    np.testing.assert_allclose(
        reader.get_measurements(space, "pixel2", "latency", archs=archs[:6])[1],
        [7.0] * 5 + [1.0],
    )
    extra = space.enumerate()[20:23]
    write(writer, batch(space, extra, np.full(3, 2.0)))
    assert len(reader.get_measurements(space, "pixel2", "latency")[1]) == 23


def test_series_info_gives_unit_and_estimate(store, space):
    archs = space.sample(10, rng=11)
    write(store, batch(space, archs, np.ones(10), is_estimate=False), devices=[PIXEL])
    assert store.series_info(space, "pixel2", "latency", "median") == ("ms", False)
    write(store, batch(space, archs[:4], np.ones(4), statistic="p90", is_estimate=True))
    assert store.series_info(space, "pixel2", "latency", "p90") == ("ms", True)
    write(store, batch(space, archs[:2], np.ones(2), metric="energy", unit="mJ"))
    assert store.series_info(space, "pixel2", "energy", "median") == ("mJ", True)
    assert store.series_info(space, "pixel2", "latency", "mean") is None
    assert store.series_info(space, "pixel2", "accuracy", "median") is None


def test_bulk_batches_over_the_whole_space(store, space):
    """Large batches take the bulk path (all architectures new, then all known)."""
    archs = space.enumerate()
    rng = np.random.default_rng(0)
    first, second = rng.random(len(archs)), rng.random(len(archs))
    write(store, batch(space, archs, first), batch(space, archs, second, device="titan_1"))
    write(store, batch(space, archs[::-1], first[::-1] + 1.0))
    a, v = store.get_measurements(space, "pixel2", "latency")
    assert len(a) == len(archs) == store.counts()["architectures"]
    lookup = {tuple(x): y for x, y in zip(archs.tolist(), first + 1.0, strict=True)}
    np.testing.assert_allclose(v, [lookup[tuple(x)] for x in a.tolist()])
    assert store.counts()["measurements"] == 3 * len(archs)


def test_measurements_frame_is_the_long_form(store, space):
    archs = space.sample(6, rng=2)
    write(
        store,
        batch(space, archs, np.arange(6.0), n=np.arange(1, 7), method="ort", is_estimate=False),
        batch(space, archs[:2], [50.0, 60.0], device="titan_1", metric="accuracy", unit="%"),
        devices=[PIXEL, GPU],
    )
    frame = store.measurements_frame()
    assert tuple(frame.columns) == MEASUREMENT_COLUMNS
    assert len(frame) == 8
    lat = frame[frame.metric == "latency"].sort_values("value")
    assert list(lat.architecture) == space.format_many(archs)
    assert list(lat.n) == [1, 2, 3, 4, 5, 6]
    assert set(lat.method) == {"ort"} and not lat.is_estimate.any()
    assert set(lat.unit) == {"ms"} and set(frame.space) == {"toy"}
    assert frame.run.nunique() == 1 and frame.run.iloc[0] == store.list_runs()[0].id
    assert str(frame.timestamp.dt.tz) == "UTC"
    only = store.measurements_frame(space, devices=["titan_1"], metrics=["accuracy"])
    assert sorted(only.value) == [50.0, 60.0]
    assert store.measurements_frame(devices=["nobody"]).empty
    assert tuple(store.measurements_frame(devices=["nobody"]).columns) == MEASUREMENT_COLUMNS


def test_measurement_summary_counts(store, space):
    archs = space.sample(10, rng=3)
    write(store, batch(space, archs, np.ones(10), is_estimate=False))
    write(store, batch(space, archs[:4], np.ones(4), is_estimate=True))
    summary = store.measurement_summary()
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    row = summary.iloc[0]
    assert (row.space, row.device, row.metric) == ("toy", "pixel2", "latency")
    assert (row["count"], row.archs) == (14, len(np.unique(archs, axis=0)))
    assert math.isclose(row.estimate_share, 4 / 14)
    assert row.newest >= pd.Timestamp(store.list_runs()[-1].started)
    assert str(row.newest.tz) == "UTC"


def test_nan_and_inf_rejected_with_a_clear_error(store, space):
    archs = space.sample(3, rng=4)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(InputError, match=r"row 1.*finite"), store.run("bad") as run:
            run.add_measurements(batch(space, archs, [1.0, bad, 2.0]))
    assert store.counts() == empty_counts()


def test_unit_must_match_the_stored_series(store, space):
    archs = space.sample(3, rng=5)
    write(store, batch(space, archs, [1.0, 2.0, 3.0], unit="ms"))
    with pytest.raises(InputError, match=r"stored in 'ms'.*'s'"):
        write(store, batch(space, archs, [0.001, 0.002, 0.003], unit="s"))


def test_space_description_mismatch_is_refused(store, space):
    archs = space.sample(3, rng=6)
    write(store, batch(space, archs, [1.0, 2.0, 3.0]))
    other = RenamedChoicesSpace()
    with pytest.raises(StoreError, match=r"space 'toy'.*different description.*width"):
        write(store, batch(other, archs, [1.0, 2.0, 3.0]))
    with pytest.raises(StoreError, match="different description"):
        store.get_measurements(other, "pixel2", "latency")
    assert store.counts()["measurements"] == 3


def test_space_without_data_gives_empty_arrays(store, space):
    store.add_device(PIXEL)
    archs, values = store.get_measurements(space, "pixel2", "latency")
    assert archs.shape == (0, space.n_decisions) and values.shape == (0,)
    assert store.measurements_frame(space).empty


# ---- runs and transactions ----------------------------------------------------------------------
def test_runs_record_config_and_host(store, space):
    write(store, batch(space, space.sample(2, rng=7), [1.0, 2.0]), kind="import", key="k1")
    store.add_device(GPU)
    runs = store.list_runs()
    assert [r.kind for r in runs] == ["import", "device"]
    r = store.list_runs("import")[0]
    assert r.key == "k1" and r.config == {"n": 1} and r.status == "complete"
    assert r.finished is not None and r.finished >= r.started and r.started.tzinfo is not None
    assert {"hostname", "python", "versions", "cpu_model", "cpu_count"} <= set(r.host)
    assert "numpy" in r.host["versions"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_error_inside_a_run_leaves_nothing(store, space, error):
    with pytest.raises(error), store.run("doomed", key="doomed") as run:
        run.add_device(PIXEL)
        run.add_measurements(batch(space, space.enumerate(), np.ones(space.size)))
        run.save_artifact(Artifact("p", "predictor", b"weights"))
        run.save_plan_entries("fleet", [{"device": "pixel2", "design": "x"}])
        raise error("boom")
    assert store.counts() == empty_counts()
    assert store.list_runs() == [] and not store.has_run("doomed")
    assert store.list_devices() == [] and store.list_artifacts() == []
    assert store.get_plan("fleet") == []
    write(store, batch(space, space.enumerate()[:5], np.ones(5)), key="doomed")
    assert store.has_run("doomed")
    assert store.counts()["architectures"] == 5


def test_a_failed_write_inside_a_run_rolls_back_the_earlier_writes(store, space):
    archs = space.sample(4, rng=8)
    with pytest.raises(InputError), store.run("partial") as run:
        run.add_device(GPU)
        run.add_measurements(batch(space, archs, np.ones(4), device="titan_1"))
        run.add_measurements(batch(space, archs, [1.0, 2.0, float("nan"), 4.0]))
    assert store.counts() == empty_counts()


def test_keyed_runs_are_idempotent(store, space):
    key = "import:help:nb201:v1"
    assert not store.has_run(key)
    write(store, batch(space, space.sample(5, rng=9), np.ones(5)), key=key)
    assert store.has_run(key)
    with pytest.raises(StoreError, match=r"already completed.*has_run"):
        write(store, batch(space, space.sample(5, rng=9), np.ones(5)), key=key)
    assert store.counts()["runs"] == 1
    assert store.counts()["measurements"] == 5


def test_writes_after_the_run_closed_are_refused(store, space):
    with store.run("short") as run:
        pass
    with pytest.raises(StoreError, match="closed"):
        run.add_measurements(batch(space, space.sample(1, rng=0), [1.0]))


def test_runs_do_not_nest(store):
    with pytest.raises(StoreError, match="nest"), store.run("outer"):
        store.add_device(PIXEL)
    assert store.counts() == empty_counts()


def test_bad_run_arguments(store):
    with pytest.raises(InputError, match="JSON"), store.run("x", {"f": object()}):
        pass
    with pytest.raises(InputError, match="run kind"), store.run(""):
        pass


# ---- artifacts ----------------------------------------------------------------------------------
def test_artifacts_round_trip_newest_wins(store):
    with store.run("train") as run:
        sha1 = run.save_artifact(Artifact("acc", "predictor", b"\x00v1", {"epochs": 10}))
    with store.run("train") as run:
        sha2 = run.save_artifact(Artifact("acc", "predictor", b"\x00v2" * 1000, {"epochs": 20}))
        run.save_artifact(Artifact("l2o", "optimizer", b"opt"))
    assert sha1 == hashlib.sha256(b"\x00v1").hexdigest() and sha2 != sha1
    art = store.load_artifact("acc", "predictor")
    assert art.payload == b"\x00v2" * 1000 and art.meta == {"epochs": 20} and art.sha256 == sha2
    assert art.created is not None and art.created.tzinfo is not None
    listed = store.list_artifacts()
    assert [(a.kind, a.name, a.sha256, a.payload) for a in listed] == [
        ("optimizer", "l2o", hashlib.sha256(b"opt").hexdigest(), b""),
        ("predictor", "acc", sha2, b""),
    ]
    assert [a.name for a in store.list_artifacts("optimizer")] == ["l2o"]


def test_unknown_artifact(store):
    with pytest.raises(UnknownNameError, match="no 'predictor' artifacts"):
        store.load_artifact("acc", "predictor")
    with store.run("train") as run:
        run.save_artifact(Artifact("acc", "predictor", b"w"))
    with pytest.raises(UnknownNameError, match=r"unknown predictor artifact 'lat'.*acc"):
        store.load_artifact("lat", "predictor")
    with pytest.raises(InputError, match="bytes"), store.run("train") as run:
        run.save_artifact(Artifact("x", "predictor", "not bytes"))  # type: ignore[arg-type]


# ---- plans --------------------------------------------------------------------------------------
def test_plans_upsert_per_device(store):
    with store.run("plan") as run:
        run.save_plan_entries(
            "fleet-a",
            [
                {
                    "device": "pixel2",
                    "design": "d1",
                    "method": "proxy",
                    "status": "ok",
                    "acc": 70.1,
                },
                {"device": "eyeriss", "design": "d2", "method": "l2o", "latency_ms": 3.5},
            ],
        )
        run.save_plan_entries("fleet-b", [{"device": "pixel2", "design": "d9"}])
    with store.run("plan") as run:
        run.save_plan_entries("fleet-a", [{"device": "pixel2", "design": "d3", "status": "ok"}])
    plan = store.get_plan("fleet-a")
    assert [e["device"] for e in plan] == ["eyeriss", "pixel2"]
    assert plan[1] == {"device": "pixel2", "design": "d3", "status": "ok"}
    assert plan[0]["latency_ms"] == 3.5
    assert store.list_plans() == ["fleet-a", "fleet-b"]
    assert store.get_plan("nope") == []
    assert store.counts()["plans"] == 3
    with pytest.raises(InputError, match="'device'"), store.run("plan") as run:
        run.save_plan_entries("fleet-a", [{"design": "no device"}])


# ---- concurrency --------------------------------------------------------------------------------
def test_readers_see_only_committed_data_while_a_run_is_open(backend, space):
    import threading
    import time

    writer_store = backend.open()
    reader = backend.open()
    archs = space.sample(8, rng=10)
    write(writer_store, batch(space, archs, np.ones(8)), devices=[PIXEL])
    inside, release, errors = threading.Event(), threading.Event(), []

    def writer() -> None:
        try:
            with writer_store.run("slow") as run:
                run.add_measurements(batch(space, archs, np.full(8, 2.0)))
                run.add_device(GPU)
                inside.set()
                release.wait(30)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert inside.wait(30)
        start = time.perf_counter()
        _, values = reader.get_measurements(space, "pixel2", "latency", archs=archs)
        names = [d.name for d in reader.list_devices()]
        n_runs = len(reader.list_runs())
        assert time.perf_counter() - start < 10
    finally:
        release.set()
        thread.join(30)
    assert not errors
    np.testing.assert_allclose(values, 1.0)
    assert names == ["pixel2"] and n_runs == 1
    np.testing.assert_allclose(reader.get_measurements(space, "pixel2", "latency")[1], 2.0)
    assert [d.name for d in reader.list_devices()] == ["pixel2", "titan_1"]


def test_two_writers_queue_instead_of_failing(backend, space):
    import threading

    first, second = backend.open(), backend.open()
    archs = space.sample(5, rng=11)
    inside, errors = threading.Event(), []

    def slow_writer() -> None:
        try:
            with first.run("first") as run:
                run.add_measurements(batch(space, archs, np.full(5, 1.0)))
                inside.set()
                threading.Event().wait(0.5)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert inside.wait(30)
    write(second, batch(space, archs, np.full(5, 2.0)), kind="second")
    thread.join(30)
    assert not errors
    assert [r.kind for r in second.list_runs()] == ["first", "second"]
    np.testing.assert_allclose(second.get_measurements(space, "pixel2", "latency")[1], 2.0)


def test_toy_space_helper_is_sane(space):
    assert isinstance(space, ToySpace) and space.size == 2304
    a = space.enumerate()
    assert space.parse_many(space.format_many(a[:100])).tolist() == a[:100].tolist()


def test_per_row_extra_is_validated_and_stored(store, space):
    archs = space.sample(3, rng=12)
    extras = [{"threads": 1}, None, {"note": "tab\there\nnewline \\ backslash"}]
    write(store, batch(space, archs, [1.0, 2.0, 3.0], extra=extras))
    assert store.counts()["measurements"] == 3
    with pytest.raises(InputError, match="extra of row 0"), store.run("bad") as run:
        run.add_measurements(
            batch(space, archs, [1.0, 2.0, 3.0], extra=[{"x": {1, 2}}, None, None])
        )


# ---- identities -----------------------------------------------------------------------------
def test_device_identities_count_rows_per_identity(store, space):
    archs = space.sample(4, 0)
    assert store.device_identities("pixel2") == {}
    write(store, batch(space, archs, [1.0, 2, 3, 4]), batch(space, archs[:2], [5.0, 6]))
    assert store.device_identities("pixel2") == {None: 6}
    write(store, batch(space, archs[:3], [1.0, 2, 3], identity="aa11"))
    write(store, batch(space, archs[:1], [9.0], identity="bb22", device="titan_1"))
    assert store.device_identities("pixel2") == {None: 6, "aa11": 3}
    assert store.device_identities("titan_1") == {"bb22": 1}
    with pytest.raises(InputError, match="identity must be"):
        write(store, batch(space, archs[:1], [1.0], identity="x" * 65))
