// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title GmPrecompiles
/// @notice Calls lianxin's national-cryptography precompiles (see chain/execution.py):
///         SM3 hashing at 0x…5a03 and SM2 signature verification at 0x…5a02.
contract GmPrecompiles {
    address internal constant SM2_VERIFY = address(0x5a02);
    address internal constant SM3 = address(0x5a03);

    /// @notice Emitted by `verifyAndRecord` with the outcome of the check.
    event Verified(bytes32 indexed messageSm3, bool valid);

    /// @notice The SM3 digest of `data`.
    function sm3(bytes memory data) public view returns (bytes32 digest) {
        (bool ok, bytes memory out) = SM3.staticcall(data);
        require(ok && out.length == 32, "GmPrecompiles: SM3 failed");
        digest = abi.decode(out, (bytes32));
    }

    /// @notice Whether `signature` (DER) is a valid SM2 signature by `publicKey`
    ///         (65 bytes, 0x04 || x || y) over `message` with signer ID `signerId`
    ///         (empty means the default ID 1234567812345678).
    function sm2Verify(
        bytes memory publicKey,
        bytes memory message,
        bytes memory signature,
        bytes memory signerId
    ) public view returns (bool valid) {
        (bool ok, bytes memory out) =
            SM2_VERIFY.staticcall(abi.encode(publicKey, message, signature, signerId));
        require(ok && out.length == 32, "GmPrecompiles: SM2 verify failed");
        valid = abi.decode(out, (uint256)) == 1;
    }

    /// @notice Verify a signature in a transaction and emit the outcome.
    function verifyAndRecord(
        bytes calldata publicKey,
        bytes calldata message,
        bytes calldata signature,
        bytes calldata signerId
    ) external returns (bool valid) {
        valid = sm2Verify(publicKey, message, signature, signerId);
        emit Verified(sm3(message), valid);
    }
}
