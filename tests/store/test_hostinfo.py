from __future__ import annotations

import json
import os

from fleetnas.store import host_info


def test_host_info_is_json_and_describes_this_host(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    info = host_info()
    json.dumps(info)
    assert info["cpu_count"] == os.cpu_count()
    assert info["python"].count(".") == 2
    assert {"numpy", "sqlalchemy"} <= set(info["versions"])
    assert info["thread_env"] == {"OMP_NUM_THREADS": "2"}
    if hasattr(os, "sched_getaffinity"):
        assert info["affinity"] == sorted(os.sched_getaffinity(0))
    assert isinstance(info["cpu_model"], str) and info["cpu_model"]
