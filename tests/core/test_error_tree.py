"""The one error tree: every concrete error is exactly one of Local and Remote, under ChannelError,
and its ``rule`` is its class name."""

from __future__ import annotations

import importlib
import pkgutil

import adjudicator
import channels
from channels.core.errors import ChannelError, LocalError, RemoteError, RuleViolation

#: Groupings that are deliberately neither side (each concrete class below them picks one).
GROUPINGS = {"ChannelError", "RuleViolation", "ContractError", "CustomError"}


def _load_everything() -> None:
    for package in (channels, adjudicator):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.endswith("__main__"):
                continue
            importlib.import_module(info.name)


def _tree(root: type) -> set[type]:
    out: set[type] = set()
    stack = [root]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub not in out:
                out.add(sub)
                stack.append(sub)
    return out


def test_every_error_is_local_or_remote() -> None:
    _load_everything()
    classes = _tree(ChannelError)
    assert len(classes) > 100  # core, transport, store, chain, contract, control, cli
    for cls in classes:
        if cls.__name__ in GROUPINGS or cls in (LocalError, RemoteError):
            continue
        sides = [issubclass(cls, LocalError), issubclass(cls, RemoteError)]
        assert sides.count(True) == 1, f"{cls.__module__}.{cls.__name__} is {sides}"
        assert cls.rule == cls.__name__ or "rule" in cls.__dict__, cls


def test_rule_violations_pick_a_side() -> None:
    for cls in _tree(RuleViolation):
        assert issubclass(cls, LocalError) != issubclass(cls, RemoteError), cls


def test_error_names_are_unique() -> None:
    _load_everything()
    names = [cls.__name__ for cls in _tree(ChannelError)]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_chain_errors_are_channel_errors() -> None:
    from adjudicator import errors as contract_errors
    from adjudicator import rpc_errors, transactions

    for cls in (rpc_errors.RpcError, rpc_errors.RpcTransportError, transactions.TransactionReverted,
                contract_errors.NotNewerVersion, contract_errors.UnknownRevert):
        assert issubclass(cls, ChannelError)
    assert issubclass(contract_errors.ZeroAmount, LocalError)
    assert issubclass(contract_errors.NotNewerVersion, RemoteError)
