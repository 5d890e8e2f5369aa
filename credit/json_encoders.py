"""``json.dumps``' own C encoder, made once for a fixed set of settings.

``json.dumps`` builds a new encoder on every call, and for a small object of strings that is
most of its time. An encoder made here writes what ``json.dumps`` writes with the same
settings, byte for byte, without the circular-reference check (the values encoded here, a
record's fields and rows, never refer to themselves), so that one encoder serves every
thread."""

from __future__ import annotations

from collections.abc import Callable
from json import encoder as _json_encoder
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

__all__ = ["json_encoder"]


def _not_serializable(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_encoder(
    *, ensure_ascii: bool, separators: tuple[str, str], sort_keys: bool
) -> Callable[[Any], str]:
    """The text ``json.dumps(value, ensure_ascii=…, separators=…, sort_keys=…)`` gives,
    as a function of ``value``, by an encoder made once."""
    item_separator, key_separator = separators
    encode = _json_encoder.c_make_encoder(  # type: ignore[attr-defined]
        None,
        _not_serializable,
        encode_basestring_ascii if ensure_ascii else encode_basestring,
        None,
        key_separator,
        item_separator,
        sort_keys,
        False,
        True,
    )

    def text(value: Any) -> str:
        return "".join(encode(value, 0))

    return text
