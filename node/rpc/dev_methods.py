"""Methods of a dev chain's node: the accounts it holds unlocked, and the ``evm_*`` test
helpers that Hardhat and anvil offer.

Accounts (:mod:`node.dev_accounts`): ``eth_accounts``, ``eth_sendTransaction``,
``eth_signTransaction``, ``eth_sign``, ``personal_sign``, ``eth_signTypedData_v4``. On a node
without dev accounts ``eth_accounts`` is ``[]`` and the others answer -32020.

``eth_sendTransaction`` signs a transaction with a fresh random replay nonce, admits it as
``eth_sendRawTransaction`` does, and, like Hardhat's automine, answers once the block holding it
is committed (at most :data:`AUTOMINE_WAIT_S`; then it answers the hash of the still pending
transaction). A missing ``gas`` is estimated. An EVM ``nonce`` in the request must be the
account's next one (committed plus pending); fee fields are checked for form and ignored (see
:mod:`node.rpc.fees`).

Test helpers, on a single-validator dev chain only (-32020 elsewhere):

- ``evm_mine([timestamp])`` commits a block now (empty if the pool is), at that time if given;
- ``evm_increaseTime(seconds)`` moves the block clock forward, answering the total shift;
- ``evm_setNextBlockTimestamp(seconds)`` moves it so that the next block carries that time;
- ``evm_snapshot`` records the current head and the block clock, answering an id;
  ``evm_revert(id)`` goes back to it, also across committed blocks, and answers true; the
  snapshot and every later one are used up, and an unknown or used id answers false, as in
  Hardhat (whose ``loadFixture`` relies on both).

Why a committed block may be undone here and nowhere else: on any other chain a block is
final once a quorum signed it, other validators hold it and readers have seen it. On a
single-validator dev chain the one node made every block and signed every certificate, and
its only reader is the test suite that asks for the revert, so nothing anyone relies on is
taken back. :meth:`node.ledger.Ledger.rewind_dev` refuses on any chain with more than one
validator or on a node that is not its validator (:mod:`node.dev_rewind`), and these
methods also need the dev accounts (-32020 elsewhere), so no configuration of a real chain
reaches the rewind.

What ``evm_revert`` restores: blocks above the snapshot's head are deleted with their
receipts, certificates, transaction, replay-nonce, block-hash and log indexes, and the head
moves back, in ONE LMDB write transaction (:mod:`node.storage.rewind`: after a crash the
store holds the old head or the snapshot's, whole); the state needs nothing, since trie
nodes are addressed by hash and never deleted. The ledger's block, candidate and
validator-set caches are emptied, installed filters report again from the snapshot's height
(new blocks take the discarded heights, with other hashes), and the evm_increaseTime shift
and a pinned next-block time come back as they were at the snapshot. The pool is emptied:
pending transactions are dropped (their senders' eth_sendTransaction answers -32022), as
Hardhat drops them; one sent while the revert runs is ordered after it. A hash of a
discarded block or transaction is then unknown.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Protocol

from chain.crypto import PrivateKey
from chain.errors import ChainError
from chain.primitives import Address
from node.dev_accounts import DevAccounts, eip191_message, signed_transaction
from node.dev_rewind import DevSnapshots, RewindRefused, Snapshot, check_dev_rewind
from node.mempool import Outcome
from node.rpc import format as fmt
from node.rpc import params as p
from node.rpc.call_methods import CallMethods
from node.rpc.context import RpcContext
from node.rpc.errors import ErrorCode, InvalidParams, RpcError
from node.rpc.eth_methods import EthMethods
from node.rpc.typed_data import typed_data_digest

AUTOMINE_WAIT_S = 30.0
"""Longest eth_sendTransaction waits for the block holding its transaction."""
MAX_MESSAGE_BYTES = 64 * 1024
"""Largest message eth_sign / personal_sign sign."""
MAX_TIME_SHIFT_S = 100 * 365 * 24 * 3600
"""Largest total evm_increaseTime shift (a century)."""

_TX_FIELDS = frozenset(
    {
        "from",
        "to",
        "gas",
        "gasPrice",
        "maxFeePerGas",
        "maxPriorityFeePerGas",
        "value",
        "data",
        "input",
        "nonce",
        "chainId",
        "type",
        "accessList",
    }
)
_FEE_FIELDS = ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas")


class BlockMaker(Protocol):
    """What the dev producer offers the test helpers."""

    async def produce_once(self) -> object:
        """Commit one block now."""
        ...


@dataclass
class DevClock:
    """The dev producer's block clock: the wall clock plus the evm_increaseTime shift, or,
    once, the time evm_setNextBlockTimestamp pinned for the next block."""

    shift_ms: int = 0
    """How far the helpers moved blocks ahead of the wall clock."""
    next_ms: int | None = None
    """The time the next block must carry, if one was pinned."""

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch, shifted; a pinned time is answered once, and
        the clock runs on from it."""
        wall = time.time_ns() // 1_000_000
        if self.next_ms is None:
            return wall + self.shift_ms
        pinned, self.next_ms = self.next_ms, None
        self.shift_ms = max(self.shift_ms, pinned - wall)
        return pinned


