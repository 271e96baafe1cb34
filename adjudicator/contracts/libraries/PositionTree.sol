// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Position} from "../interfaces/ChannelTypes.sol";

/// @title PositionTree
/// @notice Leaf hash and root computation of the positions commitment (PROTOCOL.md section 5):
///         double-hashed leaves, OpenZeppelin MerkleProof with the commutative pair hash. Because the
///         pair hash is commutative, the same sibling list recomputes the root with the leaf replaced
///         (used to zero a settled position's slot).
library PositionTree {
    /// @dev keccak256(bytes.concat(keccak256(abi.encode(position)))).
    function leaf(Position calldata position) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(position))));
    }

    /// @dev Root of the tree in which the proven slot holds `leafHash`.
    function rootWith(bytes32[] calldata proof, bytes32 leafHash) internal pure returns (bytes32) {
        return MerkleProof.processProofCalldata(proof, leafHash);
    }
}
