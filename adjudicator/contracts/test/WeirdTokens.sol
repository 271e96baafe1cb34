// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title WeirdTokenBase (test only)
/// @notice Minimal ERC-20 book-keeping shared by the non-standard tokens below (after d-xo/weird-erc20).
///         `_move` returns false instead of reverting; each token decides how to report it.
abstract contract WeirdTokenBase {
    string public name;
    string public symbol;
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    mapping(address => bool) public blocked;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(string memory name_, string memory symbol_) {
        name = name_;
        symbol = symbol_;
    }

    /// @notice Mint `amount` to `to` (anyone may call).
    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @notice Block or unblock `account` as a receiver.
    function setBlocked(address account, bool value) external {
        blocked[account] = value;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function _spend(address from, uint256 amount) internal returns (bool) {
        if (from == msg.sender) return true;
        uint256 a = allowance[from][msg.sender];
        if (a < amount) return false;
        if (a != type(uint256).max) allowance[from][msg.sender] = a - amount;
        return true;
    }

    function _move(address from, address to, uint256 amount) internal virtual returns (bool) {
        if (blocked[to] || balanceOf[from] < amount) return false;
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
        return true;
    }
}

/// @title NoReturnToken (test only): like USDT, transfer/transferFrom return nothing and revert on failure.
contract NoReturnToken is WeirdTokenBase {
    constructor() WeirdTokenBase("NoReturn", "NRT") {}

    function transfer(address to, uint256 amount) external {
        require(_move(msg.sender, to, amount));
    }

    function transferFrom(address from, address to, uint256 amount) external {
        require(_spend(from, amount) && _move(from, to, amount));
    }
}

/// @title ReturnsFalseToken (test only): returns false on failure instead of reverting.
contract ReturnsFalseToken is WeirdTokenBase {
    constructor() WeirdTokenBase("ReturnsFalse", "RFT") {}

    function transfer(address to, uint256 amount) external returns (bool) {
        return _move(msg.sender, to, amount);
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        return _spend(from, amount) && _move(from, to, amount);
    }
}

/// @title FeeOnTransferToken (test only): burns 1% of every transfer (rounded down).
contract FeeOnTransferToken is WeirdTokenBase {
    constructor() WeirdTokenBase("FeeOnTransfer", "FOT") {}

    function transfer(address to, uint256 amount) external returns (bool) {
        require(_move(msg.sender, to, amount));
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        require(_spend(from, amount) && _move(from, to, amount));
        return true;
    }

    function _move(address from, address to, uint256 amount) internal override returns (bool) {
        if (blocked[to] || balanceOf[from] < amount) return false;
        uint256 fee = amount / 100;
        balanceOf[from] -= amount;
        balanceOf[to] += amount - fee;
        totalSupply -= fee;
        emit Transfer(from, to, amount - fee);
        if (fee != 0) emit Transfer(from, address(0), fee);
        return true;
    }
}

/// @title RevertOnZeroToken (test only): reverts on a zero-value transfer.
contract RevertOnZeroToken is WeirdTokenBase {
    constructor() WeirdTokenBase("RevertOnZero", "RZT") {}

    function transfer(address to, uint256 amount) external returns (bool) {
        require(amount != 0 && _move(msg.sender, to, amount));
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        require(amount != 0 && _spend(from, amount) && _move(from, to, amount));
        return true;
    }
}

/// @title MovesButReturnsFalseToken (test only): once switched, `transfer` moves the funds and still
///        returns false (a proxied token seen doing so after an upgrade). `transferFrom` stays honest.
contract MovesButReturnsFalseToken is WeirdTokenBase {
    bool public reportsFalse;

    constructor() WeirdTokenBase("MovesButReturnsFalse", "MRF") {}

    /// @notice Switch the lying `transfer` on or off (anyone may call).
    function setReportsFalse(bool value) external {
        reportsFalse = value;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        require(_move(msg.sender, to, amount));
        return !reportsFalse;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        return _spend(from, amount) && _move(from, to, amount);
    }
}
