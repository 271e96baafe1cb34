"""The Python error classes match the contract's ABI one to one; revert data decodes to them."""

import json
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode

from adjudicator import errors
from adjudicator.abi import ContractAbi, selector
from channels.core.errors import ChannelError

ARTIFACT = Path(errors.__file__).resolve().parent / "build" / "Adjudicator.json"
ABI = ContractAbi(json.loads(ARTIFACT.read_text())["abi"])


def test_one_class_per_abi_error() -> None:
    assert set(errors.CUSTOM_ERRORS) == set(ABI.errors)
    for name, err in ABI.errors.items():
        cls = errors.CUSTOM_ERRORS[name]
        assert getattr(errors, name) is cls
        assert cls.__name__ == name
        assert issubclass(cls, errors.ContractError)
        assert cls.signature() == err.signature
        assert cls.selector() == err.selector
        assert [n for n, _ in cls.fields] == [str(p["name"]) for p in err.inputs]
    selectors = [cls.selector() for cls in errors.CUSTOM_ERRORS.values()]
    assert len(set(selectors)) == len(selectors)


@pytest.mark.parametrize("name", sorted(ABI.errors))
def test_decode_every_abi_error(name: str) -> None:
    err = ABI.errors[name]
    samples: dict[str, Any] = {"address": "0x" + "ab" * 20, "uint64": 7, "string": "hi"}
    values = [samples[str(p["type"])] for p in err.inputs]
    data = err.encode(*values)
    exc = errors.decode_revert(data)
    assert type(exc) is errors.CUSTOM_ERRORS[name]
    assert exc.revert_data == data
    for p, v in zip(err.inputs, values, strict=True):
        got = exc.args_dict[str(p["name"])]
        assert got == (bytes.fromhex(v[2:]) if p["type"] == "address" else v)
    assert name in str(exc)


def test_typed_args() -> None:
    data = ABI.error("WrongSigner").encode("0x" + "11" * 20, "0x" + "22" * 20)
    exc = errors.decode_revert(data)
    assert isinstance(exc, errors.WrongSigner)
    assert exc.args_dict == {"expected": b"\x11" * 20, "recovered": b"\x22" * 20}
    exc2 = errors.decode_revert(ABI.error("NotNewerVersion").encode(5, 3))
    assert isinstance(exc2, errors.NotNewerVersion)
    assert exc2.args_dict == {"recorded": 5, "given": 3}


def test_builtin_and_unknown() -> None:
    reason = errors.decode_revert(selector("Error(string)") + encode(["string"], ["nope"]))
    assert isinstance(reason, errors.RevertReason) and reason.args_dict == {"message": "nope"}
    panic = errors.decode_revert(selector("Panic(uint256)") + encode(["uint256"], [0x11]))
    assert isinstance(panic, errors.PanicError) and panic.args_dict == {"code": 0x11}
    for data in (b"", b"\x01\x02", b"\xde\xad\xbe\xef" + bytes(32)):
        exc = errors.decode_revert(data)
        assert type(exc) is errors.UnknownRevert and exc.revert_data == data
    bad = errors.decode_revert(errors.WrongSigner.selector() + b"\x00" * 5)  # truncated args
    assert type(bad) is errors.UnknownRevert
    assert issubclass(errors.ContractError, ChannelError)
