// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params, State, Attestation, Withdrawal, WithdrawalTerms} from "../interfaces/ChannelTypes.sol";

/// @title ChannelHashing
/// @notice Channel id and EIP-712 struct hashes of PROTOCOL.md sections 3-4. Every struct is static,
///         so `abi.encode(TYPEHASH, s)` is exactly EIP-712 `encodeData` (one 32-byte word per field,
///         in declaration order). The domain separator and the final `0x1901` digest come from
///         OpenZeppelin's EIP712 in the adjudicator.
library ChannelHashing {
    bytes32 internal constant STATE_TYPEHASH = keccak256(
        "State(bytes32 channelId,uint64 version,uint256 balance0,uint256 balance1,uint256 deposited0,"
        "uint256 deposited1,uint256 withdrawn0,uint256 withdrawn1,uint256 locked,bytes32 positionsRoot,"
        "uint32 positionCount,bool isFinal)"
    );
    bytes32 internal constant ATTESTATION_TYPEHASH = keccak256("Attestation(bytes32 underlying,uint64 expiry,uint256 price)");
    bytes32 internal constant WITHDRAWAL_TYPEHASH = keccak256(
        "Withdrawal(bytes32 channelId,uint64 version,uint8 participant,uint256 amount,address recipient)"
    );

    /// @dev The channel id: keccak256(abi.encode(paramsHash(params), params.asset)). The asset is
    ///      hashed a second time, outside the params, so that a deposit by `paramsHash` names its
    ///      asset and the adjudicator derives the record key from both: a deposit of asset B can only
    ///      ever reach the record of a channel whose params name B (PROTOCOL.md section 3).
    ///      One assembly block: the asset word is the params' own calldata word (a dirty one already
    ///      made the params hash one no clean deposit can name).
    function channelId(Params calldata params) internal pure returns (bytes32 id) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, params, 0x120) // 9 words
            mstore(0, keccak256(ptr, 0x120))
            mstore(0x20, calldataload(add(params, 0x40))) // params.asset
            id := keccak256(0, 0x40)
        }
    }

    /// @dev keccak256(abi.encode(paramsHash, asset)): the record key of a channel (its id).
    function channelIdFor(bytes32 hashOfParams, address asset) internal pure returns (bytes32 id) {
        assembly ("memory-safe") {
            mstore(0, hashOfParams)
            mstore(0x20, and(asset, 0xffffffffffffffffffffffffffffffffffffffff))
            id := keccak256(0, 0x40)
        }
    }

    /// @dev keccak256(abi.encode(chainId, adjudicator, asset, assetDecimals, participant0, participant1,
    ///      challengePeriod, oracle, nonce)).
    /// @dev Every struct here is static: its calldata encoding is already the one-word-per-field
    ///      encoding to hash, so it is copied as is instead of being re-encoded field by field
    ///      (which also validates each field). A field with dirty high bits therefore yields a
    ///      different hash than its clean value, i.e. another channel id or a struct hash nobody
    ///      signed: it can never be taken for the clean struct, and every field the adjudicator reads
    ///      is still validated by the ABI decoder when read.
    function paramsHash(Params calldata params) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, params, 0x120) // 9 words
            h := keccak256(ptr, 0x120)
        }
    }

    /// @dev EIP-712 hashStruct(State).
    function hashState(State calldata state) internal pure returns (bytes32 h) {
        bytes32 typeHash = STATE_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            calldatacopy(add(ptr, 0x20), state, 0x180) // 12 words
            h := keccak256(ptr, 0x1a0)
        }
    }

    /// @dev EIP-712 hashStruct(Attestation).
    function hashAttestation(Attestation calldata attestation) internal pure returns (bytes32 h) {
        bytes32 typeHash = ATTESTATION_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            calldatacopy(add(ptr, 0x20), attestation, 0x60) // 3 words
            h := keccak256(ptr, 0x80)
        }
    }

    /// @dev EIP-712 hashStruct(Withdrawal).
    function hashWithdrawal(Withdrawal calldata withdrawal) internal pure returns (bytes32 h) {
        bytes32 typeHash = WITHDRAWAL_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            calldatacopy(add(ptr, 0x20), withdrawal, 0xa0) // 5 words
            h := keccak256(ptr, 0xc0)
        }
    }

    /// @dev EIP-712 hashStruct(Withdrawal) of the withdrawal `terms` of channel `id`: the same hash as
    ///      `hashWithdrawal` of the Withdrawal (id, terms...).
    function hashWithdrawal(bytes32 id, WithdrawalTerms calldata terms) internal pure returns (bytes32 h) {
        bytes32 typeHash = WITHDRAWAL_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            mstore(add(ptr, 0x20), id)
            calldatacopy(add(ptr, 0x40), terms, 0x80) // 4 words
            h := keccak256(ptr, 0xc0)
        }
    }
}
