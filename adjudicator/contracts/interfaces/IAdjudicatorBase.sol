// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params, ChannelView} from "./ChannelTypes.sol";

/// @title IAdjudicatorBase
/// @notice What every part of the adjudicator shares: the checks on channel parameters, signatures
///         and amounts, the pull fallback of failed payouts, and the read-only views of a channel.
interface IAdjudicatorBase {
    /// @notice A push payout failed; `amount` stays credited to `account` and can be pulled with `withdraw`.
    /// @param channelId the channel whose payout failed
    /// @param account the payee now holding the credit
    /// @param asset the channel's asset (address(0) = ETH)
    /// @param amount the amount credited
    event PayoutCredited(bytes32 indexed channelId, address indexed account, address asset, uint256 amount);

    /// @notice Zero or identical participant addresses.
    error InvalidParticipants();
    /// @notice The challenge period is outside [MIN_CHALLENGE_PERIOD, MAX_CHALLENGE_PERIOD].
    error InvalidChallengePeriod();
    /// @notice `params.chainId` is not this chain's id.
    error WrongChainId();
    /// @notice `params.adjudicator` is not this deployment.
    error WrongAdjudicator();
    /// @notice A state's or withdrawal's channel id is not the id of `params` (`channelIdOf`).
    error WrongChannelId();
    /// @notice A participant index other than 0 or 1.
    error InvalidParticipantIndex();
    /// @notice An amount of 0 where a positive amount is needed.
    error ZeroAmount();
    /// @notice An amount above what the record can hold: a channel's deposits, both participants
    ///         together, must stay at or below MAX_CHANNEL_DEPOSITS (docs/PROTOCOL.md section 8).
    error AmountTooLarge();
    /// @notice A recipient or destination is address(0).
    error ZeroAddress();
    /// @notice Malformed signature: r or s zero, or ecrecover gives 0 (no point for r).
    error InvalidSignature();
    /// @notice `s` in the upper half of the curve order (the malleable twin of a valid signature).
    error HighS();
    /// @notice A signature recovers to another address than the participant's.
    /// @param expected the participant that had to sign
    /// @param recovered the address the signature recovers to
    error WrongSigner(address expected, address recovered);
    /// @notice The channel is already concluded.
    error ChannelConcluded();
    /// @notice Not enough gas left to give a push payout its full gas allowance (raise the gas limit).
    error InsufficientPayoutGas();

    /// @notice Shortest allowed challenge period.
    /// @return seconds
    function MIN_CHALLENGE_PERIOD() external view returns (uint64);

    /// @notice Longest allowed challenge period.
    /// @return seconds
    function MAX_CHALLENGE_PERIOD() external view returns (uint64);

    /// @notice Cap on a channel's cumulative deposits, both participants together.
    /// @return 2**96 - 1 (base units of the channel's asset)
    function MAX_CHANNEL_DEPOSITS() external view returns (uint256);

    /// @notice The decoded on-chain record of a channel.
    /// @param channelId the channel
    /// @return v its status, versions, deadline, deposits, withdrawals and settlement state
    function getChannel(bytes32 channelId) external view returns (ChannelView memory v);

    /// @notice The channel id of `params`.
    /// @param params the channel parameters
    /// @return keccak256(abi.encode(keccak256(abi.encode(params)), params.asset)) (PROTOCOL.md section 3)
    function channelIdOf(Params calldata params) external pure returns (bytes32);

    /// @notice The EIP-712 domain separator of this deployment.
    /// @return the separator of domain ("OptionChannels", "1", chainid, this)
    function domainSeparator() external view returns (bytes32);
}
