// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Params, Status, ChannelView, Signature} from "../interfaces/ChannelTypes.sol";
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

    /// @inheritdoc IAdjudicatorBase
    /// @dev Every amount of a channel then fits the 96-bit fields of its record.
    uint256 public constant MAX_CHANNEL_DEPOSITS = type(uint96).max;

    /// @dev `Holdings.flags`: the channel is concluded.
    uint8 internal constant CONCLUDED = 1;
    /// @dev `Holdings.flags`: a partial withdrawal was executed (`Record.withdrawn` is in use).
    uint8 internal constant WITHDRAWALS = 2;
    /// @dev `Holdings.flags`: concluded with positions left open (`Record.hash` is their root).
    uint8 internal constant POSITIONS = 4;

    /// @dev Slot 0, the only slot a deposit or a cooperative close touches. While open: cumulative
    ///      deposits per participant. Once concluded: `amount0` is the collateral still locked and
    ///      `amount1` the concluded version. (All fit: a channel's deposits stay below 2**96.)
    struct Holdings {
        uint96 amount0;
        uint96 amount1;
        uint8 flags;
    }

    /// @dev Slot 1, written only by `register` and `checkpoint`. `deadline != 0` exactly while a
    ///      dispute is open; `version` is the registered (disputed) or last checkpointed (open) one.
    ///      Left as is by a cooperative close (the CONCLUDED flag overrides it).
    struct Dispute {
        uint64 version;
        uint64 deadline;
    }

    /// @dev Slot 3, in use only once a partial withdrawal was executed (flag WITHDRAWALS), so that a
    ///      channel without one never reads it. Cumulative executed withdrawals per participant, and
    ///      the version of the last one (no older state may be used on chain afterwards).
    struct Withdrawn {
        uint96 amount0;
        uint96 amount1;
        uint64 minVersion;
    }

    /// @dev Per-channel record. The layout follows what each operation needs, so a normal
    ///      lifecycle writes one slot per deposit and one per close (slot 0, already non-zero after
    ///      the first deposit), and reads no slot whose content cannot matter:
    ///      deposit: slot 0 | cooperative close: slot 0 (+ slot 3 if a withdrawal happened) |
    ///      register / checkpoint: slots 0, 1, 2 | partial withdrawal: slots 0, 1, 3 |
    ///      settlement: slots 0, 2.
    struct Record {
        Holdings holdings; // slot 0
        Dispute dispute; // slot 1
        bytes32 hash; // slot 2: disputed: the registered state's struct hash | concluded: positions root
        Withdrawn withdrawn; // slot 3
    }

    mapping(bytes32 channelId => Record) internal _channels;

    /// @dev Credits left by failed push payouts: asset => account => amount.
    mapping(address asset => mapping(address account => uint256)) internal _credits;

    constructor() EIP712("OptionChannels", "1") {}

    /// @inheritdoc IAdjudicatorBase
    function getChannel(bytes32 channelId) external view returns (ChannelView memory v) {
        Record storage c = _channels[channelId];
        Holdings memory h = c.holdings;
        if (h.flags & CONCLUDED != 0) {
            v.status = Status.Concluded;
            v.version = uint64(h.amount1);
            v.lockedRemaining = h.amount0;
            if (h.flags & POSITIONS != 0) v.positionsRoot = c.hash;
            return v;
        }
        Dispute memory d = c.dispute;
        v.status = d.deadline != 0 ? Status.Disputed : Status.Open;
        v.version = d.version;
        v.deadline = d.deadline;
        v.deposits0 = h.amount0;
        v.deposits1 = h.amount1;
        if (h.flags & WITHDRAWALS != 0) {
            Withdrawn memory w = c.withdrawn;
            v.withdrawn0 = w.amount0;
            v.withdrawn1 = w.amount1;
            v.minVersion = w.minVersion;
        }
        if (d.deadline != 0) v.stateHash = c.hash;
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
    function _checkSignatures(bytes32 structHash, Params calldata params, Signature calldata sig0, Signature calldata sig1)
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

    /// @dev The executed partial withdrawals of a channel whose slot 0 is `h` (zero if none).
    function _withdrawn(Record storage c, Holdings memory h) internal view returns (Withdrawn memory w) {
        if (h.flags & WITHDRAWALS != 0) w = c.withdrawn;
    }

    /// @dev Record `amount` as owed to `account` (pulled with `withdraw`).
    function _credit(bytes32 id, address asset, address account, uint256 amount) internal {
        _credits[asset][account] += amount;
        emit PayoutCredited(id, account, asset, amount);
    }
}
