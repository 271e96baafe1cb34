// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params, Withdrawal, Status} from "../interfaces/ChannelTypes.sol";
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
    function withdrawPartial(
        Params calldata params,
        Withdrawal calldata withdrawal,
        bytes calldata sig0,
        bytes calldata sig1
    ) external nonReentrant {
        bytes32 id = _checkParams(params);
        if (withdrawal.channelId != id) revert WrongChannelId();
        uint8 participant = withdrawal.participant;
        if (participant > 1) revert InvalidParticipantIndex();
        uint256 amount = withdrawal.amount;
        if (amount == 0) revert ZeroAmount();
        if (withdrawal.recipient == address(0)) revert ZeroAddress();
        Record storage c = _channels[id];
        Status status = c.status;
        if (status != Status.Open) {
            if (status == Status.Concluded) revert ChannelConcluded();
            revert ChallengeOngoing();
        }
        if (withdrawal.version <= c.minVersion) revert WithdrawalNotNewer(c.minVersion, withdrawal.version);
        _checkSignatures(ChannelHashing.hashWithdrawal(withdrawal), params, sig0, sig1);

        _debitWithdrawal(c, participant, amount, withdrawal.version);
        emit PartialWithdrawal(id, withdrawal.version, participant, amount, withdrawal.recipient);

        address asset = params.asset;
        uint256 unpaid = AssetTransfer.tryPush(asset, withdrawal.recipient, amount);
        if (unpaid != 0) _credit(id, asset, participant == 0 ? params.participant0 : params.participant1, unpaid);
    }

    /// @inheritdoc IWithdrawals
    function withdrawalDigest(Withdrawal calldata withdrawal) external view returns (bytes32) {
        return _hashTypedDataV4(ChannelHashing.hashWithdrawal(withdrawal));
    }

    /// @dev Record an executed partial withdrawal; the channel's executed total never exceeds its deposits.
    function _debitWithdrawal(Record storage c, uint8 participant, uint256 amount, uint64 version) internal {
        uint256 w0 = c.withdrawn0;
        uint256 w1 = c.withdrawn1;
        if (participant == 0) w0 += amount;
        else w1 += amount;
        if (w0 + w1 > uint256(c.amount0) + c.amount1) revert InsufficientHoldings();
        // w0 + w1 <= deposits < 2**129; each must still fit its uint128 field
        if (w0 > type(uint128).max || w1 > type(uint128).max) revert AmountTooLarge();
        c.withdrawn0 = uint128(w0);
        c.withdrawn1 = uint128(w1);
        c.minVersion = version;
    }
}
