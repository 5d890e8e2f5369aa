"""The validator set of each height, as the ledger reads it.

A chain whose genesis deploys the ValidatorGovernance system contract reads the set ruling a
height from ``validatorsAt(height)`` in the state of the height's parent; a chain without it
keeps the genesis set for ever. Sets are cached by the contract's change counter, since
committed blocks are final and the set of a height never changes once known.

A validator that rotated its consensus key keeps its node key, the key its peers' configuration
lists it by, as its p2p identity: :func:`transport_keys` admits a configured peer key while
the set holds a key that (through one or more rotations, the contract's ``rotatedFrom``)
replaced it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol

from chain.commit import ValidatorSet
from chain.crypto import PublicKey
from chain.errors import ChainError
from chain.execution import CallResult
from chain.genesis import Genesis
from chain.primitives import Address
from chain.types import Block, Header
from contracts.errors import ContractsError
from contracts.validators import (
    CHANGES_SLOT,
    LAST_EFFECTIVE_HEIGHT_SLOT,
    MAX_ROTATIONS_FOLLOWED,
    VALIDATOR_GOVERNANCE_ADDRESS,
    RulingSet,
    decode_ruling_set,
    rotated_from_slot,
    validator_governance_contract,
    validators_at_call,
)
from node.ledger_types import LedgerError

_CACHE_SETS = 64
_SET_CALL_GAS = 50_000_000


class StateReader(Protocol):
    """The reads of :class:`node.ledger.Ledger` that validator sets need."""

    @property
    def head(self) -> Header:
        """The highest committed header."""
        ...

    def block(self, height: int) -> Block | None:
        """The committed block at ``height``."""
        ...

    def storage(self, header: Header, address: Address, slot: int) -> int:
        """Storage ``slot`` of ``address`` after ``header``."""
        ...

    def call(
        self,
        header: Header,
        *,
        sender: Address,
        to: Address | None,
        data: bytes,
        gas: int,
        value: int,
    ) -> CallResult:
        """A read-only call against the state after ``header``."""
        ...


class ValidatorSets:
    """The validator set of each height of one chain, cached. Safe from several threads."""

    def __init__(self, ledger: StateReader, genesis: Genesis) -> None:
        """Read sets through ``ledger``. Raises LedgerError if ``genesis`` deploys a
        ValidatorGovernance contract whose storage disagrees with its validators."""
        self._ledger = ledger
        self._cache_lock = threading.Lock()
        self._sets: OrderedDict[tuple[int, int], RulingSet] = OrderedDict()
        self._set_of_height: OrderedDict[int, RulingSet] = OrderedDict()
        self._governed = _governed(genesis)
        self._genesis_set = RulingSet(genesis.validator_set(), 1)

    def validator_set(self, height: int) -> RulingSet:
        """The validator set ruling ``height`` (from 1 to the head's height + 1): genesis's
        set, or with the ValidatorGovernance system contract ``validatorsAt(height)`` on the
        state after block ``height - 1``. Raises LedgerError for a height out of range or a
        contract answer that is not a usable set."""
        if not self._governed:
            return self._genesis_set
        if not 1 <= height <= self._ledger.head.height + 1:
            raise LedgerError(
                f"no validator set for height {height} (head {self._ledger.head.height})"
            )
        with self._cache_lock:
            known = self._set_of_height.get(height)
        if known is not None:
            return known
        parent_block = (
            self._ledger.block(height - 1) if height <= self._ledger.head.height else None
        )
        parent = self._ledger.head if parent_block is None else parent_block.header
        changes = self._ledger.storage(parent, VALIDATOR_GOVERNANCE_ADDRESS, CHANGES_SLOT)
        last = self._ledger.storage(
            parent, VALIDATOR_GOVERNANCE_ADDRESS, LAST_EFFECTIVE_HEIGHT_SLOT
        )
        # Once every executed change rules, the set depends only on how many there were.
        key = (changes, 0) if height >= last else (changes, height)
        with self._cache_lock:
            ruling = self._sets.get(key)
        if ruling is None:
            ruling = self.validators_at(parent, height)
        with self._cache_lock:
            # Committed blocks are final, so the set of a height never changes once known.
            self._sets[key] = ruling
            self._set_of_height[height] = ruling
            for cache in (self._sets, self._set_of_height):
                while len(cache) > _CACHE_SETS:
                    cache.popitem(last=False)
        return ruling

    def validators_at(self, header: Header, height: int) -> RulingSet:
        """What the ValidatorGovernance contract answers for ``validatorsAt(height)`` in the
        state after ``header`` (``height`` may lie beyond the head: pending changes ruling by
        then included). Raises LedgerError if the chain has no such contract or its answer
        is not a usable set."""
        if not self._governed:
            raise LedgerError("this chain's validator set is fixed by genesis")
        result = self._ledger.call(
            header,
            sender=Address(bytes(20)),
            to=VALIDATOR_GOVERNANCE_ADDRESS,
            data=validators_at_call(height),
            gas=_SET_CALL_GAS,
            value=0,
        )
        if not result.success:
            raise LedgerError(f"validatorsAt({height}) reverted")
        try:
            return decode_ruling_set(result.output)
        except (ContractsError, ChainError) as exc:
            raise LedgerError(f"validator set of height {height}: {exc}") from exc

    @property
    def governed(self) -> bool:
        """Whether validator changes go through the ValidatorGovernance contract."""
        return self._governed


def replaced_keys(ledger: StateReader, header: Header, validator: Address) -> list[Address]:
    """The keys that ``validator`` replaced by rotations, latest first, as recorded in the
    state after ``header`` (at most :data:`MAX_ROTATIONS_FOLLOWED`)."""
    found: list[Address] = []
    current = validator
    while len(found) < MAX_ROTATIONS_FOLLOWED:
        value = ledger.storage(header, VALIDATOR_GOVERNANCE_ADDRESS, rotated_from_slot(current))
        if value == 0:
            break
        current = Address(value.to_bytes(32, "big")[12:])
        found.append(current)
    return found


def transport_keys(
    ledger: StateReader, header: Header, validators: ValidatorSet, peer_keys: Iterable[bytes]
) -> frozenset[bytes]:
    """The node keys p2p admits with ``validators`` ruling: every member's key, and each of
    ``peer_keys`` (the configured peers) that a member's key replaced by rotation, read in the
    state after ``header``."""
    allowed = {bytes(v.public_key) for v in validators.validators}
    by_address = {PublicKey.from_bytes(key).address: key for key in peer_keys}
    for validator in validators.validators:
        if validator.address in by_address:
            continue
        for replaced in replaced_keys(ledger, header, validator.address):
            if replaced in by_address:
                allowed.add(by_address[replaced])
    return frozenset(allowed)


def _governed(genesis: Genesis) -> bool:
    """Whether ``genesis`` deploys the ValidatorGovernance contract; raises LedgerError if its
    initial storage does not list exactly the genesis validators."""
    for contract in genesis.system_contracts:
        if contract.address == VALIDATOR_GOVERNANCE_ADDRESS:
            expected = validator_governance_contract(genesis.validators)
            if contract.storage != expected.storage:
                raise LedgerError(
                    "the ValidatorGovernance contract's genesis storage disagrees with the "
                    "genesis validators; regenerate it (contracts.validators)"
                )
            return True
    return False
