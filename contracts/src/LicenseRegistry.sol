// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IssuerRegistry, ROLE_ISSUER, ROLE_REVOKER} from "./IssuerRegistry.sol";

/// @title LicenseRegistry
/// @notice The status of e-licenses (电子证照, GB/T 36901-36905), each keyed by the SM3 hash of
///         its GB/T 36904 identifier (computed off chain), with the full history of its
///         states. The holder appears only as a salted SM3 commitment.
/// @dev    Lifecycle: issue → ISSUED; ISSUED ⇄ SUSPENDED (suspend / resume); ISSUED → CHANGED
///         when a new version replaces it (`change`, linked both ways); ISSUED or SUSPENDED →
///         REVOKED; ISSUED or SUSPENDED → EXPIRED (`expire`). REVOKED, CHANGED and EXPIRED are
///         final. A license whose `validUntil` time has passed reads as EXPIRED in `statusOf`
///         and accepts no change but `expire`, which records what the clock implies. Only
///         accounts of the issuing department act on a license, checked in IssuerRegistry at
///         the current block: its issuers for everything, its revokers to suspend or revoke.
contract LicenseRegistry {
    /// @notice States of a license; NONE for an unknown identifier.
    enum Status {
        NONE,
        ISSUED,
        CHANGED,
        SUSPENDED,
        REVOKED,
        EXPIRED
    }

    /// @notice One license.
    struct License {
        /// @notice The issuing department (USCC).
        bytes18 department;
        /// @notice The state last recorded (see `statusOf` for the one in force now).
        Status status;
        /// @notice Time (seconds since the epoch) from which it is expired; 0 for no limit.
        ///         (The block of issuance is that of the first history entry.)
        uint64 validUntil;
        /// @notice Salted SM3 commitment to the holder's identifier.
        bytes32 holderCommitment;
        /// @notice Hash of the license's GB/T 36903 metadata.
        bytes32 metadataHash;
        /// @notice The version this one replaced (zero if none).
        bytes32 predecessor;
        /// @notice The version that replaced this one (zero if none).
        bytes32 successor;
    }

    /// @notice One entry of a license's history.
    struct Entry {
        /// @notice The state entered.
        Status status;
        /// @notice Reason code (contracts/trust.py `Reason`).
        uint16 reason;
        /// @notice Block of the change.
        uint64 blockNumber;
        /// @notice The account that made the change.
        address by;
    }

    /// @notice The registry that says who may act for which department.
    IssuerRegistry public immutable registry;

    mapping(bytes32 => License) private _licenses;
    mapping(bytes32 => Entry[]) private _history;

    /// @notice The license `id` was issued by `by` for `department`.
    event LicenseIssued(
        bytes32 indexed id,
        bytes18 indexed department,
        address indexed by,
        bytes32 holderCommitment,
        bytes32 metadataHash,
        uint64 validUntil
    );
    /// @notice The license `id` entered `status` (every change, issuance included).
    event StatusChanged(bytes32 indexed id, Status status, uint16 reason, address indexed by);
    /// @notice The license `oldId` was replaced by the new version `newId`.
    event LicenseChanged(bytes32 indexed oldId, bytes32 indexed newId, address indexed by);

    /// @notice The identifier is zero or already used.
    error LicenseExists(bytes32 id);
    /// @notice No license has this identifier.
    error UnknownLicense(bytes32 id);
    /// @notice `validUntil` is not after the current block time.
    error InvalidValidity(uint64 validUntil);
    /// @notice The caller holds, now, none of the roles `roles` (bitmask) needed.
    error NotAuthorised(address caller, uint8 roles);
    /// @notice The caller belongs to another department than the license's.
    error WrongDepartment(address caller, bytes18 department);
    /// @notice The license cannot go from `from` to `to`.
    error InvalidTransition(bytes32 id, Status from, Status to);
    /// @notice No history entry `index` for the license.
    error HistoryIndexOutOfRange(bytes32 id, uint256 index);

    /// @param issuerRegistry The registry consulted for every write.
    constructor(IssuerRegistry issuerRegistry) {
        registry = issuerRegistry;
    }

    /// @notice Issue the license `id` for the caller's department. The caller must be an
    ///         issuer now.
    /// @param validUntil Seconds since the epoch from which it is expired; 0 for no limit.
    function issue(bytes32 id, bytes32 holderCommitment, bytes32 metadataHash, uint64 validUntil)
        external
    {
        bytes18 department = _caller(ROLE_ISSUER);
        _create(id, department, holderCommitment, metadataHash, validUntil, bytes32(0));
    }

    /// @notice Replace the ISSUED license `oldId` by a new version `newId` of the same
    ///         department: `oldId` becomes CHANGED with successor `newId`, `newId` is ISSUED
    ///         with predecessor `oldId`.
    function change(
        bytes32 oldId,
        bytes32 newId,
        bytes32 holderCommitment,
        bytes32 metadataHash,
        uint64 validUntil,
        uint16 reason
    ) external {
        License storage old = _authorised(oldId, ROLE_ISSUER);
        _transition(oldId, old, Status.ISSUED, Status.ISSUED, Status.CHANGED, reason);
        old.successor = newId;
        _create(newId, old.department, holderCommitment, metadataHash, validUntil, oldId);
        emit LicenseChanged(oldId, newId, msg.sender);
    }

    /// @notice Suspend the ISSUED license `id` (an issuer or revoker of its department).
    function suspend(bytes32 id, uint16 reason) external {
        License storage license = _authorised(id, ROLE_ISSUER | ROLE_REVOKER);
        _transition(id, license, Status.ISSUED, Status.ISSUED, Status.SUSPENDED, reason);
    }

    /// @notice Put the SUSPENDED license `id` back in force (an issuer of its department).
    function resume(bytes32 id, uint16 reason) external {
        License storage license = _authorised(id, ROLE_ISSUER);
        _transition(id, license, Status.SUSPENDED, Status.SUSPENDED, Status.ISSUED, reason);
    }

    /// @notice Revoke the ISSUED or SUSPENDED license `id` (an issuer or revoker of its
    ///         department).
    function revoke(bytes32 id, uint16 reason) external {
        License storage license = _authorised(id, ROLE_ISSUER | ROLE_REVOKER);
        _transition(id, license, Status.ISSUED, Status.SUSPENDED, Status.REVOKED, reason);
    }

    /// @notice Record that the ISSUED or SUSPENDED license `id` is expired, before its
    ///         `validUntil` or after it (an issuer of its department).
    function expire(bytes32 id, uint16 reason) external {
        License storage license = _authorised(id, ROLE_ISSUER);
        Status recorded = license.status;
        if (recorded != Status.ISSUED && recorded != Status.SUSPENDED) {
            revert InvalidTransition(id, recorded, Status.EXPIRED);
        }
        _record(id, license, Status.EXPIRED, reason);
    }

    /// @notice The status in force now: the recorded one, except that an ISSUED or
    ///         SUSPENDED license past its `validUntil` is EXPIRED. NONE for an unknown id.
    function statusOf(bytes32 id) public view returns (Status) {
        License storage license = _licenses[id];
        Status recorded = license.status;
        bool current = recorded == Status.ISSUED || recorded == Status.SUSPENDED;
        if (current && license.validUntil != 0 && block.timestamp >= license.validUntil) {
            return Status.EXPIRED;
        }
        return recorded;
    }

    /// @notice The license `id`; reverts UnknownLicense.
    function licenseOf(bytes32 id) external view returns (License memory) {
        return _existing(id);
    }

    /// @notice Whether `commitment` is the holder commitment of license `id`.
    function holderMatches(bytes32 id, bytes32 commitment) external view returns (bool) {
        return _existing(id).holderCommitment == commitment;
    }

    /// @notice Number of history entries of license `id` (0 for an unknown id).
    function historyLength(bytes32 id) external view returns (uint256) {
        return _history[id].length;
    }

    /// @notice History entry `index` of license `id`, oldest first.
    function historyAt(bytes32 id, uint256 index) external view returns (Entry memory) {
        Entry[] storage entries = _history[id];
        if (index >= entries.length) {
            revert HistoryIndexOutOfRange(id, index);
        }
        return entries[index];
    }

    /// @dev The caller's department, checked to hold one of `roles` now.
    function _caller(uint8 roles) private view returns (bytes18 department) {
        uint8 held;
        (department, held) = registry.rolesAt(msg.sender, block.number);
        if (held & roles == 0) {
            revert NotAuthorised(msg.sender, roles);
        }
    }

    /// @dev The license `id`, checked to exist and to belong to the caller's department,
    ///      the caller holding one of `roles` now.
    function _authorised(bytes32 id, uint8 roles) private view returns (License storage license) {
        license = _existing(id);
        bytes18 department = _caller(roles);
        if (department != license.department) {
            revert WrongDepartment(msg.sender, license.department);
        }
    }

    function _existing(bytes32 id) private view returns (License storage license) {
        license = _licenses[id];
        if (license.status == Status.NONE) {
            revert UnknownLicense(id);
        }
    }

    function _create(
        bytes32 id,
        bytes18 department,
        bytes32 holderCommitment,
        bytes32 metadataHash,
        uint64 validUntil,
        bytes32 predecessor
    ) private {
        if (id == bytes32(0) || _licenses[id].status != Status.NONE) {
            revert LicenseExists(id);
        }
        if (validUntil != 0 && validUntil <= block.timestamp) {
            revert InvalidValidity(validUntil);
        }
        License storage license = _licenses[id];
        license.department = department;
        license.validUntil = validUntil;
        license.holderCommitment = holderCommitment;
        license.metadataHash = metadataHash;
        license.predecessor = predecessor;
        emit LicenseIssued(id, department, msg.sender, holderCommitment, metadataHash, validUntil);
        _record(id, license, Status.ISSUED, 0);
    }

    /// @dev Move `license` to `to` if its status in force is `fromA` or `fromB`.
    function _transition(
        bytes32 id,
        License storage license,
        Status fromA,
        Status fromB,
        Status to,
        uint16 reason
    ) private {
        Status current = statusOf(id);
        if (current != fromA && current != fromB) {
            revert InvalidTransition(id, current, to);
        }
        _record(id, license, to, reason);
    }

    function _record(bytes32 id, License storage license, Status status, uint16 reason) private {
        license.status = status;
        _history[id].push(Entry(status, reason, uint64(block.number), msg.sender));
        emit StatusChanged(id, status, reason, msg.sender);
    }
}
