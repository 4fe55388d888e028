"""NAS-Bench-201: strings, official index, isomorphism classes, cost tables."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fleetnas.errors import DataError, InputError
from fleetnas.spaces import get_space
from fleetnas.spaces.nb201 import OPS, NB201Index

SPACE = get_space("nb201")
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"


def test_enumerate_covers_the_space_in_lexicographic_order() -> None:
    a = SPACE.enumerate()
    assert a.shape == (15_625, 6)
    np.testing.assert_array_equal(SPACE.codes(a), np.arange(15_625))
    assert SPACE.format(a[0]) == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def test_parse_reads_ops_per_edge_in_string_order() -> None:
    arch = SPACE.parse(RESNET)
    assert [OPS[i] for i in arch] == [
        "nor_conv_3x3",
        "none",
        "nor_conv_3x3",
        "skip_connect",
        "none",
        "none",
    ]
    assert SPACE.format(arch) == RESNET


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|", "has 2 node groups"),
        ("|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation 'conv_3x3'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "'<op>~0'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 has 1 edges"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "start and end with '|'"),
    ],
)
def test_parse_errors_name_the_bad_token(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment.replace("|", r"\|")):
        SPACE.parse(text)


def test_cost_grows_with_heavier_ops() -> None:
    light = SPACE.parse(
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    )
    c1 = SPACE.parse(
        "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|"
    )
    c3 = SPACE.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    f, p = SPACE.flops(np.stack([light, c1, c3])), SPACE.params(np.stack([light, c1, c3]))
    assert f[0] < f[1] < f[2] and p[0] < p[1] < p[2]
    # One 3x3 conv on every edge of 15 cells: 6 x 5 x 9 x (16^2 + 32^2 + 64^2) weights more.
    assert p[2] - p[0] == 6 * 5 * 9 * (16**2 + 32**2 + 64**2)


def test_official_index_files_agree_and_round_trip(data_dir: Path) -> None:
    from_help = NB201Index.from_file(data_dir / "help/nasbench201/str_arch2idx.pt")
    from_nats = NB201Index.from_file(data_dir / "nats/nats_bench.csv")
    everything = np.arange(15_625)
    np.testing.assert_array_equal(from_help.archs_of(everything), from_nats.archs_of(everything))
    archs = SPACE.enumerate()
    idx = from_nats.index_of(archs)
    assert sorted(idx.tolist()) == everything.tolist()
    np.testing.assert_array_equal(from_nats.archs_of(idx), archs)
    with open(data_dir / "nats/nats_bench.csv", newline="") as fh:
        first = next(csv.DictReader(fh))["ArchitectureString"]
    np.testing.assert_array_equal(from_help.archs_of([0])[0], SPACE.parse(first))
    assert not np.array_equal(idx, everything)  # the official order is not lexicographic


def test_index_rejects_bad_lists_and_indices() -> None:
    strings = SPACE.format_many(SPACE.enumerate())
    with pytest.raises(DataError, match="15624 architectures"):
        NB201Index(strings[:-1])
    with pytest.raises(DataError, match="not all distinct"):
        NB201Index([strings[0], *strings[1:-1], strings[0]])
    index = NB201Index(strings)
    with pytest.raises(InputError, match="15625 is out of range"):
        index.archs_of([15_625])


def test_isomorphism_key_matches_nats_unique_string(data_dir: Path) -> None:
    with open(data_dir / "nats/nats_bench.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    archs = SPACE.parse_many([r["ArchitectureString"] for r in rows])
    keys = SPACE.isomorphism_key(archs)
    unique = [r["UniqueString"] for r in rows]
    assert len(set(keys.tolist())) == len(set(unique)) == 6_466
    pairs = set(zip(keys.tolist(), unique, strict=True))
    assert len(pairs) == 6_466  # same partition: every key maps to exactly one UniqueString
    for i in range(0, 15_625, 997):
        assert SPACE.unique_string(archs[i]) == unique[i]


def test_canonicalize_is_identity_even_for_isomorphic_cells() -> None:
    a = SPACE.enumerate()
    keys = SPACE.isomorphism_key(a)
    dup = np.flatnonzero(keys == keys[0])
    assert len(dup) > 1
    np.testing.assert_array_equal(SPACE.canonicalize(a[dup]), a[dup])
