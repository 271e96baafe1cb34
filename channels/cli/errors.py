"""How a failed command ends: one line saying what happened and what to do, a stable code for
``--json``, and an exit code per kind of failure.

=====  ==========  ===================================================================
exit   category    meaning
=====  ==========  ===================================================================
1      internal    a bug in this program (please report it; CHANNELS_DEBUG=1 shows more)
2      usage       the command line or the config file is wrong
3      refused     a rule refused it (funds, expiry, phase); nothing changed
4      peer        the peer is offline, did not answer, or broke the protocol
5      chain       the chain's RPC endpoint failed or a transaction did not go through
6      node        no desk node serves the control socket (start `channels node`)
130    interrupt   Ctrl-C
=====  ==========  ===================================================================
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from channels.core.errors import LocalError

EXIT_CODES = {
    "internal": 1,
    "usage": 2,
    "refused": 3,
    "peer": 4,
    "chain": 5,
    "node": 6,
    "interrupt": 130,
}


class AlreadyClosed(LocalError):
    """The channel a command names is closed already."""


@dataclass(frozen=True, slots=True)
class Failure:
    """A failure as the user sees it: ``code`` is stable (scripts match on it)."""

    category: str
    code: str
    message: str

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.category]

    def json(self) -> dict[str, object]:
        return {
            "error": {
                "code": self.code,
                "category": self.category,
                "message": self.message,
                "exit_code": self.exit_code,
            }
        }


#: Modules that define errors a node may report over the control socket.
_ERROR_MODULES = (
    "adjudicator.errors",
    "adjudicator.rpc",
    "adjudicator.tokens",
    "adjudicator.transactions",
    "channels.core.consent",
    "channels.core.quotes",
    "channels.runtime.currency",
    "channels.runtime.deposits",
    "channels.runtime.errors",
    "channels.runtime.node",
    "channels.defence.watchtower",
)


def _category_by_class() -> dict[str, str]:
    """Every class of the one error tree by name: chain, peer, internal or refused. A name the
    core uses wins over the same name in an adapter (the contract's reverts reuse some)."""
    import importlib

    from channels.core import errors
    from channels.store.errors import CorruptStore, StoreError

    for module in _ERROR_MODULES:  # the CLI process has not loaded the node's modules
        try:
            importlib.import_module(module)
        except ImportError:  # moved by a refactor: the fallback below still applies
            pass
    found: dict[str, tuple[bool, str]] = {}

    def category(cls: type[BaseException]) -> str:
        if issubclass(cls, errors.ChainError):
            return "chain"
        if issubclass(cls, StoreError | CorruptStore):
            return "internal"
        if issubclass(cls, errors.RemoteError):
            return "peer"
        return "refused"

    todo: list[type[BaseException]] = [errors.ChannelError]
    while todo:
        for sub in todo.pop().__subclasses__():
            core = sub.__module__ == errors.__name__
            if sub.__name__ not in found or (core and not found[sub.__name__][0]):
                found[sub.__name__] = (core, category(sub))
            todo.append(sub)
    return {name: cat for name, (_, cat) in found.items()}


_PEER_KINDS = {
    "Timeout",
    "TooSlowError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "PeerOffline",
}
#: The peer answered and refused (a declined quote, terms or update it does not accept): it is
#: online, so the hint at checking its node or forcing a close would mislead.
_PEER_REFUSALS = {
    "QuoteDeclined",
    "QuoteWithdrawn",
    "QuotePriceChanged",
    "QuoteTermsChanged",
    "TooManyQuoteRequests",
    "TermsRefused",
    "UpdateRefusedError",
}
#: Refused by this desk's own consent setting (max_deposit_fee_bps): the message names the fee,
#: the setting and what to do. The peer is online and broke nothing, so the hint at its node or at
#: forcing a close would mislead; a rule of ours refused it (exit 3).
_CONSENT_REFUSALS = {"DepositFeeRefused", "PeerDepositFeeRefused"}
_NODE_KINDS = {"NodeNotRunning", "ControlSocketInUse"}
_USAGE_KINDS = {"BadRequest", "UsageError", "ConfigError", "KeyOnCommandLine", "UnknownChannel"}


def category_of_kind(kind: str) -> str:
    """The category of an error named by its class name."""
    if kind in _PEER_KINDS:
        return "peer"
    if kind in _NODE_KINDS:
        return "node"
    if kind in _USAGE_KINDS:
        return "usage"
    if kind == "DevChainError":
        return "chain"
    known = _category_by_class().get(kind)
    if known is not None:
        return known
    # A class this CLI does not know (a newer node): rules are named without "Error".
    return "internal" if kind.endswith(("Error", "Exception")) else "refused"


_UNIX_TIME = re.compile(r"\b(1[0-9]{9})\b")


def iso_times_in(text: str) -> str:
    """Rewrite unix times (10 digits, 2001-2286) in a message as ISO times."""

    def iso(match: re.Match[str]) -> str:
        when = dt.datetime.fromtimestamp(int(match.group(1)), dt.UTC)
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")

    return _UNIX_TIME.sub(iso, text)


def refusal_hint(kind: str, message: str) -> str:
    """What to do about a refusal, by rule."""
    lowered = message.lower()
    if kind == "IllegalCall" and "closed" in lowered:
        return "the channel is already closed"
    hints = {
        "InsufficientFunds": "the balance does not cover it; see `status` for ours and theirs",
        "ExpiryTooSoon": "choose a later --expiry",
        "ExpiryTooLate": "choose an earlier --expiry",
        "OpenPositionsAtFinal": (
            "open positions remain: settle expired ones (`settle`), unwind the others, "
            "or force a close (`dispute`)"
        ),
        "Undercollateralised": "raise --collateral to cover the payoff",
        "UnconfirmedDeposit": "wait for the deposit's confirmations and try again",
        "TooManyPending": "too many updates in flight; try again in a moment",
        "BadAttestation": (
            "use the channel oracle's attestation for this position's underlying and expiry "
            "(getinfo shows the chain and adjudicator it must be signed for)"
        ),
    }
    return hints.get(kind, "")


# Classifying an exception -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Context:
    """What the command knew when it failed, to name things in the message."""

    config: str | None = None
    peer: str | None = None
    listen_port: int | None = None
    #: The command line's RPC option, when it named the chain (``--rpc-url URL``).
    rpc_option: str | None = None


def _kind_and_text(exc: BaseException) -> tuple[str, str]:
    from channels.control import ControlError

    if isinstance(exc, ControlError):
        return exc.kind, exc.message
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return type(exc).__name__, text


def classify(exc: BaseException, ctx: Context) -> Failure:
    """The user's view of ``exc``: category, stable code and one line with what to do."""
    import errno

    import trio

    from channels.cli.config import ConfigError, PortInUse, UsageError
    from channels.cli.units import UnitError

    cfg = ctx.config or "DESK.toml"
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupt", "interrupted", "interrupted")
    if isinstance(exc, AlreadyClosed):
        return Failure("refused", "already_closed", _one(str(exc)))
    if isinstance(exc, PortInUse):
        return Failure("usage", "port_in_use", _one(str(exc)))
    if isinstance(exc, UsageError | UnitError):
        return Failure("usage", "usage", _one(str(exc)))
    if isinstance(exc, ConfigError):
        return Failure("usage", "config", _one(str(exc)))
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        where = f" ([node] listen_port in {cfg})" if ctx.config else ""
        port = f"port {ctx.listen_port}" if ctx.listen_port else "the listen port"
        return Failure(
            "usage",
            "port_in_use",
            f"{port} is already in use{where}: stop the process using it or choose another port",
        )
    if isinstance(exc, OSError) and exc.filename and not isinstance(exc, ConnectionError):
        return Failure(
            "usage", "file_error", f"{exc.strerror or type(exc).__name__}: {exc.filename}"
        )
    if isinstance(exc, trio.TooSlowError):
        kind, text = "Timeout", "did not finish in time"
    else:
        kind, text = _kind_and_text(exc)
    category = category_of_kind(kind)
    text = iso_times_in(text)
    if kind in _CONSENT_REFUSALS:
        return Failure("refused", kind, f"refused ({kind}): {_one(text)}")
    if category == "node":
        return Failure("node", _snake(kind), _one(text))
    if category == "peer" and kind in _PEER_REFUSALS:  # it answered: no hint at its node
        who = f"peer {ctx.peer}" if ctx.peer else "the peer"
        return Failure("peer", _snake(kind), f"{who} refused ({kind}): {_one(text)}")
    if category == "peer":
        who = f"peer {ctx.peer}" if ctx.peer else "the peer"
        what = {
            "Timeout": "did not answer in time",
            "TooSlowError": "did not answer in time",
            "PeerTimeout": "stopped answering",
            "ConnectionRefusedError": "refused the connection (is its node running?)",
        }.get(kind, f"failed ({kind}: {text})" if text else f"failed ({kind})")
        hint = "check that its node runs and is reachable"
        if ctx.peer:
            hint += f", or force a close on chain: channels -c {cfg} dispute {ctx.peer}"
        return Failure(
            "peer",
            "peer_unreachable" if "answer" in what or "refused" in what else _snake(kind),
            f"{who} {what}; {hint}",
        )
    if category == "chain":
        if ctx.rpc_option:
            where = ctx.rpc_option
        elif ctx.config:
            where = f"[chain] rpc_url in {ctx.config}"
        else:
            where = "the chain's RPC URL"
        return Failure(
            "chain",
            "chain_error",
            f"chain: {kind}: {_one(text)} (check {where} and that the chain runs)",
        )
    if category == "refused":
        if kind == "IllegalCall" and "closed" in text.lower():
            return Failure("refused", "already_closed", "the channel is already closed")
        hint = refusal_hint(kind, text)
        message = f"refused ({kind}): {_one(text)}" + (f"; {hint}" if hint else "")
        return Failure("refused", kind, message)
    if category == "usage":
        return Failure("usage", _snake(kind), f"{kind}: {_one(text)}" if text else kind)
    return Failure(
        "internal",
        "internal",
        f"internal error ({kind}: {_one(text)}); set CHANNELS_DEBUG=1 for the traceback and "
        "report it",
    )


def _one(text: str) -> str:
    return " ".join(text.split())


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
