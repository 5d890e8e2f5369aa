"""SM3 Merkle trees in the style of RFC 6962, with inclusion proofs that carry explicit
left/right bits.

A leaf hashes as ``SM3(0x00 || leaf)``, an inner node as ``SM3(0x01 || left || right)``, and
the empty tree's root is ``SM3(b"")``. The tree is built bottom-up; a level with an odd number
of nodes promotes its last node unchanged to the next level, which gives the same root as
RFC 6962's left-balanced recursive definition.

A proof lists the siblings from the leaf up to the root. Its ``leaf_index`` and
``leaf_count`` fix the shape of the path (how many steps, and on which side each sibling
sits), and :func:`verify_proof` rejects a path whose bits do not match that shape, so a proof
cannot be replayed for another position. The root does not commit to the number of leaves,
so a verifier that knows it passes ``leaf_count`` to :func:`verify_proof` as well.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from chain import encoding as enc
from chain.encoding import RLPItem
from chain.errors import EncodingError, ProofError
from chain.primitives import HASH_SIZE, Hash32

LEAF_PREFIX = b"\x00"
"""Domain separation for leaf hashes (RFC 6962 section 2.1)."""

NODE_PREFIX = b"\x01"
"""Domain separation for inner-node hashes (RFC 6962 section 2.1)."""

# Hash objects with the prefix already fed in. They are only ever copied, never updated, so
# sharing them is safe; copying is several times faster than hashlib.new("sm3") by name.
_LEAF_HASHER = hashlib.new("sm3", LEAF_PREFIX)
_NODE_HASHER = hashlib.new("sm3", NODE_PREFIX)

EMPTY_ROOT = Hash32(hashlib.new("sm3", b"").digest())
"""The root of a tree with no leaves: SM3 of the empty string."""


def leaf_hash(leaf: bytes) -> Hash32:
    """Return ``SM3(0x00 || leaf)``, the hash of one leaf."""
    hasher = _LEAF_HASHER.copy()
    hasher.update(leaf)
    return Hash32(hasher.digest())


def node_hash(left: bytes, right: bytes) -> Hash32:
    """Return ``SM3(0x01 || left || right)``, the hash of an inner node."""
    hasher = _NODE_HASHER.copy()
    hasher.update(left)
    hasher.update(right)
    return Hash32(hasher.digest())


def _next_level(level: Sequence[Hash32]) -> list[Hash32]:
    """Hash adjacent pairs; an odd last node is promoted unchanged."""
    parents = list(map(node_hash, level[0::2], level[1::2]))
    if len(level) % 2:
        parents.append(level[-1])
    return parents


def merkle_root(leaves: Sequence[bytes]) -> Hash32:
    """Return the Merkle root of ``leaves`` (each leaf is hashed with the leaf prefix)."""
    return merkle_root_hashed(list(map(leaf_hash, leaves)))


def merkle_root_hashed(leaf_hashes: Sequence[Hash32]) -> Hash32:
    """Return the Merkle root over leaves given by their :func:`leaf_hash` values."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


@dataclass(frozen=True, slots=True)
class ProofStep:
    """One level of an inclusion proof: the sibling of the node on the path."""

    sibling: Hash32
    """The sibling node's hash at this level."""
    sibling_is_left: bool
    """True if the sibling is the left child, so the path node is the right one."""


