// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

// Role bits of a key (IssuerRegistry.ISSUER etc. expose them in the ABI).
// ISSUER: may anchor batches and issue licenses for its department.
uint8 constant ROLE_ISSUER = 1;
// REVOKER: may revoke (and suspend) what its department issued.
uint8 constant ROLE_REVOKER = 2;
// AUDITOR: marks read access for auditors; grants no write power.
uint8 constant ROLE_AUDITOR = 4;
// Every defined role bit.
uint8 constant ALL_ROLES = ROLE_ISSUER | ROLE_REVOKER | ROLE_AUDITOR;

/// @notice The SM3 precompile did not answer with a 32-byte digest (not a lianxin chain?).
error Sm3Unavailable();

/// @notice SM3 digest of `data`, computed by lianxin's precompile at 0x…5a03.
/// @dev Writes only the scratch space (0x00-0x1f), so it is memory-safe. The return size is
///      checked because a call to an address without code also "succeeds".
function sm3(bytes memory data) view returns (bytes32 digest) {
    bool ok;
    assembly ("memory-safe") {
        ok := staticcall(gas(), 0x5a03, add(data, 32), mload(data), 0x00, 0x20)
        ok := and(ok, eq(returndatasize(), 32))
        digest := mload(0x00)
    }
    if (!ok) {
        revert Sm3Unavailable();
    }
}

