"""Scaffolding the benchmark scripts share: what machine ran them and how results are written.

Every script records the same environment (so numbers from different benchmarks can be compared
on the same footing) and writes its results as ``<stem>.json`` plus a ``<stem>.md`` table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleetnas.store.hostinfo import host_info


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages, rounded as ``/proc/loadavg`` shows them."""
    return [round(x, 2) for x in os.getloadavg()]


def environment(**extra: Any) -> dict[str, Any]:
    """Python, NumPy and torch versions, CPU model, core count, platform and the load average
    before the run (``load_before``), plus ``extra`` (e.g. thread counts)."""
    host = host_info()
    versions = host["versions"]
    return {
        "python": host["python"],
        "numpy": versions.get("numpy", "absent"),
        "torch": versions.get("torch", "absent"),
        "cpu": host["cpu_model"],
        "cores": host["cpu_count"],
        "platform": host["platform"],
        **extra,
        "load_before": load_average(),
    }


def write_results(
    stem: Path, res: dict[str, Any], markdown: str, default: Callable[[Any], Any] | None = None
) -> None:
    """Write ``res`` to ``stem.json`` and ``markdown`` to ``stem.md``, creating the folder;
    ``default`` converts what JSON cannot encode (as in :func:`json.dumps`)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1, default=default) + "\n")
    stem.with_suffix(".md").write_text(markdown if markdown.endswith("\n") else markdown + "\n")


#: This machine's measured runtime stacks (``benchmarks/stacks.py``), one exchange CSV per space.
STACKS = Path(__file__).resolve().parent / "results" / "stacks"


def stack_medians(space: str, folder: Path = STACKS, min_designs: int = 1) -> dict[str, Any]:
    """``{stack device: pandas Series of median latency (ms) by native design string}`` from
    every exchange file under ``folder`` holding ``space`` (the stacks tables also hold each
    session's value: only the median, or the mean where a file has no median, is read).
    Stacks with fewer than ``min_designs`` designs are left out."""
    from fleetnas.data.exchange import read_table

    out: dict[str, Any] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".csv", ".parquet", ".pq"):
            continue
        frame = read_table(path, space=space)
        frame = frame[(frame["space"] == space) & (frame["metric"] == "latency")]
        if "statistic" in frame:
            stats = set(frame["statistic"])
            frame = frame[frame["statistic"] == ("median" if "median" in stats else "mean")]
        for dev, rows in frame.groupby("device"):
            if len(rows) >= min_designs:
                out[str(dev)] = rows.set_index("architecture")["value"].astype(float)
    return out


class HelpNB201:
    """NAS-Bench-201 with HELP's latencies and the exact CIFAR-10 accuracies, in a memory store:
    ``space``, every design (``archs``, in code order), ``acc`` of each, HELP's device names
    (``devices``) and each one's ``lat`` vector over ``archs`` (NaN where not measured)."""

    def __init__(self) -> None:
        import numpy as np

        from fleetnas.data import import_help, import_nats
        from fleetnas.devices.catalog import help_devices
        from fleetnas.predict import TableLookup
        from fleetnas.proxy import design_codes
        from fleetnas.spaces import get_space
        from fleetnas.store import open_store

        self.store = open_store("memory://")
        import_help(self.store, None, "nb201")
        import_nats(self.store, None)
        self.space = get_space("nb201")
        self.archs = self.space.enumerate()
        self.acc_table = TableLookup.nb201_accuracy(store=self.store)
        self.acc = self.acc_table.predict(self.archs)
        self.devices = [d.name for d in help_devices("nb201")]
        self.lat: dict[str, np.ndarray] = {}
        for d in self.devices:
            a, v = self.store.get_measurements(self.space, d, "latency", statistic="mean")
            x = np.full(self.space.size, np.nan)
            x[design_codes(self.space, a)] = v
            self.lat[d] = x
