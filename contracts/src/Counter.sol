// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Counter
/// @notice A minimal stateful contract for tests: increment, read, and a guarded revert.
contract Counter {
    /// @notice The current value.
    uint256 public count;

    /// @notice Emitted after every change of `count`.
    event Changed(uint256 count);

    /// @notice Raised by `fail` and by `incrementBelow` when the limit is reached.
    error LimitReached(uint256 limit);

    constructor(uint256 initial) {
        count = initial;
    }

    /// @notice Add one to `count`.
    function increment() external {
        count += 1;
        emit Changed(count);
    }

    /// @notice Add one to `count` unless it has reached `limit`; reverts with LimitReached.
    function incrementBelow(uint256 limit) external {
        if (count >= limit) {
            revert LimitReached(limit);
        }
        count += 1;
        emit Changed(count);
    }

    /// @notice Always reverts with a reason string.
    function fail() external pure {
        revert("Counter: always fails");
    }

    /// @notice Loops until it runs out of gas.
    function burn() external {
        while (true) {
            count += 1;
        }
    }
}
