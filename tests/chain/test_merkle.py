"""SM3 Merkle trees: roots match RFC 6962's recursive definition, every proof verifies, and
no tampered proof does."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain import encoding as enc
from chain.errors import EncodingError, ProofError
from chain.merkle import (
    EMPTY_ROOT,
    MerkleProof,
    MerkleTree,
    ProofStep,
    expected_directions,
    leaf_hash,
    merkle_root,
    merkle_root_hashed,
    node_hash,
    verify_proof,
    verify_proof_hashed,
)
from chain.primitives import Hash32

VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "merkle.json").read_text()
)

leaf_lists = st.lists(st.binary(max_size=40), max_size=70)
non_empty_leaf_lists = st.lists(st.binary(max_size=40), min_size=1, max_size=300)


def _sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) from RFC 6962 section 2.1, written recursively and independently."""
    if not leaves:
        return _sm3(b"")
    if len(leaves) == 1:
        return _sm3(b"\x00" + leaves[0])
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    return _sm3(b"\x01" + rfc6962_root(leaves[:split]) + rfc6962_root(leaves[split:]))


@st.composite
def tree_positions(draw: st.DrawFn) -> tuple[list[bytes], int]:
    """A non-empty list of leaves and the index of one of them."""
    leaves = draw(non_empty_leaf_lists)
    return leaves, draw(st.integers(min_value=0, max_value=len(leaves) - 1))


def _leaves(count: int) -> list[bytes]:
    return [count.to_bytes(4, "big") + i.to_bytes(4, "big") for i in range(count)]


# --- roots -----------------------------------------------------------------------------------


def test_empty_tree_root_is_sm3_of_nothing() -> None:
    assert merkle_root([]) == EMPTY_ROOT == _sm3(b"")
    assert MerkleTree.build([]).root == EMPTY_ROOT
    assert MerkleTree.build([]).leaf_count == 0
    assert list(MerkleTree.build([]).proofs()) == []


def test_hash_prefixes() -> None:
    assert leaf_hash(b"abc") == _sm3(b"\x00abc")
    assert node_hash(b"l" * 32, b"r" * 32) == _sm3(b"\x01" + b"l" * 32 + b"r" * 32)
    assert merkle_root([b"abc"]) == leaf_hash(b"abc")


@pytest.mark.parametrize("case", VECTORS["roots"], ids=lambda c: f"{len(c['leaves_ascii'])}")
def test_known_roots(case: dict[str, Any]) -> None:
    leaves = [leaf.encode() for leaf in case["leaves_ascii"]]
    assert merkle_root(leaves).hex() == case["root"]
    assert MerkleTree.build(leaves).root.hex() == case["root"]


@pytest.mark.parametrize("count", range(71))
def test_root_matches_rfc6962_for_small_sizes(count: int) -> None:
    leaves = _leaves(count)
    expected = rfc6962_root(leaves)
    assert merkle_root(leaves) == expected
    assert MerkleTree.build(leaves).root == expected
    assert merkle_root_hashed([leaf_hash(x) for x in leaves]) == expected


@given(leaf_lists)
def test_root_matches_rfc6962(leaves: list[bytes]) -> None:
    assert merkle_root(leaves) == rfc6962_root(leaves)


@given(non_empty_leaf_lists, st.data())
def test_root_changes_with_any_leaf(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1))
    changed = [*leaves]
    changed[index] = leaves[index] + b"\x00"
    assert merkle_root(changed) != merkle_root(leaves)


def test_leaf_is_not_confused_with_node() -> None:
    # Second-preimage resistance from the prefixes: a two-leaf root is not the leaf hash of
    # the concatenated children.
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    assert merkle_root([b"a", b"b"]) != merkle_root([left + right])


# --- proofs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("count", range(1, 71))
def test_every_proof_verifies_for_small_sizes(count: int) -> None:
    leaves = _leaves(count)
    tree = MerkleTree.build(leaves)
    proofs = list(tree.proofs())
    assert len(proofs) == count
    for index, proof in enumerate(proofs):
        assert proof == tree.prove(index)
        assert proof.leaf_index == index
        assert proof.leaf_count == count
        verify_proof(tree.root, leaves[index], proof)
        verify_proof_hashed(tree.root, leaf_hash(leaves[index]), proof)
        assert [s.sibling_is_left for s in proof.path] == expected_directions(index, count)


