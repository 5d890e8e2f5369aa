"""Parsing JSON-RPC parameters into typed values; anything malformed raises InvalidParams."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chain.primitives import Address, Hash32
from node.rpc.errors import InvalidParams

_HEX_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,64}")
_HEX_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")

MAX_UINT256 = 2**256 - 1
MAX_UINT64 = 2**64 - 1

BLOCK_TAGS = frozenset({"latest", "earliest", "pending", "safe", "finalized"})


def positional(params: list[Any], count_min: int, count_max: int, method: str) -> list[Any]:
    """``params`` padded with ``None`` to ``count_max`` items; raises unless it holds between
    ``count_min`` and ``count_max`` of them."""
    if not count_min <= len(params) <= count_max:
        expected = str(count_min) if count_min == count_max else f"{count_min}..{count_max}"
        raise InvalidParams(f"{method} takes {expected} parameters, got {len(params)}")
    return params + [None] * (count_max - len(params))


def quantity(value: Any, field: str, maximum: int = MAX_UINT256) -> int:
    """A ``0x`` hex quantity at most ``maximum``."""
    if not isinstance(value, str) or not _HEX_QUANTITY.fullmatch(value):
        raise InvalidParams(f"{field}: expected a 0x-prefixed hex quantity")
    number = int(value, 16)
    if number > maximum:
        raise InvalidParams(f"{field}: {value} exceeds {hex(maximum)}")
    return number


def data(value: Any, field: str, max_size: int | None = None) -> bytes:
    """``0x`` hex bytes, at most ``max_size`` long."""
    if not isinstance(value, str):
        raise InvalidParams(f"{field}: expected 0x-prefixed hex data")
    if max_size is not None and len(value) > 2 + 2 * max_size:
        raise InvalidParams(f"{field}: longer than {max_size} bytes")
    if not _HEX_DATA.fullmatch(value):
        raise InvalidParams(f"{field}: expected 0x-prefixed hex data of whole bytes")
    return bytes.fromhex(value[2:])


def fixed(value: Any, field: str, size: int) -> bytes:
    """``0x`` hex of exactly ``size`` bytes."""
    raw = data(value, field, size)
    if len(raw) != size:
        raise InvalidParams(f"{field}: expected {size} bytes, got {len(raw)}")
    return raw


def address(value: Any, field: str) -> Address:
    """A 20-byte address (any letter case)."""
    return Address(fixed(value, field, 20))


def hash32(value: Any, field: str) -> Hash32:
    """A 32-byte hash."""
    return Hash32(fixed(value, field, 32))


def boolean(value: Any, field: str, default: bool = False) -> bool:
    """A JSON boolean (``null`` gives ``default``)."""
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidParams(f"{field}: expected true or false")
    return value


@dataclass(frozen=True)
class BlockSelector:
    """A block named by tag, number, or hash."""

    tag: str | None = None
    """One of BLOCK_TAGS."""
    number: int | None = None
    """A height."""
    block_hash: Hash32 | None = None
    """A block hash (EIP-1898)."""


def block_selector(value: Any, field: str, default: str = "latest") -> BlockSelector:
    """A block parameter: a tag, a hex number, a 32-byte block hash (the execution-apis
    ``BlockNumberOrTagOrHash``; 66 characters, as geth tells a hash from a number), or an
    EIP-1898 object ``{blockHash}`` / ``{blockNumber}``; ``null`` selects ``default``. Methods
    that take a number or tag only refuse a selector with ``block_hash``."""
    if value is None:
        return BlockSelector(tag=default)
    if isinstance(value, str):
        if value in BLOCK_TAGS:
            return BlockSelector(tag=value)
        if len(value) == 2 + 2 * 32:
            return BlockSelector(block_hash=hash32(value, field))
        return BlockSelector(number=quantity(value, field, MAX_UINT64))
    if isinstance(value, dict):
        allowed = {"blockHash", "blockNumber", "requireCanonical"}
        if set(value) - allowed or ("blockHash" in value) == ("blockNumber" in value):
            raise InvalidParams(f"{field}: expected {{blockHash}} or {{blockNumber}}")
        boolean(value.get("requireCanonical"), f"{field}.requireCanonical")
        if "blockHash" in value:
            return BlockSelector(block_hash=hash32(value["blockHash"], f"{field}.blockHash"))
        selector = block_selector(value["blockNumber"], f"{field}.blockNumber")
        if selector.block_hash is not None:
            raise InvalidParams(f"{field}.blockNumber: expected a block number or tag")
        return selector
    raise InvalidParams(f"{field}: expected a block tag, number or hash object")


def optional_object(value: Any, field: str) -> dict[str, Any]:
    """A JSON object (``null`` gives an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParams(f"{field}: expected an object")
    return value


def address_list(value: Any, field: str) -> tuple[Address, ...] | None:
    """A filter's ``address``: one address, a list of them, or ``null`` (any)."""
    if value is None:
        return None
    if isinstance(value, str):
        return (address(value, field),)
    if isinstance(value, list):
        if len(value) > 1000:
            raise InvalidParams(f"{field}: more than 1000 addresses")
        return tuple(address(item, f"{field}[{i}]") for i, item in enumerate(value))
    raise InvalidParams(f"{field}: expected an address or a list of addresses")


def topic_filter(value: Any, field: str) -> tuple[tuple[Hash32, ...] | None, ...]:
    """A filter's ``topics``: up to four positions, each ``null`` (any), a topic, or a list
    of alternative topics. Every position counts, ``null`` ones too: a log matches only if it
    has at least as many topics as the filter has positions (the execution-apis rule, so
    ``[null, null, null]`` selects logs with three or more topics)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 4:
        raise InvalidParams(f"{field}: expected a list of at most 4 topic positions")
    positions: list[tuple[Hash32, ...] | None] = []
    for position, item in enumerate(value):
        where = f"{field}[{position}]"
        if item is None:
            positions.append(None)
        elif isinstance(item, str):
            positions.append((hash32(item, where),))
        elif isinstance(item, list):
            if len(item) > 100:
                raise InvalidParams(f"{where}: more than 100 alternatives")
            alternatives = tuple(hash32(t, f"{where}[{i}]") for i, t in enumerate(item))
            positions.append(alternatives or None)
        else:
            raise InvalidParams(f"{where}: expected null, a topic, or a list of topics")
    return tuple(positions)
