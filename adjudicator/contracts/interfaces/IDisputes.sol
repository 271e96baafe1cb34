// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params, State, Signature} from "./ChannelTypes.sol";
import {IAdjudicatorBase} from "./IAdjudicatorBase.sol";

/// @title IDisputes
/// @notice Ending a channel: cooperatively with a final state, or by a dispute (register, refute,
///         checkpoint) that ends with the registered state after the challenge period.
interface IDisputes is IAdjudicatorBase {
    /// @notice A state was registered: a dispute started, or the registered state was replaced.
    /// @param channelId the channel
    /// @param version the registered version
    /// @param deadline the end of the challenge period (unix seconds; set once per dispute)
    /// @param stateHash the EIP-712 struct hash of the registered state
    event Registered(bytes32 indexed channelId, uint64 version, uint64 deadline, bytes32 stateHash);

    /// @notice A fully signed state newer than the on-chain record was recorded; any dispute is cleared.
    /// @param channelId the channel
    /// @param version the recorded version
    event Checkpointed(bytes32 indexed channelId, uint64 version);

    /// @notice The channel is concluded; both payouts were pushed (or credited if a push failed).
    /// @param channelId the channel
    /// @param version the concluded version
    /// @param payout0 what participant 0 received
    /// @param payout1 what participant 1 received
    event Concluded(bytes32 indexed channelId, uint64 version, uint256 payout0, uint256 payout1);

    /// @notice Positions stay open after conclusion, to be settled one by one.
    /// @param channelId the channel
    /// @param positionsRoot the root of the positions tree
    /// @param locked the collateral held for them
    event PositionsLocked(bytes32 indexed channelId, bytes32 positionsRoot, uint256 locked);

    /// @notice balance0 + balance1 + locked != deposited0 + deposited1 - withdrawn0 - withdrawn1.
    error ConservationViolated();
    /// @notice `conclude` with a state that is not final.
    error NotFinal();
    /// @notice A final state with locked collateral or positions.
    error PositionsInFinalState();
    /// @notice The state credits more deposits than exist on chain.
    error UnderfundedState();
    /// @notice The state is older than (or does not debit) an executed partial withdrawal.
    error StateBeforeWithdrawal();
    /// @notice The state is not newer than the on-chain record.
    /// @param recorded the version on chain
    /// @param given the state's version
    error NotNewerVersion(uint64 recorded, uint64 given);
    /// @notice A different state with the registered version.
    error EquivocatingState();
    /// @notice `concludeAfterTimeout` with a state that is not the registered one.
    error NotRegisteredState();
    /// @notice `concludeAfterTimeout` on a channel without a dispute.
    error NotDisputed();
    /// @notice `register` / `checkpoint` at or after the deadline.
    error ChallengeExpired();
    /// @notice `concludeAfterTimeout` before the deadline.
    error ChallengeNotExpired();

    /// @notice Conclude with a final state signed by both participants and pay both of them.
    /// @param params the channel parameters
    /// @param state a final state (no positions, nothing locked)
    /// @param sig0 participant 0's signature of the state's EIP-712 digest (compact form, EIP-2098)
    /// @param sig1 participant 1's signature
    function conclude(Params calldata params, State calldata state, Signature calldata sig0, Signature calldata sig1)
        external;

    /// @notice Start a dispute with a fully signed state, or replace the registered one with a newer one.
    /// @param params the channel parameters
    /// @param state the state to register
    /// @param sig0 participant 0's signature
    /// @param sig1 participant 1's signature
    function register(Params calldata params, State calldata state, Signature calldata sig0, Signature calldata sig1)
        external;

    /// @notice Record a fully signed state newer than the on-chain record; clears a dispute.
    /// @param params the channel parameters
    /// @param state the newer state
    /// @param sig0 participant 0's signature
    /// @param sig1 participant 1's signature
    function checkpoint(Params calldata params, State calldata state, Signature calldata sig0, Signature calldata sig1)
        external;

    /// @notice After the deadline, conclude with the registered state and pay both participants.
    /// @param params the channel parameters
    /// @param state the registered state (checked against its stored hash)
    function concludeAfterTimeout(Params calldata params, State calldata state) external;

    /// @notice The EIP-712 digest both participants sign for `state`.
    /// @param state the state
    /// @return the 0x1901 digest under this deployment's domain
    function stateDigest(State calldata state) external view returns (bytes32);
}
