// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IAdjudicatorBase} from "../interfaces/IAdjudicatorBase.sol";

/// @title Signatures
/// @notice 65-byte `r || s || v` signatures (PROTOCOL.md section 6) checked with OpenZeppelin's
///         ECDSA.tryRecover (low-s, ecrecover != 0), its errors mapped to the adjudicator's own.
///         The signature is read straight from calldata (no memory copy).
library Signatures {
    /// @dev Recover the signer of `digest`; reverts InvalidSignature / HighS on malformed input.
    function recover(bytes32 digest, bytes calldata sig) internal pure returns (address signer) {
        if (sig.length != 65) revert IAdjudicatorBase.InvalidSignature();
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := calldataload(sig.offset)
            s := calldataload(add(sig.offset, 0x20))
            v := byte(0, calldataload(add(sig.offset, 0x40)))
        }
        ECDSA.RecoverError err;
        (signer, err,) = ECDSA.tryRecover(digest, v, r, s);
        if (err != ECDSA.RecoverError.NoError) {
            if (err == ECDSA.RecoverError.InvalidSignatureS) revert IAdjudicatorBase.HighS();
            revert IAdjudicatorBase.InvalidSignature(); // v not 27/28, r or s zero: ecrecover returned 0
        }
    }

    /// @dev Revert unless `sig` is a valid signature of `digest` by `expected`.
    function requireSigner(bytes32 digest, bytes calldata sig, address expected) internal pure {
        address signer = recover(digest, sig);
        if (signer != expected) revert IAdjudicatorBase.WrongSigner(expected, signer);
    }
}
