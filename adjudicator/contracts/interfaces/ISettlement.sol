// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params, Position, Attestation, Signature} from "./ChannelTypes.sol";
import {IAdjudicatorBase} from "./IAdjudicatorBase.sol";

/// @title ISettlement
/// @notice Settling the option positions a concluded channel left open, one at a time.
interface ISettlement is IAdjudicatorBase {
    /// @notice A position was settled at an oracle price.
    /// @param channelId the channel
    /// @param positionId the position
    /// @param price the attested price
    /// @param holderPayout what the holder received (its payoff, capped by the collateral)
    /// @param writerPayout what the writer received (the rest of the collateral)
    /// @param newRoot the positions root with this position's leaf zeroed
    event PositionSettled(
        bytes32 indexed channelId,
        uint64 indexed positionId,
        uint256 price,
        uint256 holderPayout,
        uint256 writerPayout,
        bytes32 newRoot
    );

    /// @notice A position's collateral went back to its writer without a price (grace period over).
    /// @param channelId the channel
    /// @param positionId the position
    /// @param collateral what the writer received
    /// @param newRoot the positions root with this position's leaf zeroed
    event PositionReleased(bytes32 indexed channelId, uint64 indexed positionId, uint256 collateral, bytes32 newRoot);

    /// @notice The attestation is not signed by the channel's oracle.
    /// @param recovered the address the oracle signature recovers to
    error WrongOracle(address recovered);
    /// @notice Settlement before the channel is concluded.
    error ChannelNotConcluded();
    /// @notice Settlement before the position's expiry.
    error NotExpired();
    /// @notice The attestation's (underlying, expiry) is not the position's.
    error WrongAttestation();
    /// @notice The proof does not lead to the current positions root.
    error InvalidProof();
    /// @notice The position's slot is already empty in the current root (settled or released).
    error AlreadySettled();
    /// @notice `releaseUnsettled` before expiry + SETTLEMENT_GRACE.
    error SettlementGraceNotOver();
    /// @notice A position kind other than call (0) or put (1).
    error UnknownPositionKind();
    /// @notice A position writer index other than 0 or 1.
    error InvalidWriter();

    /// @notice Time after a position's expiry from which its collateral can be released to the writer.
    /// @return seconds
    function SETTLEMENT_GRACE() external view returns (uint64);

    /// @notice Settle one expired position of a concluded channel with the oracle's attestation.
    /// @param params the channel parameters
    /// @param position the position (a leaf of the current positions root)
    /// @param proof its Merkle proof against the current root
    /// @param attestation the oracle's price for the position's (underlying, expiry)
    /// @param oracleSig the oracle's signature of the attestation's EIP-712 digest
    function settlePosition(
        Params calldata params,
        Position calldata position,
        bytes32[] calldata proof,
        Attestation calldata attestation,
        Signature calldata oracleSig
    ) external;

    /// @notice Return a position's collateral to its writer when nobody settled it in time.
    /// @param params the channel parameters
    /// @param position the position (a leaf of the current positions root)
    /// @param proof its Merkle proof against the current root
    function releaseUnsettled(Params calldata params, Position calldata position, bytes32[] calldata proof) external;

    /// @notice The EIP-712 digest the oracle signs for `attestation`.
    /// @param attestation the price statement
    /// @return the 0x1901 digest under this deployment's domain
    function attestationDigest(Attestation calldata attestation) external view returns (bytes32);
}
