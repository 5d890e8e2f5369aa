"""The shapes of JSON answers from outside (the registry's, a node's): each check returns the
value when it has the shape and raises TypeError or ValueError otherwise, which the clients
turn into their typed error for a malformed answer (:data:`sdk.errors.ANSWER_FAULTS`)."""

from __future__ import annotations

from typing import Any


def json_object(value: Any) -> dict[str, Any]:
    """An answer (or a member of one) that must be a JSON object."""
    if not isinstance(value, dict):
        raise TypeError(f"a JSON object was expected, not {type(value).__name__}")
    return value


def json_array(value: Any) -> list[Any]:
    """An answer (or a member of one) that must be a JSON array."""
    if not isinstance(value, list):
        raise TypeError(f"a JSON array was expected, not {type(value).__name__}")
    return value


def json_text(value: Any) -> str:
    """A member that must be a JSON string."""
    if not isinstance(value, str):
        raise TypeError(f"a JSON string was expected, not {type(value).__name__}")
    return value


def json_uint(value: Any, bits: int = 64) -> int:
    """A member that must be a JSON integer from 0 below 2**bits (not true or false)."""
    if type(value) is not int:
        raise TypeError(f"a JSON integer was expected, not {type(value).__name__}")
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{value} is not a {bits}-bit unsigned integer")
    return value


__all__ = ["json_array", "json_object", "json_text", "json_uint"]
