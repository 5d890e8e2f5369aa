"""The registry's access to the chain, through the SDK only: contract addresses and chain
facts it recorded, the signed anchoring transactions of the outbox, the chain half of proof
bundles, and live reads of leaf status and issuer identity.

Every method that needs the node raises :class:`sdk.chain_reader.ChainUnavailable` when it
cannot be reached; callers turn that into "try later" or an UNAVAILABLE verdict.
"""

from __future__ import annotations

import enum
import json
import threading
from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from chain.commit import Validator, ValidatorSet
from chain.merkle import leaf_hash
from chain.primitives import Address, Hash32
from chain.types import Transaction
from contracts.trust import ContractCodec, KeyRecord, LeafStatus
from contracts.validators import RulingSet
from registry.caches import LruCache, TtlCache
from registry.db import Database
from registry.errors import RegistryError, ServiceUnavailable
from registry.models import ChainValue
from registry.settings import RegistrySettings
from sdk.account import Sm2Account
from sdk.chain_reader import ChainReader, ChainUnavailable, TxReceipt
from sdk.errors import RefusalReason, TransactionRefused
from sdk.transactions import block_limit_for, build_transaction

NOTARY = ContractCodec.load("Notary")
"""ABI codec of the Notary contract."""
ISSUER_REGISTRY = ContractCodec.load("IssuerRegistry")
"""ABI codec of the IssuerRegistry contract."""

BATCH_ANCHORED_TOPIC = Hash32(keccak(text="BatchAnchored(bytes32,address,bytes18,uint64,bytes32)"))
"""topic0 of Notary's BatchAnchored event."""

ISSUER_REGISTRY_KEY = "issuer_registry_address"
NOTARY_KEY = "notary_address"
LICENSE_REGISTRY_KEY = "license_registry_address"
CHAIN_ID_KEY = "chain_id"
VALIDATORS_KEY = "validators"
VALIDATORS_FROM_PREFIX = "validators_from_"
"""``validators_from_<height>`` records the validator set ruling from that height on, and
the highest height the node confirmed it for (one row per set, not per height)."""

CONTRACTS_TTL_S = 1.0
"""How long recorded contract addresses are reused before the database is read again."""

VALIDATOR_SETS_AT_CACHE_SIZE = 4096
"""Heights whose validator set is kept in memory (the set of a committed height never
changes)."""


class ContractsNotDeployed(ServiceUnavailable):
    """No trust-contract addresses are configured or recorded: run the bootstrap first."""

    code = "contracts_not_deployed"


class EvidenceNotReady(Exception):
    """The node does not (yet) have every piece of a batch's evidence, e.g. the commit
    certificate of the newest block."""


@dataclass(frozen=True)
class TrustContracts:
    """Addresses of the trust contracts the registry uses."""

    issuer_registry: Address
    """IssuerRegistry."""
    notary: Address
    """Notary."""
    license_registry: Address | None
    """LicenseRegistry (if deployed)."""


class SubmitOutcome(enum.Enum):
    """What the node did with a raw anchoring transaction."""

    ACCEPTED = "accepted"
    """Admitted to the mempool now."""
    KNOWN = "known"
    """Refused as a duplicate: the node has it in its pool or committed it already."""
    EXPIRED = "expired"
    """Refused as expired: it can never be included any more."""


def _address(text: str) -> Address:
    raw = bytes.fromhex(text.removeprefix("0x"))
    if len(raw) != 20:
        raise ValueError(f"not a 20-byte address: {text!r}")
    return Address(raw)


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


_INSERT_BY_DIALECT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
"""The INSERT constructs that know ``ON CONFLICT``, by SQLAlchemy dialect name."""


def _insert_chain_value(session: Session, name: str, value: str) -> Any:
    """An ``INSERT INTO chain_values`` of ``name`` = ``value`` in the session's dialect, to
    be finished with ``on_conflict_do_nothing`` or ``on_conflict_do_update``: a writer that
    meets a row another writer inserted meanwhile then neither fails nor overwrites blindly
    (a read-then-insert fails on the primary key when two writers read "absent" together)."""
    dialect = session.get_bind().dialect.name
    insert = _INSERT_BY_DIALECT.get(dialect)
    if insert is None:
        raise RegistryError(f"no upsert for {dialect} databases", code="unsupported_database")
    return insert(ChainValue).values(name=name, value=value)