@given(non_empty_leaf_lists)
def test_every_proof_verifies(leaves: list[bytes]) -> None:
    tree = MerkleTree.build(leaves)
    for index, proof in enumerate(tree.proofs()):
        assert proof == tree.prove(index)
        verify_proof(tree.root, leaves[index], proof)


@pytest.mark.parametrize(
    "case", VECTORS["proofs"], ids=lambda c: f"{c['leaf_index']}of{c['leaf_count']}"
)
def test_known_proofs(case: dict[str, Any]) -> None:
    leaves = [f"leaf-{i}".encode() for i in range(case["leaf_count"])]
    proof = MerkleTree.build(leaves).prove(case["leaf_index"])
    assert [(s.sibling.hex(), s.sibling_is_left) for s in proof.path] == [
        (s["sibling"], s["sibling_is_left"]) for s in case["path"]
    ]
    assert proof.encode().hex() == case["encoded"]
    decoded = MerkleProof.decode(bytes.fromhex(case["encoded"]))
    verify_proof(Hash32(bytes.fromhex(case["root"])), case["leaf_ascii"].encode(), decoded)


@pytest.mark.parametrize("index", [-1, 5])
def test_prove_out_of_range(index: int) -> None:
    with pytest.raises(IndexError):
        MerkleTree.build(_leaves(5)).prove(index)


def _expect_rejected(root: Hash32, leaf: bytes, proof: MerkleProof) -> None:
    with pytest.raises(ProofError):
        verify_proof(root, leaf, proof)


@given(tree_positions(), st.binary(max_size=40))
def test_tampered_leaf_never_verifies(position: tuple[list[bytes], int], other: bytes) -> None:
    leaves, index = position
    tree = MerkleTree.build(leaves)
    if other != leaves[index]:
        _expect_rejected(tree.root, other, tree.prove(index))


@given(tree_positions(), st.data())
def test_tampered_sibling_never_verifies(
    position: tuple[list[bytes], int], data: st.DataObject
) -> None:
    leaves, index = position
    tree = MerkleTree.build(leaves)
    proof = tree.prove(index)
    if not proof.path:
        return
    step = data.draw(st.integers(min_value=0, max_value=len(proof.path) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=255))
    sibling = bytearray(proof.path[step].sibling)
    sibling[bit // 8] ^= 1 << (bit % 8)
    path = list(proof.path)
    path[step] = dataclasses.replace(path[step], sibling=Hash32(bytes(sibling)))
    _expect_rejected(tree.root, leaves[index], dataclasses.replace(proof, path=tuple(path)))


@given(tree_positions(), st.data())
def test_flipped_direction_never_verifies(
    position: tuple[list[bytes], int], data: st.DataObject
) -> None:
    leaves, index = position
    tree = MerkleTree.build(leaves)
    proof = tree.prove(index)
    if not proof.path:
        return
    step = data.draw(st.integers(min_value=0, max_value=len(proof.path) - 1))
    path = list(proof.path)
    path[step] = ProofStep(path[step].sibling, not path[step].sibling_is_left)
    _expect_rejected(tree.root, leaves[index], dataclasses.replace(proof, path=tuple(path)))


@given(tree_positions(), st.data())
def test_wrong_index_never_verifies(position: tuple[list[bytes], int], data: st.DataObject) -> None:
    leaves, index = position
    tree = MerkleTree.build(leaves)
    proof = tree.prove(index)
    other = data.draw(st.integers(min_value=-2, max_value=len(leaves) + 2))
    if other != index:
        _expect_rejected(tree.root, leaves[index], dataclasses.replace(proof, leaf_index=other))


@given(tree_positions(), st.data())
def test_wrong_count_never_verifies_against_a_known_count(
    position: tuple[list[bytes], int], data: st.DataObject
) -> None:
    leaves, index = position
    tree = MerkleTree.build(leaves)
    proof = tree.prove(index)
    other = data.draw(st.integers(min_value=-1, max_value=2 * len(leaves) + 2))
    if other == len(leaves):
        return
    claimed = dataclasses.replace(proof, leaf_count=other)
    with pytest.raises(ProofError):
        verify_proof(tree.root, leaves[index], claimed, leaf_count=len(leaves))
    try:
        same_shape = expected_directions(index, other) == expected_directions(index, len(leaves))
    except ProofError:
        same_shape = False
    if not same_shape:
        _expect_rejected(tree.root, leaves[index], claimed)


def test_count_is_not_committed_by_the_root() -> None:
    # Leaf 4 of 5 and leaf 2 of 3 share a path shape (one left sibling), so without the
    # known size the same path passes for both; with it, only the true position passes.
    leaves = _leaves(5)
    tree = MerkleTree.build(leaves)
    proof = tree.prove(4)
    replayed = MerkleProof(leaf_index=2, leaf_count=3, path=proof.path)
    verify_proof(tree.root, leaves[4], replayed)
    verify_proof(tree.root, leaves[4], proof, leaf_count=5)
    with pytest.raises(ProofError):
        verify_proof(tree.root, leaves[4], replayed, leaf_count=5)


@given(tree_positions(), st.data())
def test_replayed_for_another_index_never_verifies(
    position: tuple[list[bytes], int], data: st.DataObject
) -> None:
    # Leaves may repeat: the proof of one copy must not prove the other's position.
    leaves, index = position
    other = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1))
    duplicated = [*leaves]
    duplicated[other] = leaves[index]
    tree = MerkleTree.build(duplicated)
    proof = tree.prove(index)
    if other != index:
        _expect_rejected(tree.root, leaves[index], dataclasses.replace(proof, leaf_index=other))
        verify_proof(tree.root, leaves[index], tree.prove(other))


