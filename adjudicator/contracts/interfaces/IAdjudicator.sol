// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAssetHolder} from "./IAssetHolder.sol";
import {IDisputes} from "./IDisputes.sol";
import {ISettlement} from "./ISettlement.sol";
import {IWithdrawals} from "./IWithdrawals.sol";

/// @title IAdjudicator
/// @notice The whole option-channels adjudicator (docs/PROTOCOL.md section 8): one interface per
///         concern, the types in ChannelTypes.sol.
interface IAdjudicator is IAssetHolder, IDisputes, ISettlement, IWithdrawals {}
