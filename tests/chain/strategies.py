"""Hypothesis strategies for the ledger types of ``chain.types``.

Every value drawn is valid for its type (fits the canonical encoding), but signatures and
public keys are random bytes, not real SM2 values: use ``chain.validation.sign_transaction``
where a signature has to verify. Import as ``from tests.chain.strategies import ...``.
"""

from __future__ import annotations

from hypothesis import strategies as st

from chain.primitives import ADDRESS_SIZE, HASH_SIZE, Address, Hash32, PublicKeyBytes
from chain.types import (
    MAX_SIGNATURE_SIZE,
    Block,
    CommitCertificate,
    CommitSignature,
    Header,
    Log,
    Receipt,
    Transaction,
)

MAX_UINT256 = 2**256 - 1

uint256 = st.one_of(
    st.integers(min_value=0, max_value=2**16),
    st.integers(min_value=0, max_value=2**64),
    st.integers(min_value=0, max_value=MAX_UINT256),
    st.sampled_from([0, 1, 127, 128, 255, 256, MAX_UINT256]),
)
"""Non-negative integers that fit 256 bits, biased towards small values and boundaries."""

hashes: st.SearchStrategy[Hash32] = st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE).map(Hash32)
addresses: st.SearchStrategy[Address] = st.binary(min_size=ADDRESS_SIZE, max_size=ADDRESS_SIZE).map(
    Address
)
public_keys: st.SearchStrategy[PublicKeyBytes] = st.binary(min_size=64, max_size=64).map(
    lambda xy: PublicKeyBytes(b"\x04" + xy)
)
"""65 bytes with the uncompressed prefix; not necessarily a point on the curve."""

signatures = st.binary(max_size=MAX_SIGNATURE_SIZE)
"""Possibly empty (an unsigned transaction), at most as long as a DER SM2 signature."""

payloads = st.binary(max_size=300)


def logs() -> st.SearchStrategy[Log]:
    """Events with 0 to 4 topics."""
    return st.builds(
        Log,
        address=addresses,
        topics=st.lists(hashes, max_size=4).map(tuple),
        data=payloads,
    )


def transactions(
    *, chain_id: st.SearchStrategy[int] = uint256, signature: st.SearchStrategy[bytes] = signatures
) -> st.SearchStrategy[Transaction]:
    """Transactions, contract creations (``to`` is None) included."""
    return st.builds(
        Transaction,
        chain_id=chain_id,
        nonce=hashes,
        block_limit=uint256,
        to=st.none() | addresses,
        value=uint256,
        data=payloads,
        gas_limit=uint256,
        public_key=public_keys,
        signature=signature,
    )


def receipts() -> st.SearchStrategy[Receipt]:
    """Receipts with status 0 or 1 and a few logs."""
    return st.builds(
        Receipt,
        tx_hash=hashes,
        status=st.sampled_from([0, 1]),
        gas_used=uint256,
        contract_address=st.none() | addresses,
        logs=st.lists(logs(), max_size=3).map(tuple),
        output=payloads,
    )


def commit_signatures() -> st.SearchStrategy[CommitSignature]:
    """One validator's precommit signature (non-empty)."""
    return st.builds(
        CommitSignature,
        validator=addresses,
        signature=st.binary(min_size=1, max_size=MAX_SIGNATURE_SIZE),
    )


def commit_certificates() -> st.SearchStrategy[CommitCertificate]:
    """Certificates whose signatures are unique per validator and sorted by validator."""
    signature_sets = st.lists(commit_signatures(), max_size=7, unique_by=lambda s: s.validator).map(
        lambda items: tuple(sorted(items, key=lambda s: s.validator))
    )
    return st.builds(
        CommitCertificate,
        height=uint256,
        round=uint256,
        block_hash=hashes,
        signatures=signature_sets,
    )


def headers() -> st.SearchStrategy[Header]:
    """Block headers with arbitrary (not chained) hashes."""
    return st.builds(
        Header,
        parent_hash=hashes,
        height=uint256,
        timestamp_ms=uint256,
        proposer=addresses,
        tx_root=hashes,
        receipt_root=hashes,
        state_root=hashes,
        validator_set_hash=hashes,
        last_commit_hash=hashes,
    )


def blocks() -> st.SearchStrategy[Block]:
    """Blocks with a few transactions, with or without a last commit."""
    return st.builds(
        Block,
        header=headers(),
        transactions=st.lists(transactions(), max_size=3).map(tuple),
        last_commit=st.none() | commit_certificates(),
    )