@dataclass(frozen=True, slots=True)
class MerkleProof:
    """An inclusion proof for the leaf at ``leaf_index`` in a tree of ``leaf_count`` leaves."""

    leaf_index: int
    """Position of the proven leaf, counted from 0."""
    leaf_count: int
    """Number of leaves in the tree; with ``leaf_index`` it fixes the shape of ``path``."""
    path: tuple[ProofStep, ...]
    """Siblings from the leaf level up to just below the root; promoted levels are skipped."""

    def to_rlp(self) -> RLPItem:
        """The RLP structure of :meth:`encode`."""
        return [
            enc.encode_int(self.leaf_index),
            enc.encode_int(self.leaf_count),
            [[step.sibling, enc.encode_int(int(step.sibling_is_left))] for step in self.path],
        ]

    def encode(self) -> bytes:
        """The canonical encoding: ``[leaf_index, leaf_count, [[sibling, is_left], ...]]``.

        Written for this one shape: a step is always ``0xe2 0xa0 <32-byte sibling> <flag>``
        (a 34-byte list of a 32-byte string and the integer 0 (``0x80``) or 1 (``0x01``)).
        A registry encodes one proof per record at intake, and the general encoder's walk over
        the nested lists was two fifths of a bulk request's check. Equal to
        ``enc.encode(self.to_rlp())`` (a property test holds it there); a step whose sibling
        is not 32 bytes long takes the general encoder."""
        path = self.path
        if any(len(step.sibling) != HASH_SIZE for step in path):
            return enc.encode(self.to_rlp())
        steps = b"".join(
            [
                b"\xe2\xa0" + step.sibling + (b"\x01" if step.sibling_is_left else b"\x80")
                for step in path
            ]
        )
        return enc.encode_list_payload(
            enc.encode(enc.encode_int(self.leaf_index))
            + enc.encode(enc.encode_int(self.leaf_count))
            + enc.encode_list_payload(steps)
        )

    @classmethod
    def from_rlp(cls, item: RLPItem) -> MerkleProof:
        """Inverse of :meth:`to_rlp`; raises EncodingError on a non-canonical structure."""
        leaf_index, leaf_count, path = enc.as_list(item, "MerkleProof", 3)
        steps = []
        for step_item in enc.as_list(path, "MerkleProof.path"):
            sibling, is_left = enc.as_list(step_item, "ProofStep", 2)
            flag = enc.decode_int(is_left, "ProofStep.sibling_is_left")
            if flag > 1:
                raise EncodingError("ProofStep.sibling_is_left: must be 0 or 1")
            steps.append(
                ProofStep(
                    sibling=Hash32(enc.as_bytes(sibling, "ProofStep.sibling", HASH_SIZE)),
                    sibling_is_left=bool(flag),
                )
            )
        return cls(
            leaf_index=enc.decode_int(leaf_index, "MerkleProof.leaf_index"),
            leaf_count=enc.decode_int(leaf_count, "MerkleProof.leaf_count"),
            path=tuple(steps),
        )

    @classmethod
    def decode(cls, data: bytes) -> MerkleProof:
        """Decode the canonical encoding; raises EncodingError on anything else.

        Read first as the one shape :meth:`encode` writes (every step ``0xe2 0xa0 <32-byte
        sibling> <flag>``), which is taken only if encoding the result gives back exactly
        ``data``; anything else (a sibling of another length, a bad byte, a non-canonical
        form) goes through the general decoder, which accepts or refuses it as before. A
        verifier decodes the department's proof of every record it checks, and the general
        decoder's walk was a quarter of a cold verification."""
        proof = _decode_steps(data)
        if proof is not None:
            return proof
        return cls.from_rlp(enc.decode(data))

    @classmethod
    def from_siblings(cls, leaf_index: int, leaf_count: int, siblings: bytes) -> MerkleProof:
        """The proof whose path holds ``siblings`` (32-byte hashes back to back, leaf level
        first, as :meth:`MerkleTree.siblings` gives them); the direction of each step and
        the promoted levels follow from ``leaf_index`` and ``leaf_count``. Raises
        ValueError if the index is outside the tree or the length does not fit."""
        if not 0 <= leaf_index < leaf_count:
            raise ValueError(f"leaf index {leaf_index} outside a tree of {leaf_count} leaves")
        path = []
        position, size, offset = leaf_index, leaf_count, 0
        while size > 1:
            sibling = position ^ 1
            if sibling < size:
                if offset + HASH_SIZE > len(siblings):
                    raise ValueError("too few siblings for this leaf")
                path.append(
                    ProofStep(
                        sibling=Hash32(siblings[offset : offset + HASH_SIZE]),
                        sibling_is_left=sibling < position,
                    )
                )
                offset += HASH_SIZE
            position, size = position >> 1, (size + 1) >> 1
        if offset != len(siblings):
            raise ValueError("more siblings than this leaf's path has")
        return cls(leaf_index=leaf_index, leaf_count=leaf_count, path=tuple(path))


_STEP_SIZE = 2 + HASH_SIZE + 1
"""Bytes of one encoded step: ``0xe2 0xa0``, the sibling, the flag."""


def _list_payload_start(data: bytes, position: int) -> int | None:
    """Where the payload of the RLP list whose header starts at ``position`` begins, or None
    if no list header is there."""
    head = data[position]
    if 0xC0 <= head <= 0xF7:
        return position + 1
    if 0xF8 <= head <= 0xFB:
        return position + 1 + head - 0xF7
    return None


def _small_int(data: bytes, position: int) -> tuple[int, int] | None:
    """The RLP integer at ``position`` (at most 8 bytes) and where the next item begins."""
    head = data[position]
    if head < 0x80:
        return head, position + 1
    if head <= 0x88:
        end = position + 1 + head - 0x80
        return int.from_bytes(data[position + 1 : end], "big"), end
    return None


