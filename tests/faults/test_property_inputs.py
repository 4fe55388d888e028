"""Property-based tests of the public readers (issue 18, fault suite): whatever bytes an
exchange file, a fleet file or a measurer spec holds, fleetnas either accepts them with every
invariant holding or raises one :class:`~fleetnas.errors.FleetnasError` of one line, never
another exception. Bounded in examples so the suite stays fast."""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetnas.data.exchange import read_table
from fleetnas.data.units import MAX_LATENCY_MS
from fleetnas.devices.names import unsafe_device_name
from fleetnas.errors import FleetnasError, InputError
from fleetnas.fleet import read_fleet
from fleetnas.measure import get_measurer
from fleetnas.spaces import get_space
from fleetnas.store import InMemoryStore

#: Examples run per test (read by benchmarks/faults.py for its figures).
FUZZED: Counter[str] = Counter()
#: Examples per test: ``FLEETNAS_FUZZ_EXAMPLES`` (benchmarks/faults.py raises it), else 60.
EXAMPLES = int(os.environ.get("FLEETNAS_FUZZ_EXAMPLES", "60"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NB201 = get_space("nb201")
ARCHS = NB201.format_many(NB201.sample(8, 0))

cells = st.one_of(
    st.text(max_size=12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.sampled_from(["", "nan", "NaN", "inf", "-1", "0", "1e308", "ms", "s", "%", "../x", *ARCHS]),
)
columns = st.sampled_from(
    ["space", "architecture", "device", "metric", "value", "unit", "statistic", "n",
     "is_estimate", "method", "d1", "d1[latency:ms]", "d[energy:J:mean]", "x[bad"]
)  # fmt: skip


def _one_line_error(exc: BaseException, path: Path) -> None:
    assert isinstance(exc, FleetnasError), f"{type(exc).__name__}: {exc}"
    assert "\n" not in str(exc) and str(path) in str(exc), str(exc)


def _check_frame(frame: pd.DataFrame) -> None:
    """What every accepted file must give: finite values in range, units of the whitelist
    converted, safe device names, no repeated key."""
    assert np.isfinite(frame["value"].to_numpy(dtype=float)).all()
    lat = frame["metric"].str.startswith("latency").to_numpy()
    v = frame["value"].to_numpy(dtype=float)
    assert ((v[lat] > 0) & (v[lat] <= MAX_LATENCY_MS)).all()
    assert set(frame.loc[lat, "unit"]) <= {"ms"}
    assert all(unsafe_device_name(d) is None for d in frame["device"])
    key = ["space", "architecture", "device", "metric", "statistic"]
    assert not frame.duplicated(key).any()


@SETTINGS
@given(
    header=st.lists(columns, min_size=1, max_size=8),
    body=st.lists(st.lists(cells, min_size=1, max_size=8), max_size=6),
)
def test_exchange_reader_accepts_or_names_the_problem(tmp_path_factory, header, body):
    FUZZED["exchange_reader_accepts_or_names_the_problem"] += 1
    path = tmp_path_factory.mktemp("x") / "f.csv"
    width = len(header)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        out.writerows([str(c) for c in (r * width)[:width]] for r in body)
    try:
        frame = read_table(path, space="nb201")
    except Exception as exc:
        _one_line_error(exc, path)
        return
    _check_frame(frame)


@SETTINGS
@given(data=st.binary(max_size=400))
def test_exchange_reader_survives_arbitrary_bytes(tmp_path_factory, data):
    FUZZED["exchange_reader_survives_arbitrary_bytes"] += 1
    for suffix in (".csv", ".parquet"):
        path = tmp_path_factory.mktemp("b") / f"f{suffix}"
        path.write_bytes(data)
        try:
            frame = read_table(path, space="nb201")
        except Exception as exc:
            _one_line_error(exc, path)
            continue
        _check_frame(frame)


@SETTINGS
@given(
    values=st.lists(st.floats(1e-6, 1e6), min_size=1, max_size=8),
    unit=st.sampled_from(["ms", "s", "us", "ns"]),
)
def test_valid_latencies_round_trip_in_store_units(tmp_path_factory, values, unit):
    FUZZED["valid_latencies_round_trip_in_store_units"] += 1
    path = tmp_path_factory.mktemp("v") / "f.csv"
    n = len(values)
    pd.DataFrame(
        {"architecture": ARCHS[:n], "device": "d1", "metric": "latency", "value": values,
         "unit": unit}
    ).iloc[: len(set(ARCHS[:n]))].to_csv(path, index=False)  # fmt: skip
    factor = {"ms": 1.0, "s": 1e3, "us": 1e-3, "ns": 1e-6}[unit]
    try:
        frame = read_table(path, space="nb201")
    except InputError as exc:  # only the range may refuse a valid-looking number
        assert "out of range" in str(exc)
        assert any(not 0 < v * factor <= MAX_LATENCY_MS for v in values)
        return
    got = frame["value"].to_numpy()
    want = np.asarray(values[: len(got)]) * factor
    assert np.allclose(got, want, rtol=1e-12) and set(frame["unit"]) == {"ms"}


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=10),
    st.sampled_from(["p50", "p101", "p-1", "pixel2", "sim:family=npu", "table:x", "agent:"]),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "devices",
                    "budgets",
                    "latency_ms",
                    "energy_mj",
                    "label",
                    "family",
                    "features",
                    "measurer",
                    "catalog",
                    "proxy",
                    "defaults",
                    "cores",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=20,
)


@SETTINGS
@given(doc=yaml_values)
def test_fleet_yaml_accepts_or_names_the_problem(tmp_path_factory, doc):
    FUZZED["fleet_yaml_accepts_or_names_the_problem"] += 1
    import yaml

    path = tmp_path_factory.mktemp("f") / "fleet.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        fleet = read_fleet(path)
    except Exception as exc:
        assert isinstance(exc, FleetnasError), f"{type(exc).__name__}: {exc}"
        assert "\n" not in str(exc).strip(), str(exc)
        return
    keys = [k for d in fleet for k in d.keys()]  # noqa: SIM118 (FleetDevice.keys)
    assert len(keys) == len(set(keys)) == fleet.n_tasks


@SETTINGS
@given(text=st.text(max_size=300))
def test_fleet_files_survive_arbitrary_text(tmp_path_factory, text):
    FUZZED["fleet_files_survive_arbitrary_text"] += 1
    for suffix in (".yaml", ".csv"):
        path = tmp_path_factory.mktemp("t") / f"fleet{suffix}"
        path.write_text(text, encoding="utf-8")
        try:
            read_fleet(path)
        except Exception as exc:
            assert isinstance(exc, FleetnasError), f"{type(exc).__name__}: {exc}"


spec_kinds = st.sampled_from(["sim", "table", "onnxruntime", "torch", "nosuch", "", "agent"])
spec_args = st.one_of(
    st.text(max_size=40),
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "family",
                    "peak_gflops",
                    "threads",
                    "batch",
                    "precision",
                    "x",
                    "retries",
                    "token",
                    "seed",
                    "",
                ]
            ),
            st.one_of(st.text(max_size=6), st.floats(allow_nan=True).map(str)),
        ),
        max_size=4,
    ).map(lambda kv: ",".join(f"{k}={v}" for k, v in kv)),
)


@SETTINGS
@given(kind=spec_kinds, arg=spec_args)
def test_measurer_specs_parse_or_name_the_problem(kind, arg):
    FUZZED["measurer_specs_parse_or_name_the_problem"] += 1
    if kind == "agent":  # no server behind it: only the parsing before any connection
        arg = "ftp://nowhere#" + arg
    spec = f"{kind}:{arg}" if arg else kind
    try:
        m = get_measurer(spec, store=InMemoryStore())
    except Exception as exc:
        assert isinstance(exc, FleetnasError), f"{spec!r}: {type(exc).__name__}: {exc}"
        return
    assert m.device.name and isinstance(m.device.measurer, str)


@pytest.mark.parametrize("bad", ["", " ", ":", "sim:family=", "table:", "x" * 10_000])
def test_measurer_spec_edge_cases(bad):
    with pytest.raises(FleetnasError):
        get_measurer(bad, store=InMemoryStore())
