// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title IAdjudicator
/// @notice Types, events, errors and entry points of the option-channels adjudicator
///         (docs/PROTOCOL.md sections 3-8). Field order of every struct is the EIP-712 / abi.encode
///         order of the specification: do not reorder.
interface IAdjudicator {
    /// @notice Fixed channel parameters; `channelId = keccak256(abi.encode(params))`.
    struct Params {
        uint256 chainId;
        address adjudicator;
        address asset; // address(0) = ETH
        uint8 assetDecimals;
        address participant0; // the leader
        address participant1;
        uint64 challengePeriod;
        address oracle;
        uint256 nonce;
    }

    /// @notice A channel state, signed by both participants (EIP-712 type `State`).
    struct State {
        bytes32 channelId;
        uint64 version;
        uint256 balance0;
        uint256 balance1;
        uint256 deposited0;
        uint256 deposited1;
        uint256 withdrawn0;
        uint256 withdrawn1;
        uint256 locked;
        bytes32 positionsRoot;
        uint32 positionCount;
        bool isFinal;
    }

    /// @notice An open option position (a leaf of the positions tree, PROTOCOL.md section 5).
    struct Position {
        uint64 id;
        bytes32 underlying;
        uint8 kind; // 0 = call, 1 = put
        uint256 strike;
        uint64 expiry;
        uint256 quantity;
        uint8 writer; // participant index of the writer; the other one is the holder
        uint256 collateral;
    }

    /// @notice A price statement signed by the channel's oracle (EIP-712 type `Attestation`).
    struct Attestation {
        bytes32 underlying;
        uint64 expiry;
        uint256 price;
    }

    /// @notice A co-signed partial withdrawal (EIP-712 type `Withdrawal`).
    struct Withdrawal {
        bytes32 channelId;
        uint64 version;
        uint8 participant;
        uint256 amount;
        address recipient;
    }

    /// @notice Lifecycle of a channel record.
    enum Status {
        Open,
        Disputed,
        Concluded
    }

    /// @notice Decoded view of a channel's on-chain record (see `getChannel`).
    struct ChannelView {
        Status status;
        uint64 version; // registered (Disputed), last checkpointed (Open) or concluded version
        uint64 deadline; // challenge deadline while Disputed, else 0
        uint64 minVersion; // version of the last executed partial withdrawal
        uint256 deposits0; // cumulative on-chain deposits (0 once concluded)
        uint256 deposits1;
        uint256 withdrawn0; // cumulative executed partial withdrawals (0 once concluded)
        uint256 withdrawn1;
        bytes32 stateHash; // EIP-712 struct hash of the registered state while Disputed
        bytes32 positionsRoot; // once concluded: root with every settled/released leaf zeroed
        uint256 lockedRemaining; // once concluded: collateral not yet settled/released
    }

    // ------------------------------------------------------------------ events

    /// @notice `amount` (as measured) was credited to `participant`; `total` is its cumulative deposit.
    event Deposited(bytes32 indexed channelId, uint8 indexed participant, uint256 amount, uint256 total);
    /// @notice A state was registered: a dispute started or the registered state was replaced.
    event Registered(bytes32 indexed channelId, uint64 version, uint64 deadline, bytes32 stateHash);
    /// @notice A fully signed state newer than the on-chain record was recorded; any dispute is cleared.
    event Checkpointed(bytes32 indexed channelId, uint64 version);
    /// @notice The channel is concluded with `version`; payouts to participants (credited or paid).
    event Concluded(bytes32 indexed channelId, uint64 version, uint256 payout0, uint256 payout1);
    /// @notice Emitted on conclusion when positions remain open for settlement.
    event PositionsLocked(bytes32 indexed channelId, bytes32 positionsRoot, uint256 locked);
    /// @notice A partial withdrawal was executed (`amount` to `recipient`, or credited on failure).
    event PartialWithdrawal(
        bytes32 indexed channelId, uint64 version, uint8 indexed participant, uint256 amount, address recipient
    );
    /// @notice A position was settled with an oracle price; `newRoot` has the position's leaf zeroed.
    event PositionSettled(
        bytes32 indexed channelId,
        uint64 indexed positionId,
        uint256 price,
        uint256 holderPayout,
        uint256 writerPayout,
        bytes32 newRoot
    );
    /// @notice A position was released without a price after the grace period (collateral to writer).
    event PositionReleased(bytes32 indexed channelId, uint64 indexed positionId, uint256 collateral, bytes32 newRoot);
    /// @notice A push payout failed; `amount` stays credited to `account` and can be pulled with `withdraw`.
    event PayoutCredited(bytes32 indexed channelId, address indexed account, address asset, uint256 amount);
    /// @notice `account` pulled its credit of `asset` to `to`.
    event CreditWithdrawn(address indexed account, address indexed asset, address to, uint256 amount);

