// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IAdjudicator} from "../interfaces/IAdjudicator.sol";

/// @title AssetTransfer
/// @notice Moves ETH (`asset == address(0)`) or an ERC-20 out of the adjudicator.
library AssetTransfer {
    /// @notice Gas given to a push payout's callee (ETH receiver or token). A push that needs more
    ///         fails and stays credited, to be pulled with `withdraw` (which forwards all gas).
    uint256 internal constant PAYOUT_GAS = 100_000;
    /// @dev Room for the CALL's own costs (cold account 2,600 + value 9,000 + new account 25,000).
    uint256 internal constant CALL_OVERHEAD = 40_000;

    /// @notice Push `amount` to `to`; returns false (never reverts) if the receiver or token fails.
    /// @dev Departs from OZ SafeERC20.trySafeTransfer / Address.sendValue on purpose: the callee gets a
    ///      bounded gas allowance and no return data is copied beyond one word, so a receiver or token
    ///      that burns gas or returns a huge blob cannot make the caller's transaction (and the other
    ///      participant's payout) fail. The success rule for tokens is OZ's: call succeeded and either
    ///      returned true, or returned nothing from an address with code. The caller must leave enough
    ///      gas for the full allowance, or a third party could make a payout fail on purpose.
    function tryPush(address asset, address to, uint256 amount) internal returns (bool ok) {
        if (gasleft() < PAYOUT_GAS + PAYOUT_GAS / 63 + CALL_OVERHEAD) revert IAdjudicator.InsufficientPayoutGas();
        if (asset == address(0)) {
            assembly ("memory-safe") {
                ok := call(PAYOUT_GAS, to, amount, 0, 0, 0, 0)
            }
        } else {
            uint256 returnSize;
            uint256 returnValue;
            assembly ("memory-safe") {
                let ptr := mload(0x40)
                mstore(ptr, shl(224, 0xa9059cbb)) // transfer(address,uint256)
                mstore(add(ptr, 0x04), to)
                mstore(add(ptr, 0x24), amount)
                ok := call(PAYOUT_GAS, asset, 0, ptr, 0x44, 0, 0x20)
                returnSize := returndatasize()
                returnValue := mload(0)
            }
            ok = ok && (returnSize == 0 ? asset.code.length > 0 : returnValue == 1);
        }
    }

    /// @notice Pull payment: send `amount` to `to` with all gas; reverts TransferFailed on failure.
    function pull(address asset, address to, uint256 amount) internal {
        bool ok;
        if (asset == address(0)) {
            assembly ("memory-safe") {
                ok := call(gas(), to, amount, 0, 0, 0, 0)
            }
        } else {
            ok = SafeERC20.trySafeTransfer(IERC20(asset), to, amount);
        }
        if (!ok) revert IAdjudicator.TransferFailed();
    }

    /// @notice Take `amount` of `token` from `from` and return what the adjudicator actually received
    ///         (measured balance change: fee-on-transfer safe).
    function pullIn(address token, address from, uint256 amount) internal returns (uint256 received) {
        uint256 before = IERC20(token).balanceOf(address(this));
        if (!SafeERC20.trySafeTransferFrom(IERC20(token), from, address(this), amount)) {
            revert IAdjudicator.TransferFailed();
        }
        uint256 afterwards = IERC20(token).balanceOf(address(this));
        received = afterwards > before ? afterwards - before : 0;
    }
}
