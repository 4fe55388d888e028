"""User-defined design spaces read from YAML files.

A file names the space and lists its categorical decisions; each decision may carry an additive
cost per choice, so that :meth:`YamlSpace.flops` / :meth:`YamlSpace.params` are
``base + sum of the chosen choices' costs``::

    name: mobile_blocks
    base_flops: 2.0e6          # optional constant part
    base_params: 1.0e4
    decisions:
      - name: width
        choices: [16, 24, 32]
        flops: [1.0e6, 2.2e6, 3.9e6]     # optional, one number per choice
        params: [1.0e3, 2.1e3, 3.8e3]

The native string is ``name=value,name=value`` in decision order. Such a space has no network:
:meth:`~YamlSpace.layers` and :meth:`~YamlSpace.to_torch` raise :class:`InputError`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import yaml

from fleetnas.errors import InputError
from fleetnas.spaces.base import Decision, SearchSpace
from fleetnas.spaces.layers import Layer

_COSTS = ("flops", "params")


class YamlSpace(SearchSpace):
    """A space of categorical decisions with an optional additive cost model."""

    has_network = False

    def __init__(
        self,
        name: str,
        decisions: Sequence[Decision],
        costs: dict[str, list[np.ndarray | None]] | None = None,
        base: dict[str, float] | None = None,
        source: str = "<memory>",
    ) -> None:
        self.name = name
        self.decisions = tuple(decisions)
        self.source = source
        self._costs = costs or {}
        self._base = base or {}
        self._labels = [[_label(c) for c in d.choices] for d in self.decisions]

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        for kind in _COSTS:
            per = self._costs.get(kind)
            if per is None:
                continue
            out[f"base_{kind}"] = self._base.get(kind, 0.0)
            for entry, table in zip(out["decisions"], per, strict=True):
                if table is not None:
                    entry[kind] = table.tolist()
        return out

    def parse(self, text: str) -> np.ndarray:
        s = str(text).strip()
        names = [d.name for d in self.decisions]
        seen: dict[str, int] = {}
        for part in s.split(",") if s else []:
            key, sep, value = part.partition("=")
            key, value = key.strip(), value.strip()
            if not sep:
                raise InputError(
                    f"space {self.name!r}: {part.strip()!r} is not 'name=value' "
                    f"(expected e.g. {self._example()})"
                )
            if key not in names:
                raise InputError(
                    f"space {self.name!r}: unknown decision {key!r}; expected one of "
                    f"{', '.join(names)}"
                )
            if key in seen:
                raise InputError(f"space {self.name!r}: decision {key!r} is given twice")
            labels = self._labels[names.index(key)]
            if value not in labels:
                raise InputError(
                    f"space {self.name!r}: {key}={value!r} is not a choice; expected one of "
                    f"{', '.join(labels)}"
                )
            seen[key] = labels.index(value)
        missing = [n for n in names if n not in seen]
        if missing:
            raise InputError(
                f"space {self.name!r}: design {s!r} misses {', '.join(missing)} "
                f"(expected e.g. {self._example()})"
            )
        return np.array([seen[n] for n in names], dtype=np.int64)

    def format(self, arch: np.ndarray) -> str:
        a = self.check(arch)[0]
        return ",".join(
            f"{d.name}={labels[i]}"
            for d, labels, i in zip(self.decisions, self._labels, a, strict=True)
        )

    def _example(self) -> str:
        return ",".join(
            f"{d.name}={labels[0]}" for d, labels in zip(self.decisions, self._labels, strict=True)
        )

    def _cost(self, archs: np.ndarray, kind: str) -> np.ndarray:
        per = self._costs.get(kind)
        if per is None or all(t is None for t in per):
            raise InputError(
                f"space {self.name!r} ({self.source}) defines no {kind}; add '{kind}:' lists to "
                "its decisions"
            )
        a = self.check(archs)
        total = np.full(a.shape[0], float(self._base.get(kind, 0.0)))
        for col, table in enumerate(per):
            if table is not None:
                total += table[a[:, col]]
        return total

    def flops(self, archs: np.ndarray) -> np.ndarray:
        """``n`` FLOPs: ``base_flops`` plus the chosen choices' ``flops`` (missing lists = 0)."""
        return self._cost(archs, "flops")

    def params(self, archs: np.ndarray) -> np.ndarray:
        return self._cost(archs, "params")

    def layers(self, arch: np.ndarray) -> list[Layer]:
        raise InputError(
            f"space {self.name!r} ({self.source}) is defined by a YAML file and has no network "
            "layers"
        )


