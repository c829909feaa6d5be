"""Dispatch of a fold's handlers by event class.

A fold names the classes it handles (`@on(Household.MemberAdded)`), never a type string built at run time:
a reader, a type checker and a rename follow the class to its handler. The table is looked up by the event's
exact class (`type(event)`), a dict lookup as cheap as one by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Handlers(Generic[F]):
    """A table: event class → the function that folds it."""

    def __init__(self) -> None:
        self.table: dict[type, F] = {}

    def __call__(self, *classes: type) -> Callable[[F], F]:
        """Register the decorated function for each of these event classes."""

        def register(fn: F) -> F:
            for cls in classes:
                if cls in self.table:
                    raise ValueError(f"{cls.__qualname__} already has a handler")
                self.table[cls] = fn
            return fn

        return register

    def fallback(self, classes: Iterable[type], fn: F) -> None:
        """Register `fn` for every one of these classes that has no handler of its own."""
        for cls in classes:
            self.table.setdefault(cls, fn)

    def get(self, event: Any) -> F | None:
        return self.table.get(type(event))
