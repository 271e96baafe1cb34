// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params, Withdrawal, WithdrawalTerms, Signature} from "../interfaces/ChannelTypes.sol";
import {IWithdrawals} from "../interfaces/IWithdrawals.sol";
import {ChannelHashing} from "../libraries/ChannelHashing.sol";
import {AssetTransfer} from "../libraries/AssetTransfer.sol";
import {ChannelStore} from "./ChannelStore.sol";

/// @title Withdrawals
/// @notice Co-signed partial withdrawals from an open, undisputed channel.
abstract contract Withdrawals is IWithdrawals, ChannelStore {
    /// @inheritdoc IWithdrawals
    /// @dev Needs both participants' signatures on the Withdrawal of this channel (the id of `params`),
    ///      an open undisputed channel, a version strictly above the last executed withdrawal's, and
    ///      enough holdings. Afterwards no state older than `withdrawal.version` can be registered or
    ///      concluded. If the push to `recipient` fails, the amount is credited to the withdrawing
    ///      participant (pull with `withdraw`).
    ///      Storage: reads slots 0 and 1 (and 3 once in use), writes slot 3 (fresh only the first
    ///      time) and, the first time, the WITHDRAWALS flag in slot 0.
    function withdrawPartial(
        Params calldata params,
        WithdrawalTerms calldata withdrawal,
        Signature calldata sig0,
        Signature calldata sig1
    ) external nonReentrant {
        bytes32 id = _checkParams(params);
        uint8 participant = withdrawal.participant;
        if (participant > 1) revert InvalidParticipantIndex();
        uint256 amount = withdrawal.amount;
        if (amount == 0) revert ZeroAmount();
        address recipient = withdrawal.recipient;
        if (recipient == address(0)) revert ZeroAddress();
        Record storage c = _channels[id];
        Holdings memory h = c.holdings;
        if (h.flags & CONCLUDED != 0) revert ChannelConcluded();
        if (c.dispute.deadline != 0) revert ChallengeOngoing();
        Withdrawn memory w = _withdrawn(c, h);
        uint64 version = withdrawal.version;
        if (version <= w.minVersion) revert WithdrawalNotNewer(w.minVersion, version);
        _checkSignatures(ChannelHashing.hashWithdrawal(id, withdrawal), params, sig0, sig1);

        uint256 x0 = w.amount0;
        uint256 x1 = w.amount1;
        if (participant == 0) x0 += amount;
        else x1 += amount;
        // the channel's executed total never exceeds its deposits (< 2**96), so both fit 96 bits
        if (x0 + x1 > uint256(h.amount0) + h.amount1) revert InsufficientHoldings();
        _storeWithdrawn(c, h, x0, x1, version);
        if (participant == 0) emit PartialWithdrawal0(id, version, amount, recipient);
        else emit PartialWithdrawal1(id, version, amount, recipient);

        address asset = params.asset;
        uint256 unpaid = AssetTransfer.tryPush(asset, recipient, amount);
        if (unpaid != 0) _credit(id, asset, participant == 0 ? params.participant0 : params.participant1, unpaid);
    }

    /// @inheritdoc IWithdrawals
    function withdrawalDigest(Withdrawal calldata withdrawal) external view returns (bytes32) {
        return _hashTypedDataV4(ChannelHashing.hashWithdrawal(withdrawal));
    }

    /// @dev Record the executed totals `x0`, `x1` (both below 2**96) and `version` in slot 3, and the
    ///      first time the WITHDRAWALS flag in slot 0 (`h` is slot 0 as read). Each slot is written as
    ///      one word, without re-reading it (the compiler wrote the struct field by field: 300 gas
    ///      more). Layouts as in `Withdrawn` and `Holdings` (tests/contract/test_record_layout.py).
    function _storeWithdrawn(Record storage c, Holdings memory h, uint256 x0, uint256 x1, uint64 version) private {
        Withdrawn storage stored = c.withdrawn;
        Holdings storage holdings = c.holdings;
        uint256 withdrawnWord = x0 | (x1 << 96) | (uint256(version) << 192);
        bool first = h.flags & WITHDRAWALS == 0;
        uint256 holdingsWord =
            uint256(h.amount0) | (uint256(h.amount1) << 96) | (uint256(h.flags | WITHDRAWALS) << 192);
        assembly ("memory-safe") {
            sstore(stored.slot, withdrawnWord)
            if first { sstore(holdings.slot, holdingsWord) }
        }
    }
}
