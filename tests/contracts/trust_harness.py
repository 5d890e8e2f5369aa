"""A ledger for the trust-contract tests: IssuerRegistry, Notary and LicenseRegistry deployed
through chain.execution.execute_block by SM2-signed transactions, with named department keys,
calls, decoded events and revert checks (status 0, custom error, storage untouched)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chain.crypto import PrivateKey, sm3
from chain.execution import BlockContext, account_at, call, execute_block, genesis_state
from chain.primitives import Address, Hash32
from chain.types import Receipt, Transaction
from contracts.trust import (
    OPEN_ENDED,
    ContractCodec,
    DecodedError,
    DecodedEvent,
    Role,
    uscc_bytes,
)

CHAIN_ID = 7
PROPOSER = Address(bytes.fromhex("00000000000000000000000000000000000000aa"))
READER = Address(bytes.fromhex("00000000000000000000000000000000000000bb"))
GENESIS_TIME_MS = 1_700_000_000_000
BLOCK_INTERVAL_MS = 1_000
TX_GAS = 2_000_000
DEPLOY_GAS = 5_000_000

# Published examples of valid and invalid unified social credit codes (GB 32100), as listed
# in the shared identifier vectors.
USCC_A = "91350100M000100Y43"
USCC_B = "11100000000013338W"
USCC_C = "11220000013544541J"
INVALID_USCCS = ("91350100M000100Y44", "9135010OM000100Y43")


def signing_key(label: str) -> PrivateKey:
    """A deterministic SM2 key per label, so runs are reproducible."""
    return PrivateKey.from_bytes(sm3(b"trust test key " + label.encode()))


class Ledger:
    """A dict-backed state store advanced block by block, as the node does with LMDB."""

    def __init__(self) -> None:
        update = genesis_state({})
        self.store: dict[bytes, bytes] = dict(update.writes)
        self.root = update.state_root
        self.height = 0
        self.time_ms = GENESIS_TIME_MS
        self._nonces = 0

    def context(self) -> BlockContext:
        """The context of the next block."""
        return BlockContext(
            chain_id=CHAIN_ID,
            height=self.height + 1,
            timestamp_ms=self.time_ms + BLOCK_INTERVAL_MS,
            proposer=PROPOSER,
        )

    @property
    def next_timestamp(self) -> int:
        """The EVM TIMESTAMP (seconds) of the next block."""
        return self.context().timestamp_ms // 1000

    def tx(
        self, key: PrivateKey, to: Address | None, data: bytes, gas_limit: int = TX_GAS
    ) -> Transaction:
        """A transaction signed by ``key``."""
        self._nonces += 1
        unsigned = Transaction(
            chain_id=CHAIN_ID,
            nonce=Hash32(sm3(b"trust test nonce %d" % self._nonces)),
            block_limit=self.height + 100,
            to=to,
            value=0,
            data=data,
            gas_limit=gas_limit,
            public_key=key.public_key.to_bytes(),
        )
        return dataclasses.replace(unsigned, signature=key.sign(unsigned.sign_bytes()))

    def run(self, transactions: Sequence[Transaction]) -> tuple[Receipt, ...]:
        """Execute one block holding ``transactions`` and keep its state."""
        context = self.context()
        result = execute_block(self.store, self.root, context, transactions)
        self.store.update(result.writes)
        self.root = result.state_root
        self.height = context.height
        self.time_ms = context.timestamp_ms
        return result.receipts

    def advance(self, blocks: int = 1, seconds: int = 0) -> None:
        """Add ``blocks`` empty blocks, the first one ``seconds`` later than usual."""
        self.time_ms += 1000 * seconds
        for _ in range(blocks):
            self.run([])

    def storage_root(self, address: Address) -> Hash32:
        """The storage root of a contract, to show that a refused call changed nothing."""
        return account_at(self.store, self.root, address).storage_root


@dataclass
class Contract:
    """A deployed contract: transactions and calls by function name."""

    ledger: Ledger
    codec: ContractCodec
    address: Address

    def transact(self, key: PrivateKey, name: str, *args: Any) -> Receipt:
        """Send one call of ``name`` signed by ``key`` in a block of its own."""
        return self.ledger.run([self.tx(key, name, *args)])[0]

    def tx(self, key: PrivateKey, name: str, *args: Any) -> Transaction:
        """A signed transaction calling ``name``, for blocks of several transactions."""
        return self.ledger.tx(key, self.address, self.codec.encode_call(name, *args))

    def send(self, key: PrivateKey, name: str, *args: Any) -> Receipt:
        """Like :meth:`transact`, asserting that the call succeeded."""
        receipt = self.transact(key, name, *args)
        assert receipt.status == 1, self.codec.decode_error(receipt.output)
        return receipt

    def refused(self, key: PrivateKey, name: str, *args: Any) -> DecodedError:
        """Send a call that must revert: status 0, no logs, this contract's storage
        unchanged; return the custom error it reverted with."""
        before = self.ledger.storage_root(self.address)
        receipt = self.transact(key, name, *args)
        assert receipt.status == 0, self.events(receipt)
        assert receipt.logs == ()
        assert self.ledger.storage_root(self.address) == before
        return self.codec.decode_error(receipt.output)

    def view(self, name: str, *args: Any) -> Any:
        """Call ``name`` on the latest state; a single return value comes unwrapped."""
        result = self._call(name, args)
        assert result.success, self.codec.decode_error(result.output)
        values = self.codec.decode_result(name, result.output)
        return values[0] if len(values) == 1 else values

    def view_error(self, name: str, *args: Any) -> DecodedError:
        """Call ``name``, which must revert; return its custom error."""
        result = self._call(name, args)
        assert not result.success
        return self.codec.decode_error(result.output)

    def _call(self, name: str, args: tuple[Any, ...]) -> Any:
        ledger = self.ledger
        data = self.codec.encode_call(name, *args)
        return call(
            ledger.store, ledger.root, ledger.context(), sender=READER, to=self.address, data=data
        )

    def events(self, receipt: Receipt) -> list[DecodedEvent]:
        """The receipt's logs emitted by this contract, decoded."""
        return [self.codec.decode_log(log) for log in receipt.logs if log.address == self.address]


