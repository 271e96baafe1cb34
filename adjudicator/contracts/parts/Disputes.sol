// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params, State, Status} from "../interfaces/ChannelTypes.sol";
import {IDisputes} from "../interfaces/IDisputes.sol";
import {ChannelHashing} from "../libraries/ChannelHashing.sol";
import {ChannelStore} from "./ChannelStore.sol";

/// @title Disputes
/// @notice Cooperative conclusion, and the dispute game: register, refute, checkpoint, conclude after
///         the challenge period. Conclusion pays both participants and keeps what settlement needs.
abstract contract Disputes is IDisputes, ChannelStore {
    /// @inheritdoc IDisputes
    /// @dev Needs `state.isFinal`, no positions and no locked collateral, both signatures, a version not
    ///      older than the last executed partial withdrawal. Allowed while open or disputed.
    function conclude(Params calldata params, State calldata state, bytes calldata sig0, bytes calldata sig1)
        external
        nonReentrant
    {
        if (!state.isFinal) revert NotFinal();
        if (state.locked != 0 || state.positionCount != 0 || state.positionsRoot != bytes32(0)) {
            revert PositionsInFinalState();
        }
        bytes32 id = _checkParams(params);
        if (state.channelId != id) revert WrongChannelId();
        Record storage c = _channels[id];
        if (c.status == Status.Concluded) revert ChannelConcluded();
        if (state.version < c.minVersion) revert StateBeforeWithdrawal();
        _checkConservation(state);
        _checkSignatures(ChannelHashing.hashState(state), params, sig0, sig1);
        _finalize(id, c, params, state, c.status == Status.Disputed);
    }

    /// @inheritdoc IDisputes
    /// @dev Open channel: `state.version` must be >= the last checkpointed version; starts a dispute with
    ///      deadline = now + challengePeriod. Disputed channel, before the deadline: the state must be
    ///      strictly newer and replaces the registered one; the deadline is kept. Registering exactly the
    ///      registered state again returns without effect (so a front-run copy cannot make it revert).
    function register(Params calldata params, State calldata state, bytes calldata sig0, bytes calldata sig1)
        external
        nonReentrant
    {
        bytes32 id = _checkParams(params);
        if (state.channelId != id) revert WrongChannelId();
        Record storage c = _channels[id];
        Status status = c.status;
        uint64 recorded = c.version;
        bytes32 h = ChannelHashing.hashState(state);
        uint64 deadline;
        if (status == Status.Disputed) {
            if (state.version == recorded && h == c.hash) return; // the registered state again: no-op
            deadline = c.deadline;
            if (block.timestamp >= deadline) revert ChallengeExpired();
            if (state.version <= recorded) {
                if (state.version == recorded) revert EquivocatingState();
                revert NotNewerVersion(recorded, state.version);
            }
        } else {
            if (status == Status.Concluded) revert ChannelConcluded();
            if (state.version < recorded) revert NotNewerVersion(recorded, state.version);
            deadline = uint64(block.timestamp) + params.challengePeriod;
        }
        if (state.version < c.minVersion) revert StateBeforeWithdrawal();
        _checkConservation(state);
        _checkSignatures(h, params, sig0, sig1);
        c.version = state.version;
        c.deadline = deadline;
        c.status = Status.Disputed;
        c.hash = h;
        emit Registered(id, state.version, deadline, h);
    }

    /// @inheritdoc IDisputes
    /// @dev The state must be strictly newer than the on-chain record (registered or last checkpointed
    ///      version) and, if disputed, arrive before the deadline. The channel becomes Open with the
    ///      state's version as its record (older states can no longer be registered). A state with the
    ///      version already recorded on an open channel is a no-op.
    function checkpoint(Params calldata params, State calldata state, bytes calldata sig0, bytes calldata sig1)
        external
        nonReentrant
    {
        bytes32 id = _checkParams(params);
        if (state.channelId != id) revert WrongChannelId();
        Record storage c = _channels[id];
        Status status = c.status;
        uint64 recorded = c.version;
        if (status == Status.Concluded) revert ChannelConcluded();
        if (status == Status.Disputed) {
            if (block.timestamp >= c.deadline) revert ChallengeExpired();
        } else if (state.version == recorded) {
            return; // already recorded: no-op
        }
        if (state.version <= recorded) revert NotNewerVersion(recorded, state.version);
        if (state.version < c.minVersion) revert StateBeforeWithdrawal();
        _checkConservation(state);
        _checkSignatures(ChannelHashing.hashState(state), params, sig0, sig1);
        c.version = state.version;
        c.deadline = 0;
        c.status = Status.Open;
        if (status == Status.Disputed) c.hash = bytes32(0);
        emit Checkpointed(id, state.version);
    }

    /// @inheritdoc IDisputes
    /// @dev Anyone may call it once the deadline has passed, with the registered state (hash checked).
    function concludeAfterTimeout(Params calldata params, State calldata state) external nonReentrant {
        bytes32 id = ChannelHashing.channelId(params);
        Record storage c = _channels[id];
        Status status = c.status;
        if (status != Status.Disputed) {
            if (status == Status.Concluded) revert ChannelConcluded();
            revert NotDisputed();
        }
        if (block.timestamp < c.deadline) revert ChallengeNotExpired();
        // The stored hash covers channelId, so this also binds `params` to the channel.
        if (ChannelHashing.hashState(state) != c.hash) revert NotRegisteredState();
        _finalize(id, c, params, state, true);
    }

    /// @inheritdoc IDisputes
    function stateDigest(State calldata state) external view returns (bytes32) {
        return _hashTypedDataV4(ChannelHashing.hashState(state));
    }

    /// @dev balance0 + balance1 + locked == deposited0 + deposited1 - withdrawn0 - withdrawn1, without
    ///      wrapping (any overflow is a violation).
    function _checkConservation(State calldata s) internal pure {
        unchecked {
            uint256 held = s.balance0 + s.balance1;
            bool bad = held < s.balance0;
            uint256 total = held + s.locked;
            bad = bad || total < held;
            uint256 deposited = s.deposited0 + s.deposited1;
            bad = bad || deposited < s.deposited0;
            uint256 withdrawn = s.withdrawn0 + s.withdrawn1;
            bad = bad || withdrawn < s.withdrawn0 || withdrawn > deposited;
            if (bad || total != deposited - withdrawn) revert ConservationViolated();
        }
    }

    /// @dev Compute the payouts of `state`, mark the channel concluded (keeping only what settlement
    ///      needs), then pay both participants.
    ///      `hashSet`: slot 3 holds a registered state's hash (the channel is disputed); an open channel's
    ///      slot 3 is already zero and is only written when positions stay locked (saves a cold SSTORE).
    function _finalize(bytes32 id, Record storage c, Params calldata params, State calldata state, bool hashSet)
        internal
    {
        uint256 d0 = c.amount0;
        uint256 d1 = c.amount1;
        uint256 x0 = c.withdrawn0;
        uint256 x1 = c.withdrawn1;
        if (state.deposited0 > d0 || state.deposited1 > d1) revert UnderfundedState();
        if (state.withdrawn0 < x0 || state.withdrawn1 < x1) revert StateBeforeWithdrawal();
        // By conservation payout0 + payout1 + locked == d0 + d1 - x0 - x1: never more than the holdings.
        uint256 payout0 = state.balance0 + (d0 - state.deposited0) + (state.withdrawn0 - x0);
        uint256 payout1 = state.balance1 + (d1 - state.deposited1) + (state.withdrawn1 - x1);
        uint256 locked = state.locked; // < 2**129 by the identity above; must fit amount0
        if (locked > type(uint128).max) revert AmountTooLarge();

        c.amount0 = uint128(locked);
        c.amount1 = 0;
        c.withdrawn0 = 0;
        c.withdrawn1 = 0;
        c.version = state.version;
        c.deadline = 0;
        c.minVersion = 0;
        c.status = Status.Concluded;
        if (locked != 0) c.hash = state.positionsRoot;
        else if (hashSet) c.hash = bytes32(0);

        emit Concluded(id, state.version, payout0, payout1);
        if (locked != 0) emit PositionsLocked(id, state.positionsRoot, locked);
        _pay(id, params.asset, params.participant0, payout0);
        _pay(id, params.asset, params.participant1, payout1);
    }
}
