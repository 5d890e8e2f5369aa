"""Notary: batches anchored by registered issuers, revocation of batches and of single leaves
with the Merkle proof checked on chain through the SM3 precompile, and the status of a leaf
at any block."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trust_harness import USCC_A, TrustStack, trust_stack

from chain.crypto import sm3
from chain.merkle import MerkleProof, MerkleTree, leaf_hash
from chain.primitives import Hash32
from contracts.trust import LeafStatus, Reason, direction_bits, uscc_bytes

A = uscc_bytes(USCC_A)
METADATA = sm3(b"batch metadata")
TREE_SIZES = (1, 2, 3, 5, 8, 13)


@pytest.fixture
def stack() -> TrustStack:
    return trust_stack()


def records(count: int, label: bytes = b"record") -> list[Hash32]:
    """``count`` record digests, the leaves the trust service puts in a batch."""
    return [Hash32(sm3(b"%s %d" % (label, index))) for index in range(count)]


def proof_args(proof: MerkleProof) -> tuple[list[bytes], int, int]:
    """``proof, directionBits, leafIndex`` as Notary takes them."""
    return [step.sibling for step in proof.path], direction_bits(proof), proof.leaf_index


def anchor(stack: TrustStack, leaves: Sequence[bytes], issuer: str = "a_issuer") -> MerkleTree:
    tree = MerkleTree.build(leaves)
    stack.notary.send(stack.key(issuer), "anchor", tree.root, len(leaves), METADATA)
    return tree


def status(stack: TrustStack, root: bytes, leaf: bytes, block: int) -> LeafStatus:
    return LeafStatus(*stack.notary.view("statusAt", root, leaf_hash(leaf), block))


def test_anchor_records_the_batch(stack: TrustStack) -> None:
    tree = MerkleTree.build(records(13))
    receipt = stack.notary.send(stack.key("a_issuer"), "anchor", tree.root, 13, METADATA)
    height = stack.ledger.height
    (event,) = stack.notary.events(receipt)
    assert event.name == "BatchAnchored"
    assert event.args == {
        "root": tree.root,
        "issuer": stack.account("a_issuer"),
        "department": A,
        "leafCount": 13,
        "metadataHash": METADATA,
    }
    assert stack.notary.view("batchOf", tree.root) == (
        stack.account("a_issuer"),
        A,
        height,
        13,
        0,
        0,
        METADATA,
    )
    assert receipt.gas_used < 150_000
    assert status(stack, tree.root, records(13)[0], height) == LeafStatus(True, False, 0, 0)
    assert status(stack, tree.root, records(13)[0], height - 1) == LeafStatus(False, False, 0, 0)


@pytest.mark.parametrize("caller", ["outsider", "a_revoker", "a_auditor"])
def test_anchor_refused_to_non_issuers(stack: TrustStack, caller: str) -> None:
    error = stack.notary.refused(stack.key(caller), "anchor", sm3(b"root"), 1, METADATA)
    assert error.name == "NotIssuer" and error.args == (stack.account(caller),)


def test_anchor_refused_for_a_frozen_department(stack: TrustStack) -> None:
    stack.registry.send(stack.governance, "setFrozen", A, True)
    assert stack.notary.refused(stack.key("a_issuer"), "anchor", sm3(b"r"), 1, METADATA).name == (
        "NotIssuer"
    )


def test_anchor_refused_before_the_key_window(stack: TrustStack) -> None:
    start = stack.ledger.height + 3
    stack.add_key(USCC_A, "a_later", 1, start)
    assert stack.notary.refused(stack.key("a_later"), "anchor", sm3(b"r"), 1, METADATA).name == (
        "NotIssuer"
    )
    stack.ledger.advance(start - stack.ledger.height - 1)
    stack.notary.send(stack.key("a_later"), "anchor", sm3(b"r"), 1, METADATA)


@pytest.mark.parametrize(("root", "leaf_count"), [(bytes(32), 1), (sm3(b"r"), 0)])
def test_anchor_refuses_empty_batches(stack: TrustStack, root: bytes, leaf_count: int) -> None:
    error = stack.notary.refused(stack.key("a_issuer"), "anchor", root, leaf_count, METADATA)
    assert error.name == "InvalidBatch" and error.args == (root, leaf_count)


def test_anchor_refuses_a_root_twice(stack: TrustStack) -> None:
    tree = anchor(stack, records(3))
    error = stack.notary.refused(stack.key("b_issuer"), "anchor", tree.root, 3, METADATA)
    assert error.name == "BatchExists" and error.args == (tree.root,)


def test_key_rotation_keeps_earlier_batches_issued(stack: TrustStack) -> None:
    leaves = records(5)
    tree = anchor(stack, leaves)
    anchored_at = stack.ledger.height
    stack.registry.send(
        stack.governance, "rotateKey", A, 0, stack.key("a_rotated").public_key.to_bytes()
    )
    rotated_at = stack.ledger.height
    stack.ledger.advance(2)
    # The old key no longer anchors; the batch it anchored while valid stays issued.
    error = stack.notary.refused(stack.key("a_issuer"), "anchor", sm3(b"late"), 1, METADATA)
    assert error.name == "NotIssuer"
    now = stack.ledger.height
    for block in (anchored_at, rotated_at, now):
        assert status(stack, tree.root, leaves[2], block).valid
    assert stack.registry.view("keyValidAt", A, 0, anchored_at) is True
    # A closed key cannot revoke as the batch's issuer; a revoker of the department can.
    proof = proof_args(tree.prove(2))
    error = stack.notary.refused(
        stack.key("a_issuer"), "revokeLeaf", tree.root, leaves[2], *proof, 1
    )
    assert error.name == "NotAuthorised"
    stack.notary.send(stack.key("a_revoker"), "revokeLeaf", tree.root, leaves[2], *proof, 1)
    stack.notary.send(stack.key("a_rotated"), "anchor", sm3(b"late"), 1, METADATA)


@pytest.mark.parametrize("size", TREE_SIZES)
def test_every_proof_verifies_on_chain_and_revokes_its_leaf(stack: TrustStack, size: int) -> None:
    leaves = records(size)
    tree = anchor(stack, leaves)
    anchored_at = stack.ledger.height
    proofs = list(tree.proofs())
    for leaf, proof in zip(leaves, proofs, strict=True):
        assert stack.notary.view("verifyLeaf", tree.root, leaf, *proof_args(proof)) is True
    transactions = [
        stack.notary.tx(
            stack.key("a_revoker"), "revokeLeaf", tree.root, leaf, *proof_args(proof), index % 7
        )
        for index, (leaf, proof) in enumerate(zip(leaves, proofs, strict=True))
    ]
    receipts = stack.ledger.run(transactions)
    revoked_at = stack.ledger.height
    for index, (leaf, receipt) in enumerate(zip(leaves, receipts, strict=True)):
        assert receipt.status == 1, stack.notary.codec.decode_error(receipt.output)
        (event,) = stack.notary.events(receipt)
        assert event.name == "LeafRevoked"
        assert event.args == {
            "root": tree.root,
            "leafHash": leaf_hash(leaf),
            "by": stack.account("a_revoker"),
            "leafIndex": index,
            "reason": index % 7,
        }
        assert status(stack, tree.root, leaf, revoked_at) == LeafStatus(
            True, True, revoked_at, index % 7
        )
        assert status(stack, tree.root, leaf, revoked_at - 1).valid
        assert status(stack, tree.root, leaf, anchored_at).valid


def tampered_proofs(tree: MerkleTree, index: int) -> list[tuple[str, tuple[list[bytes], int, int]]]:
    """Variants of the proof of leaf ``index`` that must all be refused."""
    siblings, bits, _ = proof_args(tree.prove(index))
    count = tree.leaf_count
    variants = [
        ("wrong index", (siblings, bits, (index + 1) % count)),
        ("index outside the tree", (siblings, bits, count)),
        ("extra step", ([*siblings, bytes(32)], bits, index)),
        ("stray direction bit", (siblings, bits | 1 << len(siblings), index)),
    ]
    if siblings:
        flipped = bytes([siblings[0][0] ^ 1]) + siblings[0][1:]
        variants += [
            ("tampered sibling", ([flipped, *siblings[1:]], bits, index)),
            ("flipped direction", (siblings, bits ^ 1, index)),
            ("missing step", (siblings[:-1], bits & ((1 << (len(siblings) - 1)) - 1), index)),
            ("reversed path", (siblings[::-1], bits, index)),
        ]
    # A variant may coincide with the real proof (e.g. the reversed path of one step).
    return [(name, args) for name, args in variants if args != proof_args(tree.prove(index))]


@pytest.mark.parametrize("size", TREE_SIZES)
def test_bad_proofs_are_refused(stack: TrustStack, size: int) -> None:
    leaves = records(size)
    tree = anchor(stack, leaves)
    for index in range(size):
        for name, args in tampered_proofs(tree, index):
            assert stack.notary.view("verifyLeaf", tree.root, leaves[index], *args) is False, name
    # One refused transaction per kind of damage, on the last leaf.
    index = size - 1
    for name, args in tampered_proofs(tree, index):
        error = stack.notary.refused(
            stack.key("a_revoker"), "revokeLeaf", tree.root, leaves[index], *args, 1
        )
        assert error.name == "InvalidProof", name
        assert error.args == (tree.root, args[2])
    # A leaf that is not in the batch has no proof.
    stranger = sm3(b"not in the batch")
    args = proof_args(tree.prove(0))
    assert stack.notary.view("verifyLeaf", tree.root, stranger, *args) is False
    assert status(stack, tree.root, leaves[index], stack.ledger.height).valid


def test_revoke_batch(stack: TrustStack) -> None:
    leaves = records(3)
    tree = anchor(stack, leaves)
    anchored_at = stack.ledger.height
    receipt = stack.notary.send(
        stack.key("a_issuer"), "revokeBatch", tree.root, Reason.ISSUED_IN_ERROR
    )
    revoked_at = stack.ledger.height
    (event,) = stack.notary.events(receipt)
    assert event.name == "BatchRevoked"
    assert event.args == {
        "root": tree.root,
        "by": stack.account("a_issuer"),
        "reason": Reason.ISSUED_IN_ERROR,
    }
    for leaf in leaves:
        assert status(stack, tree.root, leaf, revoked_at) == LeafStatus(
            True, True, revoked_at, Reason.ISSUED_IN_ERROR
        )
        assert status(stack, tree.root, leaf, anchored_at).valid
    batch = stack.notary.view("batchOf", tree.root)
    assert batch[4:6] == (revoked_at, Reason.ISSUED_IN_ERROR)


def test_revoke_batch_by_a_revoker_of_the_department(stack: TrustStack) -> None:
    tree = anchor(stack, records(2))
    stack.notary.send(stack.key("a_revoker"), "revokeBatch", tree.root, Reason.KEY_COMPROMISE)
    error = stack.notary.refused(stack.key("a_issuer"), "revokeBatch", tree.root, 1)
    assert error.name == "BatchAlreadyRevoked" and error.args == (tree.root,)
    leaves = records(2)
    error = stack.notary.refused(
        stack.key("a_revoker"), "revokeLeaf", tree.root, leaves[0], *proof_args(tree.prove(0)), 1
    )
    assert error.name == "BatchAlreadyRevoked"


@pytest.mark.parametrize(
    "caller",
    [
        "outsider",
        # An issuer of the same department that did not anchor the batch and is no revoker.
        "a_issuer2",
        "a_auditor",
        # Issuer and revoker, but of another department.
        "b_issuer",
    ],
)
def test_revocation_refused_to_others(stack: TrustStack, caller: str) -> None:
    leaves = records(3)
    tree = anchor(stack, leaves)
    key = stack.key(caller)
    error = stack.notary.refused(key, "revokeBatch", tree.root, 1)
    assert error.name == "NotAuthorised" and error.args == (stack.account(caller), tree.root)
    error = stack.notary.refused(
        key, "revokeLeaf", tree.root, leaves[1], *proof_args(tree.prove(1)), 1
    )
    assert error.name == "NotAuthorised"


def test_revocation_refused_while_the_department_is_frozen(stack: TrustStack) -> None:
    tree = anchor(stack, records(1))
    stack.registry.send(stack.governance, "setFrozen", A, True)
    for caller in ("a_issuer", "a_revoker"):
        assert stack.notary.refused(stack.key(caller), "revokeBatch", tree.root, 1).name == (
            "NotAuthorised"
        )


def test_unknown_batches(stack: TrustStack) -> None:
    root = sm3(b"never anchored")
    assert stack.notary.refused(stack.key("a_issuer"), "revokeBatch", root, 1).name == (
        "UnknownBatch"
    )
    error = stack.notary.refused(stack.key("a_revoker"), "revokeLeaf", root, root, [], 0, 0, 1)
    assert error.name == "UnknownBatch" and error.args == (root,)
    assert stack.notary.view_error("batchOf", root).name == "UnknownBatch"
    assert stack.notary.view_error("verifyLeaf", root, root, [], 0, 0).name == "UnknownBatch"
    assert status(stack, root, root, stack.ledger.height) == LeafStatus(False, False, 0, 0)


def test_a_leaf_is_revoked_once(stack: TrustStack) -> None:
    leaves = records(5)
    tree = anchor(stack, leaves)
    args = proof_args(tree.prove(3))
    stack.notary.send(stack.key("a_issuer"), "revokeLeaf", tree.root, leaves[3], *args, 2)
    error = stack.notary.refused(
        stack.key("a_revoker"), "revokeLeaf", tree.root, leaves[3], *args, 3
    )
    assert error.name == "LeafAlreadyRevoked"
    assert error.args == (tree.root, leaf_hash(leaves[3]))


def test_status_at_blocks_around_leaf_and_batch_revocation(stack: TrustStack) -> None:
    leaves = records(8)
    tree = anchor(stack, leaves)
    anchored_at = stack.ledger.height
    stack.ledger.advance(2)
    stack.notary.send(
        stack.key("a_revoker"),
        "revokeLeaf",
        tree.root,
        leaves[6],
        *proof_args(tree.prove(6)),
        Reason.HOLDER_REQUEST,
    )
    leaf_revoked_at = stack.ledger.height
    stack.ledger.advance(2)
    stack.notary.send(stack.key("a_issuer"), "revokeBatch", tree.root, Reason.KEY_COMPROMISE)
    batch_revoked_at = stack.ledger.height
    expected = {
        anchored_at - 1: (LeafStatus(False, False, 0, 0), LeafStatus(False, False, 0, 0)),
        anchored_at: (LeafStatus(True, False, 0, 0), LeafStatus(True, False, 0, 0)),
        leaf_revoked_at - 1: (LeafStatus(True, False, 0, 0), LeafStatus(True, False, 0, 0)),
        leaf_revoked_at: (
            LeafStatus(True, True, leaf_revoked_at, Reason.HOLDER_REQUEST),
            LeafStatus(True, False, 0, 0),
        ),
        batch_revoked_at - 1: (
            LeafStatus(True, True, leaf_revoked_at, Reason.HOLDER_REQUEST),
            LeafStatus(True, False, 0, 0),
        ),
        batch_revoked_at: (
            LeafStatus(True, True, leaf_revoked_at, Reason.HOLDER_REQUEST),
            LeafStatus(True, True, batch_revoked_at, Reason.KEY_COMPROMISE),
        ),
        2**256 - 1: (
            LeafStatus(True, True, leaf_revoked_at, Reason.HOLDER_REQUEST),
            LeafStatus(True, True, batch_revoked_at, Reason.KEY_COMPROMISE),
        ),
    }
    for block, (revoked_leaf, other_leaf) in expected.items():
        assert status(stack, tree.root, leaves[6], block) == revoked_leaf, block
        assert status(stack, tree.root, leaves[0], block) == other_leaf, block


def test_direction_bits_follow_the_proof_path() -> None:
    tree = MerkleTree.build(records(13))
    for proof in tree.proofs():
        bits = direction_bits(proof)
        assert [bool(bits >> step & 1) for step in range(len(proof.path))] == [
            step.sibling_is_left for step in proof.path
        ]
        assert bits >> len(proof.path) == 0


def test_leaf_hash_of_matches_chain_merkle(stack: TrustStack) -> None:
    leaf = sm3(b"x")
    assert stack.notary.view("leafHashOf", leaf) == leaf_hash(leaf)


@pytest.fixture(scope="module")
def shared_stack() -> TrustStack:
    return trust_stack()


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), size=st.integers(min_value=1, max_value=40))
def test_random_trees_verify_on_chain(
    shared_stack: TrustStack, data: st.DataObject, size: int
) -> None:
    stack = shared_stack
    # Every draw comes before the early return below, so a replayed example draws the same
    # values in the same order (otherwise Hypothesis reports a flaky strategy).
    label = data.draw(st.binary(min_size=8, max_size=8), label="label")
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    leaves = records(size, label)
    tree = MerkleTree.build(leaves)
    if stack.notary.view("statusAt", tree.root, bytes(32), 2**64)[0]:
        return  # Hypothesis replayed an example already anchored on the shared ledger.
    stack.notary.send(stack.key("b_issuer"), "anchor", tree.root, size, METADATA)
    args = proof_args(tree.prove(index))
    assert stack.notary.view("verifyLeaf", tree.root, leaves[index], *args) is True
    for name, bad in tampered_proofs(tree, index):
        assert stack.notary.view("verifyLeaf", tree.root, leaves[index], *bad) is False, name
    stack.notary.send(stack.key("b_issuer"), "revokeLeaf", tree.root, leaves[index], *args, 1)
    assert status(stack, tree.root, leaves[index], stack.ledger.height).revoked