def deploy(ledger: Ledger, key: PrivateKey, name: str, *args: Any) -> Contract:
    """Deploy the committed artifact ``name`` with constructor ``args``."""
    codec = ContractCodec.load(name)
    (receipt,) = ledger.run([ledger.tx(key, None, codec.deploy_data(*args), DEPLOY_GAS)])
    assert receipt.status == 1, receipt
    assert receipt.contract_address is not None
    return Contract(ledger, codec, receipt.contract_address)


@dataclass
class TrustStack:
    """The three trust contracts on one ledger, with two departments and their keys:

    - department A (USCC_A): ``a_issuer`` (ISSUER), ``a_issuer2`` (ISSUER),
      ``a_revoker`` (REVOKER), ``a_auditor`` (AUDITOR);
    - department B (USCC_B): ``b_issuer`` (ISSUER | REVOKER);
    - ``governance`` manages the registry; ``outsider`` is no one's key.
    """

    ledger: Ledger
    registry: Contract
    notary: Contract
    licenses: Contract
    keys: dict[str, PrivateKey] = field(default_factory=dict)

    def key(self, label: str) -> PrivateKey:
        """The key named ``label`` (made on first use)."""
        if label not in self.keys:
            self.keys[label] = signing_key(label)
        return self.keys[label]

    @property
    def governance(self) -> PrivateKey:
        return self.key("governance")

    def account(self, label: str) -> Address:
        """The account of the key named ``label``."""
        return Address(self.key(label).public_key.address)

    def add_key(
        self,
        uscc: str,
        label: str,
        roles: Role,
        valid_from: int = 0,
        valid_until: int = OPEN_ENDED,
    ) -> int:
        """Register the key ``label`` for department ``uscc``; return its key id."""
        public_key = self.key(label).public_key.to_bytes()
        receipt = self.registry.send(
            self.governance, "addKey", uscc_bytes(uscc), public_key, roles, valid_from, valid_until
        )
        (key_id,) = self.registry.codec.decode_result("addKey", receipt.output)
        return int(key_id)


def trust_stack() -> TrustStack:
    """A fresh ledger with the registry, notary and license registry deployed and the
    departments and keys of :class:`TrustStack` registered."""
    ledger = Ledger()
    deployer = signing_key("deployer")
    governance = signing_key("governance")
    registry = deploy(ledger, deployer, "IssuerRegistry", governance.public_key.address)
    stack = TrustStack(
        ledger=ledger,
        registry=registry,
        notary=deploy(ledger, deployer, "Notary", registry.address),
        licenses=deploy(ledger, deployer, "LicenseRegistry", registry.address),
        keys={"governance": governance},
    )
    for uscc, name in ((USCC_A, "某区市场监督管理局"), (USCC_B, "某区档案馆")):
        registry.send(governance, "registerDepartment", uscc_bytes(uscc), name)
    stack.add_key(USCC_A, "a_issuer", Role.ISSUER)
    stack.add_key(USCC_A, "a_issuer2", Role.ISSUER)
    stack.add_key(USCC_A, "a_revoker", Role.REVOKER)
    stack.add_key(USCC_A, "a_auditor", Role.AUDITOR)
    stack.add_key(USCC_B, "b_issuer", Role.ISSUER | Role.REVOKER)
    return stack
