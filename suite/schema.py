"""Checking config values against simple type hints, shared by model options and run configs."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal


def coerce(value: Any, annotation: Any) -> Any:
    """Return `value` if it fits `annotation` (ints pass as floats, lists as tuples), else ValueError.

    Only the hints configs use are understood: Literal, unions/Optional, bool, int, float, str,
    tuple[...]/list[...]; anything else passes unchecked.
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise ValueError("not one of the valid values")
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            try:
                return coerce(value, arm)
            except ValueError:
                continue
        raise ValueError(f"expected {type_name(annotation)}")
    if annotation is type(None):
        if value is None:
            return None
        raise ValueError("expected null")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ValueError("expected true or false")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError("expected an integer")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError("expected a number")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ValueError("expected a string")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"expected a list ({type_name(annotation)})")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0]) for v in value)
        if origin is tuple and args:
            if len(value) != len(args):
                raise ValueError(f"expected {len(args)} values")
            return tuple(coerce(v, a) for v, a in zip(value, args))
        item = args[0] if args else Any
        return [coerce(v, item) for v in value]
    return value


def type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