/// @title IssuerRegistry
/// @notice The departments that may issue on the chain, each registered by its unified social
///         credit code (USCC, GB 32100, 18 characters with a check character) with its SM2 keys.
///         Every key is an account: its address is the last 20 bytes of SM3 of the public key
///         without the 0x04 prefix, as for every lianxin account, so a transaction signed with
///         the key comes from that account. A key has roles (ISSUER, REVOKER, AUDITOR) and a
///         validity window [validFromBlock, validUntilBlock) of block heights.
/// @dev    Rotation adds a new key and closes the old key's window. A window never starts
///         before, and is never closed before, the block that sets it, so what a key did
///         while it was valid stays valid: `keyValidAt` answers the same for past blocks
///         forever. Freezing a department and a key's roles are present-tense: they apply to
///         every block asked about, until changed.
contract IssuerRegistry {
    /// @notice `validUntilBlock` of a key whose window has no end.
    uint64 public constant OPEN_ENDED = type(uint64).max;
    /// @notice Role bit: may anchor batches and issue licenses for its department.
    uint8 public constant ISSUER = ROLE_ISSUER;
    /// @notice Role bit: may revoke (and suspend) what its department issued.
    uint8 public constant REVOKER = ROLE_REVOKER;
    /// @notice Role bit: marks read access for auditors; grants no write power.
    uint8 public constant AUDITOR = ROLE_AUDITOR;

    /// @notice One SM2 key of a department.
    struct Key {
        /// @notice Uncompressed SM2 public key, 65 bytes: 0x04 || x || y.
        bytes publicKey;
        /// @notice The account of the key: last 20 bytes of SM3(x || y).
        address account;
        /// @notice Bitmask of ROLE_ISSUER, ROLE_REVOKER, ROLE_AUDITOR.
        uint8 roles;
        /// @notice First block at which the key is valid.
        uint64 validFromBlock;
        /// @notice First block at which the key is no longer valid (OPEN_ENDED: none).
        uint64 validUntilBlock;
    }

    /// @notice A registered department.
    struct Department {
        /// @notice Display name, e.g. "某区市场监督管理局".
        string name;
        /// @notice True while the department may not act (all its keys are inactive).
        bool frozen;
        /// @notice True once registered; departments are never removed.
        bool registered;
    }

    /// @dev Where an account's key is: department and index in its key list.
    struct KeyRef {
        bytes18 uscc;
        uint64 keyId;
    }

    /// @notice The account allowed to register departments and manage their keys.
    address public governance;

    mapping(bytes18 => Department) private _departments;
    mapping(bytes18 => Key[]) private _keys;
    mapping(address => KeyRef) private _keyOfAccount;

    /// @notice Governance passed from `previous` to `next`.
    event GovernanceTransferred(address indexed previous, address indexed next);
    /// @notice A department was registered.
    event DepartmentRegistered(bytes18 indexed uscc, string name);
    /// @notice A department was frozen (`frozen` true) or unfrozen.
    event DepartmentFrozen(bytes18 indexed uscc, bool frozen);
    /// @notice A key was added to a department; the window is the effective one.
    event KeyAdded(
        bytes18 indexed uscc,
        uint256 indexed keyId,
        address indexed account,
        bytes publicKey,
        uint8 roles,
        uint64 validFromBlock,
        uint64 validUntilBlock
    );
    /// @notice A key's window was closed: it is not valid from `validUntilBlock` on.
    event KeyClosed(bytes18 indexed uscc, uint256 indexed keyId, uint64 validUntilBlock);
    /// @notice A key's roles were replaced by `roles`.
    event KeyRolesChanged(bytes18 indexed uscc, uint256 indexed keyId, uint8 roles);

    /// @notice The caller is not the governance account.
    error NotGovernance(address caller);
    /// @notice The zero address was given where an account is needed.
    error ZeroAddress();
    /// @notice `uscc` is not a well-formed USCC (alphabet or check character).
    error InvalidUscc(bytes18 uscc);
    /// @notice The department `uscc` is already registered.
    error DepartmentExists(bytes18 uscc);
    /// @notice No department is registered under `uscc`.
    error UnknownDepartment(bytes18 uscc);
    /// @notice The department is already in the requested frozen state.
    error FrozenUnchanged(bytes18 uscc, bool frozen);
    /// @notice The public key is not 65 bytes starting with 0x04.
    error InvalidPublicKey();
    /// @notice The key's account is already registered (a key belongs to one department).
    error AccountTaken(address account);
    /// @notice `roles` is zero or has bits that are not roles.
    error InvalidRoles(uint8 roles);
    /// @notice The window is empty, starts in the past, or would be closed retroactively.
    error InvalidWindow(uint64 validFromBlock, uint64 validUntilBlock);
    /// @notice The department has no key `keyId`.
    error UnknownKey(bytes18 uscc, uint256 keyId);

    modifier onlyGovernance() {
        if (msg.sender != governance) {
            revert NotGovernance(msg.sender);
        }
        _;
    }

    modifier registered(bytes18 uscc) {
        if (!_departments[uscc].registered) {
            revert UnknownDepartment(uscc);
        }
        _;
    }

    /// @param initialGovernance The consortium's governance account.
    constructor(address initialGovernance) {
        if (initialGovernance == address(0)) {
            revert ZeroAddress();
        }
        governance = initialGovernance;
        emit GovernanceTransferred(address(0), initialGovernance);
    }

    /// @notice Hand governance to `next`; effective immediately.
    function transferGovernance(address next) external onlyGovernance {
        if (next == address(0)) {
            revert ZeroAddress();
        }
        emit GovernanceTransferred(governance, next);
        governance = next;
    }

    /// @notice Register the department `uscc` (18 ASCII characters with a valid check
    ///         character) under `name`. It has no keys yet.
    function registerDepartment(bytes18 uscc, string calldata name) external onlyGovernance {
        if (!usccValid(uscc)) {
            revert InvalidUscc(uscc);
        }
        Department storage department = _departments[uscc];
        if (department.registered) {
            revert DepartmentExists(uscc);
        }
        department.name = name;
        department.registered = true;
        emit DepartmentRegistered(uscc, name);
    }

    /// @notice Freeze (`frozen` true) or unfreeze the department: while frozen none of its
    ///         keys has any role.
    function setFrozen(bytes18 uscc, bool frozen) external onlyGovernance registered(uscc) {
        Department storage department = _departments[uscc];
        if (department.frozen == frozen) {
            revert FrozenUnchanged(uscc, frozen);
        }
        department.frozen = frozen;
        emit DepartmentFrozen(uscc, frozen);
    }

    /// @notice Add an SM2 key with `roles` to the department, valid over
    ///         [max(validFromBlock, current block), validUntilBlock).
    /// @return keyId The key's index in `keysOf(uscc)`.
    function addKey(
        bytes18 uscc,
        bytes calldata publicKey,
        uint8 roles,
        uint64 validFromBlock,
        uint64 validUntilBlock
    ) public onlyGovernance registered(uscc) returns (uint256 keyId) {
        if (publicKey.length != 65 || publicKey[0] != 0x04) {
            revert InvalidPublicKey();
        }
        _checkRoles(roles);
        // A window may not start in the past: a new key cannot vouch for earlier blocks.
        uint64 from = validFromBlock < block.number ? uint64(block.number) : validFromBlock;
        if (validUntilBlock <= from) {
            revert InvalidWindow(from, validUntilBlock);
        }
        address account = accountOf(publicKey);
        if (_keyOfAccount[account].uscc != bytes18(0)) {
            revert AccountTaken(account);
        }
        Key[] storage keys = _keys[uscc];
        keyId = keys.length;
        keys.push(Key(publicKey, account, roles, from, validUntilBlock));
        _keyOfAccount[account] = KeyRef(uscc, uint64(keyId));
        emit KeyAdded(uscc, keyId, account, publicKey, roles, from, validUntilBlock);
    }

    /// @notice Close the key's window at `validUntilBlock`, which may not be before the current
    ///         block (closing never reaches back) nor extend the window.
    function closeKey(bytes18 uscc, uint256 keyId, uint64 validUntilBlock)
        public
        onlyGovernance
    {
        Key storage key = _key(uscc, keyId);
        if (validUntilBlock < block.number || validUntilBlock >= key.validUntilBlock) {
            revert InvalidWindow(key.validFromBlock, validUntilBlock);
        }
        key.validUntilBlock = validUntilBlock;
        emit KeyClosed(uscc, keyId, validUntilBlock);
    }

    /// @notice Rotate: add `newPublicKey` with the roles of key `oldKeyId`, valid from the
    ///         current block on, and close the old key's window at the current block.
    /// @return keyId The new key's index.
    function rotateKey(bytes18 uscc, uint256 oldKeyId, bytes calldata newPublicKey)
        external
        onlyGovernance
        returns (uint256 keyId)
    {
        Key storage old = _key(uscc, oldKeyId);
        keyId = addKey(uscc, newPublicKey, old.roles, uint64(block.number), OPEN_ENDED);
        closeKey(uscc, oldKeyId, uint64(block.number));
    }

    /// @notice Replace the roles of a key.
    function setKeyRoles(bytes18 uscc, uint256 keyId, uint8 roles) external onlyGovernance {
        _checkRoles(roles);
        _key(uscc, keyId).roles = roles;
        emit KeyRolesChanged(uscc, keyId, roles);
    }

    /// @notice Name and frozen state of a department; reverts UnknownDepartment.
    function departmentInfo(bytes18 uscc)
        external
        view
        registered(uscc)
        returns (string memory name, bool frozen, uint256 keyCount)
    {
        Department storage department = _departments[uscc];
        return (department.name, department.frozen, _keys[uscc].length);
    }

    /// @notice Every key the department ever held, in the order added (index = keyId).
    function keysOf(bytes18 uscc) external view registered(uscc) returns (Key[] memory) {
        return _keys[uscc];
    }

    /// @notice Whether the key's window contains `blockNumber` (regardless of freezing).
    function keyValidAt(bytes18 uscc, uint256 keyId, uint256 blockNumber)
        public
        view
        returns (bool)
    {
        Key storage key = _key(uscc, keyId);
        return key.validFromBlock <= blockNumber && blockNumber < key.validUntilBlock;
    }

    /// @notice The department and key of `account`, or a zero USCC if it is no key's account.
    function departmentOf(address account) external view returns (bytes18 uscc, uint256 keyId) {
        KeyRef storage ref = _keyOfAccount[account];
        return (ref.uscc, ref.keyId);
    }

    /// @notice The roles `account` holds at `blockNumber` and its department: the key's roles
    ///         if its window contains `blockNumber` and the department is not frozen, else 0.
    ///         The USCC is zero if the account is no key's account.
    function rolesAt(address account, uint256 blockNumber)
        public
        view
        returns (bytes18 uscc, uint8 roles)
    {
        KeyRef storage ref = _keyOfAccount[account];
        uscc = ref.uscc;
        if (uscc == bytes18(0) || _departments[uscc].frozen) {
            return (uscc, 0);
        }
        Key storage key = _keys[uscc][ref.keyId];
        if (key.validFromBlock <= blockNumber && blockNumber < key.validUntilBlock) {
            roles = key.roles;
        }
    }

    /// @notice Whether `account` may issue at `blockNumber` (see `rolesAt`).
    function isIssuer(address account, uint256 blockNumber) external view returns (bool) {
        (, uint8 roles) = rolesAt(account, blockNumber);
        return roles & ROLE_ISSUER != 0;
    }

    /// @notice The lianxin account of an uncompressed SM2 public key: the last 20 bytes of
    ///         SM3 of the key without its 0x04 prefix.
    function accountOf(bytes calldata publicKey) public view returns (address) {
        return address(uint160(uint256(sm3(publicKey[1:]))));
    }

    /// @notice Whether `uscc` is 18 characters of the GB 32100 alphabet
    ///         (0-9 and A-Z without I, O, S, V, Z) whose last one is the check character.
    function usccValid(bytes18 uscc) public pure returns (bool) {
        uint256 sum = 0;
        uint256 weight = 1;
        for (uint256 i = 0; i < 18; ++i) {
            (uint256 value, bool ok) = _usccValue(uscc[i]);
            if (!ok) {
                return false;
            }
            if (i == 17) {
                return value == (31 - (sum % 31)) % 31;
            }
            sum += value * weight;
            // The weights of GB 32100 are 3^i mod 31.
            weight = (weight * 3) % 31;
        }
        return false;
    }

    function _usccValue(bytes1 char) private pure returns (uint256 value, bool ok) {
        uint8 code = uint8(char);
        if (code >= 0x30 && code <= 0x39) {
            return (code - 0x30, true);
        }
        if (code < 0x41 || code > 0x5a) {
            return (0, false);
        }
        // Values of A..Z in the alphabet 0123456789ABCDEFGHJKLMNPQRTUWXY; 0xff: not in it.
        bytes26 letters = hex"0a0b0c0d0e0f1011ff1213141516ff171819ff1a1bff1c1d1eff";
        value = uint8(letters[code - 0x41]);
        ok = value != 0xff;
    }

    function _checkRoles(uint8 roles) private pure {
        if (roles == 0 || roles & ~ALL_ROLES != 0) {
            revert InvalidRoles(roles);
        }
    }

    function _key(bytes18 uscc, uint256 keyId) private view returns (Key storage) {
        Key[] storage keys = _keys[uscc];
        if (keyId >= keys.length) {
            revert UnknownKey(uscc, keyId);
        }
        return keys[keyId];
    }
}
