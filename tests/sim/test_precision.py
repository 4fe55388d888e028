"""The simulator prices precision per family and pruning through the pruned layers."""

from __future__ import annotations

import numpy as np

from fleetnas.sim import SimDevice, generate_fleet
from fleetnas.sim.generator import sample_model
from fleetnas.sim.precision import precision_factors, simulate_compressed
from fleetnas.spaces import get_space

NB = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|"


def _lat(model, policy: str) -> float:
    sp = get_space("nb201+q")
    return float(simulate_compressed(model, sp, sp.parse(f"{NB}@{policy}")[None], False)[0][0])


def test_uncompressed_design_prices_like_the_base_space():
    sp, base = get_space("nb201+q"), get_space("nb201")
    dev = SimDevice("d", generate_fleet(1, 0)[0].model)
    assert np.allclose(dev.latency(sp, sp.parse(NB)[None]), dev.latency(base, base.parse(NB)[None]))


def test_int8_speed_up_depends_on_the_family():
    npu = sample_model("npu", 0, batch_size=1, precision="fp32")
    cpu = sample_model("desktop_cpu", 0, batch_size=1, precision="fp32").with_(
        family="local_runtime"
    )
    assert _lat(npu, "q=int8;w=1") < 0.5 * _lat(npu, "q=fp32;w=1")
    assert _lat(cpu, "q=int8;w=1") > _lat(cpu, "q=fp32;w=1")  # QDQ runtime: int8 slower
    assert precision_factors("npu")["int8"] < precision_factors("local_runtime")["int8"]


def test_pruning_is_faster_and_a_mixed_policy_lies_between():
    m = sample_model("mobile_cpu", 1, batch_size=1, precision="fp32")
    assert _lat(m, "q=fp32;w=0.5") < _lat(m, "q=fp32;w=1")
    mixed = _lat(m, "q=int8,fp32,fp32;w=1")
    assert _lat(m, "q=int8;w=1") < mixed < _lat(m, "q=fp32;w=1")


def test_sim_measurer_prices_compressed_designs():
    from fleetnas.measure import get_measurer

    dev = generate_fleet(1, 3, families=["npu"])[0].device
    meas = get_measurer(dev.measurer, None, dev)
    sp = get_space("nb201+q")
    a = np.stack([sp.parse(f"{NB}@q=fp32;w=1"), sp.parse(f"{NB}@q=int8;w=1")])
    lat = meas.measure(sp, a)["latency"]
    assert lat[1] < lat[0]
