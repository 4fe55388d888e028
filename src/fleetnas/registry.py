"""A tiny name -> factory registry, shared by spaces, measurers, predictors and executors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from fleetnas.errors import unknown

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories: ``get_space("nb201")``, ``get_measurer("table")`` read alike."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def add(self, name: str, factory: Callable[..., T]) -> None:
        self.register(name)(factory)

    def create(self, name: str, **kwargs: object) -> T:
        try:
            factory = self._factories[name]
        except KeyError:
            raise unknown(self.kind, name, list(self._factories)) from None
        return factory(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories
