"""Spec options become typed settings through one pydantic path (``parse_into``): every
mistake is one line naming the spec, the option, its value and what is expected."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fleetnas.errors import InputError
from fleetnas.measure.settings import RuntimeSetting
from fleetnas.measure.spec import parse_into, parse_options


@dataclass(frozen=True)
class Knobs:
    count: int = 1
    ratio: float = 0.5
    on: bool = False

    def __post_init__(self) -> None:
        if self.count > 9:
            raise InputError(f"count must be at most 9, got {self.count}")


def test_strings_become_the_fields_types() -> None:
    assert parse_into(Knobs, parse_options("count=3,ratio=0.25,on=yes", "k"), "knob") == Knobs(
        3, 0.25, True
    )
    setting, rest = RuntimeSetting.parse("onnxruntime", "threads=2,batch=8,repeats=5")
    assert (setting.threads, setting.batch, rest) == (2, 8, {"repeats": "5"})


@pytest.mark.parametrize(
    ("opts", "line"),
    [
        ({"cuont": "3"}, "unknown knob option 'cuont'; expected one of count, ratio, on"),
        ({"count": "x"}, "knob option count='x' is not a valid value (expected an integer)"),
        ({"ratio": "half"}, "knob option ratio='half' is not a valid value (expected a number)"),
        ({"on": "perhaps"}, "knob option on='perhaps' is not a valid value (expected a boolean"),
        ({"count": "12"}, "count must be at most 9, got 12"),
    ],
)
def test_mistakes_are_one_line_naming_option_value_and_expectation(
    opts: dict[str, str], line: str
) -> None:
    with pytest.raises(InputError) as err:
        parse_into(Knobs, opts, "knob")
    assert str(err.value).startswith(line) and "\n" not in str(err.value)


def test_runtime_setting_names_its_spec() -> None:
    with pytest.raises(InputError, match=r"^litert spec option batch='many' is not a valid value"):
        RuntimeSetting.parse("litert", "batch=many")
    with pytest.raises(InputError, match=r"^precision 'fp16' is not offered by onnxruntime"):
        RuntimeSetting.parse("onnxruntime", "precision=fp16")
