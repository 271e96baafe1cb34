// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params} from "./ChannelTypes.sol";
import {IAdjudicatorBase} from "./IAdjudicatorBase.sol";

/// @title IAssetHolder
/// @notice Deposits into a channel, and the pull of credits left by failed payouts.
interface IAssetHolder is IAdjudicatorBase {
    /// @notice `amount` (as measured) was credited to `participant`.
    /// @param channelId the channel
    /// @param participant 0 or 1
    /// @param amount what was credited (for an ERC-20: the adjudicator's measured balance change)
    /// @param total the participant's cumulative deposits
    event Deposited(bytes32 indexed channelId, uint8 indexed participant, uint256 amount, uint256 total);

    /// @notice `account` pulled its credit of `asset` to `to`.
    /// @param account whose credit was pulled
    /// @param asset the asset (address(0) = ETH)
    /// @param to where it went
    /// @param amount how much
    event CreditWithdrawn(address indexed account, address indexed asset, address to, uint256 amount);

    /// @notice An ETH deposit whose msg.value differs from `amount`.
    error WrongMsgValue();
    /// @notice An ERC-20 deposit sent with ETH.
    error UnexpectedEther();
    /// @notice `withdraw` without any credit.
    error NothingToWithdraw();
    /// @notice A pull transfer (ERC-20 deposit or `withdraw`) failed.
    error TransferFailed();

    /// @notice Deposit `amount` for `participant`; anyone may fund either side, until conclusion.
    /// @param params the channel parameters (validated; the id is derived from them)
    /// @param participant 0 or 1
    /// @param amount ETH: must equal msg.value; ERC-20: pulled with transferFrom (approve first) and
    ///        credited with the measured balance change
    function deposit(Params calldata params, uint8 participant, uint256 amount) external payable;

    /// @notice Pull the caller's whole credit of `asset` (left by failed payouts) to `to`, with all gas.
    /// @param asset the asset (address(0) = ETH)
    /// @param to the destination (not address(0))
    function withdraw(address asset, address to) external;

    /// @notice What failed payouts left credited to `account`.
    /// @param asset the asset (address(0) = ETH)
    /// @param account the payee
    /// @return the amount `account` can pull with `withdraw`
    function credits(address asset, address account) external view returns (uint256);
}
