"""A memory of bundle chain halves that verified: the records of one batch share their
chain half (anchoring transaction, receipt, proofs, header, certificate, issuer key), so
:func:`sdk.bundle.verify_bundle` checks its signatures once per batch, not per record."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from chain import encoding as enc
from chain.commit import ValidatorSet
from chain.crypto import sm3
from chain.primitives import Hash32
from sdk.bundle_links import (
    Link,
    LinkCheck,
)
from sdk.signature_memory import SignatureMemory

if TYPE_CHECKING:
    from sdk.bundle import ProofBundle

EVIDENCE_KEY_PREFIX = b"lianxin/bundle-evidence/v1\x00"
"""Domain separation of :func:`evidence_key`."""

CHAIN_LINKS = (
    Link.TRANSACTION,
    Link.SIGNER,
    Link.RECEIPT,
    Link.TX_INCLUSION,
    Link.RECEIPT_INCLUSION,
    Link.CERTIFICATE,
    Link.ISSUER_KEY,
)
"""The links that depend only on the batch and the chain, not on the record: the same for
every record of a batch."""


def evidence_key(
    bundle: ProofBundle, validator_set: ValidatorSet, *, chain_id: int, notary: bytes | None
) -> Hash32:
    """SM3 over everything the :data:`CHAIN_LINKS` of ``bundle`` read (batch root, leaf
    count and metadata hash; anchoring transaction, receipt, both inclusion proofs; header,
    certificate, issuer key record) and the verifier's trusted inputs. Equal keys mean the
    chain links come out the same."""
    batch, anchor, key = bundle.batch, bundle.anchor, bundle.issuer_key
    payload: list[enc.RLPItem] = [
        enc.encode_int(chain_id),
        validator_set.hash(),
        b"" if notary is None else bytes(notary),
        batch.root,
        enc.encode_int(batch.leaf_count),
        batch.metadata_hash,
        anchor.notary,
        anchor.raw_transaction,
        anchor.transaction_proof.encode(),
        anchor.receipt,
        anchor.receipt_proof.encode(),
        bundle.header.encode(),
        bundle.commit_certificate.encode(),
        [
            key.issuer_registry,
            key.uscc.encode(),
            enc.encode_int(key.key_id),
            key.public_key,
            enc.encode_int(key.roles),
            enc.encode_int(key.valid_from_block),
            enc.encode_int(key.valid_until_block),
            enc.encode_int(key.read_at_block),
        ],
    ]
    return sm3(EVIDENCE_KEY_PREFIX + enc.encode(payload))


class VerifiedEvidence:
    """A bounded memory of bundle chain halves that verified, keyed by :func:`evidence_key`,
    so that the records of one batch pay the signature checks (transaction, commit
    certificate) once. Only successes are kept; a failing chain half is checked again every
    time. Thread-safe; pass one to :func:`verify_bundle` as ``verified``."""

    def __init__(self, capacity: int = 1024) -> None:
        """Remember at most ``capacity`` chain halves (least recently used go first)."""
        self.capacity = capacity
        self._checks: OrderedDict[bytes, tuple[LinkCheck, ...]] = OrderedDict()
        self._keys: OrderedDict[tuple[Any, ...], tuple[Hash32, tuple[Any, ...]]] = OrderedDict()
        self._lock = threading.Lock()
        self.signatures = SignatureMemory(capacity * 4)
        """Department signatures that verified: one bulk request's records share one."""

    def key_of(
        self,
        bundle: ProofBundle,
        validator_set: ValidatorSet,
        *,
        chain_id: int,
        notary: bytes | None,
    ) -> Hash32:
        """:func:`evidence_key`, computed once for bundles that share their chain half's
        objects (as the bundles a registry builds for the records of one batch do): the
        memo is keyed by those objects' identities, which it holds on to, so an identity
        cannot be reused by another object while it is remembered."""
        held = (
            bundle.anchor,
            bundle.header,
            bundle.commit_certificate,
            bundle.issuer_key,
            validator_set,
        )
        memo = (
            *map(id, held),
            chain_id,
            None if notary is None else bytes(notary),
            bytes(bundle.batch.root),
            bundle.batch.leaf_count,
            bytes(bundle.batch.metadata_hash),
        )
        with self._lock:
            found = self._keys.get(memo)
            if found is not None:
                self._keys.move_to_end(memo)
                return found[0]
        key = evidence_key(bundle, validator_set, chain_id=chain_id, notary=notary)
        with self._lock:
            self._keys[memo] = (key, held)
            while len(self._keys) > self.capacity:
                self._keys.popitem(last=False)
        return key

    def recall(self, key: bytes) -> tuple[LinkCheck, ...] | None:
        """The chain-link checks remembered under ``key``, or None."""
        with self._lock:
            checks = self._checks.get(key)
            if checks is not None:
                self._checks.move_to_end(key)
            return checks

    def remember(self, key: bytes, checks: tuple[LinkCheck, ...]) -> None:
        """Remember ``checks`` (every one of which must hold) under ``key``."""
        if not all(check.ok for check in checks):
            raise ValueError("only chain halves that verified are remembered")
        with self._lock:
            self._checks[key] = checks
            self._checks.move_to_end(key)
            while len(self._checks) > self.capacity:
                self._checks.popitem(last=False)