@given(tree_positions(), st.data())
def test_truncated_or_extended_path_never_verifies(
    position: tuple[list[bytes], int], data: st.DataObject
) -> None:
    leaves, index = position
    tree = MerkleTree.build(leaves)
    proof = tree.prove(index)
    extra = ProofStep(
        Hash32(data.draw(st.binary(min_size=32, max_size=32))), data.draw(st.booleans())
    )
    for path in ((*proof.path, extra), (extra, *proof.path), proof.path[:-1], proof.path[1:]):
        if path != proof.path:
            _expect_rejected(tree.root, leaves[index], dataclasses.replace(proof, path=path))


@given(tree_positions(), st.binary(min_size=32, max_size=32))
def test_tampered_root_never_verifies(position: tuple[list[bytes], int], root: bytes) -> None:
    leaves, index = position
    tree = MerkleTree.build(leaves)
    if root != tree.root:
        _expect_rejected(Hash32(root), leaves[index], tree.prove(index))


def test_short_sibling_is_rejected() -> None:
    tree = MerkleTree.build(_leaves(2))
    proof = MerkleProof(0, 2, (ProofStep(Hash32(b"\x00" * 31), False),))
    _expect_rejected(tree.root, _leaves(2)[0], proof)


def test_single_leaf_tree_has_an_empty_path() -> None:
    tree = MerkleTree.build([b"only"])
    proof = tree.prove(0)
    assert proof.path == ()
    verify_proof(tree.root, b"only", proof)
    _expect_rejected(tree.root, b"only", MerkleProof(0, 0, ()))


# --- proof encoding --------------------------------------------------------------------------


@given(tree_positions())
def test_proof_encoding_round_trips(position: tuple[list[bytes], int]) -> None:
    leaves, index = position
    proof = MerkleTree.build(leaves).prove(index)
    assert MerkleProof.decode(proof.encode()) == proof


def _proof_item() -> list[enc.RLPItem]:
    proof = MerkleTree.build(_leaves(7)).prove(5)
    item = proof.to_rlp()
    assert isinstance(item, list)
    return item


