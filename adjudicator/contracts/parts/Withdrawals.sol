// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params, Withdrawal, Signature} from "../interfaces/ChannelTypes.sol";
import {IWithdrawals} from "../interfaces/IWithdrawals.sol";
import {ChannelHashing} from "../libraries/ChannelHashing.sol";
import {AssetTransfer} from "../libraries/AssetTransfer.sol";
import {ChannelStore} from "./ChannelStore.sol";

/// @title Withdrawals
/// @notice Co-signed partial withdrawals from an open, undisputed channel.
abstract contract Withdrawals is IWithdrawals, ChannelStore {
    /// @inheritdoc IWithdrawals
    /// @dev Needs both participants' signatures on the Withdrawal, an open undisputed channel, a version
    ///      strictly above the last executed withdrawal's, and enough holdings. Afterwards no state older
    ///      than `withdrawal.version` can be registered or concluded. If the push to `recipient` fails,
    ///      the amount is credited to the withdrawing participant (pull with `withdraw`).
    ///      Storage: reads slots 0 and 1, writes slot 3 (fresh only the first time) and, the first
    ///      time, the WITHDRAWALS flag in slot 0.
    function withdrawPartial(
        Params calldata params,
        Withdrawal calldata withdrawal,
        Signature calldata sig0,
        Signature calldata sig1
    ) external nonReentrant {
        bytes32 id = _checkParams(params);
        if (withdrawal.channelId != id) revert WrongChannelId();
        uint8 participant = withdrawal.participant;
        if (participant > 1) revert InvalidParticipantIndex();
        uint256 amount = withdrawal.amount;
        if (amount == 0) revert ZeroAmount();
        if (withdrawal.recipient == address(0)) revert ZeroAddress();
        Record storage c = _channels[id];
        Holdings memory h = c.holdings;
        if (h.flags & CONCLUDED != 0) revert ChannelConcluded();
        if (c.dispute.deadline != 0) revert ChallengeOngoing();
        Withdrawn memory w = _withdrawn(c, h);
        if (withdrawal.version <= w.minVersion) revert WithdrawalNotNewer(w.minVersion, withdrawal.version);
        _checkSignatures(ChannelHashing.hashWithdrawal(withdrawal), params, sig0, sig1);

        uint256 x0 = w.amount0;
        uint256 x1 = w.amount1;
        if (participant == 0) x0 += amount;
        else x1 += amount;
        // the channel's executed total never exceeds its deposits (< 2**96), so both fit 96 bits
        if (x0 + x1 > uint256(h.amount0) + h.amount1) revert InsufficientHoldings();
        c.withdrawn = Withdrawn(uint96(x0), uint96(x1), withdrawal.version);
        if (h.flags & WITHDRAWALS == 0) c.holdings.flags = h.flags | WITHDRAWALS;
        emit PartialWithdrawal(id, withdrawal.version, participant, amount, withdrawal.recipient);

        address asset = params.asset;
        uint256 unpaid = AssetTransfer.tryPush(asset, withdrawal.recipient, amount);
        if (unpaid != 0) _credit(id, asset, participant == 0 ? params.participant0 : params.participant1, unpaid);
    }

    /// @inheritdoc IWithdrawals
    function withdrawalDigest(Withdrawal calldata withdrawal) external view returns (bytes32) {
        return _hashTypedDataV4(ChannelHashing.hashWithdrawal(withdrawal));
    }
}
