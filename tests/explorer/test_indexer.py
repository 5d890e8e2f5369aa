"""The indexer on a real node: every block once with its decoded events and departments, and
blocks whose certificate does not prove them refused (with nothing indexed after them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
from chain_activity import DEPARTMENT_NAME, DEPARTMENT_USCC, Activity, DevChain
from sqlalchemy import func, select

from chain.commit import sign_precommit
from chain.crypto import PrivateKey
from chain.genesis import Genesis
from chain.primitives import Hash32
from chain.types import CommitCertificate, CommitSignature
from explorer import store_schema as t
from explorer.block_check import BlockRefused, check_block
from explorer.indexer import Indexer
from explorer.node_feed import FetchedBlock, NodeFeed
from explorer.settings import settings_for_chain_dir
from explorer.store import Store

EXPECTED_EVENTS = {
    ("IssuerRegistry", "GovernanceTransferred"),
    ("IssuerRegistry", "DepartmentRegistered"),
    ("IssuerRegistry", "KeyAdded"),
    ("Notary", "BatchAnchored"),
    ("Notary", "LeafRevoked"),
    ("Notary", "BatchRevoked"),
    ("LicenseRegistry", "LicenseIssued"),
    ("LicenseRegistry", "StatusChanged"),
    ("LicenseRegistry", "LicenseChanged"),
    ("Permissions", "RolesChanged"),
    ("Permissions", "Frozen"),
}


def genesis_of(chain: DevChain) -> Genesis:
    return settings_for_chain_dir(chain.root).genesis()


def test_catch_up_indexes_every_block_once_with_decoded_events(
    audited: tuple[DevChain, Activity], index_url: str
) -> None:
    chain, activity = audited
    store = Store.open(index_url)
    feed = NodeFeed(chain.url)
    try:
        indexer = Indexer(store, feed, genesis_of(chain), batch_blocks=4)
        done = indexer.catch_up()
        head = feed.head_height()
        assert done.indexed == head + 1
        again = Indexer(store, feed, genesis_of(chain)).catch_up()
        assert again.indexed == 0
        with store.read() as c:
            assert c.execute(select(func.count()).select_from(t.blocks)).scalar() == head + 1
            assert c.execute(select(t.cursor.c.height)).scalar() == head
            tx_count = c.execute(select(func.count()).select_from(t.transactions)).scalar()
            events = set(c.execute(select(t.events.c.contract, t.events.c.name)).all())
            department = c.execute(select(t.departments)).one()
            placed = dict(c.execute(select(t.contracts.c.name, t.contracts.c.address)).all())
        assert tx_count == len(activity.receipts)
        assert {(str(a), str(b)) for a, b in events} >= EXPECTED_EVENTS
        assert (department.uscc, department.name) == (DEPARTMENT_USCC, DEPARTMENT_NAME)
        for name, address in activity.addresses.items():
            assert placed[name] == "0x" + address.hex()
    finally:
        feed.close()
        store.close()


def _forgeries(fetched: FetchedBlock, chain_id: int) -> dict[str, FetchedBlock]:
    certificate = fetched.certificate
    assert certificate is not None
    outsider = PrivateKey.generate()
    signed_by_outsider = sign_precommit(
        outsider,
        chain_id=chain_id,
        height=fetched.height,
        round_=certificate.round,
        block_hash=Hash32(fetched.header.hash),
    )
    genuine = certificate.signatures[0]
    flipped = CommitSignature(
        genuine.validator, genuine.signature[:-1] + bytes([genuine.signature[-1] ^ 1])
    )
    other_block = dataclasses.replace(certificate, block_hash=Hash32(b"\x01" * 32))
    return {
        "outsider": dataclasses.replace(
            fetched, certificate=dataclasses.replace(certificate, signatures=(signed_by_outsider,))
        ),
        "flipped": dataclasses.replace(
            fetched, certificate=dataclasses.replace(certificate, signatures=(flipped,))
        ),
        "other block": dataclasses.replace(fetched, certificate=other_block),
        "no signature": dataclasses.replace(
            fetched, certificate=dataclasses.replace(certificate, signatures=())
        ),
        "other round": dataclasses.replace(
            fetched, certificate=dataclasses.replace(certificate, round=certificate.round + 1)
        ),
    }


def test_forged_certificates_are_refused(audited: tuple[DevChain, Activity]) -> None:
    chain, _ = audited
    genesis = genesis_of(chain)
    feed = NodeFeed(chain.url)
    try:
        parent, fetched = feed.fetch_blocks([4, 5])
    finally:
        feed.close()
    validators = genesis.validator_set()
    check_block(fetched, genesis=genesis, parent=parent.header, validators=validators)
    for name, forged in _forgeries(fetched, genesis.chain_id).items():
        with pytest.raises(BlockRefused, match="commit certificate") as refused:
            check_block(forged, genesis=genesis, parent=parent.header, validators=validators)
        assert refused.value.height == 5, name
    stranger_set = type(validators).of([dataclasses.replace(validators.validators[0], power=2)])
    with pytest.raises(BlockRefused, match="validator set hash"):
        check_block(fetched, genesis=genesis, parent=parent.header, validators=stranger_set)


class ForgingFeed(NodeFeed):
    """A node that serves a forged certificate at one height."""

    def __init__(self, url: str, forged_height: int) -> None:
        super().__init__(url)
        self.forged_height = forged_height

    def fetch_blocks(self, heights: Sequence[int]) -> list[FetchedBlock]:
        found = super().fetch_blocks(heights)
        return [
            dataclasses.replace(b, certificate=_drop_signatures(b.certificate))
            if b.height == self.forged_height
            else b
            for b in found
        ]


def _drop_signatures(certificate: CommitCertificate | None) -> CommitCertificate | None:
    return None if certificate is None else dataclasses.replace(certificate, signatures=())


def test_the_indexer_stops_at_a_refused_block_with_nothing_after_it(
    audited: tuple[DevChain, Activity], index_url: str
) -> None:
    chain, _ = audited
    store = Store.open(index_url)
    feed = ForgingFeed(chain.url, forged_height=6)
    try:
        with pytest.raises(BlockRefused, match="block 6"):
            Indexer(store, feed, genesis_of(chain), batch_blocks=4).catch_up()
        with store.read() as c:
            assert c.execute(select(t.cursor.c.height)).scalar() == 5
            assert c.execute(select(func.max(t.blocks.c.height))).scalar() == 5
            assert c.execute(select(func.max(t.transactions.c.height))).scalar() == 5
    finally:
        feed.close()
        store.close()