def _validators_json(validator_set: ValidatorSet) -> list[dict[str, Any]]:
    """The members of a validator set as bundles and recorded values write them."""
    return [{"publicKey": _hex(v.public_key), "power": v.power} for v in validator_set.validators]


def _validator_set_of(members: list[dict[str, Any]]) -> ValidatorSet:
    """The validator set written by :func:`_validators_json`."""
    return ValidatorSet.of(
        Validator(bytes.fromhex(v["publicKey"][2:]), int(v["power"]))  # type: ignore[arg-type]
        for v in members
    )


def _write_ruling_span(
    session: Session, since: int, through: int, validators: ValidatorSet
) -> None:
    """Record in ``session`` that ``validators`` rule from ``since`` through ``through`` at
    least. Several threads or processes may record the same set at once: the row is
    inserted if absent (never failing on a concurrent insert), then locked and moved forward
    only, so a writer with an older height never takes back what a newer one recorded."""
    name = f"{VALIDATORS_FROM_PREFIX}{since}"
    value = json.dumps({"through": through, "validators": _validators_json(validators)})
    session.execute(
        _insert_chain_value(session, name, value).on_conflict_do_nothing(
            index_elements=[ChainValue.name]
        )
    )
    # SQLite ignores FOR UPDATE; its BEGIN IMMEDIATE already serialises writers.
    row = session.get(ChainValue, name, with_for_update=True, populate_existing=True)
    if row is not None and int(json.loads(row.value)["through"]) < through:
        row.value = value


