// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Permissions
/// @notice The account permissions of a lianxin chain, a system contract at a fixed address
///         (0x…a001) whose storage is written at genesis. Each account has a bitmask of roles;
///         the node admits a transaction only from an account holding SENDER and not FROZEN,
///         and a contract creation only from one also holding DEPLOYER.
/// @dev    Storage layout (the genesis writer in contracts/permissions.py depends on it):
///         slot 0 `roles` mapping, slot 1 `governanceCount`. A single governance account signs
///         each change for now; multi-signature governance comes with validator governance.
contract Permissions {
    uint256 public constant SENDER = 1;
    uint256 public constant DEPLOYER = 2;
    uint256 public constant GOVERNANCE = 4;
    uint256 public constant ISSUER = 8;
    uint256 public constant AUDITOR = 16;
    /// @notice Set by `freeze`: the account keeps its roles but may not send.
    uint256 public constant FROZEN = 1 << 255;

    /// @notice Roles of each account (a bitmask of the constants above).
    mapping(address => uint256) public roles;

    /// @notice Accounts holding GOVERNANCE and not frozen; never drops to zero.
    uint256 public governanceCount;

    /// @notice Emitted when the roles of `account` change; `roles` is the new bitmask.
    event RolesChanged(address indexed account, uint256 roles, address indexed by);

    /// @notice Emitted when `account` is frozen or unfrozen.
    event Frozen(address indexed account, bool frozen, address indexed by);

    /// @notice The caller does not hold GOVERNANCE, or is frozen.
    error NotGovernance(address caller);

    /// @notice The change would leave no active governance account.
    error LastGovernance();

    /// @notice `roleBits` is zero or includes bits that are not roles (e.g. FROZEN).
    error InvalidRoles(uint256 roleBits);

    /// @notice The zero address cannot hold roles.
    error ZeroAddress();

    uint256 private constant ALL_ROLES = SENDER | DEPLOYER | GOVERNANCE | ISSUER | AUDITOR;

    modifier onlyGovernance() {
        uint256 held = roles[msg.sender];
        if (held & GOVERNANCE == 0 || held & FROZEN != 0) {
            revert NotGovernance(msg.sender);
        }
        _;
    }

    /// @notice Add `roleBits` to the roles of `account`.
    function grant(address account, uint256 roleBits) external onlyGovernance {
        _checkRoleBits(account, roleBits);
        _set(account, roles[account] | roleBits);
    }

    /// @notice Remove `roleBits` from the roles of `account`.
    function revoke(address account, uint256 roleBits) external onlyGovernance {
        _checkRoleBits(account, roleBits);
        _set(account, roles[account] & ~roleBits);
    }

    /// @notice Forbid `account` to send transactions until `unfreeze`.
    function freeze(address account) external onlyGovernance {
        _setFrozen(account, true);
    }

    /// @notice Allow a frozen `account` to send transactions again.
    function unfreeze(address account) external onlyGovernance {
        _setFrozen(account, false);
    }

    function _checkRoleBits(address account, uint256 roleBits) private pure {
        if (account == address(0)) {
            revert ZeroAddress();
        }
        if (roleBits == 0 || roleBits & ~ALL_ROLES != 0) {
            revert InvalidRoles(roleBits);
        }
    }

    function _setFrozen(address account, bool frozen) private {
        if (account == address(0)) {
            revert ZeroAddress();
        }
        uint256 held = roles[account];
        _store(account, frozen ? held | FROZEN : held & ~FROZEN);
        emit Frozen(account, frozen, msg.sender);
    }

    function _set(address account, uint256 updated) private {
        _store(account, updated);
        emit RolesChanged(account, updated, msg.sender);
    }

    /// @dev Write the new bitmask and keep `governanceCount` equal to the number of active
    ///      governance accounts, refusing a change that would bring it to zero.
    function _store(address account, uint256 updated) private {
        bool wasActive = _activeGovernance(roles[account]);
        bool isActive = _activeGovernance(updated);
        if (wasActive && !isActive) {
            if (governanceCount == 1) {
                revert LastGovernance();
            }
            governanceCount -= 1;
        } else if (isActive && !wasActive) {
            governanceCount += 1;
        }
        roles[account] = updated;
    }

    function _activeGovernance(uint256 held) private pure returns (bool) {
        return held & GOVERNANCE != 0 && held & FROZEN == 0;
    }
}
