// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IAdjudicator} from "./interfaces/IAdjudicator.sol";
import {ChannelHashing} from "./libraries/ChannelHashing.sol";
import {Signatures} from "./libraries/Signatures.sol";
import {PositionTree} from "./libraries/PositionTree.sol";
import {OptionPayoff} from "./libraries/OptionPayoff.sol";
import {AssetTransfer} from "./libraries/AssetTransfer.sol";

/// @title Adjudicator
/// @notice Holds the funds of every option channel (ETH or one ERC-20 per channel) and enforces the
///         on-chain rules of docs/PROTOCOL.md section 8: deposits, cooperative conclusion, disputes
///         (register / checkpoint / conclude after timeout), partial withdrawals, and settlement of the
///         positions left open in a concluded state.
/// @dev ReentrancyGuardTransient (OZ, EIP-1153) rather than ReentrancyGuard: same guard, ~5k gas less
///      per call because the lock lives in transient storage.
contract Adjudicator is IAdjudicator, EIP712, ReentrancyGuardTransient {
    /// @notice Shortest allowed challenge period (seconds).
    uint64 public constant MIN_CHALLENGE_PERIOD = 60;
    /// @notice Longest allowed challenge period (seconds).
    uint64 public constant MAX_CHALLENGE_PERIOD = 30 days;
    /// @notice Time after a position's expiry from which its collateral can be released to the writer.
    uint64 public constant SETTLEMENT_GRACE = 7 days;

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

    /// @notice Credits left by failed push payouts: asset => account => amount.
    mapping(address asset => mapping(address account => uint256)) public credits;

    constructor() EIP712("OptionChannels", "1") {}

    // ================================================================== deposits

    /// @inheritdoc IAdjudicator
    /// @dev ERC-20: credited with the measured balance change (the caller must have approved `amount`);
    ///      reverts UnexpectedEther if msg.value > 0. ETH: msg.value must equal `amount`.
    ///      Anyone may fund either participant. Reverts once the channel is concluded.
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

    // ================================================================== conclusion

    /// @inheritdoc IAdjudicator
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

    /// @inheritdoc IAdjudicator
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

    /// @inheritdoc IAdjudicator
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

    /// @inheritdoc IAdjudicator
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

    // ================================================================== partial withdrawal

    /// @inheritdoc IAdjudicator
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
        if (!AssetTransfer.tryPush(asset, withdrawal.recipient, amount)) {
            _credit(id, asset, participant == 0 ? params.participant0 : params.participant1, amount);
        }
    }

    // ================================================================== positions

    /// @inheritdoc IAdjudicator
    /// @dev Needs a concluded channel, `now >= position.expiry`, an attestation for the position's
    ///      (underlying, expiry) signed by `params.oracle`, and a proof of the position's leaf against
    ///      the current positions root. The leaf is then replaced by bytes32(0) in the root (so each
    ///      position settles once; proofs of other positions must be computed against the new root).
    ///      Pays the holder its payoff and the writer the rest of the collateral (never more in total
    ///      than the collateral still locked).
    function settlePosition(
        Params calldata params,
        Position calldata position,
        bytes32[] calldata proof,
        Attestation calldata attestation,
        bytes calldata oracleSig
    ) external nonReentrant {
        bytes32 id = ChannelHashing.channelId(params);
        Record storage c = _channels[id];
        if (c.status != Status.Concluded) revert ChannelNotConcluded();
        if (block.timestamp < position.expiry) revert NotExpired();
        if (attestation.underlying != position.underlying || attestation.expiry != position.expiry) {
            revert WrongAttestation();
        }
        address signer = Signatures.recover(_hashTypedDataV4(ChannelHashing.hashAttestation(attestation)), oracleSig);
        if (signer != params.oracle) revert WrongOracle(signer);
        _settle(id, c, params, position, proof, attestation.price);
    }

    /// @inheritdoc IAdjudicator
    /// @dev Fallback when no attestation was used: from `expiry + SETTLEMENT_GRACE` on, anyone may return
    ///      the position's collateral (capped by what is still locked) to its writer.
    function releaseUnsettled(Params calldata params, Position calldata position, bytes32[] calldata proof)
        external
        nonReentrant
    {
        bytes32 id = ChannelHashing.channelId(params);
        Record storage c = _channels[id];
        if (c.status != Status.Concluded) revert ChannelNotConcluded();
        if (block.timestamp < uint256(position.expiry) + SETTLEMENT_GRACE) revert SettlementGraceNotOver();
        (uint256 collateral, bytes32 newRoot) = _removePosition(c, position, proof);
        emit PositionReleased(id, position.id, collateral, newRoot);
        _pay(id, params.asset, position.writer == 0 ? params.participant0 : params.participant1, collateral);
    }

    // ================================================================== pull

    /// @inheritdoc IAdjudicator
    /// @dev Sends the caller's whole credit of `asset` to `to` with all gas; reverts (credit kept) on failure.
    function withdraw(address asset, address to) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        uint256 amount = credits[asset][msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        credits[asset][msg.sender] = 0;
        emit CreditWithdrawn(msg.sender, asset, to, amount);
        AssetTransfer.pull(asset, to, amount);
    }

    // ================================================================== views

    /// @notice The decoded on-chain record of `channelId`.
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

    /// @notice keccak256(abi.encode(params)).
    function channelIdOf(Params calldata params) external pure returns (bytes32) {
        return ChannelHashing.channelId(params);
    }

    /// @notice The EIP-712 domain separator of this deployment.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice The EIP-712 digest both participants sign for `state`.
    function stateDigest(State calldata state) external view returns (bytes32) {
        return _hashTypedDataV4(ChannelHashing.hashState(state));
    }

    /// @notice The EIP-712 digest both participants sign for `withdrawal`.
    function withdrawalDigest(Withdrawal calldata withdrawal) external view returns (bytes32) {
        return _hashTypedDataV4(ChannelHashing.hashWithdrawal(withdrawal));
    }

    /// @notice The EIP-712 digest the oracle signs for `attestation`.
    function attestationDigest(Attestation calldata attestation) external view returns (bytes32) {
        return _hashTypedDataV4(ChannelHashing.hashAttestation(attestation));
    }

    // ================================================================== internals

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

    /// @dev Both participants must have signed the EIP-712 digest of `structHash`.
    function _checkSignatures(bytes32 structHash, Params calldata params, bytes calldata sig0, bytes calldata sig1)
        internal
        view
    {
        bytes32 digest = _hashTypedDataV4(structHash);
        Signatures.requireSigner(digest, sig0, params.participant0);
        Signatures.requireSigner(digest, sig1, params.participant1);
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

    /// @dev Prove `position` against the current root, zero its leaf, and release its collateral
    ///      (capped by what is still locked) from the locked total.
    function _removePosition(Record storage c, Position calldata position, bytes32[] calldata proof)
        internal
        returns (uint256 collateral, bytes32 newRoot)
    {
        if (position.writer > 1) revert InvalidWriter();
        bytes32 root = c.hash;
        if (PositionTree.rootWith(proof, PositionTree.leaf(position)) != root) {
            if (PositionTree.rootWith(proof, bytes32(0)) == root) revert AlreadySettled();
            revert InvalidProof();
        }
        newRoot = PositionTree.rootWith(proof, bytes32(0));
        uint256 remaining = c.amount0;
        collateral = position.collateral < remaining ? position.collateral : remaining;
        c.amount0 = uint128(remaining - collateral);
        c.hash = newRoot;
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

    /// @dev Remove a proven position, split its collateral at `price` and pay holder and writer.
    function _settle(
        bytes32 id,
        Record storage c,
        Params calldata params,
        Position calldata position,
        bytes32[] calldata proof,
        uint256 price
    ) internal {
        (uint256 collateral, bytes32 newRoot) = _removePosition(c, position, proof);
        (uint256 toHolder, uint256 toWriter) = OptionPayoff.split(position, collateral, price, params.assetDecimals);
        emit PositionSettled(id, position.id, price, toHolder, toWriter, newRoot);
        (address writer, address holder) = position.writer == 0
            ? (params.participant0, params.participant1)
            : (params.participant1, params.participant0);
        _pay(id, params.asset, holder, toHolder);
        _pay(id, params.asset, writer, toWriter);
    }

    /// @dev Push `amount` to `to`; on failure credit it to `to` (pull later with `withdraw`).
    function _pay(bytes32 id, address asset, address to, uint256 amount) internal {
        if (amount == 0) return;
        if (!AssetTransfer.tryPush(asset, to, amount)) _credit(id, asset, to, amount);
    }

    function _credit(bytes32 id, address asset, address account, uint256 amount) internal {
        credits[asset][account] += amount;
        emit PayoutCredited(id, account, asset, amount);
    }
}
