"""What a setting may hold, declared once on its dataclass field (``metadata=at_least(1)``) and checked in one place."""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from audiox_core.errors import InputError

Rule = Callable[[Any], str | None]  # what is wrong with a value ("is not ≥ 1"), None when it is allowed
_RULE = "rule"


def one_of(names: Iterable[str]) -> Mapping[str, Rule]:
    """Field metadata: the value is one of ``names`` (listed sorted in the error)."""
    allowed = sorted(names)
    return {_RULE: lambda value: None if value in allowed else f"is not one of {', '.join(allowed)}"}


def at_least(low: float) -> Mapping[str, Rule]:
    return {_RULE: lambda value: None if value >= low else f"is not ≥ {low:g}"}


def above(low: float) -> Mapping[str, Rule]:
    return {_RULE: lambda value: None if value > low else f"is not > {low:g}"}


def within(low: float, high: float, *, below_high: bool = False) -> Mapping[str, Rule]:
    """Field metadata: low ≤ value ≤ high (< high with ``below_high``)."""
    says = f"is not in [{low:g}, {high:g}{')' if below_high else ']'}"
    return {_RULE: lambda value: None if low <= value and (value < high if below_high else value <= high) else says}


def rule(check: Rule) -> Mapping[str, Rule]:
    """Field metadata holding a rule of the field's own (a shape no bound states)."""
    return {_RULE: check}


def matching(pattern: str, shapes: str) -> Mapping[str, Rule]:
    """Field metadata: the whole string matches ``pattern``; ``shapes`` says what does, for the error."""
    compiled = re.compile(pattern)
    return {_RULE: lambda value: None if compiled.fullmatch(value) else f"is not one of {shapes}"}


@functools.cache
def _hints(owner: type) -> dict[str, Any]:
    return typing.get_type_hints(owner)


def _type_problem(value: Any, hint: Any) -> str | None:
    """Numbers are checked by kind (an int is a fine float, a bool is no number, NaN and ∞ are no setting)."""
    if hint is bool:
        return None if isinstance(value, bool) else "is not true or false"
    if hint is int:
        return None if isinstance(value, numbers.Integral) and not isinstance(value, bool) else "is not an integer"
    if hint is float:
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        return None if number and math.isfinite(value) else "is not a finite number"
    if hint is str:
        return None if isinstance(value, str) else "is not a string"
    if isinstance(hint, type) and not isinstance(value, hint):
        return f"is not a {hint.__name__}"
    return None


def checked(label: str, owner: type, name: str, value: Any) -> Any:
    """``value`` for the field ``name`` of the dataclass ``owner``, an int widened to float where the
    field is a float; InputError ``"{label} {value!r} <problem>"`` when its type or rule says no."""
    hint = _hints(owner)[name]
    rule = next(f for f in dataclasses.fields(owner) if f.name == name).metadata.get(_RULE)
    problem = _type_problem(value, hint) or (rule(value) if rule else None)
    if problem:
        raise InputError(f"{label} {value!r} {problem}")
    return float(value) if hint is float else value


def check_fields(settings: Any) -> None:
    """Every field of a settings dataclass against its type and rule; for ``__post_init__``."""
    owner = type(settings)
    for f in dataclasses.fields(owner):
        checked(f"{owner.__name__}: {f.name}", owner, f.name, getattr(settings, f.name))
