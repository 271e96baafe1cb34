// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAdjudicatorBase} from "./IAdjudicatorBase.sol";

/// @title IAssetHolder
/// @notice Deposits into a channel, and the pull of credits left by failed payouts.
interface IAssetHolder is IAdjudicatorBase {
    /// @notice `amount` (as measured) was credited to participant 0 of `channelId`. One event per
    ///         participant instead of a participant field: the log is one data word shorter.
    /// @param channelId the channel
    /// @param amount what was credited (for an ERC-20: the adjudicator's measured balance change)
    event Deposited0(bytes32 indexed channelId, uint256 amount);

    /// @notice `amount` (as measured) was credited to participant 1 of `channelId`.
    /// @param channelId the channel
    /// @param amount what was credited (for an ERC-20: the adjudicator's measured balance change)
    event Deposited1(bytes32 indexed channelId, uint256 amount);

    /// @notice `account` pulled its credit of `asset` to `to`.
    /// @param account whose credit was pulled
    /// @param asset the asset (address(0) = ETH)
    /// @param to where it went
    /// @param amount how much
    event CreditWithdrawn(address indexed account, address indexed asset, address to, uint256 amount);

    /// @notice An ERC-20 deposit sent with ETH.
    error UnexpectedEther();
    /// @notice `withdraw` without any credit.
    error NothingToWithdraw();
    /// @notice A pull transfer (ERC-20 deposit or `withdraw`) failed.
    error TransferFailed();

    /// @notice Deposit msg.value (ETH) for `participant` of the ETH channel whose params hash to
    ///         `paramsHash`; anyone may fund either side, until conclusion. The channel credited is
    ///         `keccak256(abi.encode(paramsHash, address(0)))`, so ETH can only ever be credited to a
    ///         channel whose params name ETH. The params are not checked here: ETH sent with the hash
    ///         of params that are invalid (or not ETH) stays in a record no close can ever read.
    /// @param paramsHash keccak256(abi.encode(params)) of the channel (PROTOCOL.md section 3)
    /// @param participant 0 or 1
    function depositEth(bytes32 paramsHash, uint8 participant) external payable;

    /// @notice Deposit `amount` of `token` for `participant` of the channel whose params hash to
    ///         `paramsHash`; pulled with transferFrom (approve first) and credited with the measured
    ///         balance change. The channel credited is `keccak256(abi.encode(paramsHash, token))`, so
    ///         a token can only ever be credited to a channel whose params name that token.
    /// @param paramsHash keccak256(abi.encode(params)) of the channel (PROTOCOL.md section 3)
    /// @param token the channel's ERC-20 (not address(0))
    /// @param participant 0 or 1
    /// @param amount what to pull; the credit is what arrived
    function depositToken(bytes32 paramsHash, address token, uint8 participant, uint256 amount) external payable;

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
