"""Typed JSON-RPC access to a lianxin node for applications: the ``eth_*`` calls a trust
service needs (chain id, height, raw transactions, receipts, calls, logs) and the node's own
``lianxin_*`` proof methods, each answer parsed into ledger types from :mod:`chain.types`.

Transport only, in the spirit of a web3 provider: one :class:`httpx.Client`, one method per
RPC method, no retries. A node that cannot be reached raises :class:`ChainUnavailable`, so a
caller can tell "no answer" apart from any answer the chain gave.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from chain.commit import Validator, ValidatorSet
from chain.merkle import MerkleProof
from chain.primitives import Address, Hash32
from chain.types import CommitCertificate, Header, Transaction
from contracts.validators import RulingSet
from sdk.account import Sm2Account
from sdk.errors import ANSWER_FAULTS, REFUSAL_CODES, SdkError, TransactionRefused
from sdk.json_shapes import json_array
from sdk.transactions import block_limit_for, build_transaction

_T = TypeVar("_T")

DEFAULT_TIMEOUT = 10.0
"""Seconds to wait for one answer from the node."""

EXECUTION_REVERTED = 3
"""The JSON-RPC error code of a reverted ``eth_call`` / ``eth_estimateGas`` (as geth)."""


class ChainUnavailable(SdkError):
    """The node could not be reached, or answered with something that is not JSON-RPC or not
    the method's answer (a member missing, of another type, or not hex of its size)."""


class RpcCallFailed(SdkError):
    """The node answered a call with a JSON-RPC error other than a mempool refusal."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method} failed ({code}): {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class CallReverted(RpcCallFailed):
    """``eth_call`` or ``eth_estimateGas`` reverted; :attr:`revert_data` is the revert data."""

    @property
    def revert_data(self) -> bytes:
        """The raw revert data (empty if the node sent none)."""
        if isinstance(self.data, str) and self.data.startswith("0x"):
            return bytes.fromhex(self.data[2:])
        return b""


def _hex_bytes(value: Any) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"{value!r} is not 0x-prefixed hex")
    return bytes.fromhex(value[2:])


def _hex_int(value: Any) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"{value!r} is not a 0x-prefixed hex quantity")
    return int(value[2:], 16)


def _fixed(value: Any, size: int) -> bytes:
    found = _hex_bytes(value)
    if len(found) != size:
        raise ValueError(f"{value!r} is not {size} bytes")
    return found


def _hash(value: Any) -> Hash32:
    return Hash32(_fixed(value, 32))


def _address(value: Any) -> Address:
    return Address(_fixed(value, 20))


def _proof(value: Mapping[str, Any]) -> MerkleProof:
    return MerkleProof.decode(_hex_bytes(value["encoded"]))


@dataclass(frozen=True)
class TxReceipt:
    """The parts of an ``eth_getTransactionReceipt`` answer a trust service reads."""

    tx_hash: Hash32
    """The transaction."""
    status: int
    """1 if it executed successfully, 0 if it reverted."""
    block_number: int
    """Height of the block that holds it."""
    block_hash: Hash32
    """Hash of that block."""
    output: bytes
    """Return data, or revert data when ``status`` is 0."""
    contract_address: Address | None
    """The contract a successful creation made; otherwise ``None``."""
    logs: tuple[LogEntry, ...]
    """Its events, in order."""


@dataclass(frozen=True)
class LogEntry:
    """One event log as ``eth_getLogs`` and receipts report it."""

    address: Address
    """The contract that emitted it."""
    topics: tuple[Hash32, ...]
    """Indexed topics."""
    data: bytes
    """Non-indexed ABI data."""
    block_number: int
    """Height of its block."""
    tx_hash: Hash32
    """The transaction that emitted it."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> LogEntry:
        """Parse one log object of the Ethereum JSON-RPC API."""
        return cls(
            address=_address(value["address"]),
            topics=tuple(_hash(topic) for topic in json_array(value["topics"])),
            data=_hex_bytes(value["data"]),
            block_number=_hex_int(value["blockNumber"]),
            tx_hash=_hash(value["transactionHash"]),
        )


