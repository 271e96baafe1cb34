// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params, Position, Attestation, Signature} from "../interfaces/ChannelTypes.sol";
import {ISettlement} from "../interfaces/ISettlement.sol";
import {ChannelHashing} from "../libraries/ChannelHashing.sol";
import {Signatures} from "../libraries/Signatures.sol";
import {PositionTree} from "../libraries/PositionTree.sol";
import {OptionPayoff} from "../libraries/OptionPayoff.sol";
import {ChannelStore} from "./ChannelStore.sol";

/// @title Settlement
/// @notice Settles, one by one, the positions a concluded channel left open: at the oracle's price, or
///         (no price in time) by returning the collateral to the writer.
abstract contract Settlement is ISettlement, ChannelStore {
    /// @inheritdoc ISettlement
    uint64 public constant SETTLEMENT_GRACE = 7 days;

    /// @inheritdoc ISettlement
    /// @dev Needs a concluded channel, `now >= position.expiry`, an attestation for the position's
    ///      (underlying, expiry) signed by `params.oracle`, and a proof of the position's leaf against
    ///      the current positions root. The leaf is then replaced by bytes32(0) in the root (so each
    ///      position settles once; proofs of other positions must be computed against the new root).
    ///      Pays the holder its payoff and the writer the rest of the collateral (never more in total
    ///      than the collateral still locked).
    function settlePosition(
        Params calldata params,
        Position calldata position,
        bytes32[] calldata proof,
        Attestation calldata attestation,
        Signature calldata oracleSig
    ) external nonReentrant {
        bytes32 id = ChannelHashing.channelId(params);
        Record storage c = _channels[id];
        Holdings memory h = c.holdings;
        if (h.flags & CONCLUDED == 0) revert ChannelNotConcluded();
        if (block.timestamp < position.expiry) revert NotExpired();
        if (attestation.underlying != position.underlying || attestation.expiry != position.expiry) {
            revert WrongAttestation();
        }
        address signer = Signatures.recover(_hashTypedDataV4(ChannelHashing.hashAttestation(attestation)), oracleSig);
        if (signer != params.oracle) revert WrongOracle(signer);
        _settle(id, c, h, params, position, proof, attestation.price);
    }

    /// @inheritdoc ISettlement
    /// @dev Fallback when no attestation was used: from `expiry + SETTLEMENT_GRACE` on, anyone may return
    ///      the position's collateral (capped by what is still locked) to its writer.
    function releaseUnsettled(Params calldata params, Position calldata position, bytes32[] calldata proof)
        external
        nonReentrant
    {
        bytes32 id = ChannelHashing.channelId(params);
        Record storage c = _channels[id];
        Holdings memory h = c.holdings;
        if (h.flags & CONCLUDED == 0) revert ChannelNotConcluded();
        if (block.timestamp < uint256(position.expiry) + SETTLEMENT_GRACE) revert SettlementGraceNotOver();
        (uint256 collateral, bytes32 newRoot) = _removePosition(c, h, position, proof);
        emit PositionReleased(id, position.id, collateral, newRoot);
        _pay(id, params.asset, position.writer == 0 ? params.participant0 : params.participant1, collateral);
    }

    /// @inheritdoc ISettlement
    function attestationDigest(Attestation calldata attestation) external view returns (bytes32) {
        return _hashTypedDataV4(ChannelHashing.hashAttestation(attestation));
    }

    /// @dev Prove `position` against the current root, zero its leaf, and release its collateral
    ///      (capped by what is still locked) from the locked total. One pass over the proof gives both
    ///      the root with the leaf and the root with the slot emptied. Writes slots 0 and 2 (warm).
    function _removePosition(Record storage c, Holdings memory h, Position calldata position, bytes32[] calldata proof)
        internal
        returns (uint256 collateral, bytes32 newRoot)
    {
        if (position.writer > 1) revert InvalidWriter();
        bytes32 root = h.flags & POSITIONS != 0 ? c.hash : bytes32(0);
        bytes32 withLeaf;
        (withLeaf, newRoot) = PositionTree.rootsWithAndWithout(proof, PositionTree.leaf(position));
        if (withLeaf != root) {
            if (newRoot == root) revert AlreadySettled();
            revert InvalidProof();
        }
        uint256 remaining = h.amount0;
        collateral = position.collateral < remaining ? position.collateral : remaining;
        c.holdings.amount0 = uint96(remaining - collateral);
        c.hash = newRoot;
    }

    /// @dev Remove a proven position, split its collateral at `price` and pay holder and writer.
    function _settle(
        bytes32 id,
        Record storage c,
        Holdings memory h,
        Params calldata params,
        Position calldata position,
        bytes32[] calldata proof,
        uint256 price
    ) internal {
        (uint256 collateral, bytes32 newRoot) = _removePosition(c, h, position, proof);
        (uint256 toHolder, uint256 toWriter) = OptionPayoff.split(position, collateral, price, params.assetDecimals);
        emit PositionSettled(id, position.id, price, toHolder, toWriter, newRoot);
        (address writer, address holder) = position.writer == 0
            ? (params.participant0, params.participant1)
            : (params.participant1, params.participant0);
        _pay(id, params.asset, holder, toHolder);
        _pay(id, params.asset, writer, toWriter);
    }
}
