// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title HookToken (test only)
/// @notice ERC-20 that, like an ERC-777 hook, calls `hookTarget` with `hookData` during every transfer
///         (after balances move), records the inner call's outcome and never fails because of it.
///         Tests point it at the adjudicator (deposit / withdraw / conclude) and assert the inner call
///         reverted with the reentrancy guard.
contract HookToken is ERC20 {
    address public hookTarget;
    bytes public hookData;
    uint256 public attempts;
    bool public lastSuccess;
    bytes public lastReturnData;
    bool private _inHook;

    constructor() ERC20("HookToken", "HOOK") {}

    /// @notice Mint `amount` to `to` (anyone may call).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Configure the hook (address(0) disables it).
    function setHook(address target, bytes calldata data) external {
        hookTarget = target;
        hookData = data;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (_inHook || hookTarget == address(0) || from == address(0)) return;
        _inHook = true;
        attempts += 1;
        (lastSuccess, lastReturnData) = hookTarget.call(hookData);
        _inHook = false;
    }
}