@dataclass(frozen=True)
class InclusionProof:
    """A ``lianxin_getTransactionProof`` / ``lianxin_getReceiptProof`` answer: ``leaf`` sits
    under ``root`` of the block ``header`` by ``proof``."""

    tx_hash: Hash32
    """The transaction the proof is about."""
    leaf: bytes
    """The proven leaf: the tx hash, or the receipt's canonical encoding."""
    root: Hash32
    """The header's tx root or receipt root."""
    proof: MerkleProof
    """The Merkle path from ``leaf`` to ``root``."""
    header: Header
    """The header of the block holding the transaction."""


@dataclass(frozen=True)
class CertifiedHeader:
    """A ``lianxin_getBlockHeader`` answer: a header and the certificate that commits it."""

    header: Header
    """The block header."""
    certificate: CommitCertificate | None
    """Precommits for the header's hash (``None`` for genesis or a block not yet certified)."""


def _receipt(value: Any) -> TxReceipt | None:
    if value is None:
        return None
    contract = value.get("contractAddress")
    return TxReceipt(
        tx_hash=_hash(value["transactionHash"]),
        status=_hex_int(value["status"]),
        block_number=_hex_int(value["blockNumber"]),
        block_hash=_hash(value["blockHash"]),
        output=_hex_bytes(value.get("output") or "0x"),
        contract_address=None if contract is None else _address(contract),
        logs=tuple(LogEntry.from_json(log) for log in json_array(value["logs"])),
    )


def _logs(value: Any) -> list[LogEntry]:
    return [LogEntry.from_json(entry) for entry in json_array(value)]


def _inclusion_proof(value: Any) -> InclusionProof | None:
    if value is None:
        return None
    return InclusionProof(
        tx_hash=_hash(value["txHash"]),
        leaf=_hex_bytes(value["leaf"]),
        root=_hash(value["root"]),
        proof=_proof(value["proof"]),
        header=Header.decode(_hex_bytes(value["header"]["encoded"])),
    )


def _certified_header(value: Any) -> CertifiedHeader | None:
    if value is None:
        return None
    certificate = value.get("certificate")
    return CertifiedHeader(
        header=Header.decode(_hex_bytes(value["header"]["encoded"])),
        certificate=(
            None
            if certificate is None
            else CommitCertificate.decode(_hex_bytes(certificate["encoded"]))
        ),
    )


def _validators(value: Any) -> tuple[ValidatorSet, bytes, int, int]:
    """The validator set of a ``lianxin_getValidators`` answer, the hash the node reports
    for it, the height it answered for, and the height the set rules from."""
    validator_set = ValidatorSet.of(
        Validator(_hex_bytes(v["publicKey"]), _hex_int(v["power"]))  # type: ignore[arg-type]
        for v in json_array(value["validators"])
    )
    height = value.get("height")
    return (
        validator_set,
        _hex_bytes(value["validatorSetHash"]),
        -1 if height is None else _hex_int(height),
        _hex_int(value["since"]),
    )


