"""A minimal JSON-RPC client for the operator CLI (standard library only; the node never
imports the SDK), and the readers of what a node answers.

:func:`rpc_call` returns only an answer of the shape the method has. It reads at most
``MAX_ANSWER_BYTES`` of the body; a body that is not JSON, or nested deeper than
``MAX_ANSWER_DEPTH``, a reply that is no JSON-RPC reply (no object, an ``error`` member that is
no error object, neither ``result`` nor ``error``), or the result of a method in
``ANSWER_SHAPES`` that is not of its shape, raises :class:`MalformedAnswer`: whatever answered
is not a node answering, and nothing that reads its answer (the ``lianxin`` commands,
:mod:`node.tx_send`, :mod:`node.health`) indexes into it.

The readers (:func:`hex_quantity`, :func:`hex_data`, :func:`answer_object`,
:func:`answer_list`, :func:`answer_text`, :func:`answer_integer`) turn one value of an answer
into the type it should have, or raise MalformedAnswer naming ``what`` was read and what was
wrong with it. They are those of the node's own :mod:`node.rpc.params`, which this module
cannot use: it imports the chain's types and raises the server's errors.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

MAX_ANSWER_BYTES = 16 * 1024 * 1024
"""The most bytes of a reply read. Far more than any answer the CLI asks for (a block, a
receipt, the logs of one contract); a longer body is refused unread."""
MAX_ANSWER_DEPTH = 64
"""The deepest nesting of arrays and objects in a reply. A reply holding a receipt is 5 deep
(reply, receipt, its logs, a log, its topics)."""
MAX_UINT256 = 2**256 - 1
MAX_UINT64 = 2**64 - 1
SHOWN_CHARS = 60
"""How much of a wrong value an error message quotes."""
MESSAGE_CHARS = 300
"""The longest error message of a node passed on as it is."""

_HEX_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,64}")
_HEX_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")

_ids = itertools.count(1)


class RpcError(Exception):
    """The node answered with a JSON-RPC error, or could not be reached."""

    def __init__(self, message: str, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        """The JSON-RPC error code, or ``None`` when the node was unreachable."""
        self.data = data
        """The error's ``data`` member, if any."""


class MalformedAnswer(RpcError):
    """What answered is no JSON-RPC reply, or not of the shape of the method's answer. Its
    ``code`` is ``None``, as for a node that cannot be reached: there is no answer to go on."""