def _label(choice: Any) -> str:
    return str(choice).strip()


def load_yaml_space(path: str | os.PathLike[str]) -> YamlSpace:
    """Read a user space from ``path``; :class:`InputError` names the file and key on mistakes."""
    p = os.fspath(path)
    try:
        with open(p) as fh:
            doc = yaml.safe_load(fh)
    except FileNotFoundError:
        raise InputError(f"space file {p} does not exist") from None
    except OSError as exc:
        raise InputError(f"space file {p} cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise InputError(f"space file {p} is not valid YAML{at}") from None
    if not isinstance(doc, dict):
        raise InputError(f"space file {p}: expected a mapping with 'name' and 'decisions'")
    _known_keys(doc, ("name", "decisions", *(f"base_{k}" for k in _COSTS)), f"space file {p}")
    name = _name(doc, f"space file {p}")
    raw = doc.get("decisions")
    if not isinstance(raw, list) or not raw:
        raise InputError(f"space file {p}: 'decisions' must be a non-empty list")

    decisions: list[Decision] = []
    costs: dict[str, list[np.ndarray | None]] = {k: [] for k in _COSTS}
    for i, entry in enumerate(raw):
        where = f"space file {p}: decisions[{i}]"
        if not isinstance(entry, dict):
            raise InputError(f"{where} must be a mapping with 'name' and 'choices'")
        _known_keys(entry, ("name", "choices", *_COSTS), where)
        dname = _name(entry, where)
        where = f"space file {p}: decision {dname!r}"
        if any(ch in dname for ch in ",="):
            raise InputError(f"{where}: names may not contain ',' or '='")
        if any(d.name == dname for d in decisions):
            raise InputError(f"{where} is defined twice")
        choices = entry.get("choices")
        if not isinstance(choices, list) or not choices:
            raise InputError(f"{where}: 'choices' must be a non-empty list")
        labels = [_label(c) for c in choices]
        for c, label in zip(choices, labels, strict=True):
            if isinstance(c, dict | list) or not label or any(ch in label for ch in ",="):
                raise InputError(f"{where}: choice {c!r} must be a plain value without ',' or '='")
        if len(set(labels)) != len(labels):
            dup = next(lab for lab in labels if labels.count(lab) > 1)
            raise InputError(f"{where}: choice {dup!r} appears twice")
        for kind in _COSTS:
            costs[kind].append(_cost_list(entry.get(kind), len(choices), f"{where}: {kind!r}"))
        decisions.append(Decision(dname, tuple(choices)))

    base: dict[str, float] = {}
    for kind in _COSTS:
        value = _number(doc.get(f"base_{kind}", 0.0))
        if value is None:
            raise InputError(
                f"space file {p}: 'base_{kind}' must be a number, got {doc[f'base_{kind}']!r}"
            )
        base[kind] = value
    return YamlSpace(name, decisions, costs, base, source=p)


def _known_keys(mapping: dict[Any, Any], expected: Sequence[str], where: str) -> None:
    unknown = sorted(set(mapping) - set(expected))
    if unknown:
        raise InputError(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))}; expected "
            f"{', '.join(expected)}"
        )


def _name(mapping: dict[Any, Any], where: str) -> str:
    """``mapping["name"]`` stripped; :class:`InputError` unless it is a non-empty string."""
    name = mapping.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where}: 'name' must be a non-empty string")
    return name.strip()


def _number(value: Any) -> float | None:
    """A finite float from a YAML scalar; PyYAML reads ``1.0e6`` as a string, so accept those."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        out = float(value)
    except ValueError:
        return None
    return out if np.isfinite(out) else None


def _cost_list(value: Any, n: int, where: str) -> np.ndarray | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != n:
        got = f"{len(value)} numbers" if isinstance(value, list) else repr(value)
        raise InputError(f"{where} must list one number per choice ({n}), got {got}")
    numbers = [_number(v) for v in value]
    if any(v is None for v in numbers):
        bad = value[numbers.index(None)]
        raise InputError(f"{where} must contain only numbers, got {bad!r}")
    return np.asarray(numbers, dtype=float)
