"""A case-insensitive name -> class registry with a decorator, shared by the stereo and mono datasets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T", bound=type)


class ClassRegistry(Generic[T]):
    """Classes by name (case-insensitive); ``kind`` words the unknown-name error ("stereo", "mono")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, T] = {}

    def register(self, cls: T | None = None, *, name: str | None = None) -> T | Callable[[T], T]:
        """Class decorator, bare or ``(name=...)``: sets ``cls.name`` and registers the class."""

        def wrap(klass: T) -> T:
            key = name or klass.__name__
            klass.name = key
            self._classes[key.lower()] = klass
            return klass

        return wrap(cls) if cls is not None else wrap

    def names(self) -> list[str]:
        return sorted(k.name for k in self._classes.values())

    def get(self, name: str) -> T:
        """The class of ``name``; an unknown name lists the known ones."""
        try:
            return self._classes[name.lower()]
        except KeyError:
            raise ValueError(f"unknown {self.kind} dataset_name '{name}'; known: {', '.join(self.names())}") from None
