"""What the explorer reads from a node: batched JSON-RPC over HTTP for blocks, certificates
and receipts, and the WebSocket ``newHeads`` subscription that says when to read again.

Everything here is transport and parsing into ledger types; nothing is trusted. The checks
that a block is what its certificate commits live in :mod:`explorer.block_check`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from chain.bounded_json import JsonLimitError, loads_bounded
from chain.errors import ChainError
from chain.limits import MAX_RPC_JSON_DEPTH
from chain.primitives import Address, Hash32, PublicKeyBytes
from chain.types import CommitCertificate, Header, Log, Receipt, Transaction
from explorer.http_clients import http_client

MAX_BATCH = 100
"""Requests per JSON-RPC batch (the node's default ``max_batch``)."""
MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""Largest answer read from the node (a batch of full blocks and receipts)."""


class NodeUnavailable(Exception):
    """The node did not answer, or answered with something that is not a usable answer."""


def _bytes(value: Any, field: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise NodeUnavailable(f"{field}: expected 0x hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise NodeUnavailable(f"{field}: not hex") from exc


def _int(value: Any, field: str) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise NodeUnavailable(f"{field}: expected a 0x quantity")
    try:
        return int(value, 16)
    except ValueError as exc:
        raise NodeUnavailable(f"{field}: not a quantity") from exc


@dataclass(frozen=True)
class FetchedBlock:
    """One block as the node served it, parsed but not yet checked."""

    height: int
    """The height asked for."""
    header: Header
    """The ledger header (from its canonical encoding)."""
    claimed_hash: bytes
    """The hash the node's block object names."""
    size: int
    """The block's encoded size as the node reports it."""
    transactions: tuple[Transaction, ...]
    """Its transactions, rebuilt from the node's transaction objects."""
    claimed_tx_hashes: tuple[bytes, ...]
    """The hashes the node names for them."""
    receipts: tuple[Receipt, ...]
    """Their receipts, rebuilt from the node's receipt objects."""
    certificate: CommitCertificate | None
    """The commit certificate the node stores for the block, if any."""


def transaction_from_json(value: dict[str, Any]) -> Transaction:
    """A ledger transaction from a node's transaction object (its ledger fields)."""
    to = value.get("to")
    return Transaction(
        chain_id=_int(value["chainId"], "chainId"),
        nonce=Hash32(_bytes(value["replayNonce"], "replayNonce")),
        block_limit=_int(value["blockLimit"], "blockLimit"),
        to=None if to is None else Address(_bytes(to, "to")),
        value=_int(value["value"], "value"),
        data=_bytes(value["input"], "input"),
        gas_limit=_int(value["gas"], "gas"),
        public_key=PublicKeyBytes(_bytes(value["senderPublicKey"], "senderPublicKey")),
        signature=_bytes(value["sm2Signature"], "sm2Signature"),
    )


def receipt_from_json(value: dict[str, Any]) -> Receipt:
    """A ledger receipt from a node's receipt object."""
    contract = value.get("contractAddress")
    return Receipt(
        tx_hash=Hash32(_bytes(value["transactionHash"], "transactionHash")),
        status=_int(value["status"], "status"),
        gas_used=_int(value["gasUsed"], "gasUsed"),
        contract_address=None if contract is None else Address(_bytes(contract, "contract")),
        logs=tuple(
            Log(
                address=Address(_bytes(log["address"], "log.address")),
                topics=tuple(Hash32(_bytes(t, "log.topic")) for t in log["topics"]),
                data=_bytes(log["data"], "log.data"),
            )
            for log in value["logs"]
        ),
        output=_bytes(value.get("output") or "0x", "output"),
    )


class NodeFeed:
    """Batched JSON-RPC reads of one node."""

    def __init__(
        self, url: str, *, timeout: float = 30.0, max_answer_bytes: int = MAX_ANSWER_BYTES
    ) -> None:
        """``url``: the node's HTTP JSON-RPC endpoint; an answer longer than
        ``max_answer_bytes`` is refused before it is read whole."""
        self.url = url
        self.max_answer_bytes = max_answer_bytes
        self._client = http_client(timeout)
        self._ids = itertools.count(1)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """The results of ``calls``, in order, sent in batches of at most MAX_BATCH. Raises
        NodeUnavailable if any call has no result."""
        results: list[Any] = []
        for start in range(0, len(calls), MAX_BATCH):
            chunk = calls[start : start + MAX_BATCH]
            ids = [next(self._ids) for _ in chunk]
            body = [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                for i, (m, p) in zip(ids, chunk, strict=True)
            ]
            answers = self._post(body)
            if not isinstance(answers, list):
                raise NodeUnavailable(f"the node answered a batch with {type(answers).__name__}")
            by_id = {
                a["id"]: a for a in answers if isinstance(a, dict) and isinstance(a.get("id"), int)
            }
            for i, (method, _) in zip(ids, chunk, strict=True):
                answer = by_id.get(i)
                if answer is None or "result" not in answer:
                    error = None if answer is None else answer.get("error")
                    raise NodeUnavailable(f"{method} failed: {error}")
                results.append(answer["result"])
        return results

    def call(self, method: str, params: list[Any]) -> Any:
        """One call's result."""
        return self.batch([(method, params)])[0]

    def _post(self, body: Any) -> Any:
        content = bytearray()
        try:
            with self._client.stream("POST", self.url, json=body) as response:
                for chunk in response.iter_bytes():
                    content += chunk
                    if len(content) > self.max_answer_bytes:
                        raise NodeUnavailable(
                            f"the node's answer is larger than {self.max_answer_bytes} bytes"
                        )
        except httpx.HTTPError as exc:
            raise NodeUnavailable(f"node at {self.url} did not answer: {exc}") from exc
        try:
            return loads_bounded(
                bytes(content), max_bytes=self.max_answer_bytes, max_depth=MAX_RPC_JSON_DEPTH
            )
        except (JsonLimitError, ValueError) as exc:
            raise NodeUnavailable(f"the node's answer is not JSON: {exc}") from exc

    def head_height(self) -> int:
        """The node's head height."""
        return _int(self.call("eth_blockNumber", []), "eth_blockNumber")

    def chain_id(self) -> int:
        """The node's chain id."""
        return _int(self.call("eth_chainId", []), "eth_chainId")

    def fetch_blocks(self, heights: Sequence[int]) -> list[FetchedBlock]:
        """Blocks, certificates and receipts of ``heights`` in two rounds of batches."""
        calls: list[tuple[str, list[Any]]] = []
        for height in heights:
            calls.append(("eth_getBlockByNumber", [hex(height), True]))
            calls.append(("lianxin_getBlockHeader", [hex(height)]))
        answers = self.batch(calls)
        tx_hashes: list[str] = []
        for index in range(len(heights)):
            block = answers[2 * index]
            if not isinstance(block, dict):
                raise NodeUnavailable(f"the node has no block {heights[index]}")
            transactions = block.get("transactions")
            if not isinstance(transactions, list) or not all(
                isinstance(tx, dict) and isinstance(tx.get("hash"), str) for tx in transactions
            ):
                raise NodeUnavailable(
                    f"block {heights[index]}: transactions are not a list of objects"
                )
            tx_hashes.extend(tx["hash"] for tx in transactions)
        receipts = self.batch([("eth_getTransactionReceipt", [h]) for h in tx_hashes])
        fetched: list[FetchedBlock] = []
        cursor = 0
        for index, height in enumerate(heights):
            block, certified = answers[2 * index], answers[2 * index + 1]
            count = len(block["transactions"])
            fetched.append(
                _parse_block(height, block, certified, receipts[cursor : cursor + count])
            )
            cursor += count
        return fetched


def _parse_block(
    height: int, block: dict[str, Any], certified: Any, receipts: list[Any]
) -> FetchedBlock:
    if not isinstance(certified, dict):
        raise NodeUnavailable(f"the node has no header for {height}")
    if any(not isinstance(r, dict) for r in receipts):
        raise NodeUnavailable(f"the node lacks a receipt of block {height}")
    try:
        header = Header.decode(_bytes(certified["header"]["encoded"], "header"))
        certificate_json = certified.get("certificate")
        certificate = (
            None
            if certificate_json is None
            else CommitCertificate.decode(_bytes(certificate_json["encoded"], "certificate"))
        )
        return FetchedBlock(
            height=height,
            header=header,
            claimed_hash=_bytes(block["hash"], "hash"),
            size=_int(block["size"], "size"),
            transactions=tuple(transaction_from_json(tx) for tx in block["transactions"]),
            claimed_tx_hashes=tuple(_bytes(tx["hash"], "tx.hash") for tx in block["transactions"]),
            receipts=tuple(receipt_from_json(r) for r in receipts),
            certificate=certificate,
        )
    except (KeyError, TypeError, ValueError, OverflowError, ChainError) as exc:
        raise NodeUnavailable(f"block {height} does not parse: {exc!r}") from exc


def websocket_url(http_url: str) -> str:
    """The node's WebSocket endpoint next to its HTTP one."""
    base = http_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/ws"
    return "ws://" + base.removeprefix("http://") + "/ws"


class HeadWatcher:
    """A ``newHeads`` subscription: :meth:`wait` returns when a new head is announced or the
    timeout passes. If the WebSocket cannot be opened or drops, it reconnects on the next
    wait; the indexer polls the height anyway, so a lost notification only costs a wait."""

    def __init__(self, http_url: str) -> None:
        self.url = websocket_url(http_url)
        self._socket: ClientConnection | None = None

    def _connect(self) -> ClientConnection | None:
        try:
            socket = connect(self.url, open_timeout=5, max_size=1 << 20)
            socket.send(
                json.dumps(
                    {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}
                )
            )
            socket.recv(timeout=5)
        except (OSError, TimeoutError, WebSocketException):
            return None
        return socket

    def wait(self, timeout: float) -> bool:
        """True when a new head was announced within ``timeout`` seconds."""
        if self._socket is None:
            self._socket = self._connect()
            if self._socket is None:
                return False
        try:
            self._socket.recv(timeout=timeout)
        except TimeoutError:
            return False
        except (OSError, WebSocketException):
            self.close()
            return False
        return True

    def close(self) -> None:
        """Close the subscription."""
        if self._socket is not None:
            with contextlib.suppress(OSError, WebSocketException):
                self._socket.close()
            self._socket = None


def chunks(start: int, stop: int, size: int) -> Iterator[list[int]]:
    """Heights ``start`` .. ``stop`` inclusive in lists of at most ``size``."""
    for first in range(start, stop + 1, size):
        yield list(range(first, min(stop, first + size - 1) + 1))
