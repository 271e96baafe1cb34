// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title TetherLikeToken (test only)
/// @notice Behaves like USDT on mainnet where it matters to a depositor: `approve` reverts when
///         both the current and the new allowance are non-zero (the approval-race guard),
///         `approve`/`transfer`/`transferFrom` return nothing, and a transfer fee in basis
///         points can be switched on (`setFee`), taken from the amount received.
contract TetherLikeToken {
    string public constant name = "TetherLike";
    string public constant symbol = "TLT";
    uint8 public constant decimals = 6;
    uint256 public totalSupply;
    uint256 public feeBasisPoints;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice Mint `amount` to `to` (anyone may call).
    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @notice The fee taken from every transfer, in basis points (anyone may call).
    function setFee(uint256 basisPoints) external {
        require(basisPoints <= 1000);
        feeBasisPoints = basisPoints;
    }

    function approve(address spender, uint256 amount) external {
        require(amount == 0 || allowance[msg.sender][spender] == 0);
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
    }

    function transfer(address to, uint256 amount) external {
        _move(msg.sender, to, amount);
    }

    function transferFrom(address from, address to, uint256 amount) external {
        uint256 a = allowance[from][msg.sender];
        require(a >= amount);
        if (a != type(uint256).max) allowance[from][msg.sender] = a - amount;
        _move(from, to, amount);
    }

    function _move(address from, address to, uint256 amount) internal {
        require(balanceOf[from] >= amount);
        uint256 fee = amount * feeBasisPoints / 10000;
        balanceOf[from] -= amount;
        balanceOf[to] += amount - fee;
        totalSupply -= fee;
        emit Transfer(from, to, amount - fee);
    }
}
