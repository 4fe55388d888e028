"""User spaces from YAML: loading, strings, additive cost, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.spaces import get_space
from fleetnas.spaces.yaml_space import load_yaml_space

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/spaces/mobile_blocks.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "space.yaml"
    p.write_text(text)
    return p


def test_example_file_loads_through_get_space() -> None:
    sp = get_space(str(EXAMPLE))
    assert sp.name == "mobile_blocks" and sp.n_decisions == 8
    a = sp.sample(100, rng=0)
    np.testing.assert_array_equal(sp.parse_many(sp.format_many(a)), a)
    assert sp.format(a[0]).startswith("width=")
    assert sp.describe()["decisions"][0]["flops"] == [0.0, 40.0e6, 95.0e6]


def test_cost_is_base_plus_chosen_choices(tmp_path: Path) -> None:
    sp = load_yaml_space(
        _write(
            tmp_path,
            """
name: tiny
base_flops: 100
decisions:
  - {name: a, choices: [x, y], flops: [1, 2.0e+1], params: [5, 7]}
  - {name: b, choices: [1, 2, 3], flops: ["1e3", 2e+3, 3000]}
""",
        )
    )
    a = sp.parse_many(["a=x,b=1", "b=3,a=y"])
    np.testing.assert_array_equal(a, [[0, 0], [1, 2]])
    np.testing.assert_allclose(sp.flops(a), [100 + 1 + 1000, 100 + 20 + 3000])
    np.testing.assert_allclose(sp.params(a), [5, 7])
    assert sp.enumerate().shape == (6, 2)


def test_space_without_costs_or_network_says_so(tmp_path: Path) -> None:
    sp = load_yaml_space(
        _write(tmp_path, "name: bare\ndecisions:\n  - {name: a, choices: [1, 2]}\n")
    )
    arch = sp.sample(1, rng=0)
    with pytest.raises(InputError, match="defines no flops"):
        sp.flops(arch)
    with pytest.raises(InputError, match="no runnable network"):
        sp.to_torch(arch[0])
    with pytest.raises(InputError, match="has no network layers"):
        sp.layers(arch[0])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: s\ndecisions: [\n", "is not valid YAML at line"),
        ("- 1\n- 2\n", "expected a mapping"),
        ("name: s\n", "'decisions' must be a non-empty list"),
        ("name: s\ndecisions:\n  - {name: a, choices: []}\n", "decision 'a': 'choices' must be"),
        (
            "name: s\ndecisions:\n  - {name: a, choices: [1]}\n  - {name: a, choices: [2]}\n",
            "decision 'a' is defined twice",
        ),
        ("name: s\ndecisions:\n  - {name: a, choices: [1, 1]}\n", "choice '1' appears twice"),
        (
            "name: s\ndecisions:\n  - {name: a, choices: [1, 2], flops: [1]}\n",
            "one number per choice",
        ),
        ("name: s\ndecisions:\n  - {name: a, choices: [1], flops: [big]}\n", "got 'big'"),
        ("name: s\ndecisions:\n  - {name: a, choices: [1], colour: red}\n", "unknown key"),
        ("name: s\nstages: 3\ndecisions:\n  - {name: a, choices: [1]}\n", "unknown key"),
        ("name: s\ndecisions:\n  - {name: 'a,b', choices: [1]}\n", "may not contain"),
        ("name: ''\ndecisions:\n  - {name: a, choices: [1]}\n", "'name' must be"),
    ],
)
def test_malformed_files_name_file_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(InputError, match=fragment) as info:
        load_yaml_space(p)
    assert str(p) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        get_space(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("width=16", "misses b1_kernel"),
        ("width=20,b1_kernel=3", "width='20' is not a choice; expected one of 16, 24, 32"),
        ("depth=3", "unknown decision 'depth'"),
        ("width", "is not 'name=value'"),
        ("width=16,width=24", "given twice"),
    ],
)
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        get_space(str(EXAMPLE)).parse(text)
