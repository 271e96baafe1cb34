// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

// The data types of the option-channels adjudicator (docs/PROTOCOL.md sections 3-8), shared by the
// interfaces, the parts of the adjudicator and the libraries. Field order of every struct is the
// EIP-712 / abi.encode order of the specification: never reorder.

/// @notice Fixed channel parameters; `channelId = keccak256(abi.encode(keccak256(abi.encode(params)), asset))`.
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

/// @notice A `Withdrawal` as `withdrawPartial` takes it: without the channel id, which the adjudicator
///         derives from the params and puts back into the signed struct hash (one calldata word,
///         ~500 gas, fewer). Field order: the `Withdrawal` fields after `channelId`.
struct WithdrawalTerms {
    uint64 version;
    uint8 participant;
    uint256 amount;
    address recipient;
}

/// @notice A secp256k1 signature in the compact form of EIP-2098 (PROTOCOL.md section 6): `r`, and
///         `s` with the recovery bit (v - 27) in its top bit. Two static words in calldata instead
///         of a 65-byte `bytes` (offset, length, three padded words): ~430 gas less per signature.
///         `s` is below the curve order's half for a valid signature, so the top bit is always free.
struct Signature {
    bytes32 r;
    bytes32 yParityAndS;
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
