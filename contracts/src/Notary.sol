// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IssuerRegistry, ROLE_ISSUER, ROLE_REVOKER, sm3} from "./IssuerRegistry.sol";

/// @title Notary
/// @notice Anchors notarization batches (SM3 Merkle roots, chain/merkle.py) by issuers that
///         IssuerRegistry vouches for, and records revocations of whole batches or single
///         leaves, so that a verifier can ask whether a record was valid at a given block.
/// @dev    Leaves are identified by their Merkle leaf hash SM3(0x00 || leaf), the value in
///         the tree's bottom level. `revokeLeaf` checks inclusion on chain with the SM3
///         precompile: node = SM3(0x01 || left || right), the last node of an odd level is
///         promoted unchanged, and the sibling sides must match the leaf's position in a tree
///         of the batch's recorded leaf count, exactly as chain.merkle.verify_proof does.
contract Notary {
    /// @notice Most proof steps accepted (a tree of up to 2^64 leaves).
    uint256 public constant MAX_PROOF_STEPS = 64;

    /// @notice One anchored batch.
    struct Batch {
        /// @notice The account that anchored it.
        address issuer;
        /// @notice The issuer's department (USCC) when anchoring.
        bytes18 department;
        /// @notice Block of the anchoring transaction.
        uint64 anchoredAtBlock;
        /// @notice Number of leaves in the tree.
        uint64 leafCount;
        /// @notice Block of the revocation of the whole batch; 0 if not revoked.
        uint64 revokedAtBlock;
        /// @notice Reason code of the batch revocation (contracts/trust.py `Reason`).
        uint16 reason;
        /// @notice Hash of the batch's off-chain metadata, as given by the issuer.
        bytes32 metadataHash;
    }

    /// @dev Revocation of one leaf; `atBlock` 0 means not revoked.
    struct LeafRevocation {
        uint64 atBlock;
        uint16 reason;
    }

    /// @notice The registry that says who is an issuer.
    IssuerRegistry public immutable registry;

    mapping(bytes32 => Batch) private _batches;
    mapping(bytes32 => mapping(bytes32 => LeafRevocation)) private _leafRevocations;

    /// @notice `issuer` of department `department` anchored the batch `root`.
    event BatchAnchored(
        bytes32 indexed root,
        address indexed issuer,
        bytes18 indexed department,
        uint64 leafCount,
        bytes32 metadataHash
    );
    /// @notice The whole batch `root` was revoked by `by`.
    event BatchRevoked(bytes32 indexed root, address indexed by, uint16 reason);
    /// @notice The leaf with hash `leafHash` at `leafIndex` of batch `root` was revoked by `by`.
    event LeafRevoked(
        bytes32 indexed root,
        bytes32 indexed leafHash,
        address indexed by,
        uint256 leafIndex,
        uint16 reason
    );

    /// @notice The caller does not hold, now, the role the action needs.
    error NotIssuer(address caller);
    /// @notice The caller is neither the batch's issuer nor a revoker of its department.
    error NotAuthorised(address caller, bytes32 root);
    /// @notice The root is zero or the leaf count is zero.
    error InvalidBatch(bytes32 root, uint64 leafCount);
    /// @notice `root` was anchored already.
    error BatchExists(bytes32 root);
    /// @notice `root` was never anchored.
    error UnknownBatch(bytes32 root);
    /// @notice The batch is revoked already (as a whole).
    error BatchAlreadyRevoked(bytes32 root);
    /// @notice The leaf is revoked already.
    error LeafAlreadyRevoked(bytes32 root, bytes32 leafHash);
    /// @notice The proof does not show the leaf at `leafIndex` under `root`.
    error InvalidProof(bytes32 root, uint256 leafIndex);

    /// @param issuerRegistry The registry consulted for every write.
    constructor(IssuerRegistry issuerRegistry) {
        registry = issuerRegistry;
    }

    /// @notice Anchor the Merkle root of a batch of `leafCount` leaves. The caller must be an
    ///         issuer now (IssuerRegistry.rolesAt at the current block).
    function anchor(bytes32 batchRoot, uint64 leafCount, bytes32 metadataHash) external {
        (bytes18 department, uint8 roles) = registry.rolesAt(msg.sender, block.number);
        if (roles & ROLE_ISSUER == 0) {
            revert NotIssuer(msg.sender);
        }
        if (batchRoot == bytes32(0) || leafCount == 0) {
            revert InvalidBatch(batchRoot, leafCount);
        }
        Batch storage batch = _batches[batchRoot];
        if (batch.anchoredAtBlock != 0) {
            revert BatchExists(batchRoot);
        }
        batch.issuer = msg.sender;
        batch.department = department;
        batch.anchoredAtBlock = uint64(block.number);
        batch.leafCount = leafCount;
        batch.metadataHash = metadataHash;
        emit BatchAnchored(batchRoot, msg.sender, department, leafCount, metadataHash);
    }

    /// @notice Revoke every leaf of the batch `root` from this block on.
    function revokeBatch(bytes32 root, uint16 reason) external {
        Batch storage batch = _revocable(root);
        batch.revokedAtBlock = uint64(block.number);
        batch.reason = reason;
        emit BatchRevoked(root, msg.sender, reason);
    }

    /// @notice Revoke one leaf of the batch `root` from this block on, after checking on chain
    ///         that `leaf` sits at `leafIndex` under `root`.
    /// @param leaf The leaf content (its hash SM3(0x00 || leaf) identifies it).
    /// @param proof Sibling hashes from the leaf level up (chain.merkle.MerkleProof.path).
    /// @param directionBits Bit i set when sibling i is the left child.
    function revokeLeaf(
        bytes32 root,
        bytes32 leaf,
        bytes32[] calldata proof,
        uint256 directionBits,
        uint256 leafIndex,
        uint16 reason
    ) external {
        Batch storage batch = _revocable(root);
        bytes32 leafHash = leafHashOf(leaf);
        if (!_proves(root, leafHash, proof, directionBits, leafIndex, batch.leafCount)) {
            revert InvalidProof(root, leafIndex);
        }
        LeafRevocation storage revocation = _leafRevocations[root][leafHash];
        if (revocation.atBlock != 0) {
            revert LeafAlreadyRevoked(root, leafHash);
        }
        revocation.atBlock = uint64(block.number);
        revocation.reason = reason;
        emit LeafRevoked(root, leafHash, msg.sender, leafIndex, reason);
    }

    /// @notice The batch anchored under `root`; reverts UnknownBatch.
    function batchOf(bytes32 root) external view returns (Batch memory) {
        Batch storage batch = _batches[root];
        if (batch.anchoredAtBlock == 0) {
            revert UnknownBatch(root);
        }
        return batch;
    }

    /// @notice The standing of a leaf at block `blockNumber`: whether its batch was anchored
    ///         by then, and whether the leaf or its batch was revoked by then (with the block
    ///         and reason of that revocation). Inclusion of the leaf is proven off chain or
    ///         with `verifyLeaf`; an unknown root reads as not issued.
    function statusAt(bytes32 root, bytes32 leafHash, uint256 blockNumber)
        external
        view
        returns (bool issued, bool revoked, uint64 revokedAtBlock, uint16 reason)
    {
        Batch storage batch = _batches[root];
        issued = batch.anchoredAtBlock != 0 && batch.anchoredAtBlock <= blockNumber;
        if (!issued) {
            return (false, false, 0, 0);
        }
        // A leaf can be revoked only while its batch is not, so the leaf's revocation, when
        // there is one, is the earlier of the two.
        LeafRevocation storage leafRevocation = _leafRevocations[root][leafHash];
        if (leafRevocation.atBlock != 0 && leafRevocation.atBlock <= blockNumber) {
            return (true, true, leafRevocation.atBlock, leafRevocation.reason);
        }
        if (batch.revokedAtBlock != 0 && batch.revokedAtBlock <= blockNumber) {
            return (true, true, batch.revokedAtBlock, batch.reason);
        }
    }

    /// @notice Whether the proof shows `leaf` at `leafIndex` under the anchored `root`, with
    ///         the same rules as `revokeLeaf`; reverts UnknownBatch.
    function verifyLeaf(
        bytes32 root,
        bytes32 leaf,
        bytes32[] calldata proof,
        uint256 directionBits,
        uint256 leafIndex
    ) external view returns (bool) {
        Batch storage batch = _batches[root];
        if (batch.anchoredAtBlock == 0) {
            revert UnknownBatch(root);
        }
        return _proves(root, leafHashOf(leaf), proof, directionBits, leafIndex, batch.leafCount);
    }

    /// @notice The Merkle leaf hash SM3(0x00 || leaf).
    function leafHashOf(bytes32 leaf) public view returns (bytes32) {
        return sm3(abi.encodePacked(bytes1(0x00), leaf));
    }

    /// @dev The batch `root`, checked to exist, not be revoked, and be revocable by the caller
    ///      now: its issuer while still an issuer, or a revoker of its department.
    function _revocable(bytes32 root) private view returns (Batch storage batch) {
        batch = _batches[root];
        if (batch.anchoredAtBlock == 0) {
            revert UnknownBatch(root);
        }
        (bytes18 department, uint8 roles) = registry.rolesAt(msg.sender, block.number);
        bool asIssuer = msg.sender == batch.issuer && roles & ROLE_ISSUER != 0;
        bool asRevoker = department == batch.department && roles & ROLE_REVOKER != 0;
        if (!asIssuer && !asRevoker) {
            revert NotAuthorised(msg.sender, root);
        }
        if (batch.revokedAtBlock != 0) {
            revert BatchAlreadyRevoked(root);
        }
    }

    /// @dev Walk the proof from the leaf to the root. The sibling sides are fixed by the
    ///      leaf's position: a node with an odd index has its sibling on the left, an even one
    ///      on the right unless it is the last of an odd level, which is promoted without a
    ///      step. Every bit of `directionBits` must match, and no step may be left over.
    function _proves(
        bytes32 root,
        bytes32 leafHash,
        bytes32[] calldata proof,
        uint256 directionBits,
        uint256 index,
        uint256 count
    ) private view returns (bool) {
        if (index >= count || proof.length > MAX_PROOF_STEPS) {
            return false;
        }
        bytes32 node = leafHash;
        uint256 step = 0;
        while (count > 1) {
            if (index % 2 == 1 || index + 1 < count) {
                bool siblingIsLeft = index % 2 == 1;
                if (step >= proof.length || ((directionBits >> step) & 1 == 1) != siblingIsLeft) {
                    return false;
                }
                node = siblingIsLeft ? _nodeHash(proof[step], node) : _nodeHash(node, proof[step]);
                ++step;
            }
            index /= 2;
            count = (count + 1) / 2;
        }
        return step == proof.length && directionBits >> step == 0 && node == root;
    }

    /// @dev SM3(0x01 || left || right).
    function _nodeHash(bytes32 left, bytes32 right) private view returns (bytes32) {
        return sm3(abi.encodePacked(bytes1(0x01), left, right));
    }
}
