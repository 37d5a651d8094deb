"""Frozen slotted dataclasses built without their frozen __init__, for the records a run makes by the thousand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, field, fields, make_dataclass
from typing import Any, TypeVar

__all__ = ["builder"]

T = TypeVar("T")


def builder(frozen: type[T]) -> Callable[..., T]:
    """What frozen(...) builds, from the same arguments: a frozen class's __init__ calls object.__setattr__ once
    per field, so each instance is built by an open twin of the same slots and then takes the frozen class as
    its own (the two layouts are the same, so Python allows it)."""
    specs: list[tuple[str, Any, Any]] = []
    for item in fields(frozen):  # type: ignore[arg-type]
        if item.default_factory is not MISSING:
            raise TypeError(f"{frozen.__name__}.{item.name}: a default factory is not supported")
        specs.append((item.name, item.type, field(default=item.default) if item.default is not MISSING else field()))
    twin = make_dataclass(f"_Open{frozen.__name__}", specs, slots=True)
    if twin.__dict__.get("__slots__") != frozen.__dict__.get("__slots__"):
        raise TypeError(f"{frozen.__name__} is not a slotted dataclass")

    def build(*args: Any, **kwargs: Any) -> T:
        made = twin(*args, **kwargs)
        made.__class__ = frozen
        return made  # type: ignore[no-any-return]

    return build
