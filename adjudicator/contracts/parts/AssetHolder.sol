// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params} from "../interfaces/ChannelTypes.sol";
import {IAssetHolder} from "../interfaces/IAssetHolder.sol";
import {AssetTransfer} from "../libraries/AssetTransfer.sol";
import {ChannelStore} from "./ChannelStore.sol";

/// @title AssetHolder
/// @notice Deposits (ETH or the channel's ERC-20) and the pull of credits left by failed payouts.
abstract contract AssetHolder is IAssetHolder, ChannelStore {
    /// @inheritdoc IAssetHolder
    /// @dev ERC-20: credited with the measured balance change (the shared pool of a token must never
    ///      credit more than arrived: a fee-on-transfer token would otherwise drain other channels).
    ///      Only the token pull is guarded against reentrancy: an ETH deposit makes no external call,
    ///      and the record is read after the pull, so anything a reentrant call did is accounted for.
    ///      Touches one storage slot. Reverts once the channel is concluded, and if the channel's
    ///      deposits (both participants) would exceed MAX_CHANNEL_DEPOSITS.
    function deposit(Params calldata params, uint8 participant, uint256 amount) external payable {
        bytes32 id = _checkParams(params);
        if (participant > 1) revert InvalidParticipantIndex();
        if (amount == 0) revert ZeroAmount();
        uint256 credited;
        address asset = params.asset;
        if (asset == address(0)) {
            if (msg.value != amount) revert WrongMsgValue();
            credited = amount;
        } else {
            if (msg.value != 0) revert UnexpectedEther();
            credited = _pullIn(asset, amount);
            if (credited == 0) revert ZeroAmount();
        }
        Holdings storage h = _channels[id].holdings;
        if (h.flags & CONCLUDED != 0) revert ChannelConcluded();
        uint256 d0 = h.amount0;
        uint256 d1 = h.amount1;
        // d0 + d1 <= MAX_CHANNEL_DEPOSITS < 2**96 before; credited may be anything up to 2**256 - 1
        if (credited > MAX_CHANNEL_DEPOSITS - d0 - d1) revert AmountTooLarge();
        uint256 total;
        unchecked {
            total = (participant == 0 ? d0 : d1) + credited; // < 2**96 by the check above
        }
        if (participant == 0) h.amount0 = uint96(total);
        else h.amount1 = uint96(total);
        emit Deposited(id, participant, credited, total);
    }

    /// @dev The reentrancy-guarded part of an ERC-20 deposit: pull `amount` from the caller and return
    ///      the measured balance change.
    function _pullIn(address token, uint256 amount) private nonReentrant returns (uint256) {
        return AssetTransfer.pullIn(token, msg.sender, amount);
    }

    /// @inheritdoc IAssetHolder
    /// @dev Reverts (credit kept) if the transfer fails.
    function withdraw(address asset, address to) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        uint256 amount = _credits[asset][msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        _credits[asset][msg.sender] = 0;
        emit CreditWithdrawn(msg.sender, asset, to, amount);
        AssetTransfer.pull(asset, to, amount);
    }

    /// @inheritdoc IAssetHolder
    function credits(address asset, address account) external view returns (uint256) {
        return _credits[asset][account];
    }
}
