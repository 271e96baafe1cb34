// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Params, State, Position, Attestation, Withdrawal, Signature} from "../interfaces/ChannelTypes.sol";
import {ChannelHashing} from "../libraries/ChannelHashing.sol";
import {Signatures} from "../libraries/Signatures.sol";
import {PositionTree} from "../libraries/PositionTree.sol";
import {OptionPayoff} from "../libraries/OptionPayoff.sol";

/// @title Harness (test only)
/// @notice Exposes the adjudicator's pure helpers through eth_call, so the Python core can compare
///         its encodings byte for byte (channel id, EIP-712 hashes and digests, leaf hash, Merkle root,
///         payoff math, signature checks).
contract Harness {
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    function stateTypehash() external pure returns (bytes32) {
        return ChannelHashing.STATE_TYPEHASH;
    }

    function attestationTypehash() external pure returns (bytes32) {
        return ChannelHashing.ATTESTATION_TYPEHASH;
    }

    function withdrawalTypehash() external pure returns (bytes32) {
        return ChannelHashing.WITHDRAWAL_TYPEHASH;
    }

    function channelId(Params calldata params) external pure returns (bytes32) {
        return ChannelHashing.channelId(params);
    }

    function hashState(State calldata state) external pure returns (bytes32) {
        return ChannelHashing.hashState(state);
    }

    function hashAttestation(Attestation calldata attestation) external pure returns (bytes32) {
        return ChannelHashing.hashAttestation(attestation);
    }

    function hashWithdrawal(Withdrawal calldata withdrawal) external pure returns (bytes32) {
        return ChannelHashing.hashWithdrawal(withdrawal);
    }

    /// @notice Domain separator for name "OptionChannels", version "1" at (chainId, verifyingContract).
    function domainSeparator(uint256 chainId, address verifyingContract) public pure returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("OptionChannels"), keccak256("1"), chainId, verifyingContract)
        );
    }

    /// @notice keccak256(0x1901 || domainSeparator || structHash).
    function typedDataDigest(bytes32 domainSeparator_, bytes32 structHash) public pure returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(domainSeparator_, structHash);
    }

    function stateDigest(uint256 chainId, address verifyingContract, State calldata state)
        external
        pure
        returns (bytes32)
    {
        return typedDataDigest(domainSeparator(chainId, verifyingContract), ChannelHashing.hashState(state));
    }

    function attestationDigest(uint256 chainId, address verifyingContract, Attestation calldata a)
        external
        pure
        returns (bytes32)
    {
        return typedDataDigest(domainSeparator(chainId, verifyingContract), ChannelHashing.hashAttestation(a));
    }

    function withdrawalDigest(uint256 chainId, address verifyingContract, Withdrawal calldata w)
        external
        pure
        returns (bytes32)
    {
        return typedDataDigest(domainSeparator(chainId, verifyingContract), ChannelHashing.hashWithdrawal(w));
    }

    function leaf(Position calldata position) external pure returns (bytes32) {
        return PositionTree.leaf(position);
    }

    /// @notice Root recomputed from `leafHash` and its sibling list.
    function rootWith(bytes32[] calldata proof, bytes32 leafHash) external pure returns (bytes32) {
        return PositionTree.rootWith(proof, leafHash);
    }

    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leafHash) external pure returns (bool) {
        return MerkleProof.verifyCalldata(proof, root, leafHash);
    }

    function cappedValue(uint256 diff, uint256 quantity, uint8 assetDecimals, uint256 cap)
        external
        pure
        returns (uint256)
    {
        return OptionPayoff.cappedValue(diff, quantity, assetDecimals, cap);
    }

    function payoff(
        uint8 kind,
        uint256 strike,
        uint256 quantity,
        uint256 collateral,
        uint256 price,
        uint8 assetDecimals
    ) external pure returns (uint256) {
        return OptionPayoff.payoff(kind, strike, quantity, collateral, price, assetDecimals);
    }

    /// @notice Signer of `digest` under the on-chain rules (reverts InvalidSignature / HighS).
    function recover(bytes32 digest, Signature calldata sig) external pure returns (address) {
        return Signatures.recover(digest, sig);
    }
}
