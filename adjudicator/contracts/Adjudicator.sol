// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AssetHolder} from "./parts/AssetHolder.sol";
import {Disputes} from "./parts/Disputes.sol";
import {Settlement} from "./parts/Settlement.sol";
import {Withdrawals} from "./parts/Withdrawals.sol";

/// @title Adjudicator
/// @notice Holds the funds of every option channel (ETH or one ERC-20 per channel) and enforces the
///         on-chain rules of docs/PROTOCOL.md section 8. Composed of one part per concern, all working
///         on the storage of `ChannelStore`: deposits and credits (`AssetHolder`), conclusion and
///         disputes (`Disputes`), partial withdrawals (`Withdrawals`), settlement of the positions left
///         open (`Settlement`).
contract Adjudicator is AssetHolder, Disputes, Withdrawals, Settlement {}
