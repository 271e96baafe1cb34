// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params, Status} from "../interfaces/ChannelTypes.sol";
import {IAssetHolder} from "../interfaces/IAssetHolder.sol";
import {AssetTransfer} from "../libraries/AssetTransfer.sol";
import {ChannelStore} from "./ChannelStore.sol";

/// @title AssetHolder
/// @notice Deposits (ETH or the channel's ERC-20) and the pull of credits left by failed payouts.
abstract contract AssetHolder is IAssetHolder, ChannelStore {
    /// @inheritdoc IAssetHolder
    /// @dev ERC-20: credited with the measured balance change (the shared pool of a token must never
    ///      credit more than arrived: a fee-on-transfer token would otherwise drain other channels).
    ///      Reverts once the channel is concluded.
    function deposit(Params calldata params, uint8 participant, uint256 amount) external payable nonReentrant {
        bytes32 id = _checkParams(params);
        if (participant > 1) revert InvalidParticipantIndex();
        if (amount == 0) revert ZeroAmount();
        Record storage c = _channels[id];
        if (c.status == Status.Concluded) revert ChannelConcluded();
        uint256 credited;
        address asset = params.asset;
        if (asset == address(0)) {
            if (msg.value != amount) revert WrongMsgValue();
            credited = amount;
        } else {
            if (msg.value != 0) revert UnexpectedEther();
            credited = AssetTransfer.pullIn(asset, msg.sender, amount);
            if (credited == 0) revert ZeroAmount();
        }
        uint256 total = (participant == 0 ? c.amount0 : c.amount1) + credited;
        if (total > type(uint128).max) revert AmountTooLarge();
        if (participant == 0) c.amount0 = uint128(total);
        else c.amount1 = uint128(total);
        emit Deposited(id, participant, credited, total);
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
