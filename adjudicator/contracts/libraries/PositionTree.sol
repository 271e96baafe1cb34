// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
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

    /// @dev In one pass over `proof`: the root with the proven slot holding `leafHash`, and the root
    ///      with that slot emptied (bytes32(0)).
    function rootsWithAndWithout(bytes32[] calldata proof, bytes32 leafHash)
        internal
        pure
        returns (bytes32 withLeaf, bytes32 withoutLeaf)
    {
        withLeaf = leafHash;
        for (uint256 i = 0; i < proof.length; ++i) {
            bytes32 sibling = proof[i];
            withLeaf = Hashes.commutativeKeccak256(withLeaf, sibling);
            withoutLeaf = Hashes.commutativeKeccak256(withoutLeaf, sibling);
        }
    }
}
