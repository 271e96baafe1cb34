// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestERC20 (test only)
/// @notice Plain OpenZeppelin ERC-20 with a public mint, configurable decimals and a blocklist
///         (transfers to a blocked address revert, like USDC's) to make payouts fail on purpose.
contract TestERC20 is ERC20 {
    uint8 private immutable _decimals;
    mapping(address => bool) public blocked;

    error Blocked(address account);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20(name_, symbol_) {
        _decimals = decimals_;
    }

    /// @notice Mint `amount` to `to` (anyone may call).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Block or unblock `account` as a receiver.
    function setBlocked(address account, bool value) external {
        blocked[account] = value;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (blocked[to]) revert Blocked(to);
        super._update(from, to, value);
    }
}