def _mutations() -> list[tuple[str, enc.RLPItem | bytes]]:
    good = _proof_item()
    path = good[2]
    assert isinstance(path, list)
    step = path[0]
    assert isinstance(step, list)
    sibling = step[0]
    assert isinstance(sibling, bytes)
    cases: list[tuple[str, enc.RLPItem | bytes]] = [
        ("trailing byte", enc.encode(good) + b"\x00"),
        ("index leading zero", [b"\x00\x05", good[1], path]),
        ("count leading zero", [good[0], b"\x00\x07", path]),
        ("extra field", [*good, b""]),
        ("missing field", good[:2]),
        ("index as list", [[b"\x05"], good[1], path]),
        ("path as string", [good[0], good[1], b"path"]),
        ("short sibling", [good[0], good[1], [[sibling[:31], step[1]], *path[1:]]]),
        ("long sibling", [good[0], good[1], [[sibling + b"\x00", step[1]], *path[1:]]]),
        ("flag 2", [good[0], good[1], [[sibling, b"\x02"], *path[1:]]]),
        ("flag zero byte", [good[0], good[1], [[sibling, b"\x00"], *path[1:]]]),
        ("flag as list", [good[0], good[1], [[sibling, []], *path[1:]]]),
        ("step with 3 fields", [good[0], good[1], [[sibling, step[1], b""], *path[1:]]]),
        ("step as string", [good[0], good[1], [sibling, *path[1:]]]),
    ]
    return cases


@pytest.mark.parametrize(("name", "mutated"), _mutations(), ids=[n for n, _ in _mutations()])
def test_non_canonical_proof_encodings_are_rejected(name: str, mutated: enc.RLPItem) -> None:
    raw = mutated if isinstance(mutated, bytes) and name == "trailing byte" else enc.encode(mutated)
    with pytest.raises(EncodingError):
        MerkleProof.decode(raw)


@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_encoding_error(raw: bytes) -> None:
    try:
        proof = MerkleProof.decode(raw)
    except EncodingError:
        return
    assert proof.encode() == raw


@given(tree_positions())
def test_siblings_round_trip_to_the_same_proof(position: tuple[list[bytes], int]) -> None:
    leaves, index = position
    tree = MerkleTree.build(leaves)
    siblings = tree.siblings(index)
    assert len(siblings) % 32 == 0
    assert MerkleProof.from_siblings(index, len(leaves), siblings) == tree.prove(index)


@given(tree_positions(), st.data())
def test_siblings_of_the_wrong_length_or_position_are_refused(
    position: tuple[list[bytes], int], data: st.DataObject
) -> None:
    leaves, index = position
    siblings = MerkleTree.build(leaves).siblings(index)
    cut = data.draw(st.integers(0, len(siblings) + 64).filter(lambda n: n != len(siblings)))
    wrong = (siblings + bytes(64))[:cut]
    with pytest.raises(ValueError):
        MerkleProof.from_siblings(index, len(leaves), wrong)
    with pytest.raises(ValueError):
        MerkleProof.from_siblings(len(leaves), len(leaves), siblings)


@given(
    leaf_index=st.integers(min_value=0, max_value=2**64),
    leaf_count=st.integers(min_value=0, max_value=2**64),
    steps=st.lists(
        st.tuples(st.binary(min_size=0, max_size=40), st.booleans()), min_size=0, max_size=70
    ),
)
def test_the_proof_encoder_is_the_general_encoder(
    leaf_index: int, leaf_count: int, steps: list[tuple[bytes, bool]]
) -> None:
    """The proof's own encoder gives the general RLP encoder's bytes for any proof, of
    32-byte siblings (its fast shape, long paths crossing the 55-byte list prefix) or not
    (the fallback), and decodes back to the proof."""
    proof = MerkleProof(
        leaf_index=leaf_index,
        leaf_count=leaf_count,
        path=tuple(ProofStep(sibling=Hash32(s), sibling_is_left=left) for s, left in steps),
    )
    assert proof.encode() == enc.encode(proof.to_rlp())
    if all(len(s) == 32 for s, _ in steps):
        assert MerkleProof.from_rlp(enc.decode(proof.encode())) == proof


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=300), st.data())
def test_built_proofs_encode_as_the_general_encoder(leaves: list[bytes], data: Any) -> None:
    tree = MerkleTree.build(leaves)
    index = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1))
    proof = tree.prove(index)
    assert proof.encode() == enc.encode(proof.to_rlp())
