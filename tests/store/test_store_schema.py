"""Schema versions: a store written by an older fleetnas is upgraded when opened."""

from __future__ import annotations

import sqlite3

import numpy as np
from store_toy_space import ToySpace

from fleetnas.store import MeasurementBatch, open_store
from fleetnas.store.schema import SCHEMA_VERSION


def test_version_1_store_gains_the_identity_column(tmp_path):
    path = tmp_path / "old.db"
    space = ToySpace()
    archs = space.sample(3, 0)
    with open_store(str(path)) as store, store.run("test") as run:
        run.add_measurements(MeasurementBatch(space, archs, "dev", "latency", [1.0, 2, 3], "ms"))
    con = sqlite3.connect(path)  # what version 1 of the schema looked like
    con.execute("ALTER TABLE measurement_batches DROP COLUMN identity")
    con.execute("UPDATE fleetnas_meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with open_store(str(path)) as store:
        assert store.device_identities("dev") == {None: 3}
        with store.run("test") as run:
            run.add_measurements(
                MeasurementBatch(space, archs[:1], "dev", "latency", [4.0], "ms", identity="k1")
            )
        assert store.device_identities("dev") == {None: 3, "k1": 1}
        assert np.allclose(store.get_measurements(space, "dev", "latency")[1], [4.0, 2, 3])
    con = sqlite3.connect(path)
    version = con.execute("SELECT value FROM fleetnas_meta WHERE key='schema_version'").fetchone()
    con.close()
    assert int(version[0]) == SCHEMA_VERSION == 2