    // ------------------------------------------------------------------ errors

    // parameters and inputs
    error InvalidParticipants(); // zero or identical participant addresses
    error InvalidChallengePeriod(); // outside [MIN_CHALLENGE_PERIOD, MAX_CHALLENGE_PERIOD]
    error WrongChainId(); // params.chainId != block.chainid
    error WrongAdjudicator(); // params.adjudicator != address(this)
    error WrongChannelId(); // state/withdrawal channelId != keccak256(abi.encode(params))
    error InvalidParticipantIndex(); // participant index not 0 or 1
    error ZeroAmount();
    error AmountTooLarge(); // an amount or cumulative total above 2**128 - 1
    error WrongMsgValue(); // ETH deposit with msg.value != amount
    error UnexpectedEther(); // ERC-20 deposit with msg.value > 0
    error ZeroAddress(); // recipient / destination is address(0)
    // signatures
    error InvalidSignature(); // malformed: length != 65, v not 27/28, r or s zero, ecrecover == 0
    error HighS(); // s in the upper half of the curve order (malleable twin)
    error WrongSigner(address expected, address recovered);
    error WrongOracle(address recovered);
    // states
    error ConservationViolated(); // balance0 + balance1 + locked != deposited - withdrawn
    error NotFinal();
    error PositionsInFinalState(); // a final state with locked collateral or positions
    error UnderfundedState(); // state.deposited_i > on-chain deposits_i
    error StateBeforeWithdrawal(); // state older than (or not debiting) an executed partial withdrawal
    error NotNewerVersion(uint64 recorded, uint64 given);
    error EquivocatingState(); // a different state with the same version as the registered one
    error NotRegisteredState(); // concludeAfterTimeout with a state that is not the registered one
    // lifecycle
    error ChannelConcluded();
    error ChannelNotConcluded();
    error NotDisputed();
    error ChallengeOngoing(); // partial withdrawal while a dispute is open
    error ChallengeExpired(); // register/checkpoint at or after the deadline
    error ChallengeNotExpired(); // concludeAfterTimeout before the deadline
    // partial withdrawals
    error WithdrawalNotNewer(uint64 lastExecuted, uint64 given);
    error InsufficientHoldings();
    // settlement
    error NotExpired();
    error WrongAttestation(); // attestation (underlying, expiry) differs from the position's
    error InvalidProof();
    error AlreadySettled(); // the position's slot is empty in the current positions root
    error SettlementGraceNotOver();
    error UnknownPositionKind();
    error InvalidWriter();
    // payouts
    error InsufficientPayoutGas(); // not enough gas left to give a push payout its full gas allowance
    error NothingToWithdraw();
    error TransferFailed();

    // ------------------------------------------------------------------ entry points

    /// @notice Deposit `amount` for `participant` (top-ups allowed until conclusion).
    function deposit(Params calldata params, uint8 participant, uint256 amount) external payable;

    /// @notice Conclude with a mutually signed final state and pay both participants.
    function conclude(Params calldata params, State calldata state, bytes calldata sig0, bytes calldata sig1)
        external;

    /// @notice Start a dispute with a fully signed state, or replace the registered one with a newer one.
    function register(Params calldata params, State calldata state, bytes calldata sig0, bytes calldata sig1)
        external;

    /// @notice Record a fully signed state newer than the on-chain record; clears a dispute.
    function checkpoint(Params calldata params, State calldata state, bytes calldata sig0, bytes calldata sig1)
        external;

    /// @notice After the deadline, conclude with the registered state and pay both participants.
    function concludeAfterTimeout(Params calldata params, State calldata state) external;

    /// @notice Settle one expired position of a concluded channel with the oracle's attestation.
    function settlePosition(
        Params calldata params,
        Position calldata position,
        bytes32[] calldata proof,
        Attestation calldata attestation,
        bytes calldata oracleSig
    ) external;

    /// @notice Return a position's whole collateral to its writer when no settlement happened in time.
    function releaseUnsettled(Params calldata params, Position calldata position, bytes32[] calldata proof) external;

    /// @notice Execute a co-signed partial withdrawal from an open, undisputed channel.
    function withdrawPartial(
        Params calldata params,
        Withdrawal calldata withdrawal,
        bytes calldata sig0,
        bytes calldata sig1
    ) external;

    /// @notice Pull the caller's credit of `asset` (left by failed payouts) to `to`.
    function withdraw(address asset, address to) external;
}
