// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title RevertingReceiver (test only): rejects every ETH transfer.
contract RevertingReceiver {
    error NoEtherAccepted();

    receive() external payable {
        revert NoEtherAccepted();
    }

    /// @notice Forward a call (lets the contract act as a caller, e.g. to pull a credit).
    function execute(address target, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        return ret;
    }
}

/// @title ReentrantReceiver (test only)
/// @notice On receiving ETH, calls `target` with the configured calldata (e.g. the adjudicator's
///         `withdraw` or `conclude`) once, records whether that inner call succeeded and its return
///         data, and accepts the ETH regardless. Tests assert the inner call hit the reentrancy guard.
contract ReentrantReceiver {
    address public target;
    bytes public data;
    uint256 public attempts;
    bool public lastSuccess;
    bytes public lastReturnData;
    bool private _inHook;

    /// @notice Configure the re-entry.
    function setReentry(address target_, bytes calldata data_) external {
        target = target_;
        data = data_;
    }

    /// @notice Forward a call (lets the contract act as a caller).
    function execute(address target_, bytes calldata data_) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = target_.call{value: msg.value}(data_);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        return ret;
    }

    receive() external payable {
        if (_inHook || target == address(0)) return;
        _inHook = true;
        attempts += 1;
        (lastSuccess, lastReturnData) = target.call(data);
        _inHook = false;
    }
}
