// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IAdjudicatorBase} from "../interfaces/IAdjudicatorBase.sol";
import {IAssetHolder} from "../interfaces/IAssetHolder.sol";

/// @title AssetTransfer
/// @notice Moves ETH (`asset == address(0)`) or an ERC-20 out of the adjudicator.
library AssetTransfer {
    /// @notice Gas given to a push payout's callee (ETH receiver or token). A push that needs more
    ///         fails and stays credited, to be pulled with `withdraw` (which forwards all gas).
    uint256 internal constant PAYOUT_GAS = 100_000;
    /// @notice Gas given to each `balanceOf` call that measures what a token push really moved.
    uint256 internal constant BALANCE_GAS = 30_000;
    /// @dev Room for the CALLs' own costs (cold account 2,600 + value 9,000 + new account 25,000).
    uint256 internal constant CALL_OVERHEAD = 40_000;

    /// @notice Push `amount` to `to` and return what was NOT paid (to be credited); never reverts
    ///         because of the receiver or the token.
    /// @dev Departs from OZ SafeERC20.trySafeTransfer / Address.sendValue on purpose: the callee gets a
    ///      bounded gas allowance and no return data is copied beyond one word, so a receiver or token
    ///      that burns gas or returns a huge blob cannot make the caller's transaction (and the other
    ///      participant's payout) fail. The caller must leave enough gas for the full allowances, or a
    ///      third party could make a payout fail on purpose.
    ///      ETH: a failed call moves nothing, so the result is all or nothing.
    ///      ERC-20: success is OZ's rule (the call succeeded and returned true, or returned nothing from
    ///      an address with code). A token that reports failure may still have moved funds (seen after
    ///      a proxy upgrade); crediting the full amount as well would make the adjudicator owe more
    ///      than it holds, to the cost of every other channel of that token. So a reported failure is
    ///      settled by the adjudicator's measured balance change: what left counts as paid, only the
    ///      rest is unpaid. If the balance cannot be read before the push, nothing is pushed (all
    ///      unpaid); if it cannot be read after a reported failure, nothing is counted unpaid (the
    ///      adjudicator never owes more than it can show it holds).
    function tryPush(address asset, address to, uint256 amount) internal returns (uint256 unpaid) {
        if (gasleft() < PAYOUT_GAS + 2 * BALANCE_GAS + (PAYOUT_GAS + 2 * BALANCE_GAS) / 63 + CALL_OVERHEAD) {
            revert IAdjudicatorBase.InsufficientPayoutGas();
        }
        bool ok;
        if (asset == address(0)) {
            assembly ("memory-safe") {
                ok := call(PAYOUT_GAS, to, amount, 0, 0, 0, 0)
            }
            return ok ? 0 : amount;
        }
        (bool measured, uint256 before) = balanceOfSelf(asset);
        if (!measured) return amount;
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
        if (ok && (returnSize == 0 ? asset.code.length > 0 : returnValue == 1)) return 0;
        uint256 afterwards;
        (measured, afterwards) = balanceOfSelf(asset);
        if (!measured) return 0;
        uint256 moved = afterwards < before ? before - afterwards : 0;
        return moved < amount ? amount - moved : 0;
    }

    /// @notice The adjudicator's balance of `token`, read with a bounded gas allowance and at most one
    ///         word of return data; `ok` is false if the call failed or returned less than a word.
    function balanceOfSelf(address token) internal view returns (bool ok, uint256 held) {
        uint256 returnSize;
        assembly ("memory-safe") {
            mstore(0, shl(224, 0x70a08231)) // balanceOf(address)
            mstore(0x04, address())
            ok := staticcall(BALANCE_GAS, token, 0, 0x24, 0, 0x20)
            returnSize := returndatasize()
            held := mload(0)
        }
        ok = ok && returnSize >= 0x20;
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
        if (!ok) revert IAssetHolder.TransferFailed();
    }

    /// @notice Take `amount` of `token` from `from` and return what the adjudicator actually received
    ///         (measured balance change: fee-on-transfer safe).
    function pullIn(address token, address from, uint256 amount) internal returns (uint256 received) {
        uint256 before = IERC20(token).balanceOf(address(this));
        if (!SafeERC20.trySafeTransferFrom(IERC20(token), from, address(this), amount)) {
            revert IAssetHolder.TransferFailed();
        }
        uint256 afterwards = IERC20(token).balanceOf(address(this));
        received = afterwards > before ? afterwards - before : 0;
    }
}
