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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from chain.commit import Validator, ValidatorSet
from chain.merkle import MerkleProof
from chain.primitives import Address, Hash32
from chain.types import CommitCertificate, Header, Transaction
from contracts.validators import RulingSet
from sdk.account import Sm2Account
from sdk.errors import REFUSAL_CODES, SdkError, TransactionRefused
from sdk.transactions import block_limit_for, build_transaction

DEFAULT_TIMEOUT = 10.0
"""Seconds to wait for one answer from the node."""

EXECUTION_REVERTED = 3
"""The JSON-RPC error code of a reverted ``eth_call`` / ``eth_estimateGas`` (as geth)."""


class ChainUnavailable(SdkError):
    """The node could not be reached, or answered with something that is not JSON-RPC."""


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


def _hex_bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def _hex_int(value: str) -> int:
    return int(value, 16)


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
            address=Address(_hex_bytes(value["address"])),
            topics=tuple(Hash32(_hex_bytes(topic)) for topic in value["topics"]),
            data=_hex_bytes(value["data"]),
            block_number=_hex_int(value["blockNumber"]),
            tx_hash=Hash32(_hex_bytes(value["transactionHash"])),
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


class ChainReader:
    """JSON-RPC client of one node. Thread-safe as far as :class:`httpx.Client` is."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """``url``: the node's HTTP JSON-RPC endpoint; ``timeout``: seconds per call."""
        self.url = url
        self._client = httpx.Client(timeout=timeout)
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
            code = int(error.get("code", 0))
            message = str(error.get("message", ""))
            if code in REFUSAL_CODES:
                raise TransactionRefused(code, message, error.get("data"))
            if code == EXECUTION_REVERTED:
                raise CallReverted(method, code, message, error.get("data"))
            raise RpcCallFailed(method, code, message, error.get("data"))
        if "result" not in answer:
            raise ChainUnavailable(f"node at {self.url} sent no result for {method}")
        return answer["result"]

    # -- eth_* ---------------------------------------------------------------------------------

    def chain_id(self) -> int:
        """The node's chain id."""
        return _hex_int(self.request("eth_chainId"))

    def block_number(self) -> int:
        """The height of the node's last committed block."""
        return _hex_int(self.request("eth_blockNumber"))

    def send_raw_transaction(self, raw: bytes) -> Hash32:
        """Submit a signed transaction's canonical encoding; returns its hash. Raises
        TransactionRefused if the mempool refuses it."""
        return Hash32(_hex_bytes(self.request("eth_sendRawTransaction", ["0x" + raw.hex()])))

    def transaction_receipt(self, tx_hash: bytes) -> TxReceipt | None:
        """The receipt of a committed transaction, ``None`` if the node knows none (the node
        may wait a moment for a transaction still in its mempool)."""
        value = self.request("eth_getTransactionReceipt", ["0x" + tx_hash.hex()])
        if value is None:
            return None
        return TxReceipt(
            tx_hash=Hash32(_hex_bytes(value["transactionHash"])),
            status=_hex_int(value["status"]),
            block_number=_hex_int(value["blockNumber"]),
            block_hash=Hash32(_hex_bytes(value["blockHash"])),
            output=_hex_bytes(value.get("output") or "0x"),
            contract_address=(
                None
                if value.get("contractAddress") is None
                else Address(_hex_bytes(value["contractAddress"]))
            ),
            logs=tuple(LogEntry.from_json(log) for log in value["logs"]),
        )

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
        return _hex_bytes(self.request("eth_call", [call, block_param]))

    def estimate_gas(self, sender: bytes, to: bytes | None, data: bytes) -> int:
        """``eth_estimateGas`` of a call from ``sender``; raises CallReverted if it reverts."""
        call: dict[str, str] = {"from": "0x" + sender.hex(), "data": "0x" + data.hex()}
        if to is not None:
            call["to"] = "0x" + to.hex()
        return _hex_int(self.request("eth_estimateGas", [call]))

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
        return [LogEntry.from_json(entry) for entry in self.request("eth_getLogs", [criteria])]

    # -- lianxin_* -----------------------------------------------------------------------------

    def _inclusion(self, method: str, tx_hash: bytes) -> InclusionProof | None:
        value = self.request(method, ["0x" + tx_hash.hex()])
        if value is None:
            return None
        return InclusionProof(
            tx_hash=Hash32(_hex_bytes(value["txHash"])),
            leaf=_hex_bytes(value["leaf"]),
            root=Hash32(_hex_bytes(value["root"])),
            proof=_proof(value["proof"]),
            header=Header.decode(_hex_bytes(value["header"]["encoded"])),
        )

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
        value = self.request("lianxin_getBlockHeader", [param])
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

    def ruling_set(self, height: int | None = None) -> RulingSet:
        """``lianxin_getValidators``: the validator set ruling ``height`` (default: the next
        height) and the first height from which it rules unchanged, checked against the hash
        and the height the node reports for it."""
        value = self.request("lianxin_getValidators", [] if height is None else [hex(height)])
        validator_set = ValidatorSet.of(
            Validator(_hex_bytes(v["publicKey"]), _hex_int(v["power"]))  # type: ignore[arg-type]
            for v in value["validators"]
        )
        if validator_set.hash() != _hex_bytes(value["validatorSetHash"]):
            raise ChainUnavailable("the node's validator set does not match its reported hash")
        if height is not None and _hex_int(value["height"]) != height:
            raise ChainUnavailable(f"the node answered for another height than {height}")
        return RulingSet(validator_set, _hex_int(value["since"]))

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