class ChainGateway:
    """One node, the registry's signing account, and what the registry recorded about the
    chain. Safe to use from several threads."""

    def __init__(self, settings: RegistrySettings, db: Database) -> None:
        """Nothing is contacted until a method needs it."""
        self.settings = settings
        self.db = db
        self.reader = ChainReader(settings.node_url, timeout=settings.chain_timeout)
        self._lock = threading.Lock()
        self._signer: Sm2Account | None = None
        # Chain id and validator set are recorded once and never change afterwards; the
        # contract addresses are re-read now and then, so that a bootstrap run meanwhile
        # is seen without a restart.
        self._chain_id: int | None = None
        self._validator_set: ValidatorSet | None = None
        self._validator_sets_at: LruCache[int, ValidatorSet] = LruCache(
            VALIDATOR_SETS_AT_CACHE_SIZE
        )
        # Ruling sets told by the node and not recorded yet (first height -> the highest
        # height told, the set), for the caller's next write transaction to carry (see
        # record_ruling_sets); and the highest height this gateway recorded per set.
        self._spans_lock = threading.Lock()
        self._unrecorded: dict[int, tuple[int, ValidatorSet]] = {}
        self._recorded_through: dict[int, int] = {}
        # Set in a thread while batch_evidence reads for a caller that records the set.
        self._caller_records = threading.local()
        self._contracts: TtlCache[str, TrustContracts] = TtlCache(CONTRACTS_TTL_S)

    def close(self) -> None:
        """Close the connection to the node."""
        self.reader.close()

    # -- recorded facts ------------------------------------------------------------------------

    def recorded(self, name: str) -> str | None:
        """A value recorded in the ``chain_values`` table, read without the write lock: a
        caller inside a write transaction of its own (on SQLite one writer at a time) may
        ask, and must not wait for itself."""
        with self.db.read_session() as session:
            row = session.get(ChainValue, name)
            return None if row is None else row.value

    def record(self, name: str, value: str) -> None:
        """Record (or replace) a value in the ``chain_values`` table, in one statement, so
        that writers recording the same name at once all succeed (the last one's value
        stays)."""
        with self.db.session() as session:
            insert = _insert_chain_value(session, name, value)
            session.execute(
                insert.on_conflict_do_update(
                    index_elements=[ChainValue.name], set_={"value": insert.excluded.value}
                )
            )
        self._contracts.drop("contracts")

    def contracts(self) -> TrustContracts:
        """The trust contracts: from the settings, else as recorded by bootstrap (read at
        most every CONTRACTS_TTL_S seconds)."""
        return self._contracts.get_or_load("contracts", self._read_contracts)

    def _read_contracts(self) -> TrustContracts:
        settings = self.settings
        issuer = settings.issuer_registry_address or self.recorded(ISSUER_REGISTRY_KEY)
        notary = settings.notary_address or self.recorded(NOTARY_KEY)
        licenses = settings.license_registry_address or self.recorded(LICENSE_REGISTRY_KEY)
        if not issuer or not notary:
            raise ContractsNotDeployed(
                "no trust contracts configured; run `lianxin-registry bootstrap`"
            )
        return TrustContracts(
            issuer_registry=_address(issuer),
            notary=_address(notary),
            license_registry=None if not licenses else _address(licenses),
        )

    def chain_id(self) -> int:
        """The chain id, recorded the first time the node told it."""
        if self._chain_id is not None:
            return self._chain_id
        recorded = self.recorded(CHAIN_ID_KEY)
        if recorded is not None:
            chain_id = int(recorded)
        else:
            chain_id = self.reader.chain_id()
            self.record(CHAIN_ID_KEY, str(chain_id))
        self._chain_id = chain_id
        return chain_id

    def validator_set(self) -> ValidatorSet:
        """The validator set the node reported the first time it was asked (bootstrap asks),
        recorded and never read again. Proof bundles are checked against the set of their
        block's height instead: see :meth:`validator_set_at`."""
        if self._validator_set is None:
            self._validator_set = self._recorded_validator_set()
        return self._validator_set

    def _recorded_validator_set(self) -> ValidatorSet:
        recorded = self.recorded(VALIDATORS_KEY)
        if recorded is not None:
            return _validator_set_of(json.loads(recorded))
        validator_set = self.reader.validators()
        self.record(VALIDATORS_KEY, json.dumps(_validators_json(validator_set)))
        return validator_set

    def validator_set_at(self, height: int) -> ValidatorSet:
        """The validator set ruling block ``height`` (the one whose commit certificate
        certifies that block), as the node tells it; kept per height, since the set of a
        committed height never changes, and recorded, so that a height asked for before is
        answered while the node is away (asked for by :meth:`batch_evidence` with
        ``record_ruling_set`` false, recorded by the caller's next write transaction
        instead of one of its own: see :meth:`record_ruling_sets`). Raises
        ChainUnavailable if the node cannot be reached and the height is not recorded,
        RpcCallFailed for a height the node does not have."""
        known = self._validator_sets_at.get(height)
        if known is not None:
            return known
        try:
            ruling = self.reader.ruling_set(height)
        except ChainUnavailable:
            recorded = self._recorded_validator_set_at(height)
            if recorded is None:
                raise
            validator_set = recorded
        else:
            validator_set = ruling.validators
            if getattr(self._caller_records, "active", False):
                self._note_unrecorded(ruling, height)
            else:
                self._record_ruling_set(ruling, height)
        self._validator_sets_at.put(height, validator_set)
        return validator_set

    def record_ruling_sets(self, session: Session) -> None:
        """Record, in ``session``'s write transaction, the ruling sets that
        :meth:`batch_evidence` read with ``record_ruling_set`` false. The anchorer reads the set
        of each batch's height and confirms the batch in a write transaction anyway: the
        set travels in it instead of a write transaction (the write turn, a WAL sync) of
        its own per batch. Should that transaction roll back, a later recording of the
        same set covers the height as well (a recorded span covers every height from the
        set's first one)."""
        with self._spans_lock:
            unrecorded, self._unrecorded = self._unrecorded, {}
        for since, (through, validators) in sorted(unrecorded.items()):
            _write_ruling_span(session, since, through, validators)

    def _note_unrecorded(self, ruling: RulingSet, height: int) -> None:
        with self._spans_lock:
            if self._recorded_through.get(ruling.since, -1) >= height:
                return
            noted = self._unrecorded.get(ruling.since)
            if noted is None or noted[0] < height:
                self._unrecorded[ruling.since] = (height, ruling.validators)

    def _record_ruling_set(self, ruling: RulingSet, height: int) -> None:
        """Record that ``ruling`` rules through ``height`` at least, in a write transaction
        of its own, unless this gateway recorded it through ``height`` or beyond already."""
        with self._spans_lock:
            if self._recorded_through.get(ruling.since, -1) >= height:
                return
        with self.db.session() as session:
            _write_ruling_span(session, ruling.since, height, ruling.validators)
        with self._spans_lock:
            if self._recorded_through.get(ruling.since, -1) < height:
                self._recorded_through[ruling.since] = height

    def _recorded_validator_set_at(self, height: int) -> ValidatorSet | None:
        with self.db.read_session() as session:
            rows = session.scalars(
                select(ChainValue).where(
                    ChainValue.name.startswith(VALIDATORS_FROM_PREFIX, autoescape=True)
                )
            ).all()
            spans = [(row.name, json.loads(row.value)) for row in rows]
        for name, span in spans:
            since = int(name.removeprefix(VALIDATORS_FROM_PREFIX))
            if since <= height <= int(span["through"]):
                return _validator_set_of(span["validators"])
        return None

    def signer(self) -> Sm2Account:
        """The registry's own chain account, from its keystore."""
        with self._lock:
            if self._signer is None:
                keystore = self.settings.signer_keystore
                if keystore is None:
                    raise ServiceUnavailable("no signer keystore configured", code="no_signer")
                self._signer = Sm2Account.from_keystore(
                    keystore.read_bytes(), self.settings.signer_password()
                )
            return self._signer

    # -- anchoring -----------------------------------------------------------------------------

    def sign_anchor(
        self, root: bytes, leaf_count: int, metadata_hash: bytes, *, head: int | None = None
    ) -> Transaction:
        """A signed ``Notary.anchor(root, leaf_count, metadata_hash)`` transaction with a
        fresh replay nonce, valid for the SDK's default window of blocks from ``head`` (the
        newest block, asked of the node if not given: a caller signing inside a write
        transaction asks before, so that no request to the node waits in it)."""
        data = NOTARY.encode_call("anchor", bytes(root), leaf_count, bytes(metadata_hash))
        tx = build_transaction(
            chain_id=self.chain_id(),
            to=self.contracts().notary,
            data=data,
            gas_limit=self.settings.anchor_gas_limit,
            block_limit=block_limit_for(self.reader.block_number() if head is None else head),
        )
        return self.signer().sign_transaction(tx)

    def submit(self, raw: bytes) -> SubmitOutcome:
        """Send a stored raw transaction. A duplicate-nonce refusal means the node already
        has it; an expired one means it can never be included. Other refusals raise
        TransactionRefused."""
        try:
            self.reader.send_raw_transaction(raw)
        except TransactionRefused as exc:
            if exc.reason is RefusalReason.DUPLICATE_NONCE:
                return SubmitOutcome.KNOWN
            if exc.reason is RefusalReason.EXPIRED:
                return SubmitOutcome.EXPIRED
            raise
        return SubmitOutcome.ACCEPTED

    def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        """The receipt of ``tx_hash``, if committed."""
        return self.reader.transaction_receipt(tx_hash)

    def anchoring_transactions(self, root: bytes) -> list[Hash32]:
        """Hashes of the transactions that emitted BatchAnchored for ``root`` (at most one,
        since the Notary refuses a root twice)."""
        logs = self.reader.get_logs(
            address=self.contracts().notary, topics=[BATCH_ANCHORED_TOPIC, bytes(root)]
        )
        return [log.tx_hash for log in logs]

    def batch_evidence(self, raw_tx: bytes, *, record_ruling_set: bool = True) -> dict[str, Any]:
        """The chain half of the proof bundles of the batch anchored by ``raw_tx``, as
        bundle JSON fields: chain id, anchor (tx, receipt, proofs), header, commit
        certificate, validators, issuer key. Raises EvidenceNotReady if the node lacks a
        piece (not committed, or not certified yet). With ``record_ruling_set`` false, the
        validator set the node tells for the batch's height is left for the caller's next
        write transaction to record (:meth:`record_ruling_sets`)."""
        tx = Transaction.decode(raw_tx)
        tx_proof = self.reader.transaction_proof(tx.hash)
        receipt_proof = self.reader.receipt_proof(tx.hash)
        if tx_proof is None or receipt_proof is None:
            raise EvidenceNotReady(f"transaction {tx.hash.hex()} is not committed")
        header = tx_proof.header
        certified = self.reader.block_header(header.height)
        if certified is None or certified.certificate is None:
            raise EvidenceNotReady(f"block {header.height} has no commit certificate yet")
        if certified.header != header or receipt_proof.header != header:
            raise EvidenceNotReady("the node answered with different headers")
        uscc, key_id, key = self.issuer_key_at(self.signer().address, header.height)
        self._caller_records.active = not record_ruling_set
        try:
            validator_set = self.validator_set_at(header.height)
        finally:
            self._caller_records.active = False
        return {
            "chainId": self.chain_id(),
            "anchor": {
                "notary": _hex(self.contracts().notary),
                "rawTransaction": _hex(raw_tx),
                "transactionProof": _hex(tx_proof.proof.encode()),
                "receipt": _hex(receipt_proof.leaf),
                "receiptProof": _hex(receipt_proof.proof.encode()),
            },
            "header": _hex(header.encode()),
            "commitCertificate": _hex(certified.certificate.encode()),
            "validators": _validators_json(validator_set),
            "issuerKey": {
                "issuerRegistry": _hex(self.contracts().issuer_registry),
                "uscc": uscc,
                "keyId": key_id,
                "publicKey": _hex(key.public_key),
                "roles": int(key.roles),
                "validFromBlock": key.valid_from_block,
                "validUntilBlock": key.valid_until_block,
                "readAtBlock": header.height,
            },
        }

    # -- reads ---------------------------------------------------------------------------------

    def issuer_key_at(self, account: bytes, height: int) -> tuple[str, int, KeyRecord]:
        """The department (USCC), key id and IssuerRegistry key record of ``account``, read
        from the state at block ``height``."""
        registry = self.contracts().issuer_registry
        output = self.reader.call(
            registry, ISSUER_REGISTRY.encode_call("departmentOf", bytes(account)), height
        )
        uscc_raw, key_id = ISSUER_REGISTRY.decode_result("departmentOf", output)
        if uscc_raw == bytes(18):
            raise EvidenceNotReady(f"account {bytes(account).hex()} is no issuer key")
        (keys,) = ISSUER_REGISTRY.decode_result(
            "keysOf",
            self.reader.call(registry, ISSUER_REGISTRY.encode_call("keysOf", uscc_raw), height),
        )
        return uscc_raw.decode("ascii"), int(key_id), KeyRecord.from_abi(keys[key_id])

    def leaf_status(self, root: bytes, commitment: bytes) -> tuple[LeafStatus, int]:
        """``Notary.statusAt`` of a record commitment at the newest block, and that block."""
        height = self.reader.block_number()
        data = NOTARY.encode_call("statusAt", bytes(root), leaf_hash(commitment), height)
        issued, revoked, revoked_at, reason = NOTARY.decode_result(
            "statusAt", self.reader.call(self.contracts().notary, data, height)
        )
        return LeafStatus(bool(issued), bool(revoked), int(revoked_at), int(reason)), height

    def department(self, uscc: str) -> tuple[str, bool]:
        """Name and frozen state of a registered department (``departmentInfo``)."""
        data = ISSUER_REGISTRY.encode_call("departmentInfo", uscc.encode("ascii"))
        name, frozen, _count = ISSUER_REGISTRY.decode_result(
            "departmentInfo", self.reader.call(self.contracts().issuer_registry, data)
        )
        return str(name), bool(frozen)

    def key_valid_at(self, uscc: str, key_id: int, height: int) -> bool:
        """``IssuerRegistry.keyValidAt`` read at the newest block."""
        data = ISSUER_REGISTRY.encode_call("keyValidAt", uscc.encode("ascii"), key_id, height)
        (valid,) = ISSUER_REGISTRY.decode_result(
            "keyValidAt", self.reader.call(self.contracts().issuer_registry, data)
        )
        return bool(valid)


__all__ = [
    "BATCH_ANCHORED_TOPIC",
    "ChainGateway",
    "ChainUnavailable",
    "ContractsNotDeployed",
    "EvidenceNotReady",
    "SubmitOutcome",
    "TrustContracts",
]
