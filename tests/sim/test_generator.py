"""Synthetic fleets: reproducible, family-shaped, diverse enough to flip rankings."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.stats import spearmanr

from fleetnas.devices import FAMILIES
from fleetnas.errors import InputError
from fleetnas.sim import (
    DEFAULT_MIX,
    FAMILY_PRIORS,
    fleet_around,
    generate_fleet,
    latency_matrix,
    sample_model,
)
from fleetnas.sim.generator import PRECISION_SPEEDUP
from fleetnas.spaces import Decision, Layer, SearchSpace


def test_same_seed_same_fleet_and_mix_is_respected() -> None:
    a = generate_fleet(200, rng=5)
    b = generate_fleet(200, rng=5)
    c = generate_fleet(200, rng=6)
    assert [d.model for d in a] == [d.model for d in b]
    assert [d.model for d in a] != [d.model for d in c]
    assert len({d.name for d in a}) == 200
    counts = Counter(d.model.family for d in a)
    for fam, share in DEFAULT_MIX.items():
        assert abs(counts[fam] - share * 200) <= 1
    only = generate_fleet(7, rng=1, families=["npu", "microcontroller"])
    assert {d.model.family for d in only} == {"npu", "microcontroller"}


def test_every_family_yields_valid_devices_with_consistent_specs() -> None:
    rng = np.random.default_rng(0)
    for fam, prior in FAMILY_PRIORS.items():
        assert fam in FAMILIES
        for _ in range(20):
            m = sample_model(fam, rng)
            dev_features = m.to_features()
            lo = prior["cores"][0] * prior["clock_ghz"][0] * prior["flops_per_cycle"][0]
            hi = prior["cores"][1] * prior["clock_ghz"][1] * prior["flops_per_cycle"][1]
            speed = PRECISION_SPEEDUP[m.precision]
            assert lo * speed * 0.99 <= m.peak_gflops <= hi * speed * 1.01
            per_core_cycle = m.peak_gflops / (m.cores * m.clock_ghz * speed)
            assert prior["flops_per_cycle"][0] * 0.7 <= per_core_cycle
            assert per_core_cycle <= prior["flops_per_cycle"][1] * 1.3 + 1e-9
            assert m.precision in prior["precision"] and m.batch_size in prior["batch_size"]
            assert m.eff_pwconv <= 1.0 and m.eff_pwconv <= m.eff_conv * 1.0 + 1e-12
            assert dev_features["tdp_w"] > m.static_power_w * 0.999


def test_desktop_gpus_come_at_three_batch_sizes() -> None:
    fleet = generate_fleet(60, rng=2, families=["desktop_gpu"])
    assert {d.model.batch_size for d in fleet} == {1, 32, 256}
    assert all(d.device.features["batch_size"] == d.model.batch_size for d in fleet)


def test_npu_dislikes_depthwise() -> None:
    dw = Layer("dwconv", 256, 256, 56, 56, kernel=3, groups=256)
    pw = Layer("pwconv", 256, 256, 56, 56)
    space = _PairSpace(dw, pw)
    archs = np.array([[0], [1]])

    def ratio(fam: str) -> np.ndarray:
        fleet = generate_fleet(40, rng=3, families=[fam])
        lat = latency_matrix([d.model for d in fleet], space, archs)
        return lat[:, 0] / lat[:, 1]

    # a depthwise conv has 9/256 of the pointwise FLOPs; on an NPU it costs about as much
    npu, cpu = np.median(ratio("npu")), np.median(ratio("mobile_cpu"))
    assert npu > 0.5
    assert npu > 10 * cpu


def test_rankings_flip_between_families(nb201, nb201_archs) -> None:
    fleet = generate_fleet(70, rng=4)
    lat = latency_matrix([d.model for d in fleet], nb201, nb201_archs)
    rho = spearmanr(lat.T).statistic
    iu = np.triu_indices(len(fleet), 1)
    assert np.all(rho[iu] < 1.0)
    assert np.quantile(rho[iu], 0.1) < 0.8
    fams = np.array([d.model.family for d in fleet])
    gpu1 = np.flatnonzero((fams == "desktop_gpu") & [d.model.batch_size == 1 for d in fleet])
    mcu = np.flatnonzero(fams == "microcontroller")
    assert len(gpu1) and len(mcu)
    within = rho[np.ix_(mcu, mcu)][np.triu_indices(len(mcu), 1)]
    across = rho[np.ix_(gpu1, mcu)]
    assert np.median(across) < np.median(within)


def test_fleet_around_keeps_identity_and_perturbs_parameters() -> None:
    bases = generate_fleet(3, rng=9, families=["desktop_gpu", "mobile_cpu", "npu"])
    same = fleet_around(bases, 6, rng=1, spread=0.0)
    assert [d.model for d in same] == [b.model for b in bases] * 2
    drawn = fleet_around(bases, 300, rng=1, spread=0.3)
    assert drawn == fleet_around(bases, 300, rng=1, spread=0.3)
    for i, d in enumerate(drawn):
        base = bases[i % 3].model
        assert (d.model.family, d.model.batch_size, d.model.precision) == (
            base.family,
            base.batch_size,
            base.precision,
        )
        assert d.model.clock_ghz / base.clock_ghz == pytest.approx(
            d.model.peak_gflops / base.peak_gflops
        )
    logs = np.log([[d.model.knee / bases[i % 3].model.knee] for i, d in enumerate(drawn)])
    assert 0.2 < logs.std() < 0.4
    assert generate_fleet(4, rng=1, around=bases, spread=0.3) == fleet_around(
        bases, 4, rng=np.random.default_rng(1), spread=0.3
    )


def test_bad_requests_raise_input_errors() -> None:
    with pytest.raises(InputError, match="quantum"):
        generate_fleet(3, rng=0, families=["quantum"])
    with pytest.raises(InputError, match="quantum"):
        sample_model("quantum")
    with pytest.raises(InputError, match="n must be"):
        generate_fleet(-1)
    with pytest.raises(InputError, match="at least one device"):
        fleet_around([], 3)


class _PairSpace(SearchSpace):
    """A two-design space whose designs are single given layers (to price one layer)."""

    decisions = (Decision("layer", ("first", "second")),)

    def __init__(self, first: Layer, second: Layer) -> None:
        self.pair = (first, second)
        self.name = f"pair-{first.kind}-{second.kind}"

    def parse(self, text: str) -> np.ndarray:
        return np.array([("first", "second").index(text)])

    def format(self, arch: np.ndarray) -> str:
        return ("first", "second")[int(np.asarray(arch).reshape(-1)[0])]

    def layers(self, arch: np.ndarray) -> list[Layer]:
        return [self.pair[int(np.asarray(arch).reshape(-1)[0])]]
