// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Params, State, Status, ChannelView} from "../interfaces/ChannelTypes.sol";
import {IAdjudicatorBase} from "../interfaces/IAdjudicatorBase.sol";
import {ChannelHashing} from "../libraries/ChannelHashing.sol";
import {Signatures} from "../libraries/Signatures.sol";
import {AssetTransfer} from "../libraries/AssetTransfer.sol";

/// @title ChannelStore
/// @notice The storage every part of the adjudicator works on (one record per channel, the credits of
///         failed payouts), the checks they share, the payout helper and the read-only views.
/// @dev ReentrancyGuardTransient (OZ, EIP-1153) rather than ReentrancyGuard: same guard, the lock lives
///      in transient storage.
abstract contract ChannelStore is IAdjudicatorBase, EIP712, ReentrancyGuardTransient {
    /// @inheritdoc IAdjudicatorBase
    uint64 public constant MIN_CHALLENGE_PERIOD = 60;
    /// @inheritdoc IAdjudicatorBase
    uint64 public constant MAX_CHALLENGE_PERIOD = 30 days;

    /// @dev Per-channel record, four slots. Once concluded, slot 0 holds the collateral still locked
    ///      (`amount0`) and slot 3 the current positions root: reusing slots that are already non-zero
    ///      costs 2,900 gas per write instead of 20,000 for fresh ones.
    struct Record {
        // slot 0
        uint128 amount0; // open: cumulative deposits of participant 0 | concluded: collateral still locked
        uint128 amount1; // open: cumulative deposits of participant 1 | concluded: 0
        // slot 1
        uint128 withdrawn0; // cumulative executed partial withdrawals (0 once concluded)
        uint128 withdrawn1;
        // slot 2: the dispute record
        uint64 version;
        uint64 deadline;
        uint64 minVersion; // version of the last executed partial withdrawal
        Status status;
        // slot 3
        bytes32 hash; // disputed: registered state's struct hash | concluded: positions root
    }

    mapping(bytes32 channelId => Record) internal _channels;

    /// @dev Credits left by failed push payouts: asset => account => amount.
    mapping(address asset => mapping(address account => uint256)) internal _credits;

    constructor() EIP712("OptionChannels", "1") {}

    /// @inheritdoc IAdjudicatorBase
    function getChannel(bytes32 channelId) external view returns (ChannelView memory v) {
        Record storage c = _channels[channelId];
        v.status = c.status;
        v.version = c.version;
        v.deadline = c.deadline;
        v.minVersion = c.minVersion;
        if (c.status == Status.Concluded) {
            v.positionsRoot = c.hash;
            v.lockedRemaining = c.amount0;
        } else {
            v.deposits0 = c.amount0;
            v.deposits1 = c.amount1;
            v.withdrawn0 = c.withdrawn0;
            v.withdrawn1 = c.withdrawn1;
            v.stateHash = c.hash;
        }
    }

    /// @inheritdoc IAdjudicatorBase
    function channelIdOf(Params calldata params) external pure returns (bytes32) {
        return ChannelHashing.channelId(params);
    }

    /// @inheritdoc IAdjudicatorBase
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @dev Validate params (PROTOCOL.md section 3) and return the channel id.
    function _checkParams(Params calldata params) internal view returns (bytes32) {
        address p0 = params.participant0;
        address p1 = params.participant1;
        if (p0 == address(0) || p1 == address(0) || p0 == p1) revert InvalidParticipants();
        uint64 period = params.challengePeriod;
        if (period < MIN_CHALLENGE_PERIOD || period > MAX_CHALLENGE_PERIOD) revert InvalidChallengePeriod();
        if (params.chainId != block.chainid) revert WrongChainId();
        if (params.adjudicator != address(this)) revert WrongAdjudicator();
        return ChannelHashing.channelId(params);
    }

    /// @dev Both participants must have signed the EIP-712 digest of `structHash`.
    function _checkSignatures(bytes32 structHash, Params calldata params, bytes calldata sig0, bytes calldata sig1)
        internal
        view
    {
        bytes32 digest = _hashTypedDataV4(structHash);
        Signatures.requireSigner(digest, sig0, params.participant0);
        Signatures.requireSigner(digest, sig1, params.participant1);
    }

    /// @dev Push `amount` to `to`; whatever the push did not pay is credited to `to` (pulled later with
    ///      `withdraw`): one payout is either paid or credited, never both.
    function _pay(bytes32 id, address asset, address to, uint256 amount) internal {
        if (amount == 0) return;
        uint256 unpaid = AssetTransfer.tryPush(asset, to, amount);
        if (unpaid != 0) _credit(id, asset, to, unpaid);
    }

    /// @dev Record `amount` as owed to `account` (pulled with `withdraw`).
    function _credit(bytes32 id, address asset, address account, uint256 amount) internal {
        _credits[asset][account] += amount;
        emit PayoutCredited(id, account, asset, amount);
    }
}