def _dev_only(what: str) -> RpcError:
    return RpcError(
        ErrorCode.DEV_ONLY,
        f"{what} needs a dev chain (lianxin dev / lianxin init --dev): this node holds no "
        "accounts. Sign locally and send with eth_sendRawTransaction",
    )


class DevMethods:
    """Dev-account signing and the evm_* helpers."""

    def __init__(
        self,
        ctx: RpcContext,
        eth: EthMethods,
        calls: CallMethods,
        accounts: DevAccounts | None,
        clock: DevClock,
    ) -> None:
        """``accounts`` is None on a node that holds none."""
        self.ctx = ctx
        self.eth = eth
        self.calls = calls
        self.accounts = accounts
        self.clock = clock
        self.block_maker: BlockMaker | None = None
        self._snapshots = DevSnapshots()
        self._revert_lock = asyncio.Lock()

    # -- accounts ------------------------------------------------------------------------

    async def eth_accounts(self, params: list[Any]) -> list[str]:
        """The accounts the node signs for (none unless it serves a dev chain)."""
        p.positional(params, 0, 0, "eth_accounts")
        return [] if self.accounts is None else [fmt.data(a) for a in self.accounts.addresses]

    def _held(self, value: Any, field_name: str, method: str) -> Address:
        if self.accounts is None:
            raise _dev_only(method)
        address = p.address(value, field_name)
        if not self.accounts.holds(address):
            raise RpcError(
                ErrorCode.UNKNOWN_ACCOUNT,
                f"{field_name}: the node holds no key for {fmt.data(address)} (see eth_accounts)",
            )
        return address

    async def _signed_raw(self, request: Any, method: str) -> bytes:
        """The raw signed transaction a request describes."""
        tx = p.optional_object(request, "transaction")
        unknown = set(tx) - _TX_FIELDS
        if unknown:
            raise InvalidParams(f"transaction: unknown fields {sorted(unknown)}")
        sender = self._held(tx.get("from"), "transaction.from", method)
        if "data" in tx and "input" in tx and tx["data"] != tx["input"]:
            raise InvalidParams("transaction: data and input differ")
        for name in (*_FEE_FIELDS, "type"):
            if tx.get(name) is not None:
                p.quantity(tx[name], f"transaction.{name}")
        chain_id = self.ctx.ledger.chain_id
        if tx.get("chainId") is not None and p.quantity(tx["chainId"], "chainId") != chain_id:
            raise InvalidParams(f"transaction.chainId: this chain is {chain_id}")
        if tx.get("nonce") is not None:
            wanted = p.quantity(tx["nonce"], "transaction.nonce", p.MAX_UINT64)
            head = self.ctx.ledger.head
            expected = self.ctx.ledger.account(head, sender).nonce
            expected += self.eth.shaper.pending_count(sender)
            if wanted != expected:
                raise InvalidParams(
                    f"transaction.nonce: {wanted}, but the account's next nonce is {expected}"
                )
        payload = tx.get("input", tx.get("data"))
        data = b"" if payload is None else p.data(payload, "transaction.data", 1 << 20)
        to = None if tx.get("to") is None else p.address(tx["to"], "transaction.to")
        value = 0 if tx.get("value") is None else p.quantity(tx["value"], "transaction.value")
        if tx.get("gas") is not None:
            gas = p.quantity(tx["gas"], "transaction.gas", p.MAX_UINT64)
        else:
            estimate_request = {k: v for k, v in tx.items() if k in ("from", "to", "value")}
            estimate_request["data"] = fmt.data(data)
            gas = int(await self.calls.eth_estimate_gas([estimate_request, "latest"]), 16)
        key = await self._key(sender)
        signed = signed_transaction(
            key,
            chain_id=chain_id,
            head_height=self.ctx.ledger.head.height,
            to=to,
            value=value,
            data=data,
            gas_limit=gas,
        )
        return signed.encode()

    async def eth_send_transaction(self, params: list[Any]) -> str:
        """Sign with the ``from`` account's key, admit, and answer once committed."""
        (request,) = p.positional(params, 1, 1, "eth_sendTransaction")
        raw = await self._signed_raw(request, "eth_sendTransaction")
        tx_hash_hex = await self.eth.eth_send_raw_transaction([fmt.data(raw)])
        outcome = await self.ctx.mempool.wait(p.hash32(tx_hash_hex, "hash"), AUTOMINE_WAIT_S)
        if outcome is None:
            return tx_hash_hex
        if outcome.height is None:
            raise RpcError(
                ErrorCode.TRANSACTION_DROPPED,
                f"transaction dropped before a block included it: {outcome.reason}",
                {"hash": tx_hash_hex},
            )
        return tx_hash_hex

    async def eth_sign_transaction(self, params: list[Any]) -> str:
        """The raw signed transaction (for eth_sendRawTransaction), not sent."""
        (request,) = p.positional(params, 1, 1, "eth_signTransaction")
        return fmt.data(await self._signed_raw(request, "eth_signTransaction"))

    async def _key(self, address: Address) -> PrivateKey:
        assert self.accounts is not None
        try:
            return await self.accounts.key(address)
        except ChainError as exc:
            raise RpcError(
                ErrorCode.UNKNOWN_ACCOUNT,
                f"the keystore of {fmt.data(address)} does not open with the node's keystore "
                f"password: {exc}",
            ) from exc

    async def _sign_message(self, address: Address, message: bytes) -> str:
        key = await self._key(address)
        return fmt.data(key.sign(message))

    async def eth_sign(self, params: list[Any]) -> str:
        """SM2 signature (DER) of the EIP-191 message of ``data``, by ``address``."""
        address_raw, message_raw = p.positional(params, 2, 2, "eth_sign")
        address = self._held(address_raw, "address", "eth_sign")
        message = p.data(message_raw, "message", MAX_MESSAGE_BYTES)
        return await self._sign_message(address, eip191_message(message))

    async def personal_sign(self, params: list[Any]) -> str:
        """``eth_sign`` with its parameters the other way round (what ethers' signMessage
        sends)."""
        message_raw, address_raw = p.positional(params, 2, 3, "personal_sign")[:2]
        address = self._held(address_raw, "address", "personal_sign")
        message = p.data(message_raw, "message", MAX_MESSAGE_BYTES)
        return await self._sign_message(address, eip191_message(message))

    async def eth_sign_typed_data_v4(self, params: list[Any]) -> str:
        """SM2 signature (DER) of the EIP-712 digest of the typed data, by ``address``."""
        address_raw, document = p.positional(params, 2, 2, "eth_signTypedData_v4")
        address = self._held(address_raw, "address", "eth_signTypedData_v4")
        return await self._sign_message(address, typed_data_digest(document))

    # -- evm_* test helpers --------------------------------------------------------------

    def _maker(self, method: str) -> BlockMaker:
        if (
            self.accounts is None
            or self.block_maker is None
            or len(self.ctx.ledger.genesis.validators) != 1
        ):
            raise RpcError(ErrorCode.DEV_ONLY, f"{method} needs a single-validator dev chain")
        return self.block_maker

    async def evm_mine(self, params: list[Any]) -> str:
        """Commit a block now; with a timestamp (seconds, after the head's), the block
        carries exactly that time."""
        (timestamp_raw,) = p.positional(params, 0, 1, "evm_mine")
        maker = self._maker("evm_mine")
        if timestamp_raw is not None:
            self._pin_next_block(timestamp_raw)
        await maker.produce_once()
        return "0x0"

    def _pin_next_block(self, timestamp_raw: Any) -> None:
        """Make the next block carry ``timestamp_raw`` (seconds, a number or a quantity)."""
        if isinstance(timestamp_raw, int) and not isinstance(timestamp_raw, bool):
            seconds = timestamp_raw
        else:
            seconds = p.quantity(timestamp_raw, "timestamp", p.MAX_UINT64)
        head_ms = self.ctx.ledger.head.timestamp_ms
        if seconds * 1000 <= head_ms:
            raise InvalidParams(
                f"timestamp: {seconds} is not after the head block's time ({head_ms // 1000})"
            )
        if seconds * 1000 - time.time_ns() // 1_000_000 > MAX_TIME_SHIFT_S * 1000:
            raise InvalidParams("timestamp: more than a century ahead")
        self.clock.next_ms = seconds * 1000

    async def evm_increase_time(self, params: list[Any]) -> int:
        """Move the block clock ``seconds`` ahead; answers the total shift in seconds."""
        (seconds_raw,) = p.positional(params, 1, 1, "evm_increaseTime")
        self._maker("evm_increaseTime")
        if isinstance(seconds_raw, int) and not isinstance(seconds_raw, bool):
            seconds = seconds_raw
        else:
            seconds = p.quantity(seconds_raw, "seconds", p.MAX_UINT64)
        if not 0 <= seconds <= MAX_TIME_SHIFT_S - self.clock.shift_ms // 1000:
            raise InvalidParams("seconds: expected 0 .. a century, in total")
        self.clock.shift_ms += seconds * 1000
        return self.clock.shift_ms // 1000

    async def evm_set_next_block_timestamp(self, params: list[Any]) -> None:
        """Move the block clock so that the next block carries ``timestamp`` (seconds); the
        clock runs on from there. Never backwards: a block's time is past its parent's."""
        (timestamp_raw,) = p.positional(params, 1, 1, "evm_setNextBlockTimestamp")
        self._maker("evm_setNextBlockTimestamp")
        self._pin_next_block(timestamp_raw)

    async def evm_snapshot(self, params: list[Any]) -> str:
        """An id naming the current head and the block clock, for evm_revert."""
        p.positional(params, 0, 0, "evm_snapshot")
        self._maker("evm_snapshot")
        head = self.ctx.ledger.head
        snapshot = Snapshot(head.height, head.hash, self.clock.shift_ms, self.clock.next_ms)
        return fmt.quantity(self._snapshots.take(snapshot))

    async def evm_revert(self, params: list[Any]) -> bool:
        """Go back to the snapshot ``id`` (discarding the blocks committed since, see the
        module doc): true, and that snapshot and every later one are used up; false for an
        unknown or used id, changing nothing."""
        (id_raw,) = p.positional(params, 1, 1, "evm_revert")
        self._maker("evm_revert")
        if isinstance(id_raw, int) and not isinstance(id_raw, bool):
            snapshot_id = id_raw
        else:
            snapshot_id = p.quantity(id_raw, "snapshotId", p.MAX_UINT64)
        async with self._revert_lock:
            snapshot = self._snapshots.get(snapshot_id)
            if snapshot is None:
                return False
            ledger = self.ctx.ledger
            kept = ledger.block(snapshot.height)
            if kept is None or kept.hash != snapshot.block_hash:
                self._snapshots.use(snapshot_id)
                return False
            try:
                # Refuse before touching anything (the ledger checks again, under its lock).
                ruling = ledger.validator_set(ledger.head.height + 1).validators
                check_dev_rewind(
                    ledger.genesis, ruling, ledger.validator_address, ledger.head, snapshot.height
                )
            except RewindRefused as exc:
                raise RpcError(ErrorCode.REVERT_REFUSED, str(exc)) from exc
            self._snapshots.use(snapshot_id)
            reason = f"discarded by evm_revert to block {snapshot.height}"
            self.ctx.mempool.drop_all(reason)
            # Always through the ledger, also when the head is the snapshot's: a block being
            # executed or written meanwhile is waited for and discarded too.
            try:
                rewound = await self.ctx.off_loop(ledger.rewind_dev, snapshot.height)
            except RewindRefused as exc:
                raise RpcError(ErrorCode.REVERT_REFUSED, str(exc)) from exc
            # Blocks executed ahead and not written hold transactions the producer took after
            # the pool was emptied: they never reach the store, so they are dropped too. What
            # arrived while the ledger rewound stays, ordered after the revert.
            self.ctx.mempool.settle(
                {
                    tx.hash: Outcome(None, reason)
                    for block in rewound.unwritten
                    for tx in block.transactions
                }
            )
            self._snapshots.forget_above(snapshot.height)
            self.clock.shift_ms = snapshot.shift_ms
            self.clock.next_ms = snapshot.next_ms
            return True
