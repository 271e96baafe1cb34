"""Reading an asset's decimals from the chain (adjudicator/tokens.py ``decimals``) and the node's
table of them (channels/runtime/assets.py), against real contracts on anvil (THREATS X11).

A token's ``decimals()`` is taken only as one 32-byte word holding 0 to 36; a revert, an address
without code (no answer), a short or long answer and a number above 36 (up to a full uint256) are
refused with ``BadTokenDecimals``, a chain error. The hostile answers come from tiny contracts
written here in EVM bytecode and put on chain with ``anvil_setCode``.
"""

from __future__ import annotations

import pytest

from adjudicator import tokens
from adjudicator.tokens import BadTokenDecimals
from channels.core.errors import ChainError, RemoteError
from channels.core.model import MAX_ASSET_DECIMALS, Address, to_checksum
from channels.core.signing import LocalSigner
from channels.runtime.assets import AssetDecimals

from .kit import Kit, deploy_artifact


def answering(payload: bytes) -> bytes:
    """Runtime code that answers every call with ``payload`` (at most 64 bytes)."""
    code = b""
    for offset in range(0, len(payload), 32):
        word = payload[offset : offset + 32].ljust(32, b"\0")
        code += b"\x7f" + word + b"\x60" + bytes([offset]) + b"\x52"  # PUSH32 word; MSTORE
    return code + b"\x60" + bytes([len(payload)]) + b"\x60\x00\xf3"  # RETURN(0, len)


REVERTING = b"\x60\x00\x60\x00\xfd"  # REVERT(0, 0)


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


async def at_new_address(kit: Kit, code: bytes) -> bytes:
    """A fresh address holding ``code``."""
    where = LocalSigner.generate().address
    await kit.rpc.dev.set_code(to_checksum(where), code)
    return where


@pytest.mark.parametrize("decimals", [0, 6, 18, MAX_ASSET_DECIMALS])
async def test_decimals_within_bounds_are_read(kit: Kit, decimals: int) -> None:
    token = await deploy_artifact(kit, "TestERC20", "Odd", "ODD", decimals)
    assert await tokens.decimals(kit.rpc, token) == decimals
    assert await kit.a.asset_decimals(token) == decimals
    assert await kit.a.asset_decimals(bytes(20)) == 18  # ETH, no call
    # A plain uint256 answer (older tokens declare decimals() so) is the same word.
    assert await tokens.decimals(kit.rpc, await at_new_address(kit, answering(word(8)))) == 8


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("token with 37 decimals", "is 37, above 36"),
        ("token with 255 decimals", "is 255, above 36"),
        ("a full uint256", "is 0x" + "ff" * 32 + ", above 36"),
        ("2**64", "is 0x" + word(2**64).hex() + ", above 36"),
        ("no code", "answered 0 bytes, not one 32-byte word"),
        ("5 bytes", "answered 5 bytes, not one 32-byte word"),
        ("two words", "answered 64 bytes, not one 32-byte word"),
        ("revert", "reverted"),
    ],
)
async def test_bad_decimals_are_a_chain_error(kit: Kit, case: str, says: str) -> None:
    if case.startswith("token with"):
        token = await deploy_artifact(kit, "TestERC20", "Odd", "ODD", int(case.split()[2]))
    elif case == "no code":
        token = LocalSigner.generate().address
    else:
        code = {
            "a full uint256": answering(b"\xff" * 32),
            "2**64": answering(word(2**64)),
            "5 bytes": answering(b"\0\0\0\0\x06"),
            "two words": answering(word(6) + word(6)),
            "revert": REVERTING,
        }[case]
        token = await at_new_address(kit, code)
    for read in (tokens.decimals(kit.rpc, token), kit.a.asset_decimals(token)):
        with pytest.raises(BadTokenDecimals) as info:
            await read
        assert isinstance(info.value, ChainError) and isinstance(info.value, RemoteError)
        assert str(info.value).startswith(f"decimals() of the token at {to_checksum(token)} ")
        assert says in str(info.value)


async def test_the_node_keeps_what_it_read_but_not_a_failure(kit: Kit) -> None:
    reads: list[bytes] = []

    async def read(asset: Address) -> int:
        reads.append(asset)
        return await kit.a.asset_decimals(asset)

    table = AssetDecimals(read, capacity=2)
    late = LocalSigner.generate().address  # no code yet: its read fails and is not kept
    with pytest.raises(BadTokenDecimals):
        await table.of(Address(late))
    assert len(table) == 0
    await kit.rpc.dev.set_code(to_checksum(late), answering(word(6)))
    assert await table.of(Address(late)) == 6
    # Kept: the same asset is not read again.
    assert await table.of(Address(late)) == 6
    assert reads == [late, late]

    # Bounded: past the capacity the least recently used asset is dropped (and read again).
    eth = Address(bytes(20))
    other = Address(await at_new_address(kit, answering(word(9))))
    assert await table.of(eth) == 18
    assert await table.of(other) == 9  # drops `late`, the least recently used
    assert len(table) == 2
    assert await table.of(eth) == 18
    assert await table.of(Address(late)) == 6  # read again; drops `other`
    assert reads == [late, late, eth, other, late]
