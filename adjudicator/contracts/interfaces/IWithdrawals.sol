// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params, Withdrawal, WithdrawalTerms, Signature} from "./ChannelTypes.sol";
import {IAdjudicatorBase} from "./IAdjudicatorBase.sol";

/// @title IWithdrawals
/// @notice Co-signed partial withdrawals from an open channel (the channel stays open).
interface IWithdrawals is IAdjudicatorBase {
    /// @notice A partial withdrawal of participant 0's funds was executed. One event per participant
    ///         instead of an indexed participant field: the log has one topic fewer (375 gas).
    /// @param channelId the channel
    /// @param version the withdrawal's version (no older state can be used on chain afterwards)
    /// @param amount how much
    /// @param recipient where it was pushed (credited to the participant if the push failed)
    event PartialWithdrawal0(bytes32 indexed channelId, uint64 version, uint256 amount, address recipient);

    /// @notice A partial withdrawal of participant 1's funds was executed.
    /// @param channelId the channel
    /// @param version the withdrawal's version (no older state can be used on chain afterwards)
    /// @param amount how much
    /// @param recipient where it was pushed (credited to the participant if the push failed)
    event PartialWithdrawal1(bytes32 indexed channelId, uint64 version, uint256 amount, address recipient);

    /// @notice Partial withdrawal while a dispute is open.
    error ChallengeOngoing();
    /// @notice The withdrawal's version is not above the last executed one.
    /// @param lastExecuted the version of the last executed withdrawal
    /// @param given the withdrawal's version
    error WithdrawalNotNewer(uint64 lastExecuted, uint64 given);
    /// @notice The executed withdrawals would exceed the channel's deposits.
    error InsufficientHoldings();

    /// @notice Execute a co-signed partial withdrawal from an open, undisputed channel.
    /// @param params the channel parameters
    /// @param withdrawal what to withdraw, for whom, to where: the co-signed `Withdrawal` without its
    ///        channel id (the id of `params` is what the signatures must cover)
    /// @param sig0 participant 0's signature of the withdrawal's EIP-712 digest
    /// @param sig1 participant 1's signature
    function withdrawPartial(
        Params calldata params,
        WithdrawalTerms calldata withdrawal,
        Signature calldata sig0,
        Signature calldata sig1
    ) external;

    /// @notice The EIP-712 digest both participants sign for `withdrawal`.
    /// @param withdrawal the withdrawal
    /// @return the 0x1901 digest under this deployment's domain
    function withdrawalDigest(Withdrawal calldata withdrawal) external view returns (bytes32);
}
