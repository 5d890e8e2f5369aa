// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title ValidatorGovernance
/// @notice The validator set of a lianxin chain, a system contract at a fixed address
///         (0x…a002) whose storage is written at genesis. A validator's account (the address
///         of its SM2 key) proposes adding a validator, removing one (power 0) or changing its
///         voting power; validators vote; once the voters hold more than 2/3 of the current
///         voting power the change is executed and takes effect ACTIVATION_DELAY blocks later.
///         The node reads the set of each height with `validatorsAt(height)` on the state of
///         the block before it.
///
///         Quorum guard. The vote that would execute a change is refused (`QuorumAtRisk`)
///         when, once every executed change and this one rule, the validators seen signing
///         recently would hold less than a quorum (more than 2/3) of the new total power: the
///         chain would halt at the first height of the new set. The judgement is made on the
///         whole set of pending changes together (executed ones not yet ruling, plus this
///         one), at the vote that executes, with the liveness of that block. Two proposals can
///         never both execute against the same set: executing one makes the other stale.
///
///         Liveness record. Before the transactions of every block, the node writes, for each
///         validator whose precommit is in the block's last-commit certificate (the
///         certificate of the parent, which the header commits to), the parent's height into
///         `lastSignedHeight[validator]`. It is a system write made identically by every node
///         and by `verify-chain` (as EIP-4788 writes the beacon root before a block's
///         transactions), derived only from the block itself, so every node reaches the same
///         state. A validator counts as seen at block `n` when it signed one of the
///         certificates of heights `n - LIVENESS_WINDOW` .. `n - 1`; a genesis member that has
///         not signed yet counts as seen during the chain's first `LIVENESS_WINDOW` blocks,
///         a validator added later only once it signed, and a rotated key also when the key
///         it replaced was seen (same operator, see below).
///
///         Key rotation. A validator replaces its consensus key with `proposeRotation`, sent
///         from its current key's account (the transaction's signature proves possession of
///         the old key) with the new key and an SM2 signature by the new key over
///         `rotationMessage` (proof of possession of the new key: nobody can rotate to a key
///         they do not hold, nor to someone else's). It is one change, voted as any other:
///         once executed, from its effective height the new key holds the old key's power and
///         the old key holds none, at the same height, so the power of the set never dips. In
///         `changes` it is recorded as the old key's removal followed by the new key's entry,
///         both with the same effective height, so `validatorsAt` is unchanged. For the quorum
///         guard the new key counts as seen when the old one is (`rotatedFrom`): the same
///         operator's node holds both keys and switches at the height.
/// @dev    Storage layout (the genesis writer and the liveness writes in contracts/validators.py
///         depend on it): slot 0 `changes` (every executed change in order, the genesis members
///         first, with effective height 0), slot 1 `lastEffectiveHeight`, slot 2 `proposals`,
///         slot 3 `voted`, slot 4 `lastSignedHeight`, slot 5 `rotatedFrom`, slot 6 `rotatedTo`.
///         A proposal is tied to the number of changes when it was made: once another
///         change executes, it is stale and can no longer pass.
contract ValidatorGovernance {
    struct Change {
        address validator;
        uint256 power;
        uint256 effectiveHeight;
        bytes32 keyX;
        bytes32 keyY;
    }

    struct Proposal {
        address validator;
        uint256 power;
        bytes32 keyX;
        bytes32 keyY;
        address proposer;
        uint256 epoch;
        uint256 votedPower;
        uint256 executedAt;
        address replaces;
    }

    /// @notice Blocks between the block that executes a change and the first height it rules.
    uint256 public constant ACTIVATION_DELAY = 2;

    /// @notice How many recent certificates a validator must appear in (at least once) to
    ///         count as online for the quorum guard. A compiled constant, not a genesis
    ///         setting: it is part of the rule deciding which votes are valid, so every node
    ///         must use the same value for the chain's whole life, and no genesis can set it
    ///         to 0 (which would disable the guard). 32 blocks is several seconds of blocks at
    ///         the consensus timeouts: far longer than an online validator stays out of the
    ///         certificates by chance (they carry the first two thirds of precommits to arrive,
    ///         and each proposer's own), short enough that a validator that went down is seen
    ///         as down before a change is voted through.
    uint256 public constant LIVENESS_WINDOW = 32;

    address private constant SM3_PRECOMPILE = address(0x5a03);
    address private constant SM2_VERIFY_PRECOMPILE = address(0x5a02);

    /// @notice Domain tag of the message a new key signs to prove its possession.
    bytes32 public constant ROTATION_DOMAIN = "lianxin validator key rotation";

    /// @notice Every executed change, the genesis members first.
    Change[] public changes;

    /// @notice The height at which the latest executed change takes effect.
    uint256 public lastEffectiveHeight;

    /// @notice Every proposal, by id.
    Proposal[] public proposals;

    /// @notice Whether a validator account voted for a proposal.
    mapping(uint256 => mapping(address => bool)) public voted;

    /// @notice The latest height whose commit certificate carries the validator's precommit
    ///         (0: none yet). Written by the node before each block's transactions, never by
    ///         a transaction.
    mapping(address => uint256) public lastSignedHeight;

    /// @notice For a key that replaced another by an executed rotation, the key it replaced
    ///         (0: none).
    mapping(address => address) public rotatedFrom;

    /// @notice For a key that an executed rotation retired, the key that replaced it (0: none).
    ///         A retired key never holds power again.
    mapping(address => address) public rotatedTo;

    event Proposed(uint256 indexed id, address indexed validator, uint256 power, address indexed by);
    event Voted(uint256 indexed id, address indexed by, uint256 votedPower, uint256 totalPower);
    event Executed(
        uint256 indexed id, address indexed validator, uint256 power, uint256 effectiveHeight
    );
    event RotationProposed(uint256 indexed id, address indexed oldKey, address indexed newKey);
    event Rotated(
        uint256 indexed id, address indexed oldKey, address indexed newKey, uint256 effectiveHeight
    );

    /// @notice The caller is not a member of the current validator set.
    error NotValidator(address caller);
    /// @notice No proposal has this id.
    error UnknownProposal(uint256 id);
    /// @notice This validator already voted for the proposal.
    error AlreadyVoted(uint256 id, address voter);
    /// @notice The proposal was executed already.
    error AlreadyExecuted(uint256 id);
    /// @notice Another change executed after the proposal was made.
    error StaleProposal(uint256 id);
    /// @notice The change would leave the validator set empty.
    error EmptySet();
    /// @notice The validator already has this power (or is not a member and power is 0).
    error NoChange(address validator, uint256 power);
    /// @notice The SM3 precompile did not answer.
    error HashFailed();
    /// @notice Executing the change would leave the validators seen signing recently with
    ///         `seenPower`, below the `quorumPower` of the new set: the chain would halt.
    error QuorumAtRisk(uint256 seenPower, uint256 quorumPower);
    /// @notice The new key of a rotation is, or was, a validator key, or is the caller's own;
    ///         or a proposal gives power to a key that a rotation retired.
    error KeyInUse(address key);
    /// @notice The new key's signature over the rotation's terms does not verify.
    error BadPossessionProof(address key);
    /// @notice The caller leaves the set once the executed changes rule: nothing to rotate.
    error NotRotatable(address caller);

    /// @notice The validators ruling `height`: their keys (x, y of the uncompressed SM2 key),
    ///         addresses and powers, and the height from which this set rules.
    function validatorsAt(uint256 height)
        public
        view
        returns (
            bytes32[] memory keyXs,
            bytes32[] memory keyYs,
            address[] memory addresses,
            uint256[] memory powers,
            uint256 since
        )
    {
        uint256 total = changes.length;
        keyXs = new bytes32[](total);
        keyYs = new bytes32[](total);
        addresses = new address[](total);
        powers = new uint256[](total);
        uint256 size = 0;
        for (uint256 i = 0; i < total; i++) {
            Change storage change = changes[i];
            if (change.effectiveHeight > height) {
                break;
            }
            since = change.effectiveHeight;
            uint256 at = size;
            for (uint256 j = 0; j < size; j++) {
                if (addresses[j] == change.validator) {
                    at = j;
                    break;
                }
            }
            if (change.power == 0) {
                if (at < size) {
                    size -= 1;
                    keyXs[at] = keyXs[size];
                    keyYs[at] = keyYs[size];
                    addresses[at] = addresses[size];
                    powers[at] = powers[size];
                }
                continue;
            }
            keyXs[at] = change.keyX;
            keyYs[at] = change.keyY;
            addresses[at] = change.validator;
            powers[at] = change.power;
            if (at == size) {
                size += 1;
            }
        }
        assembly {
            mstore(keyXs, size)
            mstore(keyYs, size)
            mstore(addresses, size)
            mstore(powers, size)
        }
    }

    /// @notice The voting power of `validator` and the total power at `height`.
    function powerAt(address validator, uint256 height)
        public
        view
        returns (uint256 power, uint256 totalPower)
    {
        (,, address[] memory addresses, uint256[] memory powers,) = validatorsAt(height);
        for (uint256 i = 0; i < addresses.length; i++) {
            totalPower += powers[i];
            if (addresses[i] == validator) {
                power = powers[i];
            }
        }
    }

    /// @notice The quorum guard's figures for setting `validator` to `power` at block `height`,
    ///         on top of every executed change: the power of the new set held by validators
    ///         seen signing recently, the new total power, and the new quorum. The vote that
    ///         executes a change is refused when `seenPower < quorumPower` at its block.
    function quorumCheck(address validator, uint256 power, uint256 height)
        public
        view
        returns (uint256 seenPower, uint256 totalPower, uint256 quorumPower)
    {
        (,, address[] memory addresses, uint256[] memory powers,) = validatorsAt(type(uint256).max);
        bool found = false;
        for (uint256 i = 0; i < addresses.length; i++) {
            uint256 held = powers[i];
            if (addresses[i] == validator) {
                held = power;
                found = true;
            }
            totalPower += held;
            if (_seen(addresses[i], height)) {
                seenPower += held;
            }
        }
        if (!found) {
            totalPower += power;
            if (_seen(validator, height)) {
                seenPower += power;
            }
        }
        quorumPower = totalPower * 2 / 3 + 1;
    }

    /// @notice Number of proposals made so far (the next proposal's id).
    function proposalCount() external view returns (uint256) {
        return proposals.length;
    }

    /// @notice Number of executed changes, the genesis members included.
    function changeCount() external view returns (uint256) {
        return changes.length;
    }

    /// @notice Propose that the validator with SM2 key (keyX, keyY) hold `power` (0 removes
    ///         it); the proposer's vote is counted at once. Returns the proposal id.
    function propose(bytes32 keyX, bytes32 keyY, uint256 power) external returns (uint256 id) {
        _requireValidator();
        address validator = _addressOf(keyX, keyY);
        if (power != 0 && rotatedTo[validator] != address(0)) {
            revert KeyInUse(validator);
        }
        (uint256 futurePower, uint256 futureTotal) = powerAt(validator, type(uint256).max);
        if (futurePower == power) {
            revert NoChange(validator, power);
        }
        if (futureTotal - futurePower + power == 0) {
            revert EmptySet();
        }
        id = proposals.length;
        proposals.push(
            Proposal({
                validator: validator,
                power: power,
                keyX: keyX,
                keyY: keyY,
                proposer: msg.sender,
                epoch: changes.length,
                votedPower: 0,
                executedAt: 0,
                replaces: address(0)
            })
        );
        emit Proposed(id, validator, power, msg.sender);
        _vote(id);
    }

    /// @notice The message the new key signs (SM2, default signer ID) to prove that the
    ///         validator `oldKey` holds it: the domain tag, the chain id, this contract's
    ///         address, the old key's address and the new key, so a proof is good for this one
    ///         rotation only.
    function rotationMessage(address oldKey, bytes32 newKeyX, bytes32 newKeyY)
        public
        view
        returns (bytes memory)
    {
        return abi.encodePacked(
            ROTATION_DOMAIN, block.chainid, address(this), oldKey, newKeyX, newKeyY
        );
    }

    /// @notice Propose that the caller's consensus key be replaced by (newKeyX, newKeyY) with
    ///         the same power, from the height the change takes effect. `possession` is the
    ///         new key's DER signature over `rotationMessage(msg.sender, newKeyX, newKeyY)`.
    ///         The proposer's vote is counted at once. Returns the proposal id.
    function proposeRotation(bytes32 newKeyX, bytes32 newKeyY, bytes calldata possession)
        external
        returns (uint256 id)
    {
        _requireValidator();
        address newKey = _addressOf(newKeyX, newKeyY);
        (uint256 futurePower,) = powerAt(msg.sender, type(uint256).max);
        if (futurePower == 0) {
            revert NotRotatable(msg.sender);
        }
        if (_everValidator(newKey)) {
            revert KeyInUse(newKey);
        }
        bytes memory publicKey = abi.encodePacked(bytes1(0x04), newKeyX, newKeyY);
        (bool ok, bytes memory out) = SM2_VERIFY_PRECOMPILE.staticcall(
            abi.encode(publicKey, rotationMessage(msg.sender, newKeyX, newKeyY), possession, "")
        );
        if (!ok || out.length != 32 || abi.decode(out, (uint256)) != 1) {
            revert BadPossessionProof(newKey);
        }
        id = proposals.length;
        proposals.push(
            Proposal({
                validator: newKey,
                power: futurePower,
                keyX: newKeyX,
                keyY: newKeyY,
                proposer: msg.sender,
                epoch: changes.length,
                votedPower: 0,
                executedAt: 0,
                replaces: msg.sender
            })
        );
        emit Proposed(id, newKey, futurePower, msg.sender);
        emit RotationProposed(id, msg.sender, newKey);
        _vote(id);
    }

    /// @notice The quorum guard's figures for rotating `oldKey` at block `height`, on top of
    ///         every executed change: the set keeps its members and powers (the new key holds
    ///         the old key's power and counts as seen when the old key is), so these are the
    ///         figures of the set once every executed change rules.
    function rotationCheck(address oldKey, uint256 height)
        public
        view
        returns (uint256 seenPower, uint256 totalPower, uint256 quorumPower)
    {
        (uint256 power,) = powerAt(oldKey, type(uint256).max);
        return quorumCheck(oldKey, power, height);
    }

    /// @notice Vote for proposal `id`; executes it once the voters hold more than 2/3 of the
    ///         current voting power.
    function vote(uint256 id) external {
        _requireValidator();
        if (id >= proposals.length) {
            revert UnknownProposal(id);
        }
        _vote(id);
    }

    function _vote(uint256 id) private {
        Proposal storage proposal = proposals[id];
        if (proposal.executedAt != 0) {
            revert AlreadyExecuted(id);
        }
        if (proposal.epoch != changes.length) {
            revert StaleProposal(id);
        }
        if (voted[id][msg.sender]) {
            revert AlreadyVoted(id, msg.sender);
        }
        voted[id][msg.sender] = true;
        (uint256 power, uint256 totalPower) = powerAt(msg.sender, block.number);
        proposal.votedPower += power;
        emit Voted(id, msg.sender, proposal.votedPower, totalPower);
        if (proposal.votedPower * 3 > totalPower * 2) {
            address replaces = proposal.replaces;
            (uint256 seenPower,, uint256 quorumPower) = replaces == address(0)
                ? quorumCheck(proposal.validator, proposal.power, block.number)
                : rotationCheck(replaces, block.number);
            if (seenPower < quorumPower) {
                revert QuorumAtRisk(seenPower, quorumPower);
            }
            uint256 effective = block.number + ACTIVATION_DELAY;
            proposal.executedAt = block.number;
            if (replaces != address(0)) {
                (bytes32 oldX, bytes32 oldY) = _keyOf(replaces);
                changes.push(
                    Change({
                        validator: replaces,
                        power: 0,
                        effectiveHeight: effective,
                        keyX: oldX,
                        keyY: oldY
                    })
                );
                rotatedFrom[proposal.validator] = replaces;
                rotatedTo[replaces] = proposal.validator;
                emit Rotated(id, replaces, proposal.validator, effective);
            }
            changes.push(
                Change({
                    validator: proposal.validator,
                    power: proposal.power,
                    effectiveHeight: effective,
                    keyX: proposal.keyX,
                    keyY: proposal.keyY
                })
            );
            lastEffectiveHeight = effective;
            emit Executed(id, proposal.validator, proposal.power, effective);
        }
    }

    function _requireValidator() private view {
        (uint256 power,) = powerAt(msg.sender, block.number);
        if (power == 0) {
            revert NotValidator(msg.sender);
        }
    }

    /// @dev Whether `validator` counts as online at block `height`: it signed one of the last
    ///      LIVENESS_WINDOW certificates, or it is a genesis member that has not signed yet
    ///      and the chain is still in its first LIVENESS_WINDOW blocks.
    function _seen(address validator, uint256 height) private view returns (bool) {
        // A rotated key counts as seen when a key it replaced is (same operator); the chain of
        // rotations is bounded by how many changes executed.
        for (
            address before = rotatedFrom[validator];
            before != address(0);
            before = rotatedFrom[before]
        ) {
            if (_seenKey(before, height)) {
                return true;
            }
        }
        return _seenKey(validator, height);
    }

    /// @dev Whether the key `validator` itself counts as online at block `height`.
    function _seenKey(address validator, uint256 height) private view returns (bool) {
        uint256 last = lastSignedHeight[validator];
        if (last + LIVENESS_WINDOW < height) {
            return false;
        }
        if (last != 0) {
            return true;
        }
        for (uint256 i = 0; i < changes.length && changes[i].effectiveHeight == 0; i++) {
            if (changes[i].validator == validator) {
                return true;
            }
        }
        return false;
    }

    /// @dev The key of the member `validator` of the set once every executed change rules.
    function _keyOf(address validator) private view returns (bytes32 keyX, bytes32 keyY) {
        (bytes32[] memory xs, bytes32[] memory ys, address[] memory addresses,,) =
            validatorsAt(type(uint256).max);
        for (uint256 i = 0; i < addresses.length; i++) {
            if (addresses[i] == validator) {
                return (xs[i], ys[i]);
            }
        }
        revert NotRotatable(validator);
    }

    /// @dev Whether `key` is, was, or is to be a validator key (the caller's own included):
    ///      a rotation must bring a fresh key, so no two operators share one and a retired
    ///      key never comes back.
    function _everValidator(address key) private view returns (bool) {
        for (uint256 i = 0; i < changes.length; i++) {
            if (changes[i].validator == key) {
                return true;
            }
        }
        return false;
    }

    /// @dev A lianxin address: the last 20 bytes of SM3 over the key without its 0x04 prefix.
    function _addressOf(bytes32 keyX, bytes32 keyY) private view returns (address) {
        (bool ok, bytes memory digest) = SM3_PRECOMPILE.staticcall(abi.encodePacked(keyX, keyY));
        if (!ok || digest.length != 32) {
            revert HashFailed();
        }
        return address(uint160(uint256(bytes32(digest))));
    }
}