def _decode_steps(data: bytes) -> MerkleProof | None:
    """``data`` read as :meth:`MerkleProof.encode` writes a proof of 32-byte siblings, or
    None when it is not exactly that (the general decoder then judges it)."""
    try:
        start = _list_payload_start(data, 0)
        if start is None:
            return None
        index = _small_int(data, start)
        if index is None:
            return None
        count = _small_int(data, index[1])
        if count is None:
            return None
        steps_start = _list_payload_start(data, count[1])
        if steps_start is None:
            return None
    except IndexError:
        return None
    steps = data[steps_start:]
    if len(steps) % _STEP_SIZE:
        return None
    path = []
    for offset in range(0, len(steps), _STEP_SIZE):
        if steps[offset] != 0xE2 or steps[offset + 1] != 0xA0:
            return None
        flag = steps[offset + _STEP_SIZE - 1]
        if flag not in (0x01, 0x80):
            return None
        sibling = Hash32(steps[offset + 2 : offset + 2 + HASH_SIZE])
        path.append(ProofStep(sibling=sibling, sibling_is_left=flag == 0x01))
    proof = MerkleProof(leaf_index=index[0], leaf_count=count[0], path=tuple(path))
    return proof if proof.encode() == data else None


def expected_directions(leaf_index: int, leaf_count: int) -> list[bool]:
    """Return the ``sibling_is_left`` bits a proof for ``leaf_index`` of ``leaf_count`` must
    carry, leaf level first; raises ProofError if the index is not inside the tree."""
    if not 0 <= leaf_index < leaf_count:
        raise ProofError(f"leaf index {leaf_index} outside a tree of {leaf_count} leaves")
    directions = []
    index, count = leaf_index, leaf_count
    while count > 1:
        if index % 2:
            directions.append(True)
        elif index + 1 < count:
            directions.append(False)
        # else: the last node of an odd level is promoted, so this level has no sibling.
        index //= 2
        count = (count + 1) // 2
    return directions


def verify_proof(
    root: Hash32, leaf: bytes, proof: MerkleProof, *, leaf_count: int | None = None
) -> None:
    """Return if ``proof`` shows that ``leaf`` sits at ``proof.leaf_index`` in a tree of
    ``proof.leaf_count`` leaves with root ``root``; raise ProofError otherwise.

    The root does not commit to the number of leaves, and trees of different sizes can share
    a path shape (leaf 4 of 5 and leaf 2 of 3 both have one left sibling). A verifier that
    knows the size of the tree passes it as ``leaf_count``; only then is ``leaf_index``
    bound to a single position.
    """
    verify_proof_hashed(root, leaf_hash(leaf), proof, leaf_count=leaf_count)


def verify_proof_hashed(
    root: Hash32, leaf_digest: Hash32, proof: MerkleProof, *, leaf_count: int | None = None
) -> None:
    """Like :func:`verify_proof` for a leaf given by its :func:`leaf_hash` value."""
    if leaf_count is not None and proof.leaf_count != leaf_count:
        raise ProofError(f"proof is for a tree of {proof.leaf_count} leaves, not {leaf_count}")
    directions = expected_directions(proof.leaf_index, proof.leaf_count)
    if len(proof.path) != len(directions):
        raise ProofError(
            f"proof has {len(proof.path)} steps, a leaf at {proof.leaf_index} of "
            f"{proof.leaf_count} needs {len(directions)}"
        )
    node = leaf_digest
    for level, (step, sibling_is_left) in enumerate(zip(proof.path, directions, strict=True)):
        if step.sibling_is_left is not sibling_is_left:
            raise ProofError(f"proof step {level}: sibling on the wrong side for the leaf index")
        if len(step.sibling) != HASH_SIZE:
            raise ProofError(f"proof step {level}: sibling is not {HASH_SIZE} bytes")
        node = node_hash(step.sibling, node) if sibling_is_left else node_hash(node, step.sibling)
    if node != root:
        raise ProofError("proof does not lead to the expected root")