class ChainReader:
    """JSON-RPC client of one node. Thread-safe as far as :class:`httpx.Client` is."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``url``: the node's HTTP JSON-RPC endpoint; ``timeout``: seconds per call;
        ``transport``: an httpx transport (a proxy's, say)."""
        self.url = url
        self._client = httpx.Client(timeout=timeout, transport=transport)
        self._ids = itertools.count(1)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> ChainReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(self, method: str, params: Sequence[Any] = ()) -> Any:
        """Send one JSON-RPC call and return its ``result``. Raises ChainUnavailable when
        there is no usable answer, TransactionRefused for a mempool refusal, CallReverted
        for a revert, and RpcCallFailed for any other error."""
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        try:
            response = self._client.post(self.url, json=body)
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ChainUnavailable(f"node at {self.url} did not answer {method}: {exc}") from exc
        if not isinstance(answer, dict):
            raise ChainUnavailable(f"node at {self.url} sent a non-object answer to {method}")
        error = answer.get("error")
        if isinstance(error, dict):
            code = error.get("code", 0)
            if type(code) is not int:
                raise ChainUnavailable(f"node at {self.url} sent an error without a code")
            message = str(error.get("message", ""))
            if code in REFUSAL_CODES:
                raise TransactionRefused(code, message, error.get("data"))
            if code == EXECUTION_REVERTED:
                raise CallReverted(method, code, message, error.get("data"))
            raise RpcCallFailed(method, code, message, error.get("data"))
        if "result" not in answer:
            raise ChainUnavailable(f"node at {self.url} sent no result for {method}")
        return answer["result"]

    def _read(self, method: str, params: Sequence[Any], parse: Callable[[Any], _T]) -> _T:
        """:meth:`request`, its result read by ``parse``: a result of another shape than
        the method's answer raises ChainUnavailable."""
        result = self.request(method, params)
        try:
            return parse(result)
        except ANSWER_FAULTS as exc:
            raise ChainUnavailable(
                f"node at {self.url} sent a malformed answer to {method}: {exc}"
            ) from exc

    # -- eth_* ---------------------------------------------------------------------------------

    def chain_id(self) -> int:
        """The node's chain id."""
        return self._read("eth_chainId", (), _hex_int)

    def block_number(self) -> int:
        """The height of the node's last committed block."""
        return self._read("eth_blockNumber", (), _hex_int)

    def send_raw_transaction(self, raw: bytes) -> Hash32:
        """Submit a signed transaction's canonical encoding; returns its hash. Raises
        TransactionRefused if the mempool refuses it."""
        return self._read("eth_sendRawTransaction", ["0x" + raw.hex()], _hash)

    def transaction_receipt(self, tx_hash: bytes) -> TxReceipt | None:
        """The receipt of a committed transaction, ``None`` if the node knows none (the node
        may wait a moment for a transaction still in its mempool)."""
        return self._read("eth_getTransactionReceipt", ["0x" + tx_hash.hex()], _receipt)

    def wait_for_receipt(
        self, tx_hash: bytes, *, timeout: float = 30.0, poll_interval: float = 0.1
    ) -> TxReceipt | None:
        """Poll for the receipt of ``tx_hash`` for up to ``timeout`` seconds; ``None`` if
        none came."""
        deadline = time.monotonic() + timeout
        while True:
            receipt = self.transaction_receipt(tx_hash)
            if receipt is not None or time.monotonic() >= deadline:
                return receipt
            time.sleep(poll_interval)

    def call(self, to: bytes, data: bytes, block: int | str = "latest") -> bytes:
        """``eth_call`` of ``data`` on contract ``to`` at ``block`` (a height or a tag);
        raises CallReverted if it reverts."""
        block_param = hex(block) if isinstance(block, int) else block
        call = {"to": "0x" + to.hex(), "data": "0x" + data.hex()}
        return self._read("eth_call", [call, block_param], _hex_bytes)

    def estimate_gas(self, sender: bytes, to: bytes | None, data: bytes) -> int:
        """``eth_estimateGas`` of a call from ``sender``; raises CallReverted if it reverts."""
        call: dict[str, str] = {"from": "0x" + sender.hex(), "data": "0x" + data.hex()}
        if to is not None:
            call["to"] = "0x" + to.hex()
        return self._read("eth_estimateGas", [call], _hex_int)

    def get_logs(
        self,
        *,
        address: bytes,
        topics: Sequence[bytes | None] = (),
        from_block: int = 0,
        to_block: int | str = "latest",
    ) -> list[LogEntry]:
        """``eth_getLogs`` of one contract, filtered by topic position (``None``: any)."""
        criteria = {
            "address": "0x" + address.hex(),
            "topics": [None if topic is None else "0x" + topic.hex() for topic in topics],
            "fromBlock": hex(from_block),
            "toBlock": hex(to_block) if isinstance(to_block, int) else to_block,
        }
        return self._read("eth_getLogs", [criteria], _logs)

    # -- lianxin_* -----------------------------------------------------------------------------

    def _inclusion(self, method: str, tx_hash: bytes) -> InclusionProof | None:
        return self._read(method, ["0x" + tx_hash.hex()], _inclusion_proof)

    def transaction_proof(self, tx_hash: bytes) -> InclusionProof | None:
        """``lianxin_getTransactionProof``: the tx hash under its block's tx root."""
        return self._inclusion("lianxin_getTransactionProof", tx_hash)

    def receipt_proof(self, tx_hash: bytes) -> InclusionProof | None:
        """``lianxin_getReceiptProof``: the receipt under its block's receipt root."""
        return self._inclusion("lianxin_getReceiptProof", tx_hash)

    def block_header(self, block: int | bytes | str = "latest") -> CertifiedHeader | None:
        """``lianxin_getBlockHeader`` of a height, a block hash or a tag."""
        if isinstance(block, int):
            param = hex(block)
        elif isinstance(block, bytes):
            param = "0x" + block.hex()
        else:
            param = block
        return self._read("lianxin_getBlockHeader", [param], _certified_header)

    def ruling_set(self, height: int | None = None) -> RulingSet:
        """``lianxin_getValidators``: the validator set ruling ``height`` (default: the next
        height) and the first height from which it rules unchanged, checked against the hash
        and the height the node reports for it."""
        params = [] if height is None else [hex(height)]
        answer = self._read("lianxin_getValidators", params, _validators)
        validator_set, reported_hash, answered_height, since = answer
        if validator_set.hash() != reported_hash:
            raise ChainUnavailable("the node's validator set does not match its reported hash")
        if height is not None and answered_height != height:
            raise ChainUnavailable(f"the node answered for another height than {height}")
        return RulingSet(validator_set, since)

    def validators(self, height: int | None = None) -> ValidatorSet:
        """The validator set ruling ``height`` (default: the next height); see
        :meth:`ruling_set`."""
        return self.ruling_set(height).validators

    # -- signing -------------------------------------------------------------------------------

    def sign_call(
        self,
        account: Sm2Account,
        *,
        to: bytes | None,
        data: bytes,
        gas_limit: int | None = None,
        gas_margin_percent: int = 20,
    ) -> Transaction:
        """A transaction from ``account`` calling ``to`` with ``data`` (``to=None`` deploys),
        signed and ready for :meth:`send_raw_transaction`: chain id and ``block_limit`` from
        the node, a fresh random replay nonce, and the node's gas estimate plus a margin
        unless ``gas_limit`` is given."""
        if gas_limit is None:
            estimate = self.estimate_gas(account.address, to, data)
            gas_limit = estimate + estimate * gas_margin_percent // 100
        tx = build_transaction(
            chain_id=self.chain_id(),
            to=to,
            data=data,
            gas_limit=gas_limit,
            block_limit=block_limit_for(self.block_number()),
        )
        return account.sign_transaction(tx)

    def transact(
        self,
        account: Sm2Account,
        *,
        to: bytes | None,
        data: bytes,
        gas_limit: int | None = None,
        timeout: float = 30.0,
    ) -> TxReceipt:
        """Sign, send and wait for one transaction; raises RpcCallFailed if no receipt came
        within ``timeout`` seconds. The receipt may carry status 0 (reverted)."""
        tx = self.sign_call(account, to=to, data=data, gas_limit=gas_limit)
        tx_hash = self.send_raw_transaction(tx.encode())
        receipt = self.wait_for_receipt(tx_hash, timeout=timeout)
        if receipt is None:
            raise RpcCallFailed("eth_getTransactionReceipt", 0, f"no receipt for {tx_hash.hex()}")
        return receipt
