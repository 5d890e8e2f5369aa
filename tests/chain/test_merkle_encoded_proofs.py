"""MerkleTree.encoded_proofs: every leaf's proof encoded in one pass over the tree's
levels, byte for byte what prove(index).encode() gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chain.merkle import MerkleProof, MerkleTree, verify_proof
from chain.primitives import Hash32


@given(st.lists(st.binary(min_size=0, max_size=40), min_size=0, max_size=300))
def test_encoded_proofs_are_the_proofs_encoded(leaves: list[bytes]) -> None:
    """Trees of any size (odd levels, promoted nodes, paths crossing the 55-byte list
    prefix): one encoding per leaf, in order, each that of prove(index), decoding to a
    proof that verifies."""
    tree = MerkleTree.build(leaves)
    encoded = list(tree.encoded_proofs())
    assert encoded == [tree.prove(index).encode() for index in range(len(leaves))]
    for index, leaf in enumerate(leaves):
        verify_proof(tree.root, leaf, MerkleProof.decode(encoded[index]), leaf_count=len(leaves))


@given(
    st.lists(
        st.one_of(st.binary(min_size=32, max_size=32), st.binary(min_size=0, max_size=40)),
        min_size=1,
        max_size=40,
    )
)
def test_leaf_hashes_of_other_lengths_take_the_general_encoder(hashes: list[bytes]) -> None:
    """A tree built over given leaf hashes that are not all 32 bytes long still encodes
    every proof as prove(index).encode() does."""
    tree = MerkleTree.from_leaf_hashes([Hash32(value) for value in hashes])
    assert list(tree.encoded_proofs()) == [
        tree.prove(index).encode() for index in range(len(hashes))
    ]
