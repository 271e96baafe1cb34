"""The one error tree: every concrete error is exactly one of Local and Remote, under ChannelError,
and its ``rule`` is its class name."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

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


def _defined_exceptions() -> dict[str, type]:
    """Every exception class defined in the package and the chain client, by name."""
    _load_everything()
    found: dict[str, type] = {}
    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", "")
        if not name.startswith(("channels.", "adjudicator.")):
            continue
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                if obj.__module__ == name:
                    found[obj.__name__] = obj
    return found


def test_every_exception_the_package_defines_is_in_the_tree() -> None:
    """No error of ours outside ChannelError: a caller catching ChannelError catches them all."""
    outside = sorted(
        f"{cls.__module__}.{name}"
        for name, cls in _defined_exceptions().items()
        if not issubclass(cls, ChannelError)
    )
    assert outside == []


def test_every_error_class_is_used() -> None:
    """An error class nobody raises, catches, maps or subclasses is dead code: each name must be
    read somewhere in the package besides its own definition."""
    reads = dict.fromkeys(_defined_exceptions(), 0)
    for root in (Path(channels.__file__).parent, Path(adjudicator.__file__).parent):
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                    name = node.id
                elif isinstance(node, ast.Attribute):
                    name = node.attr
                else:
                    continue
                if name in reads:
                    reads[name] += 1
    assert sorted(name for name, count in reads.items() if count == 0) == []
