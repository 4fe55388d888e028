"""Pydantic's validation errors said as ours: one line naming the key path, the value and what
is expected (``devices[3].budgets[0]: expected a number > 0 ..., got 'fast'``).

Fleet files (:mod:`fleetnas.fleet.fleetfile`) and measurer spec options
(:func:`fleetnas.measure.spec.parse_into`) are pydantic models; their readers turn the first error
of a :class:`pydantic.ValidationError` into an :class:`~fleetnas.errors.InputError` through
:func:`first_error`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError

Loc = tuple[Any, ...]

#: Pydantic's own error types, said the way the rest of our messages say them.
EXPECTED = {
    "missing": "a required key is missing",
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "dataclass_type": "expected a mapping",
    "list_type": "expected a list",
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected a boolean (1/0, true/false, yes/no)",
    "bool_type": "expected a boolean (1/0, true/false, yes/no)",
}


def loc_text(loc: Loc, head: str = "") -> str:
    """``("devices", 3, "budgets", 0)`` -> ``devices[3].budgets[0]`` (after ``head``)."""
    out = head
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f"{'.' if out else ''}{part}"
    return out


def _present(raw: Any, loc: Loc) -> Loc:
    """The part of ``loc`` that ``raw`` itself has (a value a model expanded, such as a bare
    budget read as its latency, is blamed where it was written)."""
    node = raw
    for i, part in enumerate(loc):
        inside = isinstance(node, dict) and part in node
        inside |= isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not inside:
            return loc[: i + 1] if isinstance(node, dict) else loc[:i]
        node = node[part]
    return loc


def first_error(
    exc: ValidationError,
    raw: Any,
    known: Callable[[Loc], Iterable[str]] | None = None,
    got: bool = True,
) -> tuple[Loc, str]:
    """The location (as ``raw`` has it) and one-line message of ``exc``'s first error, ending in
    the value found (unless ``got`` is false). Unknown keys of the entry that holds the first
    error come first, all of them in one message listing ``known(loc)``, the keys it accepts."""
    errors = exc.errors()
    group = [e for e in errors if e["loc"][:2] == errors[0]["loc"][:2]]
    extra = [e for e in group if e["type"] == "extra_forbidden"]
    if extra:
        loc = tuple(extra[0]["loc"][:-1])
        keys = ", ".join(str(e["loc"][-1]) for e in extra if tuple(e["loc"][:-1]) == loc)
        allowed = f"; expected some of {', '.join(sorted(known(loc)))}" if known else ""
        return loc, f"unknown key(s) {keys}{allowed}"
    err = group[0]
    error = err.get("ctx", {}).get("error")
    msg = str(error) if error is not None else EXPECTED.get(err["type"], err["msg"])
    if err["type"] == "literal_error":
        msg = f"expected {err['ctx']['expected']}"
    if got and err["type"] != "missing" and (value := repr(err["input"])) not in msg:
        msg += f", got {value if len(value) <= 80 else value[:77] + '...'}"
    if msg[:1].isupper() and msg[1:2].islower():
        msg = msg[0].lower() + msg[1:]
    return _present(raw, tuple(err["loc"])), msg
