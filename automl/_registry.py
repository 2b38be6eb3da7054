"""Name → factory registries for everything a request chooses by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from automl.errors import SpecError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; ``create`` rejects an unknown name and lists the valid ones."""

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

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, name: str, **kwargs: object) -> T:
        try:
            factory = self._factories[name]
        except KeyError:
            raise SpecError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None
        return factory(**kwargs)
