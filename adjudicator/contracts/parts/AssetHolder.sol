// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAssetHolder} from "../interfaces/IAssetHolder.sol";
import {AssetTransfer} from "../libraries/AssetTransfer.sol";
import {ChannelHashing} from "../libraries/ChannelHashing.sol";
import {ChannelStore} from "./ChannelStore.sol";

/// @title AssetHolder
/// @notice Deposits (ETH or the channel's ERC-20) and the pull of credits left by failed payouts.
abstract contract AssetHolder is IAssetHolder, ChannelStore {
    /// @inheritdoc IAssetHolder
    /// @dev No params are sent (they are checked where they matter: conclude, register, checkpoint,
    ///      withdrawPartial): the record key is derived here from `paramsHash` and the asset (ETH), so
    ///      the deposit can only be credited to a channel whose params name ETH. Makes no external
    ///      call, so it takes no reentrancy lock. Touches one storage slot.
    function depositEth(bytes32 paramsHash, uint8 participant) external payable {
        if (msg.value == 0) revert ZeroAmount();
        if (participant > 1) revert InvalidParticipantIndex();
        _creditDeposit(ChannelHashing.channelIdFor(paramsHash, address(0)), participant, msg.value);
    }

    /// @inheritdoc IAssetHolder
    /// @dev Credited with the measured balance change (the shared pool of a token must never credit
    ///      more than arrived: a fee-on-transfer token would otherwise drain other channels). Only the
    ///      token pull is guarded against reentrancy; the record is read after the pull, so anything a
    ///      reentrant call did is accounted for. The record key is derived from `paramsHash` and
    ///      `token`: the deposit can only be credited to a channel whose params name `token`.
    function depositToken(bytes32 paramsHash, address token, uint8 participant, uint256 amount) external payable {
        if (token == address(0)) revert ZeroAddress();
        if (msg.value != 0) revert UnexpectedEther();
        if (amount == 0) revert ZeroAmount();
        if (participant > 1) revert InvalidParticipantIndex();
        uint256 credited = _pullIn(token, amount);
        if (credited == 0) revert ZeroAmount();
        _creditDeposit(ChannelHashing.channelIdFor(paramsHash, token), participant, credited);
    }

    /// @dev Add `credited` to `participant`'s deposits in the record `id`. Reverts once the channel is
    ///      concluded, and if the channel's deposits (both participants) would exceed
    ///      MAX_CHANNEL_DEPOSITS.
    ///      The slot is read and written as one word (the compiler re-read and wrote it field by
    ///      field): `amount0` is bits 0-95, `amount1` bits 96-191, `flags` bits 192-199
    ///      (tests/contract/test_record_layout.py reads the same layout back from storage).
    function _creditDeposit(bytes32 id, uint8 participant, uint256 credited) private {
        Holdings storage h = _channels[id].holdings;
        uint256 word;
        assembly ("memory-safe") {
            word := sload(h.slot)
        }
        if ((word >> 192) & CONCLUDED != 0) revert ChannelConcluded();
        // d0 + d1 <= MAX_CHANNEL_DEPOSITS < 2**96 before; credited may be anything up to 2**256 - 1
        if (credited > MAX_CHANNEL_DEPOSITS - (word & type(uint96).max) - ((word >> 96) & type(uint96).max)) {
            revert AmountTooLarge();
        }
        unchecked {
            // The participant's field stays below 2**96 (check above): nothing carries into the next.
            word += credited << (96 * participant);
        }
        assembly ("memory-safe") {
            sstore(h.slot, word)
        }
        if (participant == 0) emit Deposited0(id, credited);
        else emit Deposited1(id, credited);
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
