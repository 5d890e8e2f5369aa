// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Anchor
/// @notice Records 32-byte roots (e.g. SM3 Merkle roots of notarization batches) on chain.
contract Anchor {
    /// @notice Number of times each root has been anchored.
    mapping(bytes32 => uint256) public anchorCount;

    /// @notice Total number of anchor calls.
    uint256 public total;

    /// @notice Emitted once per anchor call.
    /// @param root The anchored root.
    /// @param by The account that anchored it.
    /// @param count How many times `root` has been anchored, this call included.
    event Anchored(bytes32 indexed root, address indexed by, uint256 count);

    /// @notice Anchor `root`; anchoring the same root again increments its count.
    function anchor(bytes32 root) external {
        uint256 count = anchorCount[root] + 1;
        anchorCount[root] = count;
        total += 1;
        emit Anchored(root, msg.sender, count);
    }
}
