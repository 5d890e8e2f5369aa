"""MerkleProof.decode reads the one shape MerkleProof.encode writes without the general RLP
decoder, and accepts and refuses exactly what the general decoder does: every proof comes
back as it was, and any changed, cut or lengthened encoding, or any bytes at all, are
either the same proof the general decoder gives or refused with EncodingError as it is."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chain import encoding as enc
from chain.errors import EncodingError
from chain.merkle import MerkleProof, MerkleTree, _decode_steps


def general(data: bytes) -> MerkleProof | None:
    """What the general decoder makes of ``data`` (None: refused)."""
    try:
        return MerkleProof.from_rlp(enc.decode(data))
    except EncodingError:
        return None


def decoded(data: bytes) -> MerkleProof | None:
    try:
        return MerkleProof.decode(data)
    except EncodingError:
        return None


@st.composite
def proofs(draw: st.DrawFn) -> MerkleProof:
    size = draw(st.integers(min_value=1, max_value=2_000))
    index = draw(st.integers(min_value=0, max_value=size - 1))
    tree = MerkleTree.build([b"%d" % i for i in range(size)])
    return tree.prove(index)


@given(proofs())
def test_every_proof_decodes_as_it_was_without_the_general_decoder(proof: MerkleProof) -> None:
    data = proof.encode()
    assert _decode_steps(data) == proof
    assert MerkleProof.decode(data) == proof


@given(proofs(), st.data())
def test_a_changed_cut_or_lengthened_encoding_is_judged_as_the_general_decoder_does(
    proof: MerkleProof, data: st.DataObject
) -> None:
    encoded = bytearray(proof.encode())
    change = data.draw(st.sampled_from(["flip", "cut", "append", "insert"]))
    at = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    if change == "flip":
        encoded[at] ^= data.draw(st.integers(min_value=1, max_value=255))
    elif change == "cut":
        del encoded[at:]
    elif change == "append":
        encoded += data.draw(st.binary(min_size=1, max_size=40))
    else:
        encoded[at:at] = data.draw(st.binary(min_size=1, max_size=3))
    assert decoded(bytes(encoded)) == general(bytes(encoded))


@given(st.binary(max_size=200))
def test_any_bytes_are_judged_as_the_general_decoder_does(data: bytes) -> None:
    assert decoded(data) == general(data)


def test_siblings_of_other_lengths_take_the_general_decoder() -> None:
    """A step whose sibling is not 32 bytes long is not the one shape: the general decoder
    refuses it (ProofStep.sibling must be 32 bytes), and so does decode."""
    item = [enc.encode_int(0), enc.encode_int(2), [[b"\x01" * 31, enc.encode_int(0)]]]
    data = enc.encode(item)
    assert _decode_steps(data) is None
    assert decoded(data) is None and general(data) is None
