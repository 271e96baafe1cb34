// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params, State, Signature} from "../interfaces/ChannelTypes.sol";
import {IDisputes} from "../interfaces/IDisputes.sol";
import {ChannelHashing} from "../libraries/ChannelHashing.sol";
import {ChannelStore} from "./ChannelStore.sol";

/// @title Disputes
/// @notice Cooperative conclusion, and the dispute game: register, refute, checkpoint, conclude after
///         the challenge period. Conclusion pays both participants and keeps what settlement needs.
abstract contract Disputes is IDisputes, ChannelStore {
    /// @inheritdoc IDisputes
    /// @dev Needs `state.isFinal`, no positions and no locked collateral, both signatures, a version not
    ///      older than the last executed partial withdrawal. Allowed while open or disputed. Reads and
    ///      writes slot 0 only (and clears slot 3 if a partial withdrawal was executed); a dispute
    ///      record left behind is dead once the CONCLUDED flag is set.
    function conclude(Params calldata params, State calldata state, Signature calldata sig0, Signature calldata sig1)
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
        Holdings memory h = c.holdings;
        if (h.flags & CONCLUDED != 0) revert ChannelConcluded();
        Withdrawn memory w = _withdrawn(c, h);
        if (state.version < w.minVersion) revert StateBeforeWithdrawal();
        _checkConservation(state);
        _checkSignatures(ChannelHashing.hashState(state), params, sig0, sig1);
        _finalize(id, c, h, w, params, state, false);
    }

    /// @inheritdoc IDisputes
    /// @dev Open channel: `state.version` must be >= the last checkpointed version; starts a dispute with
    ///      deadline = now + challengePeriod. Disputed channel, before the deadline: the state must be
    ///      strictly newer and replaces the registered one; the deadline is kept. Registering exactly the
    ///      registered state again returns without effect (so a front-run copy cannot make it revert).
    ///      No external call, hence no reentrancy guard.
    function register(Params calldata params, State calldata state, Signature calldata sig0, Signature calldata sig1)
        external
    {
        bytes32 id = _checkParams(params);
        if (state.channelId != id) revert WrongChannelId();
        Record storage c = _channels[id];
        Holdings memory h = c.holdings;
        if (h.flags & CONCLUDED != 0) revert ChannelConcluded();
        Dispute memory d = c.dispute;
        bytes32 stateHash = ChannelHashing.hashState(state);
        uint64 deadline;
        if (d.deadline != 0) {
            if (state.version == d.version && stateHash == c.hash) return; // the registered state again
            deadline = d.deadline;
            if (block.timestamp >= deadline) revert ChallengeExpired();
            if (state.version <= d.version) {
                if (state.version == d.version) revert EquivocatingState();
                revert NotNewerVersion(d.version, state.version);
            }
        } else {
            if (state.version < d.version) revert NotNewerVersion(d.version, state.version);
            deadline = uint64(block.timestamp) + params.challengePeriod;
        }
        if (state.version < _withdrawn(c, h).minVersion) revert StateBeforeWithdrawal();
        _checkConservation(state);
        _checkSignatures(stateHash, params, sig0, sig1);
        c.dispute = Dispute(state.version, deadline);
        c.hash = stateHash;
        emit Registered(id, state.version, deadline, stateHash);
    }

    /// @inheritdoc IDisputes
    /// @dev The state must be strictly newer than the on-chain record (registered or last checkpointed
    ///      version) and, if disputed, arrive before the deadline. The channel becomes Open with the
    ///      state's version as its record (older states can no longer be registered). A state with the
    ///      version already recorded on an open channel is a no-op. No external call, hence no guard.
    function checkpoint(Params calldata params, State calldata state, Signature calldata sig0, Signature calldata sig1)
        external
    {
        bytes32 id = _checkParams(params);
        if (state.channelId != id) revert WrongChannelId();
        Record storage c = _channels[id];
        Holdings memory h = c.holdings;
        if (h.flags & CONCLUDED != 0) revert ChannelConcluded();
        Dispute memory d = c.dispute;
        bool disputed = d.deadline != 0;
        if (disputed) {
            if (block.timestamp >= d.deadline) revert ChallengeExpired();
        } else if (state.version == d.version) {
            return; // already recorded: no-op
        }
        if (state.version <= d.version) revert NotNewerVersion(d.version, state.version);
        if (state.version < _withdrawn(c, h).minVersion) revert StateBeforeWithdrawal();
        _checkConservation(state);
        _checkSignatures(ChannelHashing.hashState(state), params, sig0, sig1);
        c.dispute = Dispute(state.version, 0);
        if (disputed) c.hash = bytes32(0);
        emit Checkpointed(id, state.version);
    }

    /// @inheritdoc IDisputes
    /// @dev Anyone may call it once the deadline has passed, with the registered state (hash checked).
    function concludeAfterTimeout(Params calldata params, State calldata state) external nonReentrant {
        bytes32 id = ChannelHashing.channelId(params);
        Record storage c = _channels[id];
        Holdings memory h = c.holdings;
        if (h.flags & CONCLUDED != 0) revert ChannelConcluded();
        uint64 deadline = c.dispute.deadline;
        if (deadline == 0) revert NotDisputed();
        if (block.timestamp < deadline) revert ChallengeNotExpired();
        // The stored hash covers channelId, so this also binds `params` to the channel.
        if (ChannelHashing.hashState(state) != c.hash) revert NotRegisteredState();
        _finalize(id, c, h, _withdrawn(c, h), params, state, true);
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

    /// @dev Compute the payouts of `state` from the on-chain holdings `h` and executed withdrawals `w`,
    ///      record the conclusion in slot 0 (keeping what settlement needs), clear what is no longer
    ///      needed (refunds), then pay both participants.
    ///      `disputed`: slots 1 and 2 hold a dispute (concludeAfterTimeout); a cooperative close does
    ///      not read them and leaves them (dead under the CONCLUDED flag).
    function _finalize(
        bytes32 id,
        Record storage c,
        Holdings memory h,
        Withdrawn memory w,
        Params calldata params,
        State calldata state,
        bool disputed
    ) internal {
        uint256 d0 = h.amount0;
        uint256 d1 = h.amount1;
        if (state.deposited0 > d0 || state.deposited1 > d1) revert UnderfundedState();
        if (state.withdrawn0 < w.amount0 || state.withdrawn1 < w.amount1) revert StateBeforeWithdrawal();
        // By conservation payout0 + payout1 + locked == d0 + d1 - x0 - x1: never more than the holdings,
        // so locked < 2**96 (deposits are capped) and fits amount0.
        uint256 payout0 = state.balance0 + (d0 - state.deposited0) + (state.withdrawn0 - w.amount0);
        uint256 payout1 = state.balance1 + (d1 - state.deposited1) + (state.withdrawn1 - w.amount1);
        uint256 locked = state.locked;
        if (locked > type(uint96).max) revert AmountTooLarge(); // unreachable by the identity above

        c.holdings = Holdings(uint96(locked), uint96(state.version), CONCLUDED | (locked != 0 ? POSITIONS : 0));
        if (h.flags & WITHDRAWALS != 0) delete c.withdrawn;
        if (disputed) {
            delete c.dispute;
            c.hash = locked != 0 ? state.positionsRoot : bytes32(0);
        }

        emit Concluded(id, state.version, payout0, payout1);
        if (locked != 0) emit PositionsLocked(id, state.positionsRoot, locked);
        _pay(id, params.asset, params.participant0, payout0);
        _pay(id, params.asset, params.participant1, payout1);
    }
}
