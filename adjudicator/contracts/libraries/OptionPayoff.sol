// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Position} from "../interfaces/ChannelTypes.sol";
import {ISettlement} from "../interfaces/ISettlement.sol";

/// @title OptionPayoff
/// @notice The instrument rules (PROTOCOL.md section 1): European cash-settled call/put, payoff capped
///         by the collateral. This library is the only place that knows what a position pays; the
///         dispute logic only asks it how to split a position's collateral at a price. Another
///         instrument would be another library with the same `split` shape.
library OptionPayoff {
    uint8 internal constant CALL = 0;
    uint8 internal constant PUT = 1;
    /// @dev price (8 decimals) x quantity (18 decimals) = 26 decimals.
    uint256 internal constant VALUE_DECIMALS = 26;

    /// @notice min(cap, floor(diff * quantity * 10**assetDecimals / 10**26)), exact for all inputs
    ///         (512-bit intermediate; a value that does not fit 256 bits is above any cap).
    function cappedValue(uint256 diff, uint256 quantity, uint8 assetDecimals, uint256 cap)
        internal
        pure
        returns (uint256)
    {
        if (diff == 0 || quantity == 0 || cap == 0) return 0;
        uint256 v;
        if (assetDecimals <= VALUE_DECIMALS) {
            uint256 denominator = 10 ** (VALUE_DECIMALS - assetDecimals);
            (uint256 high,) = Math.mul512(diff, quantity);
            if (high >= denominator) return cap; // quotient >= 2**256 > cap
            v = Math.mulDiv(diff, quantity, denominator); // rounds down
        } else {
            uint256 e = assetDecimals - VALUE_DECIMALS;
            if (e > 77) return cap; // 10**e >= 10**78 > 2**256 and diff * quantity >= 1
            bool ok;
            (ok, v) = Math.tryMul(diff, quantity);
            if (!ok) return cap;
            (ok, v) = Math.tryMul(v, 10 ** e);
            if (!ok) return cap;
        }
        return v < cap ? v : cap;
    }

    /// @notice Holder's payoff of an option (`kind` 0 = call, 1 = put) at settlement `price`.
    function payoff(
        uint8 kind,
        uint256 strike,
        uint256 quantity,
        uint256 collateral,
        uint256 price,
        uint8 assetDecimals
    ) internal pure returns (uint256) {
        uint256 diff;
        if (kind == CALL) {
            diff = price > strike ? price - strike : 0;
        } else if (kind == PUT) {
            diff = strike > price ? strike - price : 0;
        } else {
            revert ISettlement.UnknownPositionKind();
        }
        return cappedValue(diff, quantity, assetDecimals, collateral);
    }

    /// @notice Split `collateral` (the position's collateral, possibly capped by what is still locked)
    ///         between holder and writer at settlement `price`.
    function split(Position calldata position, uint256 collateral, uint256 price, uint8 assetDecimals)
        internal
        pure
        returns (uint256 toHolder, uint256 toWriter)
    {
        toHolder = payoff(position.kind, position.strike, position.quantity, collateral, price, assetDecimals);
        toWriter = collateral - toHolder;
    }
}
