// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Signature} from "../interfaces/ChannelTypes.sol";
import {IAdjudicatorBase} from "../interfaces/IAdjudicatorBase.sol";

/// @title Signatures
/// @notice Compact (EIP-2098) signatures (PROTOCOL.md section 6) checked with OpenZeppelin's
///         ECDSA.tryRecover (low-s, ecrecover != 0), its errors mapped to the adjudicator's own.
library Signatures {
    /// @dev Recover the signer of `digest`; reverts InvalidSignature / HighS on malformed input.
    function recover(bytes32 digest, Signature calldata sig) internal pure returns (address signer) {
        ECDSA.RecoverError err;
        (signer, err,) = ECDSA.tryRecover(digest, sig.r, sig.yParityAndS);
        if (err != ECDSA.RecoverError.NoError) {
            if (err == ECDSA.RecoverError.InvalidSignatureS) revert IAdjudicatorBase.HighS();
            revert IAdjudicatorBase.InvalidSignature(); // r or s zero, or no point: ecrecover returned 0
        }
    }

    /// @dev Revert unless `sig` is a valid signature of `digest` by `expected`.
    function requireSigner(bytes32 digest, Signature calldata sig, address expected) internal pure {
        address signer = recover(digest, sig);
        if (signer != expected) revert IAdjudicatorBase.WrongSigner(expected, signer);
    }
}
