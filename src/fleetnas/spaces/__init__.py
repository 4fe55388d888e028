"""Design spaces: what a design is.

``get_space("nb201")`` returns a registered space; a path to a ``.yaml`` file returns a
user-defined space (see :mod:`fleetnas.spaces.yaml_space`).
"""

from __future__ import annotations

from fleetnas.spaces._registry import SPACES
from fleetnas.spaces.base import Decision, SearchSpace
from fleetnas.spaces.layers import LAYER_KINDS, Layer

_cache: dict[str, SearchSpace] = {}


def get_space(name: str) -> SearchSpace:
    """The space registered as ``name``, or a user space read from a ``.yaml``/``.yml`` path."""
    if name.endswith((".yaml", ".yml")):
        from fleetnas.spaces.yaml_space import load_yaml_space

        return load_yaml_space(name)
    _load_builtin()
    if name not in _cache:
        _cache[name] = SPACES.create(name)
    return _cache[name]


def space_names() -> list[str]:
    _load_builtin()
    return SPACES.names()


def _load_builtin() -> None:
    # Importing the modules registers the built-in spaces.
    from fleetnas.spaces import (  # noqa: F401
        apq,
        compression,
        fbnet,
        nb201,
        ofa_mbv3,
        ofa_ops,
        proxylessnas,
        proxylessnas_ops,
    )


__all__ = ["LAYER_KINDS", "SPACES", "Decision", "Layer", "SearchSpace", "get_space", "space_names"]
