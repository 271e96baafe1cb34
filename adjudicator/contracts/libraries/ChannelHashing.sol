// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Params, State, Attestation, Withdrawal} from "../interfaces/ChannelTypes.sol";

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

    /// @dev keccak256(abi.encode(chainId, adjudicator, asset, assetDecimals, participant0, participant1,
    ///      challengePeriod, oracle, nonce)).
    function channelId(Params calldata params) internal pure returns (bytes32) {
        return keccak256(abi.encode(params));
    }

    /// @dev EIP-712 hashStruct(State).
    function hashState(State calldata state) internal pure returns (bytes32) {
        return keccak256(abi.encode(STATE_TYPEHASH, state));
    }

    /// @dev EIP-712 hashStruct(Attestation).
    function hashAttestation(Attestation calldata attestation) internal pure returns (bytes32) {
        return keccak256(abi.encode(ATTESTATION_TYPEHASH, attestation));
    }

    /// @dev EIP-712 hashStruct(Withdrawal).
    function hashWithdrawal(Withdrawal calldata withdrawal) internal pure returns (bytes32) {
        return keccak256(abi.encode(WITHDRAWAL_TYPEHASH, withdrawal));
    }
}