@dataclass(frozen=True)
class MerkleTree:
    """Every level of a Merkle tree, leaf hashes first, so that proofs come without
    rehashing. Build it with :meth:`build` or :meth:`from_leaf_hashes`."""

    levels: tuple[tuple[Hash32, ...], ...]
    """``levels[0]`` holds the leaf hashes, each next level their parents, the last level
    the root alone; empty for a tree with no leaves."""

    @classmethod
    def build(cls, leaves: Sequence[bytes]) -> MerkleTree:
        """Hash ``leaves`` with the leaf prefix and build the tree over them."""
        return cls.from_leaf_hashes(list(map(leaf_hash, leaves)))

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: Sequence[Hash32]) -> MerkleTree:
        """Build the tree over leaves given by their :func:`leaf_hash` values."""
        if not leaf_hashes:
            return cls(levels=())
        levels = [tuple(leaf_hashes)]
        while len(levels[-1]) > 1:
            levels.append(tuple(_next_level(levels[-1])))
        return cls(levels=tuple(levels))

    @property
    def root(self) -> Hash32:
        """The Merkle root (``SM3(b"")`` for an empty tree)."""
        return self.levels[-1][0] if self.levels else EMPTY_ROOT

    @property
    def leaf_count(self) -> int:
        """The number of leaves."""
        return len(self.levels[0]) if self.levels else 0

    def prove(self, index: int) -> MerkleProof:
        """Return the inclusion proof for the leaf at ``index``; raises IndexError if there
        is no such leaf."""
        count = self.leaf_count
        if not 0 <= index < count:
            raise IndexError(f"leaf index {index} outside a tree of {count} leaves")
        path = []
        position = index
        for level in self.levels[:-1]:
            sibling = position ^ 1
            if sibling < len(level):
                path.append(ProofStep(sibling=level[sibling], sibling_is_left=sibling < position))
            position >>= 1
        return MerkleProof(leaf_index=index, leaf_count=count, path=tuple(path))

    def siblings(self, index: int) -> bytes:
        """The siblings on the path of leaf ``index``, leaf level first, back to back: the
        compact form of :meth:`prove` (see :meth:`MerkleProof.from_siblings`)."""
        if not 0 <= index < self.leaf_count:
            raise IndexError(f"leaf index {index} outside a tree of {self.leaf_count} leaves")
        found = []
        position = index
        for level in self.levels[:-1]:
            sibling = position ^ 1
            if sibling < len(level):
                found.append(level[sibling])
            position >>= 1
        return b"".join(found)

    def encoded_proofs(self) -> Iterator[bytes]:
        """Yield the canonical encoding of every leaf's proof in index order, each equal to
        ``self.prove(index).encode()``.

        Written out from the levels for a registry that stores one proof per record of a
        bulk request: as in :meth:`proofs`, going from leaf ``i - 1`` to ``i`` rewrites only
        the steps up to the lowest set bit of ``i``, and no ProofStep or MerkleProof is built
        (building and encoding them was most of the proofs' cost). A tree whose leaf hashes
        are not all 32 bytes long takes :meth:`prove` and :meth:`MerkleProof.encode`."""
        count = self.leaf_count
        if count and any(len(leaf) != HASH_SIZE for leaf in self.levels[0]):
            for index in range(count):
                yield self.prove(index).encode()
            return
        inner_levels = self.levels[:-1]
        steps = [b""] * len(inner_levels)
        encoded_count = enc.encode(enc.encode_int(count))
        for index in range(count):
            changed = len(inner_levels) if index == 0 else (index & -index).bit_length()
            for depth in range(min(changed, len(inner_levels))):
                level = inner_levels[depth]
                position = index >> depth
                sibling = position ^ 1
                steps[depth] = (
                    b"\xe2\xa0" + level[sibling] + (b"\x01" if sibling < position else b"\x80")
                    if sibling < len(level)
                    else b""
                )
            yield enc.encode_list_payload(
                enc.encode(enc.encode_int(index))
                + encoded_count
                + enc.encode_list_payload(b"".join(steps))
            )

    def proofs(self) -> Iterator[MerkleProof]:
        """Yield the proof of every leaf in index order, each equal to :meth:`prove`.

        Consecutive leaves share the upper part of their paths: going from leaf ``i - 1`` to
        ``i`` changes only the levels up to the lowest set bit of ``i``, so each step is
        created once per tree node rather than once per proof.
        """
        count = self.leaf_count
        inner_levels = self.levels[:-1]
        steps: list[ProofStep | None] = [None] * len(inner_levels)
        for index in range(count):
            changed = len(inner_levels) if index == 0 else (index & -index).bit_length()
            for depth in range(min(changed, len(inner_levels))):
                level = inner_levels[depth]
                position = index >> depth
                sibling = position ^ 1
                steps[depth] = (
                    ProofStep(sibling=level[sibling], sibling_is_left=sibling < position)
                    if sibling < len(level)
                    else None
                )
            yield MerkleProof(leaf_index=index, leaf_count=count, path=tuple(filter(None, steps)))