def rpc_call(url: str, method: str, params: list[Any] | None = None, *, timeout: float = 10) -> Any:
    """Call ``method`` on the node at ``url`` and return its result; raises RpcError, and
    MalformedAnswer for an answer that is not of the method's shape (see the module)."""
    params = params or []
    body = json.dumps(
        {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}
    ).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = response.read(MAX_ANSWER_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        raise RpcError(f"cannot reach the node at {url}: {exc}") from exc
    what = f"the answer of {url} to {method}"
    if len(answer) > MAX_ANSWER_BYTES:
        raise MalformedAnswer(f"{what} is longer than {MAX_ANSWER_BYTES // 2**20} MiB")
    reply = answer_object(_parse(answer, what), what)
    if "error" in reply:
        raise _error(reply["error"], what)
    if "result" not in reply:
        raise MalformedAnswer(f"{what} holds neither a result nor an error")
    result = reply["result"]
    shape = ANSWER_SHAPES.get(method)
    if shape is not None:
        shape(result, params, f"the node's answer to {method}")
    return result


def _parse(answer: bytes, what: str) -> Any:
    """The JSON value of ``answer``, at most MAX_ANSWER_DEPTH deep."""
    try:
        value = json.loads(answer, parse_constant=_no_constant)
    except RecursionError as exc:
        raise MalformedAnswer(f"{what} is JSON nested too deep to read") from exc
    except ValueError as exc:
        raise MalformedAnswer(f"{what} is not JSON: {_first_line(str(exc))}") from exc
    if _depth(value) > MAX_ANSWER_DEPTH:
        raise MalformedAnswer(f"{what} is JSON nested deeper than {MAX_ANSWER_DEPTH} levels")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is no JSON value")


def _depth(value: Any) -> int:
    """How deep arrays and objects nest in ``value`` (0 for a scalar); without recursion."""
    deepest = 0
    stack: list[tuple[dict[str, Any] | list[Any], int]] = (
        [(value, 1)] if isinstance(value, dict | list) else []
    )
    while stack and deepest <= MAX_ANSWER_DEPTH:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _error(error: Any, what: str) -> RpcError:
    """The RpcError a JSON-RPC ``error`` member stands for; MalformedAnswer unless it is an
    object with an integer ``code`` and a string ``message``."""
    if not isinstance(error, dict):
        return MalformedAnswer(f"{what} has an error member that is no object: {shown(error)}")
    code, message = error.get("code"), error.get("message")
    if not isinstance(code, int) or isinstance(code, bool) or not isinstance(message, str):
        return MalformedAnswer(
            f"{what} has an error without an integer code and a text message: {shown(error)}"
        )
    if len(message) > MESSAGE_CHARS or not message.isprintable():
        message = shown(message, MESSAGE_CHARS)
    return RpcError(message, code, error.get("data"))


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``value`` as JSON on one line, cut to about ``limit`` characters: what an error
    message quotes of a wrong value."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


# -- readers ------------------------------------------------------------------------------------


def hex_quantity(value: Any, what: str, maximum: int = MAX_UINT256) -> int:
    """``value`` as the number it writes in 0x-hex (at most ``maximum``)."""
    if not isinstance(value, str) or not _HEX_QUANTITY.fullmatch(value):
        raise MalformedAnswer(f"{what} is not a hex quantity: {shown(value)}")
    number = int(value, 16)
    if number > maximum:
        raise MalformedAnswer(f"{what} is more than {hex(maximum)}: {shown(value)}")
    return number


def hex_data(value: Any, what: str, size: int | None = None) -> bytes:
    """``value`` as the bytes it writes in 0x-hex (exactly ``size`` of them, if given)."""
    if not isinstance(value, str) or not _HEX_DATA.fullmatch(value):
        raise MalformedAnswer(f"{what} is not hex data: {shown(value)}")
    raw = bytes.fromhex(value[2:])
    if size is not None and len(raw) != size:
        raise MalformedAnswer(f"{what} is {len(raw)} bytes, not {size}: {shown(value)}")
    return raw


def answer_object(value: Any, what: str) -> dict[str, Any]:
    """``value``, a JSON object."""
    if not isinstance(value, dict):
        raise MalformedAnswer(f"{what} is not a JSON object: {shown(value)}")
    return value


def answer_list(value: Any, what: str) -> list[Any]:
    """``value``, a JSON array."""
    if not isinstance(value, list):
        raise MalformedAnswer(f"{what} is not a JSON array: {shown(value)}")
    return value


def answer_text(value: Any, what: str) -> str:
    """``value``, a JSON string."""
    if not isinstance(value, str):
        raise MalformedAnswer(f"{what} is not a string: {shown(value)}")
    return value


def answer_integer(value: Any, what: str) -> int:
    """``value``, a JSON integer."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedAnswer(f"{what} is not an integer: {shown(value)}")
    return value


# -- the shapes of the answers the CLI reads ----------------------------------------------------

Shape = Callable[[Any, list[Any], str], None]
"""Raises MalformedAnswer unless a result (of a call with these params) has its shape."""


def _quantity(maximum: int) -> Shape:
    def shape(value: Any, params: list[Any], what: str) -> None:
        hex_quantity(value, what, maximum)

    return shape


def _data(size: int | None = None) -> Shape:
    def shape(value: Any, params: list[Any], what: str) -> None:
        hex_data(value, what, size)

    return shape


def _object(value: Any, params: list[Any], what: str) -> None:
    answer_object(value, what)


def _text(value: Any, params: list[Any], what: str) -> None:
    answer_text(value, what)


def _members(answer: dict[str, Any], what: str, **readers: Callable[[Any, str], object]) -> None:
    """Read each member of ``answer`` named by ``readers`` with its reader."""
    for name, read in readers.items():
        read(answer.get(name), f"{what}: {name}")


def _or_null(read: Callable[[Any, str], object]) -> Callable[[Any, str], object]:
    return lambda value, what: None if value is None else read(value, what)


def _bytes(size: int | None = None) -> Callable[[Any, str], object]:
    return lambda value, what: hex_data(value, what, size)


def _number(value: Any, what: str) -> int:
    return hex_quantity(value, what, MAX_UINT64)


def _block(value: Any, params: list[Any], what: str) -> None:
    if value is None:
        if params[:1] in (["latest"], ["earliest"]):
            raise MalformedAnswer(f"{what} is null, but a chain always has its {params[0]} block")
        return
    block = answer_object(value, what)
    _members(block, what, number=_number, timestamp=_number, hash=_or_null(_bytes(32)))


def _transaction(value: Any, params: list[Any], what: str) -> None:
    if value is not None:
        _members(answer_object(value, what), what, hash=_bytes(32))


def _log(value: Any, what: str) -> None:
    log = answer_object(value, what)
    _members(log, what, address=_bytes(20), data=_bytes())
    for index, topic in enumerate(answer_list(log.get("topics"), f"{what}: topics")):
        hex_data(topic, f"{what}: topics[{index}]", 32)


def _logs(value: Any, params: list[Any], what: str) -> None:
    for index, log in enumerate(answer_list(value, what)):
        _log(log, f"{what}[{index}]")


def _receipt(value: Any, params: list[Any], what: str) -> None:
    if value is None:
        return
    receipt = answer_object(value, what)
    _members(
        receipt,
        what,
        transactionHash=_bytes(32),
        blockHash=_bytes(32),
        blockNumber=_number,
        status=_number,
        gasUsed=_number,
        contractAddress=_or_null(_bytes(20)),
        output=_or_null(_bytes()),
    )
    _logs(receipt.get("logs"), params, f"{what}: logs")


def _validators(value: Any, params: list[Any], what: str) -> None:
    answer = answer_object(value, what)
    _members(answer, what, since=_number)
    for index, entry in enumerate(answer_list(answer.get("validators"), f"{what}: validators")):
        where = f"{what}: validators[{index}]"
        _members(
            answer_object(entry, where), where, name=answer_text, address=_bytes(20), power=_number
        )


def _consensus_status(value: Any, params: list[Any], what: str) -> None:
    status = answer_object(value, what)
    _members(
        status,
        what,
        height=_number,
        round=_number,
        headHeight=_or_null(_number),
        validator=_or_null(_bytes(20)),
        role=_or_null(answer_text),
        step=_or_null(answer_text),
    )
    keyring = status.get("keyring")
    if keyring is not None:
        where = f"{what}: keyring"
        _members(answer_object(keyring, where), where, refused=answer_integer)
        for index, key in enumerate(answer_list(keyring.get("keys"), f"{where}: keys")):
            hex_data(key, f"{where}: keys[{index}]", 20)


def _verdict(value: Any, params: list[Any], what: str) -> None:
    verdict = answer_object(value, what)
    if not isinstance(verdict.get("ok"), bool):
        raise MalformedAnswer(f"{what}: ok is not true or false: {shown(verdict.get('ok'))}")
    if "reason" not in verdict:
        raise MalformedAnswer(f"{what} has no reason (null when ok): {shown(verdict)}")
    _members(verdict, what, reason=_or_null(answer_text))
    if verdict.get("seenPower") is not None:
        _members(
            verdict,
            what,
            seenPower=answer_integer,
            newTotalPower=answer_integer,
            newQuorumPower=answer_integer,
        )


def _peers(value: Any, params: list[Any], what: str) -> None:
    for index, peer in enumerate(answer_list(value, what)):
        answer_object(peer, f"{what}[{index}]")


def _accounts(value: Any, params: list[Any], what: str) -> None:
    for index, account in enumerate(answer_list(value, what)):
        hex_data(account, f"{what}[{index}]", 20)


ANSWER_SHAPES: dict[str, Shape] = {
    "eth_chainId": _quantity(MAX_UINT64),
    "eth_blockNumber": _quantity(MAX_UINT64),
    "eth_estimateGas": _quantity(MAX_UINT64),
    "eth_call": _data(),
    "eth_getCode": _data(),
    "eth_sendRawTransaction": _data(32),
    "eth_getBlockByNumber": _block,
    "eth_getTransactionByHash": _transaction,
    "eth_getTransactionReceipt": _receipt,
    "eth_getLogs": _logs,
    "eth_accounts": _accounts,
    "web3_clientVersion": _text,
    "lianxin_getValidators": _validators,
    "lianxin_getConsensusStatus": _consensus_status,
    "lianxin_checkValidatorChange": _verdict,
    "lianxin_getPeers": _peers,
    "lianxin_getNodeVersion": _object,
}
"""The shape of the answer of each method the CLI (and node.tx_send, node.health) reads: its
type, and the members it reads of an object. A chain id, a height and a gas amount are at most
64 bits, so that what is computed from them (a block limit, a gas limit with its margin) still
encodes."""
